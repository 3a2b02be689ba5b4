//! Crash test: a child process writes batches from several threads and prints every
//! acknowledged operation; the parent SIGKILLs it at random instants (during writes, refreshes
//! or its own recovery), reopens the store and checks that every acknowledged write survived in
//! the KV store and the index, that the two hold the same documents, and that no id is indexed
//! twice. `CAMEODB_CRASH_CYCLES` sets the number of kill cycles (default 20; 200 for a soak).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cameodb_storage::{Store, StoreConfig, WriteOp, WriteResult};
use common::{assert_feed_matches_store, assert_in_sync, key, put};
use rand::Rng;
use serde_json::json;

const DIR_ENV: &str = "CAMEODB_CRASH_CHILD_DIR";
const CYCLE_ENV: &str = "CAMEODB_CRASH_CHILD_CYCLE";
const THREADS: usize = 4;
const BATCH: usize = 20;

fn child_config() -> StoreConfig {
    StoreConfig {
        refresh_interval: Some(Duration::from_millis(30)),
        ..StoreConfig::small()
    }
}

/// The child's body; a no-op unless the parent set the environment.
#[test]
#[ignore = "run by the crash test as a child process"]
fn crash_child() {
    let (Ok(dir), Ok(cycle)) = (std::env::var(DIR_ENV), std::env::var(CYCLE_ENV)) else {
        return;
    };
    let store = Arc::new(Store::open(&dir, child_config()).expect("child opens store"));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    {
        let mut out = out.lock().unwrap();
        // A newline first: libtest has already printed "test crash_child ... " on this line.
        writeln!(out, "\nR {:?}", store.recovery_report()).unwrap();
        out.flush().unwrap();
    }
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let out = Arc::clone(&out);
            let cycle = cycle.clone();
            std::thread::spawn(move || {
                let mut rng = rand::rng();
                let mut live: Vec<String> = Vec::new();
                for n in 0.. {
                    let mut ops = Vec::new();
                    let mut lines = String::new();
                    for i in 0..BATCH {
                        let choice = rng.random_range(0..100);
                        if choice < 15 && !live.is_empty() {
                            let id = live.swap_remove(rng.random_range(0..live.len()));
                            lines.push_str(&format!("I {t} del {id} 0\n"));
                            ops.push(WriteOp::delete(key(&id)));
                        } else {
                            let id = if choice < 30 && !live.is_empty() {
                                live[rng.random_range(0..live.len())].clone()
                            } else {
                                let id = format!("c{cycle}-t{t}-{n}-{i}");
                                live.push(id.clone());
                                id
                            };
                            let v = rng.random_range(0..1_000_000u32);
                            lines.push_str(&format!("I {t} put {id} {v}\n"));
                            ops.push(put(&id, json!({"v": v, "body": format!("cycle {cycle} thread {t} batch {n}")})));
                        }
                    }
                    // Intents first, so the parent knows what may be in flight when it kills.
                    out.lock().unwrap().write_all(lines.as_bytes()).unwrap();
                    for result in store.write_batch(ops) {
                        let outcome = result.expect("child write succeeds");
                        assert_ne!(outcome.result, WriteResult::NotFound);
                    }
                    let mut out = out.lock().unwrap();
                    writeln!(out, "A {t}").unwrap();
                    out.flush().unwrap();
                    if n % 7 == 0 {
                        store.refresh().expect("refresh");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer thread");
    }
}

/// Expected state: id → Some(v) if present with value `v`, None if deleted.
type Model = BTreeMap<String, Option<u64>>;

/// Applies a child's output to the model; returns the ids whose state is uncertain (in flight
/// at the kill).
fn apply_output(output: &str, model: &mut Model) -> BTreeSet<String> {
    let mut pending: BTreeMap<usize, Vec<(String, Option<u64>)>> = BTreeMap::new();
    for line in output.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["I", t, op, id, v] => {
                let value = if *op == "put" { v.parse().ok() } else { None };
                pending
                    .entry(t.parse().unwrap())
                    .or_default()
                    .push((id.to_string(), value));
            }
            ["A", t] => {
                for (id, value) in pending.remove(&t.parse().unwrap()).unwrap_or_default() {
                    model.insert(id, value);
                }
            }
            _ => {}
        }
    }
    pending.into_values().flatten().map(|(id, _)| id).collect()
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let cycles: usize = std::env::var("CAMEODB_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut model = Model::new();
    let mut rng = rand::rng();
    let mut acked_total = 0usize;
    let mut replayed_total = 0u64;
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir.path())
            .env(CYCLE_ENV, cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(20..500)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "cycle {cycle}: child exited on its own"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let output = reader.join().unwrap();
        acked_total += output.lines().filter(|l| l.starts_with('A')).count() * BATCH;
        let uncertain = apply_output(&output, &mut model);

        let store = Store::open(dir.path(), StoreConfig::small()).unwrap();
        let report = store.recovery_report();
        assert_eq!(
            report.rebuilt, None,
            "cycle {cycle}: a kill -9 must be recovered by wal replay alone"
        );
        // The child reports its own recovery too; it must never have needed a rebuild either.
        for line in output.lines().filter(|l| l.starts_with("R ")) {
            assert!(
                line.contains("rebuilt: None"),
                "cycle {cycle}: child recovery: {line}"
            );
        }
        replayed_total += report.replayed;
        for (id, expected) in &model {
            if uncertain.contains(id) {
                continue;
            }
            let got = store
                .get(&key(id))
                .unwrap()
                .map(|d| d.source_json().unwrap()["v"].as_u64().unwrap());
            assert_eq!(
                &got, expected,
                "cycle {cycle}: acknowledged state of {id} lost"
            );
        }
        assert_in_sync(&store);
        assert_feed_matches_store(&store);
        // Adopt whatever the in-flight operations left, so later cycles check from there.
        for id in uncertain {
            let got = store
                .get(&key(&id))
                .unwrap()
                .map(|d| d.source_json().unwrap()["v"].as_u64().unwrap());
            model.insert(id, got);
        }
    }
    assert!(
        acked_total > 0,
        "the children acknowledged nothing; the test proved nothing"
    );
    eprintln!(
        "{cycles} kill cycles, {acked_total} acknowledged operations verified, {replayed_total} wal records replayed"
    );
}
