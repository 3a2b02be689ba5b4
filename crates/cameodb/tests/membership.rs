//! Elastic membership through real processes: a cluster grows from two nodes to four while it
//! takes writes and answers reads, shrinks back to three by decommissioning one, then loses one
//! to kill -9 and removes it — with every acknowledged write readable at the end, no read
//! missing an acknowledged document at any point, and every index placed on the members left.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::cluster::{all_up, bulk, join_node, local_docs, node_id, seed_node, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Writes and reads while the cluster changes.
struct Churn {
    /// Documents acknowledged so far (the first `initial` by the bulk load).
    acked: usize,
    initial: usize,
    round: usize,
    /// Writes tried after the bulk load; `during-<n>` for n below it.
    attempts: usize,
    /// The `n` of every acknowledged `during-<n>`.
    acked_ids: Vec<usize>,
    /// Whether a step saw a placement change in progress: health yellow with relocating and
    /// initializing shards, and `_cat/shards` listing a relocating or initializing copy.
    saw_moving: bool,
}

impl Churn {
    /// One write through the next node and a count through every node: no count may miss an
    /// acknowledged, refreshed document.
    fn step(&mut self, nodes: &[&Server]) {
        let node = nodes[self.round % nodes.len()];
        self.round += 1;
        let n = self.attempts;
        self.attempts += 1;
        let (status, body) = node.call(
            "PUT",
            &format!("/grow/_doc/during-{n}?refresh=true"),
            Some(json!({"v": n})),
        );
        match status {
            StatusCode::CREATED => {
                self.acked += 1;
                self.acked_ids.push(n);
            }
            // Too few live copies for the write's wait_for_active_shards (a copy is dead
            // and not yet replaced): refused, and not acknowledged.
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("write during-{n}: {other} {body}"),
        }
        let health = node.get("/_cluster/health").1;
        if health["relocating_shards"].as_u64().unwrap_or(0) > 0
            && health["initializing_shards"].as_u64().unwrap_or(0) > 0
        {
            assert_eq!(health["status"], json!("yellow"), "{health}");
            let (_, rows) = node.get("/_cat/shards/grow?format=json");
            let states: Vec<&str> = rows
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["state"].as_str())
                .collect();
            self.saw_moving |= states.contains(&"INITIALIZING");
        }
        for reader in nodes {
            let (status, count) = reader.get("/grow/_count");
            assert_eq!(status, StatusCode::OK, "{count}");
            let seen = count["count"].as_u64().unwrap_or(0) as usize;
            assert!(
                seen >= self.acked,
                "a read saw {seen} of {} acknowledged documents",
                self.acked
            );
            assert_eq!(count["_shards"]["failed"], json!(0), "{count}");
        }
    }

    /// Keeps churning until `done` holds (at most `limit`).
    fn until(&mut self, nodes: &[&Server], what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{what}: too slow"
            );
            self.step(nodes);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The hosts `_cat/shards` places index `grow` on, as seen by `node`.
fn placed_on(node: &Server) -> Vec<String> {
    let (_, rows) = node.get("/_cat/shards/grow?format=json");
    let mut hosts: Vec<String> = rows
        .as_array()
        .map(|rows| {
            rows.iter()
                // Copies still streaming in are listed as initializing beside the old ones.
                .filter(|r| r["state"] != json!("INITIALIZING"))
                .filter_map(|r| r["ip"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
}

/// Copies of documents of index `grow` the cluster holds, from `_cat/shards` (each shard's
/// documents on each of its copies).
fn copies(node: &Server) -> u64 {
    let (_, rows) = node.get("/_cat/shards/grow?format=json");
    rows.as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["docs"].as_str().and_then(|d| d.parse::<u64>().ok()))
                .sum()
        })
        .unwrap_or(0)
}

/// Two copies of every document, and a green cluster with nothing moving.
fn fully_copied(node: &Server) -> bool {
    node.call("POST", "/grow/_refresh", None);
    let count = node.get("/grow/_count").1["count"].as_u64().unwrap_or(0);
    let health = node.get("/_cluster/health").1;
    copies(node) == 2 * count
        && health["status"] == json!("green")
        && health["relocating_shards"] == json!(0)
        && health["initializing_shards"] == json!(0)
}

fn settled(nodes: &[&Server], hosts: &[&str]) -> bool {
    nodes.iter().all(|n| placed_on(n) == hosts)
}

/// Whether every node holds its share of the documents — two copies over the nodes: 2/N of
/// them, within 10 percentage points — once the members that lost ranges dropped them.
fn balanced(nodes: &[&Server], acked: usize) -> bool {
    let even = (2.0 / nodes.len() as f64).min(1.0);
    nodes.iter().all(|n| {
        let share = local_docs(n, "grow") as f64 / acked as f64;
        (share - even).abs() <= 0.10 || (even == 1.0 && share >= 1.0)
    })
}

/// Every acknowledged document is found by id through `node`.
fn all_readable(node: &Server, churn: &Churn) {
    for n in 0..churn.initial {
        let (status, doc) = node.get(&format!("/grow/_doc/early-{n}"));
        assert_eq!(status, StatusCode::OK, "early-{n}: {doc}");
    }
    for n in &churn.acked_ids {
        let (status, doc) = node.get(&format!("/grow/_doc/during-{n}"));
        assert_eq!(status, StatusCode::OK, "during-{n}: {doc}");
    }
}

#[test]
fn the_cluster_grows_shrinks_and_replaces_a_dead_node_losing_nothing() {
    let (mut a, seed) = seed_node();
    let join = |host: &str| join_node(host, &seed);
    let b = join("127.0.0.2");
    wait_until(Duration::from_secs(10), "2 nodes up", || {
        all_up(&[&a, &b], 2)
    });
    let (status, body) = a.call(
        "PUT",
        "/grow",
        Some(json!({"settings": {"number_of_replicas": 1}})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let docs: Vec<Value> = (0..400)
        .map(|n| json!({"id": format!("early-{n}"), "n": n}))
        .collect();
    bulk(&a, "grow", &docs);
    let mut churn = Churn {
        acked: 400,
        initial: 400,
        round: 0,
        attempts: 0,
        acked_ids: Vec::new(),
        saw_moving: false,
    };

    // 2 -> 3 -> 4: each newcomer streams its ranges, then takes reads.
    let mut c = join("127.0.0.3");
    wait_until(Duration::from_secs(10), "3 nodes up", || {
        all_up(&[&a, &b, &c], 3)
    });
    wait_until(
        Duration::from_secs(10),
        "the index reaches the newcomer",
        || c.get("/grow").0 == StatusCode::OK,
    );
    churn.until(&[&a, &b, &c], "placing on 3 nodes", || {
        settled(&[&a, &b, &c], &["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    });
    wait_until(Duration::from_secs(30), "3 nodes holding 2/3 each", || {
        balanced(&[&a, &b, &c], churn.acked)
    });
    // The newcomer's streams show in _cat/recovery, through any node.
    let (_, rows) = a.get("/_cat/recovery/grow?format=json");
    let streamed: u64 = rows
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["target_host"] == json!("127.0.0.3") && r["stage"] == json!("done"))
                .filter_map(|r| r["docs"].as_str().and_then(|d| d.parse::<u64>().ok()))
                .sum()
        })
        .unwrap_or(0);
    assert!(streamed > 0, "no finished stream into the newcomer: {rows}");
    let mut d = join("127.0.0.4");
    let four = [&a, &b, &c, &d];
    wait_until(Duration::from_secs(10), "4 nodes up", || all_up(&four, 4));
    wait_until(
        Duration::from_secs(10),
        "the index reaches the newcomer",
        || d.get("/grow").0 == StatusCode::OK,
    );
    churn.until(&four, "placing on 4 nodes", || {
        settled(&four, &["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"])
    });
    assert!(
        churn.saw_moving,
        "health and _cat/shards never showed the moves"
    );
    wait_until(Duration::from_secs(30), "4 nodes holding half each", || {
        balanced(&four, churn.acked)
    });
    wait_until(
        Duration::from_secs(30),
        "two copies of everything on 4 nodes",
        || fully_copied(&a),
    );
    for node in four {
        all_readable(node, &churn);
    }

    // 4 -> 3: decommission the fourth through another node, by name.
    let name = format!("cameodb-{}", &node_id(&d)[node_id(&d).len() - 8..]);
    let (status, body) = a.call("POST", &format!("/_cameo/nodes/{name}/_decommission"), None);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["acknowledged"], json!(true));
    churn.until(&four, "decommissioning", || {
        a.get(&format!("/_cameo/nodes/{name}")).1["status"] == json!("decommissioned")
    });
    let three = [&a, &b, &c];
    churn.until(&three, "placing on 3 nodes again", || {
        settled(&three, &["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    });
    let d_id = node_id(&d);
    d.kill();
    wait_until(
        Duration::from_secs(30),
        "3 nodes holding 2/3 each again",
        || balanced(&three, churn.acked),
    );
    for node in three {
        all_readable(node, &churn);
    }

    // A node dies for good: remove it, and its ranges are copied again from the survivors.
    let c_id = node_id(&c);
    let two = [&a, &b];
    c.kill();
    wait_until(
        Duration::from_secs(20),
        "the dead node is seen down",
        || {
            two.iter()
                .all(|n| n.get(&format!("/_cameo/nodes/{c_id}")).1["state"] != json!("up"))
        },
    );
    let (status, body) = b.call("POST", &format!("/_cameo/nodes/{c_id}/_remove"), None);
    assert_eq!(status, StatusCode::OK, "{body}");
    churn.until(&two, "placing on the survivors", || {
        settled(&two, &["127.0.0.1", "127.0.0.2"])
    });
    for node in two {
        node.call("POST", "/grow/_refresh", None);
        all_readable(node, &churn);
        // Every acknowledged document, once (a refused write may have landed on one copy).
        let count = node.get("/grow/_count").1["count"].as_u64().unwrap_or(0) as usize;
        assert!(
            (churn.acked..=churn.initial + churn.attempts).contains(&count),
            "{count} documents for {} acknowledged",
            churn.acked
        );
        // Two copies over two members: each holds everything.
        assert!(local_docs(node, "grow") as usize >= churn.acked);
    }
    wait_until(
        Duration::from_secs(30),
        "two copies of everything on 2 nodes",
        || fully_copied(&b),
    );
    // Removing a live node is refused: decommission it instead.
    let (status, body) = a.call(
        "POST",
        &format!("/_cameo/nodes/{}/_remove", node_id(&b)),
        None,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = a.call("POST", "/_cameo/nodes/nobody/_decommission", None);
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The exclusions are cluster metadata on disk: a restarted node still leaves both out.
    a.kill_and_restart();
    for (id, flag) in [(&d_id, "leaving"), (&c_id, "removed")] {
        let (status, body) = a.get(&format!("/_cameo/nodes/{id}"));
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body[flag], json!(true), "{body}");
        assert_eq!(body["status"], json!("decommissioned"), "{body}");
    }
    let (_, settings) = a.get("/_cluster/settings");
    assert_eq!(
        settings["persistent"],
        json!({}),
        "exclusions are not settings: {settings}"
    );
    wait_until(Duration::from_secs(20), "still placed on the two", || {
        settled(&[&a, &b], &["127.0.0.1", "127.0.0.2"])
    });
}
