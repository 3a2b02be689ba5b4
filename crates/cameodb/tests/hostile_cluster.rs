//! A hostile client and a hostile peer against a three-node cluster with a cluster secret: a
//! node started with another secret never becomes a member, never holds a document and cannot
//! change the cluster's metadata; requests that used to take nodes down are 400s from every
//! node, and every node keeps answering.

mod common;

use std::time::Duration;

use common::cluster::{Trio, all_up, bulk, local_docs, movies, node_id, states, wait_until};
use common::{Server, free_port};
use reqwest::StatusCode;
use serde_json::json;

const SECRET: &str = "the secret of the hostile test cluster";

#[test]
fn a_node_without_the_secret_never_joins_and_hostile_requests_hurt_no_node() {
    let trio = Trio::start_with(&["--cluster-secret", SECRET]);
    let nodes = trio.all();
    wait_until(Duration::from_secs(20), "three members up", || {
        all_up(&nodes, 3)
    });
    let seed_addr = trio.seed_addr();
    let outsider = Server::start_on(
        "127.0.0.4",
        &[
            "--cluster-addr",
            &format!("127.0.0.4:{}", free_port()),
            "--join",
            &seed_addr,
            "--cluster-secret",
            "another secret that is not this cluster's",
        ],
    );
    let outsider_id = node_id(&outsider);

    let (status, body) = nodes[0].call(
        "PUT",
        "/victim",
        Some(json!({"mappings": {"properties": {"Released": {"type": "date"}}}})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    bulk(nodes[1], "victim", &movies(300));
    // Several gossip rounds later, still three members everywhere, one for the outsider.
    std::thread::sleep(Duration::from_secs(3));
    for node in &nodes {
        let view = states(node);
        assert_eq!(view.len(), 3, "{view:?}");
        assert!(!view.contains_key(&outsider_id));
    }
    assert_eq!(states(&outsider).len(), 1);
    // No document is on it, and it cannot delete or change the index.
    assert_eq!(local_docs(&outsider, "victim"), 0);
    let total: u64 = nodes.iter().map(|n| local_docs(n, "victim")).sum();
    assert_eq!(
        total,
        3 * 300,
        "three copies of each (two replicas by default on three nodes)"
    );
    let (status, _) = outsider.call("DELETE", "/victim", None);
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = outsider.call(
        "PUT",
        "/victim/_mapping",
        Some(json!({"properties": {"Title": {"type": "integer"}}})),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    for node in &nodes {
        let (status, body) = node.get("/victim/_count");
        assert_eq!(
            (status, body["count"].clone()),
            (StatusCode::OK, json!(300))
        );
        let (_, mapping) = node.get("/victim/_mapping");
        assert_ne!(
            mapping["victim"]["mappings"]["properties"]["Title"]["type"],
            json!("integer")
        );
    }

    // Requests that used to abort every node, sent through each of them.
    let hostile = [
        json!({"query": {"query_string": {"query": "(".repeat(2200)}}}),
        json!({"query": {"simple_query_string": {"query": "+(".repeat(2200)}}}),
        json!({"query": {"range": {"Released": {"gte": "now\u{e9}"}}}}),
        json!({"query": {"range": {"Released": {"gte": "now+9999999999y"}}}}),
    ];
    for node in &nodes {
        for query in &hostile {
            let (status, body) = node.call("POST", "/victim/_search", Some(query.clone()));
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            let (status, body) = node.call("POST", "/victim/_count", Some(query.clone()));
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        }
    }
    assert!(all_up(&nodes, 3), "every node is still up");
    for node in &nodes {
        let (status, body) = node.get("/victim/_count");
        assert_eq!(
            (status, body["count"].clone()),
            (StatusCode::OK, json!(300))
        );
    }
}
