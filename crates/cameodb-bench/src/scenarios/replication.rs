//! What copies cost and how fast they heal, on three local nodes: bulk and single-document
//! writes and searches with one copy of each document (RF=1) against three (RF=3); then the
//! catch-up of a node killed during a bulk load, and the rebuild of a node whose data was
//! wiped.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::corpus::Corpus;
use crate::http::Http;
use crate::load;
use crate::report::{Table, num};
use crate::scenarios::{ingest, reads};
use crate::server::Node;

/// Documents of `index` the node at `url` holds itself.
async fn local_docs(http: &Http, index: &str) -> u64 {
    let text = http
        .send(reqwest::Method::GET, "/_cameo/node/stats", None, "")
        .await
        .unwrap_or_default();
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["indices"][index]["docs"].as_u64())
        .unwrap_or(0)
}

/// Waits until the node behind `http` holds `expected` documents of each of `indices`;
/// returns how long that took.
async fn wait_holds(http: &Http, indices: &[&str], expected: u64) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let mut all = true;
        for index in indices {
            all &= local_docs(http, index).await >= expected;
        }
        if all {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(900) {
            return Err(format!(
                "the node did not get its copies of {indices:?} back"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the node behind `http` sees a member down (the one just killed).
async fn wait_seen_down(http: &Http) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let text = http
            .send(reqwest::Method::GET, "/_cat/nodes?format=json", None, "")
            .await
            .unwrap_or_default();
        if text.contains("\"down\"") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the killed node was never seen down".into())
}

/// One RF's measurements.
struct Measured {
    bulk_docs_s: f64,
    put: load::Summary,
    search: load::Summary,
}

async fn measure(
    http: &Http,
    corpus: &Corpus,
    index: &str,
    replicas: u32,
    queries: &Arc<Vec<String>>,
    row: Duration,
) -> Result<Measured, String> {
    crate::progress(&format!("replication bench: bulk, {replicas} replicas"));
    let settings = json!({"settings": {"number_of_replicas": replicas}});
    let bulk = ingest::bulk_with(http, corpus, index, 5000, 4, settings).await?;
    let put_docs: Arc<Vec<(String, String)>> = Arc::new(
        corpus
            .docs
            .iter()
            .take(10_000)
            .map(|d| (d.id.clone(), d.raw.clone()))
            .collect(),
    );
    crate::progress(&format!(
        "replication bench: PUT and search, {replicas} replicas"
    ));
    let put = load::closed(16, row, None, http.put_op(index, put_docs)).await;
    reads::check(&put, "PUT")?;
    let search = load::closed(1, row, None, http.search_op(index, Arc::clone(queries))).await;
    reads::check(&search, "search")?;
    Ok(Measured {
        bulk_docs_s: bulk.docs as f64 / bulk.elapsed.as_secs_f64(),
        put,
        search,
    })
}

/// The RF=1 / RF=3 table and the recovery table, on `trio` (whose third node lives in
/// `scratch/node-c`).
pub async fn run(
    scratch: &Path,
    trio: &mut [Node],
    corpus: &Corpus,
    queries: &Arc<Vec<String>>,
    row: Duration,
) -> Result<(Table, Table), String> {
    let http = Http::new(&trio[0].url(""))?;
    let one = measure(&http, corpus, "rf1", 0, queries, row).await?;
    let three = measure(&http, corpus, "rf3", 2, queries, row).await?;
    let mut costs = Table::new(
        "Replication: one copy (RF=1) against three (RF=3), 3 local nodes, through node 1 (text-all)",
        &["measure", "RF=1", "RF=3", "RF=3 / RF=1"],
    );
    let mut line = |what: &str, a: f64, b: f64| {
        costs.row(vec![json!(what), num(a), num(b), num(b / a.max(1e-9))]);
    };
    line(
        "bulk ingest docs/s (5k batches, 4 clients)",
        one.bulk_docs_s,
        three.bulk_docs_s,
    );
    line(
        "PUT _doc ops/s (16 callers)",
        one.put.rate(),
        three.put.rate(),
    );
    line("PUT _doc p50 ms", one.put.ms(0.5), three.put.ms(0.5));
    line("PUT _doc p99 ms", one.put.ms(0.99), three.put.ms(0.99));
    line(
        "search top-10 p50 ms (1 caller)",
        one.search.ms(0.5),
        three.search.ms(0.5),
    );
    line(
        "search top-10 p99 ms (1 caller)",
        one.search.ms(0.99),
        three.search.ms(0.99),
    );
    costs.note("RF=3 writes every document on all three nodes of one machine: the lead's durable write, then the two followers' (one must confirm before the answer: a majority of three). RF=1 writes each on one. A search with RF=3 is answered by one node holding everything; with RF=1 by all three, two rounds each.");

    let mut recovery = Table::new(
        "Replication: a node's catch-up after missing a bulk load (killed -9 before it), and the rebuild of a wiped node (3 local nodes, RF=3, text-all)",
        &["case", "documents", "MB", "seconds", "docs/s", "MB/s"],
    );
    let mb = corpus.docs.iter().map(|d| d.raw.len()).sum::<usize>() as f64 / 1e6;
    let docs = corpus.docs.len() as u64;
    let third = Http::new(&trio[2].url(""))?;
    crate::progress("replication bench: catch-up after an outage");
    let settings = json!({"settings": {"number_of_replicas": 2}});
    http.recreate_index_with("outage", settings).await?;
    tokio::task::block_in_place(|| trio[2].kill9())?;
    wait_seen_down(&http).await?;
    ingest::bulk_into(&http, corpus, "outage", 5000, 2).await?;
    // Node::restart waits with a blocking client: off the async workers.
    tokio::task::block_in_place(|| trio[2].restart())?;
    let took = wait_holds(&third, &["outage"], docs).await?;
    let mut case = |what: &str, n: u64, megabytes: f64, took: Duration| {
        let s = took.as_secs_f64();
        recovery.row(vec![
            json!(what),
            json!(n),
            num(megabytes),
            num(s),
            num(n as f64 / s),
            num(megabytes / s),
        ]);
    };
    case(
        "catch-up: restarted after missing a full bulk load",
        docs,
        mb,
        took,
    );
    crate::progress("replication bench: rebuild of a wiped node");
    // One copy of each document cannot come back from peers: only the RF=3 indexes count.
    http.delete_index("rf1").await?;
    tokio::task::block_in_place(|| trio[2].kill9())?;
    let indices = scratch.join("node-c").join("indices");
    std::fs::remove_dir_all(&indices).map_err(|e| format!("wipe {}: {e}", indices.display()))?;
    tokio::task::block_in_place(|| trio[2].restart())?;
    let took = wait_holds(&third, &["rf3", "outage"], docs).await?;
    case(
        "rebuild: data directory wiped, node key kept",
        2 * docs,
        2.0 * mb,
        took,
    );
    recovery.note("Timed from the restarted node answering HTTP until it holds every copy it should (its own `_cameo/node/stats`). Catch-up reads a digest of each peer's change feed (ids and stamps), then fetches only what it lacks; a wiped node reads its peers' feeds from the start. The rebuild restores two RF=3 indexes of the whole corpus each.");
    Ok((costs, recovery))
}
