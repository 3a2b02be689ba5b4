//! Helpers for tests of several `cameodb` processes forming a cluster on 127.0.0.x.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Server, free_port, ndjson};

/// Three nodes: the first forms the cluster, the others join through it.
pub struct Trio {
    pub nodes: Vec<Server>,
    /// The first node's cluster address, which the others joined through.
    seed: String,
}

impl Trio {
    pub fn start() -> Trio {
        Trio::start_with(&[])
    }

    /// Three nodes started with `extra` arguments as well (a cluster secret, limits).
    pub fn start_with(extra: &[&str]) -> Trio {
        let (nodes, seed) = start_cluster(3, extra);
        Trio { nodes, seed }
    }

    /// The cluster address to join through.
    pub fn seed_addr(&self) -> String {
        self.seed.clone()
    }

    /// The nodes, borrowed.
    pub fn all(&self) -> Vec<&Server> {
        self.nodes.iter().collect()
    }
}

/// `n` nodes on 127.0.0.1, .2, …: the first forms the cluster, the others join through it;
/// also returns the first node's cluster address.
pub fn start_cluster(n: usize, extra: &[&str]) -> (Vec<Server>, String) {
    let seed = format!("127.0.0.1:{}", free_port());
    let first = Server::start_on("127.0.0.1", &[&["--cluster-addr", &seed], extra].concat());
    let mut nodes = vec![first];
    for i in 2..=n {
        let host = format!("127.0.0.{i}");
        let addr = format!("{host}:{}", free_port());
        nodes.push(Server::start_on(
            &host,
            &[&["--cluster-addr", &addr, "--join", &seed], extra].concat(),
        ));
    }
    (nodes, seed)
}

/// `n` nodes forming one cluster (see [`start_cluster`]).
pub fn start_nodes(n: usize, extra: &[&str]) -> Vec<Server> {
    start_cluster(n, extra).0
}

/// Each node's view: node id -> state, from `_cat/nodes`.
/// The first node of a cluster others join later, on 127.0.0.1, and its cluster address.
pub fn seed_node() -> (Server, String) {
    let seed = format!("127.0.0.1:{}", free_port());
    let server = Server::start_on("127.0.0.1", &["--cluster-addr", &seed]);
    (server, seed)
}

/// A node on `host` joining the cluster through `seed`.
pub fn join_node(host: &str, seed: &str) -> Server {
    let addr = format!("{host}:{}", free_port());
    Server::start_on(host, &["--cluster-addr", &addr, "--join", seed])
}

pub fn states(server: &Server) -> BTreeMap<String, String> {
    let (status, body) = server.get("/_cat/nodes?format=json");
    if status != StatusCode::OK {
        return BTreeMap::new();
    }
    body.as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["id"].as_str().unwrap_or_default().to_string(),
                        r["state"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn node_id(server: &Server) -> String {
    server.get("/").1["node_id"]
        .as_str()
        .expect("node id")
        .to_string()
}

/// Polls until `check` holds on every listed node, or panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {limit:?}");
}

pub fn all_up(nodes: &[&Server], n: usize) -> bool {
    nodes.iter().all(|s| {
        let view = states(s);
        view.len() == n && view.values().all(|state| state == "up")
    })
}

pub fn bulk(server: &Server, index: &str, docs: &[Value]) {
    for chunk in docs.chunks(2000) {
        let mut lines = Vec::new();
        for doc in chunk {
            lines.push(json!({"index": {"_index": index, "_id": doc["id"]}}));
            lines.push(doc.clone());
        }
        let (status, body) = server.raw("POST", "/_bulk", "application/x-ndjson", ndjson(&lines));
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["errors"], json!(false), "{}", body["items"][0]);
        assert_eq!(body["items"].as_array().map(Vec::len), Some(chunk.len()));
    }
    let (status, body) = server.call("POST", &format!("/{index}/_refresh"), None);
    assert_eq!(status, StatusCode::OK, "{body}");
}

pub fn movies(n: usize) -> Vec<Value> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/movies.jsonl.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(&l.expect("line")).expect("json"))
        .collect()
}

/// Local document count of `index` on one node.
pub fn local_docs(server: &Server, index: &str) -> u64 {
    server.get("/_cameo/node/stats").1["indices"][index]["docs"]
        .as_u64()
        .unwrap_or(0)
}
