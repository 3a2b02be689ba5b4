//! Network partitions and a randomized fault schedule against real processes: packet loss by
//! iptables rules on loopback (made and removed here; needs root and iptables, which
//! `tests/setup-system.sh` installs), kill -9 and SIGSTOP. After every fault heals, every
//! acknowledged write is on every copy and no deleted document comes back.
//!
//! The schedule runs for `CAMEODB_FAULT_SCHEDULE_SECS` seconds (default 20, as in CI; set it
//! to 1800 or more for a long run).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use common::cluster::{all_up, bulk, local_docs, start_cluster, states, wait_until};
use common::free_port;
use common::partition::{ISOLATED_UID, Partition};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

/// `n` nodes; the last one runs as [`ISOLATED_UID`], so it can be partitioned.
fn cluster_with_isolatable_last(n: usize, extra: &[&str]) -> Vec<Server> {
    let (mut nodes, seed) = start_cluster(n - 1, extra);
    let host = format!("127.0.0.{n}");
    let addr = format!("{host}:{}", free_port());
    nodes.push(Server::start_as(
        &host,
        &[&["--cluster-addr", &addr, "--join", &seed], extra].concat(),
        Some(ISOLATED_UID),
    ));
    let all: Vec<&Server> = nodes.iter().collect();
    wait_until(Duration::from_secs(15), "all nodes up", || all_up(&all, n));
    nodes
}

/// Cuts `nodes[isolated]` off from the others.
fn partition(nodes: &[Server], isolated: usize) -> Partition {
    let port = |n: &Server| n.cluster_port().expect("a cluster port");
    let others: Vec<u16> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != isolated)
        .map(|(_, n)| port(n))
        .collect();
    Partition::isolate(port(&nodes[isolated]), &others)
}

fn create(server: &Server, index: &str, replicas: u32) {
    let settings = json!({"settings": {"number_of_replicas": replicas}});
    let (status, body) = server.call("PUT", &format!("/{index}"), Some(settings));
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Waits until every node is green and holds `copies` × `docs` documents of `index` in all.
fn wait_converged(nodes: &[&Server], index: &str, docs: usize, copies: u64, limit: Duration) {
    wait_until(limit, "replicas converge", || {
        nodes
            .iter()
            .all(|n| n.get("/_cluster/health").1["status"] == json!("green"))
            && nodes.iter().map(|n| local_docs(n, index)).sum::<u64>() == copies * docs as u64
    });
}

fn local(server: &Server, index: &str, id: &str) -> (StatusCode, Value) {
    server.get(&format!("/{index}/_doc/{id}?preference=_local"))
}

#[test]
fn both_sides_of_a_partition_take_writes_and_converge_when_it_heals() {
    let nodes = cluster_with_isolatable_last(3, &[]);
    create(&nodes[0], "split", 2);
    let docs: Vec<Value> = (0..300)
        .map(|n| json!({"id": format!("d{n}"), "side": "before"}))
        .collect();
    bulk(&nodes[0], "split", &docs);
    let all: Vec<&Server> = nodes.iter().collect();
    wait_converged(&all, "split", 300, 3, Duration::from_secs(30));

    let cut = partition(&nodes, 2);
    let minority = &nodes[2];
    let c_id = minority.get("/").1["node_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_until(
        Duration::from_secs(20),
        "each side sees the other down",
        || {
            states(&nodes[0]).get(&c_id).map(String::as_str) == Some("down")
                && states(minority).values().filter(|s| *s == "down").count() == 2
        },
    );
    // The majority side first: updates, deletes. Then the cut-off node, later (so its stamps
    // are newer): updates of some of the same documents, new ones, deletes of others.
    for n in 0..50 {
        let (status, body) = nodes[n % 2].call(
            "PUT",
            &format!("/split/_doc/d{n}"),
            Some(json!({"side": "majority"})),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for n in 50..100 {
        let (status, body) = nodes[0].call("DELETE", &format!("/split/_doc/d{n}"), None);
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // One copy of three is not a majority: refused, unless one copy is enough.
    let (status, body) = minority.call("PUT", "/split/_doc/d0", Some(json!({"side": "minority"})));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    for n in 0..25 {
        let (status, body) = minority.call(
            "PUT",
            &format!("/split/_doc/d{n}?wait_for_active_shards=1"),
            Some(json!({"side": "minority"})),
        );
        assert!(status.is_success(), "{body}");
    }
    for n in 0..20 {
        let (status, body) = minority.call(
            "PUT",
            &format!("/split/_doc/m{n}?wait_for_active_shards=1"),
            Some(json!({"side": "minority"})),
        );
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for n in 100..110 {
        let (status, body) = minority.call(
            "DELETE",
            &format!("/split/_doc/d{n}?wait_for_active_shards=1"),
            None,
        );
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    cut.heal();
    wait_until(Duration::from_secs(30), "the partition healed", || {
        all_up(&all, 3)
    });
    // 300 − 50 − 10 deleted + 20 new.
    wait_converged(&all, "split", 260, 3, Duration::from_secs(60));
    for node in &all {
        for n in 0..110 {
            let (status, doc) = local(node, "split", &format!("d{n}"));
            match n {
                0..25 => assert_eq!(doc["_source"]["side"], json!("minority"), "d{n}: {doc}"),
                25..50 => assert_eq!(doc["_source"]["side"], json!("majority"), "d{n}: {doc}"),
                // Deleted on either side: deleted on every copy, never back.
                _ => assert_eq!(status, StatusCode::NOT_FOUND, "d{n} came back: {doc}"),
            }
        }
        assert_eq!(local(node, "split", "m7").0, StatusCode::OK);
    }
}

/// The faults of the schedule.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill(usize),
    Stop(usize),
    Partition,
}

#[test]
fn a_random_fault_schedule_loses_no_acknowledged_write() {
    let seconds: u64 = std::env::var("CAMEODB_FAULT_SCHEDULE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("CAMEODB_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()));
    let mut nodes = cluster_with_isolatable_last(4, &[]);
    create(&nodes[0], "chaos", 2);
    // Writers through the two nodes the schedule leaves alone; faults hit one of the other
    // two at a time, so every range keeps a majority of its copies.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (base, stop) = (nodes[w].base.clone(), stop.clone());
            std::thread::spawn(move || write_and_delete(&base, w, &stop))
        })
        .collect();
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let started = Instant::now();
    let mut log = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let fault = match next() % 3 {
            0 => Fault::Kill(2 + (next() % 2) as usize),
            1 => Fault::Stop(2 + (next() % 2) as usize),
            _ => Fault::Partition,
        };
        let hold = Duration::from_millis(1000 + next() % 3000);
        log.push(format!("{:?} for {hold:?}", fault));
        match fault {
            Fault::Kill(n) => {
                nodes[n].kill();
                std::thread::sleep(hold);
                nodes[n].kill_and_restart();
            }
            Fault::Stop(n) => {
                let pid = nodes[n].pid().expect("running").to_string();
                let signal = |s: &str| std::process::Command::new("kill").args([s, &pid]).status();
                let _ = signal("-STOP");
                std::thread::sleep(hold);
                let _ = signal("-CONT");
            }
            Fault::Partition => {
                let cut = partition(&nodes, 3);
                std::thread::sleep(hold);
                cut.heal();
            }
        }
        let all: Vec<&Server> = nodes.iter().collect();
        wait_until(Duration::from_secs(60), "all nodes back", || {
            all_up(&all, 4)
        });
    }
    stop.store(true, Ordering::Release);
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let mut uncertain: BTreeSet<String> = BTreeSet::new();
    let mut errors = 0;
    for writer in writers {
        let (written, gone, maybe, failed) = writer.join().expect("writer");
        acked.extend(written);
        deleted.extend(gone);
        uncertain.extend(maybe);
        errors += failed;
    }
    acked.retain(|id| !deleted.contains(id) && !uncertain.contains(id));
    eprintln!(
        "seed {seed}: {} faults over {:?}: {:?}; {} documents acknowledged and kept, {} deleted, {errors} writes refused",
        log.len(),
        started.elapsed(),
        log,
        acked.len(),
        deleted.len()
    );
    let all: Vec<&Server> = nodes.iter().collect();
    // A refused write may still have reached its first copy (it is not acknowledged, and may
    // or may not stay): the copies must agree with each other, whatever they hold of those.
    wait_until(
        Duration::from_secs(120),
        "every copy of every shard agrees",
        || {
            copies_agree(&nodes[0], "chaos")
                && all
                    .iter()
                    .all(|n| n.get("/_cluster/health").1["status"] == json!("green"))
        },
    );
    let ids: Vec<&String> = acked.iter().collect();
    for node in &all {
        for chunk in ids.chunks(500) {
            let (_, found) = node.call("POST", "/chaos/_mget", Some(json!({"ids": chunk})));
            let missing: Vec<&Value> = found["docs"]
                .as_array()
                .expect("docs")
                .iter()
                .filter(|d| d["found"] != json!(true))
                .collect();
            assert!(
                missing.is_empty(),
                "seed {seed}: acknowledged but missing: {missing:?}"
            );
        }
        for id in deleted.iter().take(50) {
            assert_eq!(
                local(node, "chaos", id).0,
                StatusCode::NOT_FOUND,
                "seed {seed}: {id} came back"
            );
        }
    }
}

/// Whether, by `_cat/shards`, every copy of every shard of `index` is started and holds the
/// same number of documents.
fn copies_agree(server: &Server, index: &str) -> bool {
    let (_, rows) = server.get(&format!("/_cat/shards/{index}?format=json"));
    let Some(rows) = rows.as_array() else {
        return false;
    };
    let mut docs: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for row in rows {
        if row["state"] != json!("STARTED") {
            return false;
        }
        let shard = row["shard"].as_str().unwrap_or_default().to_string();
        docs.entry(shard)
            .or_default()
            .insert(row["docs"].as_str().unwrap_or_default().to_string());
    }
    !docs.is_empty() && docs.values().all(|counts| counts.len() == 1)
}

/// What a writer did: ids written, ids deleted (acknowledged both), ids whose delete was not
/// acknowledged (it may or may not have happened), and how many requests failed.
type Written = (Vec<String>, Vec<String>, Vec<String>, usize);

/// Writes new documents (and deletes every tenth one it wrote) until stopped.
fn write_and_delete(base: &str, writer: usize, stop: &AtomicBool) -> Written {
    let client = Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("client");
    let (mut acked, mut deleted, mut uncertain, mut failed) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let id = format!("w{writer}-{n}");
        let put = client
            .put(format!("{base}/chaos/_doc/{id}"))
            .json(&json!({"n": n}))
            .send();
        match put {
            Ok(r) if r.status().is_success() => acked.push(id),
            _ => failed += 1,
        }
        if n.is_multiple_of(10)
            && let Some(victim) = acked.iter().rev().nth(3).cloned()
            && !deleted.contains(&victim)
            && !uncertain.contains(&victim)
        {
            match client.delete(format!("{base}/chaos/_doc/{victim}")).send() {
                Ok(r) if r.status().is_success() => deleted.push(victim),
                // Not acknowledged: it may or may not have happened.
                _ => {
                    failed += 1;
                    uncertain.push(victim);
                }
            }
        }
    }
    (acked, deleted, uncertain, failed)
}
