//! Memory, disk, cold start and WAL replay after kill -9.

use std::time::{Duration, Instant};

use crate::corpus::Corpus;
use crate::http::{Http, search_body};
use crate::server::{Memory, Node};

/// A graceful restart of a node holding the corpus.
pub struct ColdStart {
    /// SIGTERM to exit (drain and commit).
    pub stop: Duration,
    /// Process start to the first HTTP answer (indices are opened before listening).
    pub ready: Duration,
    /// Process start to the first search that sees every document.
    pub searchable: Duration,
    /// Memory right after start.
    pub started_memory: Memory,
    /// Memory after one pass over every benchmark query: steady serving.
    pub serving_memory: Memory,
}

pub async fn cold_start(
    node: &mut Node,
    http: &Http,
    index: &str,
    docs: u64,
    queries: &[String],
) -> Result<ColdStart, String> {
    let stop = tokio::task::block_in_place(|| node.stop())?;
    let started = Instant::now();
    let ready = tokio::task::block_in_place(|| node.restart())?;
    http.wait_count(index, docs).await?;
    let searchable = started.elapsed();
    let started_memory = node.memory()?;
    for query in queries {
        http.json(
            reqwest::Method::POST,
            &format!("/{index}/_search"),
            search_body(query),
        )
        .await?;
    }
    let serving_memory = node.memory()?;
    Ok(ColdStart {
        stop,
        ready,
        searchable,
        started_memory,
        serving_memory,
    })
}

/// Recovery after kill -9 of a node whose index had not committed its tail.
pub struct Replay {
    /// WAL records replayed into tantivy on open (from the node's log).
    pub replayed: u64,
    /// The store's open time, replay included (from the node's log).
    pub open: Duration,
    /// Process start to the first HTTP answer.
    pub ready: Duration,
}

/// Starts a node with timed refresh off, bulks the corpus, kill -9s it, restarts it with the
/// defaults and reads the replay figures back; every document must still be there.
pub async fn wal_replay(dir: &std::path::Path, corpus: &Corpus) -> Result<Replay, String> {
    let (mut node, _) =
        tokio::task::block_in_place(|| Node::start(dir, &["--refresh-interval-ms", "0"]))?;
    let http = Http::new(&node.url(""))?;
    let index = "replay";
    http.recreate_index(index).await?;
    for body in corpus.bulk_bodies(5000, "") {
        http.bulk(index, body).await?;
    }
    tokio::task::block_in_place(|| node.kill9())?;
    node.set_args(&[]);
    let ready = tokio::task::block_in_place(|| node.restart())?;
    http.wait_count(index, corpus.docs.len() as u64).await?;
    let log = std::fs::read_to_string(&node.log).map_err(|e| e.to_string())?;
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("index store opened") && l.contains("indices/replay"))
        .ok_or("no 'index store opened' line for the replay index in the node log")?;
    let field = |name: &str| -> Result<u64, String> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in {line}"))
    };
    Ok(Replay {
        replayed: field("replayed=")?,
        open: Duration::from_millis(field("elapsed_ms=")?),
        ready,
    })
}
