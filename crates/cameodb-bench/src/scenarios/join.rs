//! What a join costs: two local nodes hold an index (two copies of every document), a third
//! joins and streams its share; measured are the streaming rate (documents and bytes the
//! newcomer's `_cat/recovery` counts, over the time until it takes reads) and search latency
//! through the first node during the join next to the same searches idle.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cluster::{free_port, wait_formed};
use crate::corpus::Corpus;
use crate::http::Http;
use crate::load::{self, Summary};
use crate::report::{Table, num};
use crate::scenarios::ingest;
use crate::server::Node;

const INDEX: &str = "join-bench";

async fn get(http: &Http, path: &str) -> Result<Value, String> {
    let text = http.send(reqwest::Method::GET, path, None, "").await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Whether the newcomer (named `name`) holds settled copies of the index.
async fn placed_on(http: &Http, name: &str) -> Result<bool, String> {
    let rows = get(http, &format!("/_cat/shards/{INDEX}?format=json")).await?;
    Ok(rows.as_array().is_some_and(|rows| {
        rows.iter()
            .any(|r| r["node"] == json!(name) && r["state"] != json!("INITIALIZING"))
    }))
}

/// Searches in one-second slices until `done` says the join finished; one summary of all.
async fn search_until(
    http: &Http,
    queries: &Arc<Vec<String>>,
    name: &str,
) -> Result<(Summary, Duration), String> {
    let started = Instant::now();
    let op = http.search_op(INDEX, Arc::clone(queries));
    let mut total: Option<Summary> = None;
    loop {
        let slice = load::closed(1, Duration::from_secs(1), None, Arc::clone(&op)).await;
        match &mut total {
            None => total = Some(slice),
            Some(sum) => {
                sum.ok += slice.ok;
                sum.errors += slice.errors;
                sum.elapsed += slice.elapsed;
                sum.hist.add(&slice.hist).map_err(|e| e.to_string())?;
            }
        }
        if placed_on(http, name).await? {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err("the join did not finish within an hour".into());
        }
    }
    let summary = total.ok_or("no searches ran")?;
    Ok((summary, started.elapsed()))
}

/// The streaming table and the latency table.
pub async fn run(
    scratch: &Path,
    corpus: &Corpus,
    queries: Arc<Vec<String>>,
    row: Duration,
) -> Result<Vec<Table>, String> {
    let start = |dir: &Path, args: &[&str]| {
        tokio::task::block_in_place(|| Node::start(dir, args)).map(|(node, _)| node)
    };
    let seed = format!("127.0.0.1:{}", free_port()?);
    let mut nodes = vec![start(&scratch.join("join-a"), &["--cluster-addr", &seed])?];
    let b_addr = format!("127.0.0.1:{}", free_port()?);
    nodes.push(start(
        &scratch.join("join-b"),
        &["--cluster-addr", &b_addr, "--join", &seed],
    )?);
    wait_formed(&nodes).await?;
    let http = Http::new(&nodes[0].url(""))?;
    crate::progress("join bench: loading two nodes");
    let two_copies = json!({"settings": {"number_of_replicas": 1}});
    ingest::bulk_with(&http, corpus, INDEX, 5000, 4, two_copies).await?;
    crate::progress("join bench: idle searches");
    let idle = load::closed(1, row, None, http.search_op(INDEX, Arc::clone(&queries))).await;
    crate::progress("join bench: a third node joins");
    let c_addr = format!("127.0.0.1:{}", free_port()?);
    let newcomer = start(
        &scratch.join("join-c"),
        &["--cluster-addr", &c_addr, "--join", &seed],
    )?;
    let name = get(&Http::new(&newcomer.url(""))?, "/_cameo/node/stats").await?["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    nodes.push(newcomer);
    let (during, took) = search_until(&http, &queries, &name).await?;
    let recoveries = get(&http, &format!("/_cat/recovery/{INDEX}?format=json")).await?;
    let (mut docs, mut bytes) = (0u64, 0u64);
    for r in recoveries.as_array().into_iter().flatten() {
        if r["target_node"] == json!(name) {
            docs += r["docs"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0);
            bytes += r["bytes_recovered"]
                .as_str()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
        }
    }
    let seconds = took.as_secs_f64();
    let mut streaming = Table::new(
        "Join: a third node streams its share of text-all (two copies, two nodes before)",
        &[
            "documents streamed",
            "MB streamed",
            "seconds",
            "docs/s",
            "MB/s",
        ],
    );
    streaming.row(vec![
        json!(docs),
        num(bytes as f64 / 1e6),
        num(seconds),
        num(docs as f64 / seconds),
        num(bytes as f64 / 1e6 / seconds),
    ]);
    streaming.note(
        "From the join until the newcomer takes reads (its copies no longer INITIALIZING in \
         _cat/shards); documents and body bytes as its _cat/recovery counts them; \
         indices.recovery.max_bytes_per_sec at its default (40mb).",
    );
    let mut latency = Table::new(
        "Join: search top-10 through the first node, idle vs during the join (1 caller)",
        &["when", "searches", "p50 ms", "p99 ms", "errors"],
    );
    for (label, summary) in [("idle", &idle), ("during the join", &during)] {
        latency.row(vec![
            json!(label),
            json!(summary.ok),
            num(summary.ms(0.5)),
            num(summary.ms(0.99)),
            json!(summary.errors),
        ]);
    }
    for node in &mut nodes {
        let _ = tokio::task::block_in_place(|| node.stop());
    }
    Ok(vec![streaming, latency])
}
