//! Durability through the whole stack: SIGKILL the server while clients stream `_bulk`
//! requests; after restart every item reported successful is stored and searchable, and the
//! index counts exactly the stored documents. `CAMEODB_SERVER_CRASH_CYCLES` sets the number of
//! kills (default 3).

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, ndjson};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CLIENTS: usize = 2;
const BATCH: usize = 200;

fn stream_bulk(base: String, cycle: usize, client_no: usize, acked: Arc<Mutex<BTreeSet<String>>>) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    for batch in 0.. {
        let mut lines = Vec::new();
        for i in 0..BATCH {
            let id = format!("c{cycle}-t{client_no}-{batch}-{i}");
            lines.push(json!({"index": {"_index": "crash", "_id": id}}));
            lines.push(json!({"title": format!("document {id}"), "body": "stream of acknowledged writes", "n": i}));
        }
        let response = client
            .post(format!("{base}/_bulk"))
            .header("content-type", "application/x-ndjson")
            .body(ndjson(&lines))
            .send();
        let Ok(response) = response else { return };
        let Ok(body) = response.json::<Value>() else {
            return;
        };
        let Some(items) = body["items"].as_array() else {
            return;
        };
        let mut acked = acked.lock().expect("acked");
        for item in items {
            let item = &item["index"];
            if matches!(item["status"].as_u64(), Some(200 | 201)) {
                acked.insert(item["_id"].as_str().unwrap_or_default().to_string());
            }
        }
    }
}

#[test]
fn sigkill_during_bulk_loses_no_acknowledged_item() {
    let cycles: usize = std::env::var("CAMEODB_SERVER_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut server = Server::start();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut rng = rand::rng();
    for cycle in 0..cycles {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (base, acked) = (server.base.clone(), Arc::clone(&acked));
                std::thread::spawn(move || stream_bulk(base, cycle, c, acked))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(400..1500)));
        server.kill_and_restart();
        for client in clients {
            client.join().expect("client thread");
        }

        let acked: Vec<String> = acked.lock().expect("acked").iter().cloned().collect();
        assert!(
            !acked.is_empty(),
            "cycle {cycle}: nothing was acknowledged; the test proved nothing"
        );
        for chunk in acked.chunks(500) {
            let (status, mget) = server.call("POST", "/crash/_mget", Some(json!({"ids": chunk})));
            assert_eq!(status, StatusCode::OK);
            for doc in mget["docs"].as_array().expect("docs") {
                assert_eq!(
                    doc["found"], true,
                    "cycle {cycle}: acknowledged {} lost",
                    doc["_id"]
                );
            }
            let (_, count) = server.call(
                "POST",
                "/crash/_count",
                Some(json!({"query": {"ids": {"values": chunk}}})),
            );
            assert_eq!(
                count["count"].as_u64(),
                Some(chunk.len() as u64),
                "cycle {cycle}: acknowledged documents not searchable"
            );
        }
        let (_, count) = server.get("/crash/_count");
        let (_, cat) = server.get("/_cat/indices/crash?format=json");
        let stored: u64 = cat[0]["docs.count"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("docs.count");
        assert_eq!(
            count["count"].as_u64(),
            Some(stored),
            "cycle {cycle}: index and kv store disagree"
        );
        assert!(stored >= acked.len() as u64);
        eprintln!(
            "cycle {cycle}: {} acknowledged, {stored} stored",
            acked.len()
        );
    }
}

#[test]
fn a_panicking_index_actor_recovers_from_its_wal_and_neighbours_keep_serving() {
    let server = Server::start_with(&["--fault-injection"]);
    server.call(
        "PUT",
        "/victim",
        Some(json!({"settings": {"refresh_interval": "-1"}})),
    );
    server.call(
        "PUT",
        "/neighbour/_doc/1?refresh=true",
        Some(json!({"ok": true})),
    );
    // Durable but never refreshed: only WAL replay can make these searchable after a restart.
    for i in 0..20 {
        let (status, _) = server.call(
            "PUT",
            &format!("/victim/_doc/{i}"),
            Some(json!({"title": format!("doc {i}")})),
        );
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(server.get("/victim/_count").1["count"], 0);

    let (status, body) = server.call("POST", "/_cameo/fault/victim/panic", None);
    assert_eq!(
        (status, body["panicked"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert_eq!(
        server.get("/neighbour/_doc/1").0,
        StatusCode::OK,
        "other indexes keep serving"
    );

    // The actor reopens the store; its recovery replays the WAL into the index.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, count) = server.get("/victim/_count");
        if status == StatusCode::OK && count["count"] == 20 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "victim did not recover: {status} {count}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = server.call(
        "PUT",
        "/victim/_doc/new?refresh=true",
        Some(json!({"title": "after"})),
    );
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(server.get("/victim/_count").1["count"], 21);
}
