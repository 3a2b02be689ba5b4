//! The change feed through real servers: replaying it gives the index's documents, a waiting
//! reader wakes on the next write, bad parameters are 400s; on one node and through a cluster.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Server;
use common::cluster::{Trio, all_up, bulk, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Replays the feed of `index` through `server` from `since` onto `docs`, `limit` per page;
/// returns the cursor after the last page.
fn follow(
    server: &Server,
    index: &str,
    since: Option<&str>,
    limit: usize,
    docs: &mut BTreeMap<String, Value>,
) -> String {
    let mut cursor = since.map(String::from);
    loop {
        let path = match &cursor {
            Some(c) => format!("/{index}/_cameo/changes?limit={limit}&since={c}"),
            None => format!("/{index}/_cameo/changes?limit={limit}"),
        };
        let (status, page) = server.get(&path);
        assert_eq!(status, StatusCode::OK, "{page}");
        let changes = page["changes"].as_array().expect("changes");
        assert!(changes.len() <= limit);
        for change in changes {
            let id = change["_id"].as_str().expect("id").to_string();
            match change["op"].as_str() {
                Some("index") => {
                    docs.insert(id, change["_source"].clone());
                }
                Some("delete") => {
                    docs.remove(&id);
                }
                other => panic!("unknown op {other:?}"),
            }
        }
        let next = page["next"].as_str().expect("next").to_string();
        if changes.is_empty() {
            return next;
        }
        cursor = Some(next);
    }
}

/// The index's documents as a search sees them.
fn searched(server: &Server, index: &str) -> BTreeMap<String, Value> {
    server.call("POST", &format!("/{index}/_refresh"), None);
    let (status, body) = server.call(
        "POST",
        &format!("/{index}/_search"),
        Some(json!({"size": 10000})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    body["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            (
                h["_id"].as_str().expect("id").to_string(),
                h["_source"].clone(),
            )
        })
        .collect()
}

fn write_some(server: &Server, index: &str) {
    let docs: Vec<Value> = (0..300)
        .map(|i| json!({"id": format!("m{i}"), "n": i}))
        .collect();
    bulk(server, index, &docs);
    for i in 0..20 {
        server.call(
            "PUT",
            &format!("/{index}/_doc/m{i}"),
            Some(json!({"id": format!("m{i}"), "n": -i})),
        );
        server.call("DELETE", &format!("/{index}/_doc/m{}", 100 + i), None);
    }
}

/// Waits with `wait` from `cursor` in a thread, writes one document after a moment, and
/// checks the waiting reader got it, well before its deadline.
fn a_waiting_reader_wakes(reader: &Server, writer: &Server, index: &str, cursor: &str) {
    let url = format!(
        "{}/{index}/_cameo/changes?wait=20s&since={cursor}",
        reader.base
    );
    let started = Instant::now();
    let waiting = std::thread::spawn(move || {
        let page: Value = reqwest::blocking::Client::new()
            .get(url)
            .timeout(Duration::from_secs(60))
            .send()
            .expect("answer")
            .json()
            .expect("json");
        (page, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = writer.call(
        "PUT",
        &format!("/{index}/_doc/late"),
        Some(json!({"late": true})),
    );
    assert!(status.is_success());
    let (page, waited) = waiting.join().expect("reader");
    let changes = page["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{page}");
    assert_eq!(changes[0]["_id"], "late");
    assert!(
        waited < Duration::from_secs(10),
        "woken by the write: {waited:?}"
    );
}

#[test]
fn the_feed_replays_to_the_index_and_wakes_waiting_readers() {
    let server = Server::start();
    write_some(&server, "feed");
    let mut docs = BTreeMap::new();
    let cursor = follow(&server, "feed", None, 97, &mut docs);
    assert_eq!(docs, searched(&server, "feed"));
    assert_eq!(docs.len(), 280);

    // A follower picks up where it stopped.
    server.call("DELETE", "/feed/_doc/m0", None);
    server.call("PUT", "/feed/_doc/new", Some(json!({"id": "new"})));
    let cursor = follow(&server, "feed", Some(&cursor), 5, &mut docs);
    assert_eq!(docs, searched(&server, "feed"));

    a_waiting_reader_wakes(&server, &server, "feed", &cursor);

    for (path, says) in [
        ("/feed/_cameo/changes?since=garbage", "cursor"),
        ("/feed/_cameo/changes?limit=0", "limit"),
        ("/feed/_cameo/changes?limit=100000", "changes.max_limit"),
        ("/feed/_cameo/changes?wait=5m", "changes.max_wait"),
        ("/feed/_cameo/changes?wait=soon", "wait"),
        ("/feed/_cameo/changes?bogus=1", "bogus"),
    ] {
        let (status, body) = server.get(path);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["error"]["reason"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{body}"
        );
    }
    let (status, _) = server.get("/missing/_cameo/changes");
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn the_feed_covers_every_node_of_a_cluster() {
    let trio = Trio::start();
    wait_until(Duration::from_secs(30), "three members up", || {
        all_up(&trio.all(), 3)
    });
    let (first, second) = (&trio.nodes[0], &trio.nodes[1]);
    write_some(first, "feed");
    let mut docs = BTreeMap::new();
    // Read through another node than the one written through.
    let cursor = follow(second, "feed", None, 64, &mut docs);
    assert_eq!(docs, searched(first, "feed"));
    assert_eq!(docs.len(), 280);
    assert!(
        cursor.split('.').count() == 3,
        "one position per node: {cursor}"
    );
    a_waiting_reader_wakes(second, first, "feed", &cursor);
}
