//! Replication through real processes on 127.0.0.x: a cluster with three copies of every
//! document loses a node under continuous writes and loses nothing; ranges that keep a
//! majority keep taking writes when two of five are down; a wiped node is rebuilt from its
//! peers; conditional writes through different coordinators have one winner.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::Server;
use common::cluster::{all_up, bulk, local_docs, start_nodes, wait_until};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

/// Creates `index` with `replicas` replicas through `server`.
fn create(server: &Server, index: &str, replicas: u32) {
    let settings = json!({"settings": {"number_of_replicas": replicas}});
    let (status, body) = server.call("PUT", &format!("/{index}"), Some(settings));
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// What a writer thread saw: the ids acknowledged, and every failure.
#[derive(Default)]
struct Tally {
    acked: Vec<String>,
    errors: Vec<String>,
}

/// Threads writing new documents through some nodes until stopped.
struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Tally>>,
}

impl Writers {
    /// One thread per coordinator, each writing single documents and small bulks to `index`,
    /// under ids that start with `tag`.
    fn start(coordinators: &[&Server], index: &str, tag: &str) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = coordinators
            .iter()
            .enumerate()
            .map(|(t, server)| {
                let (base, index, stop) = (server.base.clone(), index.to_string(), stop.clone());
                let tag = format!("{tag}{t}");
                std::thread::spawn(move || write_until(&base, &index, &tag, &stop))
            })
            .collect();
        Writers { stop, threads }
    }

    fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Release);
        let mut all = Tally::default();
        for thread in self.threads {
            let tally = thread.join().expect("writer thread");
            all.acked.extend(tally.acked);
            all.errors.extend(tally.errors);
        }
        all
    }
}

fn write_until(base: &str, index: &str, tag: &str, stop: &AtomicBool) -> Tally {
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut tally = Tally::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        if n.is_multiple_of(10) {
            let ids: Vec<String> = (0..20).map(|i| format!("{tag}-{n}-b{i}")).collect();
            let mut body = String::new();
            for id in &ids {
                body.push_str(&json!({"index": {"_index": index, "_id": id}}).to_string());
                body.push('\n');
                body.push_str(&json!({"n": n, "w": tag, "text": "bulk write"}).to_string());
                body.push('\n');
            }
            match client
                .post(format!("{base}/_bulk"))
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .and_then(|r| r.json::<Value>())
            {
                Ok(answer) => {
                    for (id, item) in ids
                        .iter()
                        .zip(answer["items"].as_array().into_iter().flatten())
                    {
                        let status = item["index"]["status"].as_u64().unwrap_or(0);
                        if status == 201 || status == 200 {
                            tally.acked.push(id.clone());
                        } else {
                            tally.errors.push(format!("{id}: {item}"));
                        }
                    }
                }
                Err(err) => tally.errors.push(format!("bulk: {err}")),
            }
            continue;
        }
        let id = format!("{tag}-{n}");
        match client
            .put(format!("{base}/{index}/_doc/{id}"))
            .json(&json!({"n": n, "w": tag, "text": "single write"}))
            .send()
        {
            Ok(r) if r.status().is_success() => tally.acked.push(id),
            Ok(r) => {
                let status = r.status();
                tally
                    .errors
                    .push(format!("{id}: {status} {}", r.text().unwrap_or_default()));
            }
            Err(err) => tally.errors.push(format!("{id}: {err}")),
        }
    }
    tally
}

fn health(server: &Server) -> Value {
    server.get("/_cluster/health").1
}

/// Waits until every node is green and the copies add up to `copies` × `docs`.
fn wait_converged(nodes: &[&Server], index: &str, docs: usize, copies: u64) -> Duration {
    wait_until(Duration::from_secs(60), "replicas converge", || {
        nodes.iter().all(|n| health(n)["status"] == json!("green"))
            && nodes.iter().map(|n| local_docs(n, index)).sum::<u64>() == copies * docs as u64
    })
}

/// Every id in `ids` is found through `server`.
fn all_found(server: &Server, index: &str, ids: &[String]) {
    for chunk in ids.chunks(500) {
        let (status, body) = server.call(
            "POST",
            &format!("/{index}/_mget"),
            Some(json!({"ids": chunk})),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        let missing: Vec<&Value> = body["docs"]
            .as_array()
            .expect("docs")
            .iter()
            .filter(|d| d["found"] != json!(true))
            .collect();
        assert!(
            missing.is_empty(),
            "acknowledged but not found: {missing:?}"
        );
    }
}

fn search_total(server: &Server, index: &str) -> (u64, Value) {
    let (status, body) = server.call(
        "POST",
        &format!("/{index}/_search"),
        Some(json!({"size": 0, "track_total_hits": true})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["hits"]["total"]["value"].as_u64().unwrap_or(0),
        body["_shards"].clone(),
    )
}

#[test]
fn a_node_killed_under_writes_loses_nothing_and_catches_up() {
    let mut nodes = start_nodes(4, &[]);
    let all: Vec<&Server> = nodes.iter().collect();
    wait_until(Duration::from_secs(10), "4 nodes up", || all_up(&all, 4));
    create(&nodes[0], "rep", 2);
    let writers = Writers::start(&[&nodes[0], &nodes[1]], "rep", "a");
    std::thread::sleep(Duration::from_millis(1500));

    nodes[3].kill();
    let survivors: Vec<&Server> = nodes[..3].iter().collect();
    wait_until(
        Duration::from_secs(15),
        "the killed node is seen down",
        || {
            survivors
                .iter()
                .all(|n| health(n)["status"] == json!("yellow"))
        },
    );
    std::thread::sleep(Duration::from_millis(1500));
    // While it is down, reads and searches through any survivor are complete.
    let (status, body) = nodes[2].call("POST", "/rep/_refresh", None);
    assert_eq!(status, StatusCode::OK, "{body}");
    let (total, shards) = search_total(&nodes[2], "rep");
    assert_eq!(shards["failed"], json!(0), "{shards}");
    assert!(total > 0);
    let before_restart = writers.stop();
    assert!(
        before_restart.errors.is_empty(),
        "writes failed at the default consistency with one of four down: {:?}",
        &before_restart.errors[..before_restart.errors.len().min(5)]
    );
    all_found(&nodes[2], "rep", &before_restart.acked);

    nodes[3].kill_and_restart();
    let all: Vec<&Server> = nodes.iter().collect();
    wait_until(Duration::from_secs(15), "the node rejoins", || {
        all_up(&all, 4)
    });
    let writers = Writers::start(&[&nodes[1], &nodes[3]], "rep", "b");
    std::thread::sleep(Duration::from_millis(1000));
    let after = writers.stop();
    assert!(
        after.errors.is_empty(),
        "{:?}",
        &after.errors[..after.errors.len().min(5)]
    );
    let acked: Vec<String> = before_restart
        .acked
        .into_iter()
        .chain(after.acked)
        .collect();
    let unique: BTreeSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len());
    let took = wait_converged(&all, "rep", acked.len(), 3);
    eprintln!(
        "{} acknowledged writes; three copies of each {took:?} after the last write",
        acked.len()
    );
    all_found(&nodes[3], "rep", &acked);
    nodes[0].call("POST", "/rep/_refresh", None);
    for node in &all {
        let (total, shards) = search_total(node, "rep");
        assert_eq!(total, acked.len() as u64, "{shards}");
        assert_eq!(shards["failed"], json!(0));
    }
    let (_, rows) = nodes[0].get("/_cat/shards/rep?format=json");
    let rows = rows.as_array().expect("rows");
    assert!(
        rows.iter().all(|r| r["state"] == json!("STARTED")),
        "{rows:?}"
    );
    let docs: u64 = rows
        .iter()
        .map(|r| {
            r["docs"]
                .as_str()
                .and_then(|d| d.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(
        docs,
        3 * acked.len() as u64,
        "three copies of every document"
    );
}

#[test]
fn with_two_of_five_down_ranges_with_a_majority_keep_taking_writes() {
    let mut nodes = start_nodes(5, &[]);
    let all: Vec<&Server> = nodes.iter().collect();
    wait_until(Duration::from_secs(10), "5 nodes up", || all_up(&all, 5));
    create(&nodes[0], "five", 2);
    let docs: Vec<Value> = (0..500)
        .map(|n| json!({"id": format!("d{n}"), "n": n}))
        .collect();
    bulk(&nodes[0], "five", &docs);
    nodes[3].kill();
    nodes[4].kill();
    let live: Vec<&Server> = nodes[..3].iter().collect();
    wait_until(Duration::from_secs(15), "two nodes seen down", || {
        live.iter()
            .all(|n| health(n)["unassigned_shards"].as_u64().unwrap_or(0) > 0)
    });
    let mut acked: Vec<String> = docs
        .iter()
        .map(|d| d["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let (mut taken, mut refused) = (0, 0);
    for n in 0..120 {
        let id = format!("late-{n}");
        let (status, body) =
            nodes[n % 3].call("PUT", &format!("/five/_doc/{id}"), Some(json!({"n": n})));
        match status {
            StatusCode::CREATED => {
                taken += 1;
                acked.push(id);
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                let reason = body["error"]["reason"].as_str().unwrap_or_default();
                assert!(reason.contains("wait_for_active_shards"), "{body}");
                // One copy is enough when the client says so. (The refused write may have
                // reached its first copy before the others failed: then this one updates it.)
                let (status, body) = nodes[n % 3].call(
                    "PUT",
                    &format!("/five/_doc/{id}?wait_for_active_shards=1"),
                    Some(json!({"n": n})),
                );
                assert!(status.is_success(), "{body}");
                acked.push(id);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    eprintln!("with two of five down: {taken} writes taken, {refused} refused at the default");
    assert!(taken > 0 && refused > 0, "{taken} taken, {refused} refused");
    // Every shard keeps a live copy: reads and searches are complete.
    all_found(&nodes[1], "five", &acked);
    nodes[0].call("POST", "/five/_refresh", None);
    let (total, shards) = search_total(&nodes[2], "five");
    assert_eq!(
        (total, shards["failed"].clone()),
        (acked.len() as u64, json!(0))
    );

    nodes[3].kill_and_restart();
    nodes[4].kill_and_restart();
    let all: Vec<&Server> = nodes.iter().collect();
    wait_until(Duration::from_secs(15), "both rejoin", || all_up(&all, 5));
    wait_converged(&all, "five", acked.len(), 3);
    all_found(&nodes[4], "five", &acked);
}

#[test]
fn a_wiped_node_is_rebuilt_from_its_peers() {
    let mut nodes = start_nodes(3, &[]);
    let all: Vec<&Server> = nodes.iter().collect();
    wait_until(Duration::from_secs(10), "3 nodes up", || all_up(&all, 3));
    create(&nodes[0], "wiped", 1);
    let docs: Vec<Value> = (0..3000)
        .map(|n| json!({"id": format!("d{n}"), "n": n, "text": "kept"}))
        .collect();
    bulk(&nodes[1], "wiped", &docs);
    for n in 0..100 {
        nodes[0].call("DELETE", &format!("/wiped/_doc/d{n}"), None);
    }
    let all: Vec<&Server> = nodes.iter().collect();
    wait_converged(&all, "wiped", 2900, 2);
    let held = local_docs(&nodes[2], "wiped");
    assert!(held > 0);

    nodes[2].kill();
    std::fs::remove_dir_all(nodes[2].data_dir().join("indices")).expect("wipe");
    nodes[2].kill_and_restart();
    let all: Vec<&Server> = nodes.iter().collect();
    let took = wait_converged(&all, "wiped", 2900, 2);
    eprintln!("a wiped node holding {held} documents was rebuilt in {took:?}");
    assert_eq!(local_docs(&nodes[2], "wiped"), held);
    let (status, doc) = nodes[2].get("/wiped/_doc/d5?preference=_local");
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a deleted document stays deleted: {doc}"
    );
}

/// `n` PUTs released at once, the `t`-th through node `t % nodes` with `request(t)` (path and
/// body); their statuses.
fn at_once(nodes: &[Server], n: usize, request: impl Fn(usize) -> (String, Value)) -> Vec<u16> {
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|t| {
            let base = nodes[t % nodes.len()].base.clone();
            let (path, body) = request(t);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let client = Client::new();
                barrier.wait();
                client
                    .put(format!("{base}{path}"))
                    .json(&body)
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect()
}

#[test]
fn conditional_writes_through_different_coordinators_have_one_winner() {
    let nodes = start_nodes(3, &[]);
    let all: Vec<&Server> = nodes.iter().collect();
    wait_until(Duration::from_secs(10), "3 nodes up", || all_up(&all, 3));
    create(&nodes[0], "cas", 2);
    for round in 0..5 {
        let id = format!("doc-{round}");
        let (status, first) =
            nodes[0].call("PUT", &format!("/cas/_doc/{id}"), Some(json!({"v": 0})));
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let seq = first["_seq_no"].as_u64().expect("seq_no");
        let outcomes = at_once(&nodes, 6, |t| {
            (
                format!("/cas/_doc/{id}?if_seq_no={seq}&if_primary_term=1"),
                json!({"v": t + 1}),
            )
        });
        let won = outcomes.iter().filter(|s| **s == 200).count();
        let lost = outcomes.iter().filter(|s| **s == 409).count();
        assert_eq!((won, lost), (1, 5), "round {round}: {outcomes:?}");
        // op_type=create of one new id through every coordinator at once: one creates it.
        let fresh = format!("fresh-{round}");
        let created = at_once(&nodes, 6, |t| {
            (format!("/cas/_create/{fresh}"), json!({"by": t}))
        });
        assert_eq!(
            created.iter().filter(|s| **s == 201).count(),
            1,
            "{created:?}"
        );
        assert_eq!(
            created.iter().filter(|s| **s == 409).count(),
            5,
            "{created:?}"
        );
    }
    // Scripted increments with retry_on_conflict through every coordinator add up.
    nodes[1].call(
        "PUT",
        "/cas/_doc/counter?refresh=true",
        Some(json!({"n": 0})),
    );
    let increments: Vec<u16> = (0..9)
        .map(|t| {
            let base = nodes[t % 3].base.clone();
            std::thread::spawn(move || {
                let client = Client::new();
                client
                    .post(format!("{base}/cas/_update/counter?retry_on_conflict=20"))
                    .json(&json!({"script": {"source": "ctx._source.n += 1"}}))
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert!(increments.iter().all(|s| *s == 200), "{increments:?}");
    // Read from the copy that resolves writes, through any node: every increment is there.
    for node in &nodes {
        let (_, doc) = node.get("/cas/_doc/counter");
        assert_eq!(doc["_source"]["n"], json!(9), "{doc}");
    }
    // The third copy had to wait for nothing (two of three acknowledge): it converges.
    wait_until(Duration::from_secs(10), "every copy counts 9", || {
        nodes.iter().all(|node| {
            node.get("/cas/_doc/counter?preference=_local").1["_source"]["n"] == json!(9)
        })
    });
}

#[test]
fn anti_entropy_restores_documents_a_copy_lost_without_a_trace() {
    let nodes = start_nodes(3, &["--fault-injection", "--anti-entropy-interval", "1s"]);
    let all: Vec<&Server> = nodes.iter().collect();
    wait_until(Duration::from_secs(10), "3 nodes up", || all_up(&all, 3));
    create(&nodes[0], "fragile", 2);
    let docs: Vec<Value> = (0..500)
        .map(|n| json!({"id": format!("d{n}"), "n": n}))
        .collect();
    bulk(&nodes[0], "fragile", &docs);
    wait_converged(&all, "fragile", 500, 3);
    // A disk fault on the third node: documents gone, no tombstone, nothing in its feed.
    for n in 0..20 {
        let (status, body) =
            nodes[2].call("POST", &format!("/_cameo/fault/fragile/lose/d{n}"), None);
        assert_eq!(
            (status, body["result"].clone()),
            (StatusCode::OK, json!("deleted")),
            "{body}"
        );
    }
    // Anti-entropy runs every second, so on a loaded machine it may already be restoring the
    // first losses: only the last one is surely still missing right after it.
    let (status, _) = nodes[2].get("/fragile/_doc/d19?preference=_local");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(local_docs(&nodes[2], "fragile") < 500);
    let took = wait_until(
        Duration::from_secs(30),
        "anti-entropy restores them",
        || local_docs(&nodes[2], "fragile") == 500,
    );
    eprintln!("20 lost documents restored by anti-entropy in {took:?}");
    let (status, doc) = nodes[2].get("/fragile/_doc/d7?preference=_local");
    assert_eq!(
        (status, doc["_source"]["n"].clone()),
        (StatusCode::OK, json!(7))
    );
}

#[test]
fn reads_repair_a_copy_that_lost_the_document() {
    // Anti-entropy once a minute (the default): what repairs the copy here is the reads.
    let nodes = start_nodes(3, &["--fault-injection"]);
    let all: Vec<&Server> = nodes.iter().collect();
    wait_until(Duration::from_secs(10), "3 nodes up", || all_up(&all, 3));
    create(&nodes[0], "reread", 2);
    let docs: Vec<Value> = (0..20)
        .map(|n| json!({"id": format!("d{n}"), "n": n}))
        .collect();
    bulk(&nodes[0], "reread", &docs);
    wait_converged(&all, "reread", 20, 3);
    let (status, body) = nodes[2].call("POST", "/_cameo/fault/reread/lose/d3", None);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        nodes[2].get("/reread/_doc/d3?preference=_local").0,
        StatusCode::NOT_FOUND
    );
    // One read in ten compares the copies; the reads go to a copy that still has it, or the
    // read repairs the one that does not.
    for _ in 0..30 {
        nodes[1].get("/reread/_doc/d3");
    }
    wait_until(Duration::from_secs(10), "the copy is repaired", || {
        nodes[2].get("/reread/_doc/d3?preference=_local").0 == StatusCode::OK
    });
}
