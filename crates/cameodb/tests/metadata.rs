//! Cluster metadata beyond mappings — index templates and aliases — on real processes: a node
//! that was down while they changed catches up through gossip, and an index auto-created
//! through it gets the templates' mappings.

mod common;

use std::time::Duration;

use common::cluster::{all_up, start_nodes, wait_until};
use reqwest::StatusCode;
use serde_json::json;

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
