//! Cluster metadata beyond mappings — index templates and aliases — on real processes: a node
//! that was down while they changed catches up through gossip, and an index auto-created
//! through it gets the templates' mappings; a node that joins writes into the indexes the
//! cluster already holds, never into second ones of the same names.

mod common;

use std::time::Duration;

use common::Server;
use common::cluster::{all_up, bulk, join_node, seed_node, start_nodes, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[test]
fn templates_and_aliases_reach_a_node_that_was_down() {
    let mut nodes = start_nodes(3, &[]);
    {
        let all: Vec<_> = nodes.iter().collect();
        wait_until(Duration::from_secs(10), "3 nodes up", || all_up(&all, 3));
    }
    nodes[2].kill();
    let (status, body) = nodes[0].call(
        "PUT",
        "/_component_template/meta_base",
        Some(json!({"template": {"mappings": {"properties": {"host": {"type": "keyword"}}}}})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = nodes[1].call(
        "PUT",
        "/_index_template/meta_logs",
        Some(
            json!({"index_patterns": ["meta-logs-*"], "composed_of": ["meta_base"],
            "template": {"settings": {"number_of_replicas": 1},
                "mappings": {"properties": {"at": {"type": "date"}}}}}),
        ),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = nodes[0].call(
        "PUT",
        "/meta-books",
        Some(json!({"aliases": {"meta-reading": {}}})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    nodes[2].launch();
    let took = wait_until(
        Duration::from_secs(30),
        "the returned node knows both",
        || {
            nodes[2].get("/_index_template/meta_logs").0 == StatusCode::OK
                && nodes[2].get("/_component_template/meta_base").0 == StatusCode::OK
                && nodes[2].get("/_alias/meta-reading").0 == StatusCode::OK
        },
    );
    eprintln!("templates and aliases caught up in {took:?}");
    // An index auto-created by a write through the returned node gets the templates.
    let (status, body) = nodes[2].call(
        "PUT",
        "/meta-logs-1/_doc/1?refresh=true",
        Some(json!({"host": "web-1", "at": "2026-12-04"})),
    );
    assert!(status.is_success(), "{body}");
    for node in &nodes {
        let (_, mapping) = node.get("/meta-logs-1/_mapping");
        let properties = &mapping["meta-logs-1"]["mappings"]["properties"];
        assert_eq!(properties["host"]["type"], json!("keyword"), "{mapping}");
        assert_eq!(properties["at"]["type"], json!("date"), "{mapping}");
        let (_, settings) = node.get("/meta-logs-1/_settings");
        assert_eq!(
            settings["meta-logs-1"]["settings"]["index"]["number_of_replicas"],
            json!("1")
        );
    }
    // Deleting a template reaches every node too.
    let (status, _) = nodes[2].call("DELETE", "/_index_template/meta_logs", None);
    assert_eq!(status, StatusCode::OK);
    wait_until(Duration::from_secs(10), "the deletion spreads", || {
        nodes
            .iter()
            .all(|n| n.get("/_index_template/meta_logs").0 == StatusCode::NOT_FOUND)
    });
}

/// The regression behind a CI failure: a newcomer that had not pulled an index yet is the
/// metadata owner of some names on the grown ring, and a write through it auto-created a
/// second, empty index of the same name (a new uuid) instead of writing into the existing one.
#[test]
fn a_write_through_a_newcomer_lands_in_the_index_the_cluster_holds() {
    let (a, seed) = seed_node();
    let b = join_node("127.0.0.2", &seed);
    wait_until(Duration::from_secs(10), "2 nodes up", || {
        all_up(&[&a, &b], 2)
    });
    // Enough names that the newcomer owns several of them on the three-member ring.
    let names: Vec<String> = (0..40).map(|n| format!("held-{n}")).collect();
    for name in &names {
        let docs: Vec<Value> = (0..5).map(|n| json!({"id": format!("d{n}")})).collect();
        bulk(&a, name, &docs);
    }
    let uuid = |node: &Server, name: &str| {
        node.get(&format!("/{name}/_settings")).1[name]["settings"]["index"]["uuid"].clone()
    };
    let before: Vec<Value> = names.iter().map(|name| uuid(&a, name)).collect();
    let c = join_node("127.0.0.3", &seed);
    let nodes = [&a, &b, &c];
    // At once when the newcomer sees the others, before its metadata sync pulled everything.
    wait_until(Duration::from_secs(10), "the newcomer sees 3", || {
        all_up(&[&c], 3)
    });
    for name in &names {
        let (status, body) = c.call("PUT", &format!("/{name}/_doc/new"), Some(json!({})));
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    }
    for (name, expected) in names.iter().zip(&before) {
        for node in nodes {
            assert_eq!(&uuid(node, name), expected, "{name} on {}", node.base);
            node.call("POST", &format!("/{name}/_refresh"), None);
        }
        for node in nodes {
            let (_, count) = node.get(&format!("/{name}/_count"));
            assert_eq!(count["count"], json!(6), "{name}: {count}");
        }
    }
}
