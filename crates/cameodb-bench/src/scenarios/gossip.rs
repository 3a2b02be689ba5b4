//! What gossip costs as the cluster grows: N local nodes (3 to 12) forming one cluster, with a
//! few indexes; after they settle, each node's gossip traffic over a measured window and the
//! size of the gossip state it holds (`/_cameo/node/stats`, counted in the transport).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cluster::{free_port, wait_formed};
use crate::http::Http;
use crate::report::{Table, num};
use crate::server::Node;

/// Indexes created before measuring: each adds a key per node to the gossip state.
const INDEXES: usize = 10;

async fn stats(nodes: &[Node]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for node in nodes {
        let http = Http::new(&node.url(""))?;
        let text = http
            .send(reqwest::Method::GET, "/_cameo/node/stats", None, "")
            .await?;
        let body: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        out.push(body["gossip"].clone());
    }
    Ok(out)
}

fn field(v: &Value, path: &[&str]) -> f64 {
    path.iter().fold(v, |v, k| &v[*k]).as_f64().unwrap_or(0.0)
}

/// One row per cluster size.
pub async fn run(scratch: &Path, sizes: &[usize], window: Duration) -> Result<Table, String> {
    let mut table = Table::new(
        "Gossip per node as the cluster grows (10 indexes, idle)",
        &[
            "nodes",
            "datagrams/s sent (mean)",
            "bytes/s sent (mean)",
            "bytes/s sent (max)",
            "state bytes (mean)",
            "state keys (mean)",
            "state bytes per member",
        ],
    );
    for &n in sizes {
        crate::progress(&format!("gossip bench: {n} nodes"));
        let seed = format!("127.0.0.1:{}", free_port()?);
        let start = |dir: &Path, args: &[&str]| {
            tokio::task::block_in_place(|| Node::start(dir, args)).map(|(node, _)| node)
        };
        let base = scratch.join(format!("gossip-{n}"));
        std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
        let mut nodes = vec![start(&base.join("n0"), &["--cluster-addr", &seed])?];
        for i in 1..n {
            let addr = format!("127.0.0.1:{}", free_port()?);
            nodes.push(start(
                &base.join(format!("n{i}")),
                &["--cluster-addr", &addr, "--join", &seed],
            )?);
        }
        wait_formed(&nodes).await?;
        let first = Http::new(&nodes[0].url(""))?;
        for i in 0..INDEXES {
            first
                .send(reqwest::Method::PUT, &format!("/gossip-{i}"), None, "")
                .await?;
        }
        // Settle: metadata, placement and readiness keys spread.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = stats(&nodes).await?;
        let started = Instant::now();
        tokio::time::sleep(window).await;
        let after = stats(&nodes).await?;
        let seconds = started.elapsed().as_secs_f64();
        let rates: Vec<(f64, f64)> = before
            .iter()
            .zip(&after)
            .map(|(b, a)| {
                (
                    (field(a, &["sent"]) - field(b, &["sent"])) / seconds,
                    (field(a, &["sent_bytes"]) - field(b, &["sent_bytes"])) / seconds,
                )
            })
            .collect();
        let mean = |xs: &mut dyn Iterator<Item = f64>| {
            let all: Vec<f64> = xs.collect();
            all.iter().sum::<f64>() / all.len().max(1) as f64
        };
        let datagrams = mean(&mut rates.iter().map(|r| r.0));
        let bytes = mean(&mut rates.iter().map(|r| r.1));
        let max_bytes = rates.iter().map(|r| r.1).fold(0.0, f64::max);
        let state_bytes = mean(&mut after.iter().map(|s| field(s, &["state", "bytes"])));
        let state_keys = mean(&mut after.iter().map(|s| field(s, &["state", "keys"])));
        table.row(vec![
            json!(n),
            num(datagrams),
            num(bytes),
            num(max_bytes),
            num(state_bytes),
            num(state_keys),
            num(state_bytes / n as f64),
        ]);
        for node in &mut nodes {
            let _ = tokio::task::block_in_place(|| node.stop());
        }
    }
    table.note(format!(
        "Local nodes on 127.0.0.1, gossip interval as configured by default; \
         {INDEXES} indexes created, 5 s to settle, then a {}-second window. Counted in the \
         gossip transport: datagrams and bytes each node sent; the state is every node's \
         key-values as one node holds them.",
        window.as_secs()
    ));
    Ok(table)
}
