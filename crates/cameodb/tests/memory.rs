//! The memory breaker through the real binary: hostile aggregations, bulk requests and JSON
//! bodies run concurrently against a node with small budgets; they get 429
//! `circuit_breaking_exception` (or a clear 400), the process's memory stays within the node's
//! budget, and the node keeps answering.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{bulk, movies};
use common::{Server, ndjson};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MB: u64 = 1 << 20;
/// The node-wide budget the test gives the node (`--breaker-total-limit`).
const NODE_LIMIT: u64 = 512 * MB;
/// How far above the budget the process's anonymous memory may be seen: the breaker trips
/// after the allocation that crosses the limit, and what a request frees is not always
/// returned to the system at once.
const MARGIN: u64 = 128 * MB;

/// A line of `/proc/<pid>/status`, in bytes.
fn proc_status(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn nested_terms(fields: &[&str], size: u64) -> Value {
    let mut aggs: Option<Value> = None;
    for (level, field) in fields.iter().enumerate().rev() {
        let mut agg = json!({"terms": {"field": field, "size": size}});
        if let Some(inner) = aggs {
            agg["aggs"] = inner;
        }
        aggs = Some(json!({ format!("l{level}"): agg }));
    }
    json!({"size": 0, "aggs": aggs})
}

#[test]
fn hostile_aggregations_and_bulks_stay_within_the_memory_budget() {
    let server = Server::start_with(&[
        "--breaker-total-limit",
        "512mb",
        "--breaker-request-limit",
        "256mb",
    ]);
    bulk(&server, "movies", &movies(8000));
    let pid = server.pid().expect("pid");
    let base = server.base.clone();

    let heavy: Vec<Value> = vec![
        // Multi-valued fields nested on themselves: millions of buckets.
        nested_terms(&["Cast.keyword", "Cast.keyword", "Cast.keyword"], 100),
        nested_terms(
            &["Cast.keyword", "Writer.keyword", "Director.keyword"],
            10_000,
        ),
        nested_terms(
            &[
                "Genre.keyword",
                "Country.keyword",
                "Language.keyword",
                "Year",
                "Rating.keyword",
                "Director.keyword",
                "Writer.keyword",
                "Cast.keyword",
            ],
            100,
        ),
    ];
    let deletes: Vec<Value> = (0..200_000)
        .map(|i| json!({"delete": {"_index": "movies", "_id": format!("nope-{i}")}}))
        .collect();
    let deletes = ndjson(&deletes);
    let mut big = Vec::new();
    for i in 0..400 {
        big.push(json!({"index": {"_index": "junk", "_id": i.to_string()}}));
        big.push(json!({"v": vec![1; 20_000]}));
    }
    let big = ndjson(&big);
    let huge_array = format!(
        r#"{{"query":{{"terms":{{"Year":[{}1]}}}}}}"#,
        "1,".repeat(20_000_000)
    )
    .into_bytes();

    let answers: Arc<Mutex<Vec<(String, u16, Value)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let peak_anon = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak_anon));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(proc_status(pid, "RssAnon:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut workers = Vec::new();
    let mut send = |label: &str, path: &str, content_type: &'static str, body: Vec<u8>| {
        let (label, url, answers) = (
            label.to_string(),
            format!("{base}{path}"),
            Arc::clone(&answers),
        );
        workers.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()
                .expect("client");
            for _ in 0..2 {
                let response = client
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body.clone())
                    .send()
                    .expect("the node answers");
                let status = response.status().as_u16();
                let body: Value = response.json().unwrap_or(Value::Null);
                answers
                    .lock()
                    .expect("lock")
                    .push((label.clone(), status, body));
            }
        }));
    };
    for (n, query) in heavy.iter().enumerate() {
        let body = query.to_string().into_bytes();
        send(
            &format!("aggregation {n}"),
            "/movies/_search",
            "application/json",
            body,
        );
    }
    send(
        "bulk of deletes",
        "/_bulk",
        "application/x-ndjson",
        deletes.clone(),
    );
    send("bulk of deletes", "/_bulk", "application/x-ndjson", deletes);
    send(
        "bulk of big documents",
        "/_bulk",
        "application/x-ndjson",
        big,
    );
    send(
        "huge json array",
        "/movies/_search",
        "application/json",
        huge_array,
    );
    for worker in workers {
        worker.join().expect("worker");
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");

    let answers = answers.lock().expect("lock");
    let mut tripped = 0;
    for (label, status, body) in answers.iter() {
        assert!(
            matches!(*status, 200 | 400 | 429),
            "{label}: {status} {body}"
        );
        if *status == 429 {
            assert_eq!(
                body["error"]["type"],
                json!("circuit_breaking_exception"),
                "{body}"
            );
            assert!(body["error"]["bytes_limit"].as_u64().is_some(), "{body}");
            assert_eq!(body["error"]["durability"], json!("TRANSIENT"));
            tripped += 1;
        }
    }
    assert!(tripped >= 4, "the heavy requests were refused: {answers:?}");
    let peak = peak_anon.load(Ordering::Relaxed);
    eprintln!(
        "peak anonymous memory {} MB (limit {} MB), peak resident {} MB; {} of {} answers were 429",
        peak / MB,
        NODE_LIMIT / MB,
        proc_status(pid, "VmHWM:") / MB,
        tripped,
        answers.len()
    );
    assert!(
        peak <= NODE_LIMIT + MARGIN,
        "anonymous memory peaked at {} MB, over the {} MB budget",
        peak / MB,
        NODE_LIMIT / MB
    );
    // Everyone else is still served.
    let (status, body) = server.get("/movies/_count");
    assert_eq!(
        (status, body["count"].clone()),
        (StatusCode::OK, json!(8000))
    );
    let (status, body) = server.call(
        "POST",
        "/movies/_search",
        Some(json!({"size": 0, "aggs": {"g": {"terms": {"field": "Genre.keyword"}}}})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
}
