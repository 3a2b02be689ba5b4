//! What the cluster costs: the same documents and reads on one node and on three local nodes
//! (one machine, one client talking to the first node). Bulk goes through one node, which
//! splits it by owner; every search makes two rounds to all three nodes (term statistics, then
//! the query), so the difference in latency is the scatter-gather overhead.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::corpus::Corpus;
use crate::http::Http;
use crate::report::{Table, num};
use crate::scenarios::{ingest, reads};
use crate::server::Node;

const INDEX: &str = "cluster-bench";

pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Starts three nodes that form one cluster; returns them once each sees all three up.
fn start_trio(scratch: &Path) -> Result<Vec<Node>, String> {
    let seed = format!("127.0.0.1:{}", free_port()?);
    // Node::start waits with a blocking client: off the async workers.
    let start = |dir: &Path, args: &[&str]| {
        tokio::task::block_in_place(|| Node::start(dir, args)).map(|(node, _)| node)
    };
    let mut nodes = vec![start(&scratch.join("node-a"), &["--cluster-addr", &seed])?];
    for name in ["node-b", "node-c"] {
        let addr = format!("127.0.0.1:{}", free_port()?);
        nodes.push(start(
            &scratch.join(name),
            &["--cluster-addr", &addr, "--join", &seed],
        )?);
    }
    Ok(nodes)
}

pub(crate) async fn wait_formed(nodes: &[Node]) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        let mut formed = 0;
        for node in nodes {
            let http = Http::new(&node.url(""))?;
            let listed = http
                .send(reqwest::Method::GET, "/_cat/nodes?format=json", None, "")
                .await
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok());
            if listed
                .as_ref()
                .and_then(Value::as_array)
                .is_some_and(|rows| {
                    rows.len() == nodes.len() && rows.iter().all(|r| r["state"] == json!("up"))
                })
            {
                formed += 1;
            }
        }
        if formed == nodes.len() {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the {}-node cluster did not form within 30 s",
                nodes.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bulk ingest and reads on one node, then on three; returns the two tables.
pub async fn run(
    scratch: &Path,
    corpus: &Corpus,
    queries: Arc<Vec<String>>,
    row: Duration,
    open_rate: f64,
) -> Result<Vec<Table>, String> {
    let mut ingest_table = Table::new(
        "Cluster: bulk ingest through one node (text-all, 5k-doc batches, 4 clients)",
        &["system", "docs/s", "MB/s", "seconds"],
    );
    let mut reads_table = Table::new(
        "Cluster: reads through one node, 1 node vs 3 local nodes (text-all)",
        &[
            "operation",
            "load",
            "1 node p50 ms",
            "1 node p99 ms",
            "3 nodes p50 ms",
            "3 nodes p99 ms",
            "p50 overhead ms",
            "p99 overhead ms",
        ],
    );
    let ids: Arc<Vec<String>> = Arc::new(corpus.docs.iter().map(|d| d.id.clone()).collect());
    // Bulk then reads through `http`: one ingest row, and the read rows.
    let mut measure = async |http: Http, label: &str| -> Result<Vec<reads::ReadRow>, String> {
        crate::progress(&format!("cluster bench: bulk, {label}"));
        // One copy of each document: this table is about spreading the work.
        let one_copy = json!({"settings": {"number_of_replicas": 0}});
        let load = ingest::bulk_with(&http, corpus, INDEX, 5000, 4, one_copy).await?;
        ingest_table.row(load_cells(label, &load));
        crate::progress(&format!("cluster bench: reads, {label}"));
        reads::run(
            &http,
            INDEX,
            Arc::clone(&ids),
            Arc::clone(&queries),
            row,
            open_rate,
        )
        .await
    };
    let single = tokio::task::block_in_place(|| Node::start(&scratch.join("single"), &[]))?.0;
    let mut measured = vec![measure(Http::new(&single.url(""))?, "1 node").await?];
    drop(single);
    let mut trio = start_trio(scratch)?;
    let formed = wait_formed(&trio).await?;
    let http = Http::new(&trio[0].url(""))?;
    measured.push(measure(http, "3 local nodes, through node 1").await?);
    let (costs, recovery) =
        crate::scenarios::replication::run(scratch, &mut trio, corpus, &queries, row).await?;
    for (one, three) in measured[0].iter().zip(&measured[1]) {
        let (p50, p99) = (one.summary.ms(0.50), one.summary.ms(0.99));
        let (c50, c99) = (three.summary.ms(0.50), three.summary.ms(0.99));
        reads_table.row(vec![
            json!(one.op),
            json!(one.load),
            num(p50),
            num(p99),
            num(c50),
            num(c99),
            num(c50 - p50),
            num(c99 - p99),
        ]);
    }
    ingest_table.note(format!(
        "All nodes on this one machine (they share its cores); the cluster formed {} ms after its last node answered HTTP. Timed until `_count` through the first node shows every document.",
        formed.as_millis()
    ));
    reads_table.note("One copy of each document. Searches on 3 nodes make two rounds (cluster-wide term statistics, then the query) to every node; GET by id is one hop to the owner (or none, for a third of the ids).");
    Ok(vec![ingest_table, reads_table, costs, recovery])
}

fn load_cells(system: &str, load: &crate::peers::Load) -> Vec<Value> {
    let seconds = load.elapsed.as_secs_f64();
    vec![
        json!(system),
        num(load.docs as f64 / seconds),
        num(load.bytes as f64 / 1e6 / seconds),
        num(seconds),
    ]
}
