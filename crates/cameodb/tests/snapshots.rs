//! Snapshot reads through a real server, against a model: random interleavings of puts,
//! partial updates, deletes and refreshes with scrolls and points in time opened along the
//! way; each, read to its end, returns exactly the model's documents as of the refresh it saw,
//! with the versions and sources they had then.

mod common;

use std::collections::BTreeMap;

use common::Server;
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// id -> (version, source).
type Model = BTreeMap<String, (u64, Value)>;

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u8),
    Update(u8, u8),
    Delete(u8),
    Refresh,
    Scroll,
    Pit,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..15, any::<u8>()).prop_map(|(id, n)| Op::Put(id, n)),
        2 => (0u8..15, 0u8..3).prop_map(|(id, n)| Op::Update(id, n)),
        2 => (0u8..15).prop_map(Op::Delete),
        2 => Just(Op::Refresh),
        1 => Just(Op::Scroll),
        1 => Just(Op::Pit),
    ]
}

/// Hits as the model keeps documents.
fn collect(hits: &[Value], into: &mut Model) {
    for hit in hits {
        let id = hit["_id"].as_str().expect("id").to_string();
        let version = hit["_version"].as_u64().expect("version");
        assert!(
            into.insert(id.clone(), (version, hit["_source"].clone()))
                .is_none(),
            "{id} returned twice"
        );
    }
}

/// What an open scroll returns from here to its end, with what its first page returned.
fn drain_scroll(server: &Server, id: &str, mut seen: Model) -> Model {
    loop {
        let (status, page) = server.call(
            "POST",
            "/_search/scroll",
            Some(json!({"scroll": "1m", "scroll_id": id})),
        );
        assert_eq!(status, StatusCode::OK, "{page}");
        let hits = page["hits"]["hits"].as_array().expect("hits");
        if hits.is_empty() {
            return seen;
        }
        collect(hits, &mut seen);
    }
}

/// A whole `search_after` walk over point in time `id`.
fn walk_pit(server: &Server, id: &str) -> Model {
    let mut seen = Model::new();
    let mut after: Option<Value> = None;
    loop {
        let mut body =
            json!({"size": 4, "version": true, "sort": [{"n": "asc"}], "pit": {"id": id}});
        if let Some(after) = &after {
            body["search_after"] = after.clone();
        }
        let (status, page) = server.call("POST", "/_search", Some(body));
        assert_eq!(status, StatusCode::OK, "{page}");
        let hits = page["hits"]["hits"].as_array().expect("hits");
        if hits.is_empty() {
            return seen;
        }
        collect(hits, &mut seen);
        after = Some(hits.last().expect("hit")["sort"].clone());
    }
}

enum Open {
    Scroll {
        id: String,
        first: Model,
        expected: Model,
    },
    Pit {
        id: String,
        expected: Model,
    },
}

fn run(server: &Server, index: &str, ops: &[Op]) -> Result<(), TestCaseError> {
    let (status, body) = server.call(
        "PUT",
        &format!("/{index}"),
        Some(json!({"settings": {"refresh_interval": "-1"}, "mappings": {"properties": {"n": {"type": "integer"}}}})),
    );
    prop_assert_eq!(status, StatusCode::OK, "{}", body);
    let mut model = Model::new();
    let mut refreshed = Model::new();
    let mut open = Vec::new();
    for op in ops {
        match *op {
            Op::Put(id, n) => {
                let id = format!("d{id}");
                let body = json!({"n": n, "tag": format!("t{n}")});
                let (status, out) =
                    server.call("PUT", &format!("/{index}/_doc/{id}"), Some(body.clone()));
                prop_assert!(status.is_success(), "{}", out);
                model.insert(id, (out["_version"].as_u64().expect("version"), body));
            }
            Op::Update(id, n) => {
                let id = format!("d{id}");
                let (status, out) = server.call(
                    "POST",
                    &format!("/{index}/_update/{id}"),
                    Some(json!({"doc": {"n": n}})),
                );
                match model.get_mut(&id) {
                    Some((version, body)) => {
                        prop_assert_eq!(status, StatusCode::OK, "{}", out);
                        body["n"] = json!(n);
                        *version = out["_version"].as_u64().expect("version");
                    }
                    None => prop_assert_eq!(status, StatusCode::NOT_FOUND, "{}", out),
                }
            }
            Op::Delete(id) => {
                server.call("DELETE", &format!("/{index}/_doc/d{id}"), None);
                model.remove(&format!("d{id}"));
            }
            Op::Refresh => {
                server.call("POST", &format!("/{index}/_refresh"), None);
                refreshed = model.clone();
            }
            Op::Scroll => {
                let (status, page) = server.call(
                    "POST",
                    &format!("/{index}/_search?scroll=1m"),
                    Some(json!({"size": 3, "version": true})),
                );
                prop_assert_eq!(status, StatusCode::OK, "{}", page);
                let mut first = Model::new();
                collect(page["hits"]["hits"].as_array().expect("hits"), &mut first);
                open.push(Open::Scroll {
                    id: page["_scroll_id"].as_str().expect("id").to_string(),
                    first,
                    expected: refreshed.clone(),
                });
            }
            Op::Pit => {
                let (status, opened) =
                    server.call("POST", &format!("/{index}/_pit?keep_alive=1m"), None);
                prop_assert_eq!(status, StatusCode::OK, "{}", opened);
                open.push(Open::Pit {
                    id: opened["id"].as_str().expect("id").to_string(),
                    expected: refreshed.clone(),
                });
            }
        }
    }
    for snapshot in open {
        match snapshot {
            Open::Scroll {
                id,
                first,
                expected,
            } => {
                prop_assert_eq!(drain_scroll(server, &id, first), expected);
            }
            Open::Pit { id, expected } => prop_assert_eq!(walk_pit(server, &id), expected),
        }
    }
    server.call("DELETE", &format!("/{index}"), None);
    Ok(())
}

#[test]
fn scrolls_and_points_in_time_return_their_snapshot() {
    let server = Server::start();
    let case = std::sync::atomic::AtomicUsize::new(0);
    proptest!(ProptestConfig { cases: 24, ..ProptestConfig::default() }, |(ops in prop::collection::vec(op(), 1..50))| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        run(&server, &format!("snap{n}"), &ops)?;
    });
}
