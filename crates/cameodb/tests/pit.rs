//! Points in time through real servers: a `search_after` walk over a point in time returns
//! every document of its snapshot once, with the source it had, whatever is written meanwhile;
//! on one node and through a cluster (opened through one node, read through another).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Server;
use common::cluster::{Trio, all_up, bulk, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn load(server: &Server) {
    let docs: Vec<Value> = (0..500)
        .map(|i| json!({"id": format!("p{i}"), "n": i % 50, "orig": true}))
        .collect();
    bulk(server, "pits", &docs);
}

/// Walks the point in time `id` through `reader`, 37 hits a page, sorted on a field with many
/// ties (so only the `_shard_doc` tiebreaker keeps the walk exact).
fn walk(reader: &Server, id: &str) -> BTreeMap<String, Value> {
    let mut seen = BTreeMap::new();
    let mut after: Option<Value> = None;
    loop {
        let mut body = json!({
            "size": 37, "sort": [{"n": "asc"}],
            "pit": {"id": id, "keep_alive": "1m"},
        });
        if let Some(after) = &after {
            body["search_after"] = after.clone();
        }
        let (status, page) = reader.call("POST", "/_search", Some(body));
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["pit_id"], json!(id));
        let hits = page["hits"]["hits"].as_array().expect("hits");
        if hits.is_empty() {
            return seen;
        }
        for hit in hits {
            let sort = hit["sort"].as_array().expect("sort");
            assert_eq!(sort.len(), 2, "the implicit _shard_doc tiebreaker: {hit}");
            let id = hit["_id"].as_str().expect("id").to_string();
            assert!(
                seen.insert(id.clone(), hit["_source"].clone()).is_none(),
                "{id} twice"
            );
        }
        after = Some(hits.last().expect("a hit")["sort"].clone());
    }
}

/// Opens a point in time through `opener`, changes the index through `writer`, walks the point
/// in time through `reader`, closes it.
fn check(opener: &Server, writer: &Server, reader: &Server) {
    let (status, opened) = opener.call("POST", "/pits/_pit?keep_alive=1m", None);
    assert_eq!(status, StatusCode::OK, "{opened}");
    let id = opened["id"].as_str().expect("id").to_string();
    for i in 0..40 {
        writer.call("DELETE", &format!("/pits/_doc/p{i}"), None);
        writer.call(
            "PUT",
            &format!("/pits/_doc/p{}", 100 + i),
            Some(json!({"n": 0, "orig": false})),
        );
    }
    writer.call("PUT", "/pits/_doc/late", Some(json!({"n": 1})));
    writer.call("POST", "/pits/_refresh", None);
    let seen = walk(reader, &id);
    assert_eq!(seen.len(), 500, "every document of the snapshot, once");
    assert!(
        seen.values().all(|s| s["orig"] == json!(true)),
        "as they were"
    );
    assert!(!seen.contains_key("late"));

    let (status, closed) = reader.call("DELETE", "/_pit", Some(json!({"id": id})));
    assert_eq!(
        (status, closed["num_freed"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (status, gone) = reader.call(
        "POST",
        "/_search",
        Some(json!({"pit": {"id": id}, "sort": [{"n": "asc"}]})),
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert_eq!(gone["error"]["type"], "search_context_missing_exception");
}

#[test]
fn a_point_in_time_walk_returns_its_snapshot() {
    let server = Server::start();
    load(&server);
    check(&server, &server, &server);

    let (status, body) = server.call("POST", "/pits/_pit", None);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server.call("POST", "/pits/_pit?keep_alive=1000d", None);
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "keep-alive bounded like scroll: {body}"
    );
    let (status, opened) = server.call("POST", "/pits/_pit?keep_alive=1m", None);
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.call(
        "POST",
        "/pits/_search",
        Some(json!({"pit": {"id": opened["id"]}})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = server.call("POST", "/missing/_pit?keep_alive=1m", None);
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn a_point_in_time_spans_the_cluster() {
    let trio = Trio::start();
    wait_until(Duration::from_secs(30), "three members up", || {
        all_up(&trio.all(), 3)
    });
    load(&trio.nodes[0]);
    check(&trio.nodes[0], &trio.nodes[1], &trio.nodes[2]);
}
