//! Recovery on open: WAL replay after an uncommitted close, and rebuilding the index from redb
//! when the tantivy directory is missing or damaged.

mod common;

use std::path::Path;

use cameodb_storage::{INDEX_DIR, Store, StoreConfig, WriteOp};
use common::{assert_in_sync, key, open, put};
use serde_json::json;

fn fill(dir: &Path, n: usize) {
    let store = open(dir);
    let ops = (0..n)
        .map(|i| {
            put(
                &format!("doc-{i}"),
                json!({"title": format!("title {i}"), "n": i}),
            )
        })
        .collect();
    assert!(store.write_batch(ops).iter().all(Result::is_ok));
    store.write(WriteOp::delete(key("doc-0"))).unwrap();
}

/// A store that neither refreshes nor commits on close: everything written stays in the WAL
/// tail for the next open to replay.
fn open_lazy(dir: &Path) -> Store {
    let lazy = StoreConfig {
        refresh_interval: None,
        commit_on_close: false,
        ..StoreConfig::small()
    };
    Store::open(dir, lazy).unwrap()
}

fn reopen_expecting_rebuild(dir: &Path, n: usize) {
    let store = open(dir);
    let report = store.recovery_report().clone();
    assert!(
        report.rebuilt.is_some(),
        "expected a rebuild, got {report:?}"
    );
    assert_eq!(report.documents as usize, n - 1);
    assert_in_sync(&store);
    // The rebuilt index is a normal index: the next open needs nothing.
    drop(store);
    let store = open(dir);
    assert_eq!(store.recovery_report().rebuilt, None);
    assert_eq!(store.recovery_report().replayed, 0);
}

#[test]
fn deleted_index_is_rebuilt_from_the_kv_store() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 300);
    std::fs::remove_dir_all(dir.path().join(INDEX_DIR)).unwrap();
    reopen_expecting_rebuild(dir.path(), 300);
}

#[test]
fn garbage_meta_json_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 50);
    std::fs::write(dir.path().join(INDEX_DIR).join("meta.json"), b"{ not json").unwrap();
    reopen_expecting_rebuild(dir.path(), 50);
}

#[test]
fn damaged_segment_files_are_detected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 200);
    // Flip bytes in the middle of every term dictionary: checksums no longer match.
    let mut damaged = 0;
    for entry in std::fs::read_dir(dir.path().join(INDEX_DIR)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "term") {
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    reopen_expecting_rebuild(dir.path(), 200);
}

#[test]
fn truncated_segment_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 200);
    for entry in std::fs::read_dir(dir.path().join(INDEX_DIR)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "idx") {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(3)
                .unwrap();
        }
    }
    reopen_expecting_rebuild(dir.path(), 200);
}

#[test]
fn uncommitted_writes_are_replayed_from_the_wal_and_the_wal_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open_lazy(dir.path());
        store.write_batch(
            (0..100)
                .map(|i| put(&format!("d{i}"), json!({"i": i})))
                .collect(),
        );
        store.write(WriteOp::delete(key("d5"))).unwrap();
        store.write(put("d6", json!({"i": 600}))).unwrap();
        // 99 live bodies (d5 deleted, d6's first body superseded) and one delete record.
        assert_eq!(store.wal_len().unwrap(), 100);
    }
    let store = open(dir.path());
    let report = store.recovery_report();
    assert_eq!(
        (report.replayed, report.rebuilt.clone(), report.documents),
        (100, None, 99)
    );
    assert_in_sync(&store);
    assert_eq!(
        store
            .get(&key("d6"))
            .unwrap()
            .unwrap()
            .source_json()
            .unwrap(),
        json!({"i": 600})
    );
    // Once tantivy has committed, the next transaction truncates the WAL behind it.
    store.write(put("x", json!({}))).unwrap();
    store.refresh().unwrap();
    store.write(put("y", json!({}))).unwrap();
    assert!(
        store.wal_len().unwrap() <= 2,
        "wal holds {}",
        store.wal_len().unwrap()
    );
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.wal_len().unwrap(),
        0,
        "a clean close leaves nothing to replay"
    );
}

/// Replay deletes only what the committed index holds (a delete per replayed record was most
/// of a replay's time): documents committed and then rewritten in the tail must not be
/// indexed twice, documents born in the tail need no delete, and nothing forces a rebuild.
#[test]
fn rewrites_of_committed_documents_replay_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open_lazy(dir.path());
        store.write_batch(
            (0..50)
                .map(|i| put(&format!("d{i}"), json!({"i": i})))
                .collect(),
        );
        store.refresh().unwrap();
        // The tail: rewrites of committed documents, new ones (one rewritten again), deletes.
        store.write_batch(
            (0..10)
                .map(|i| put(&format!("d{i}"), json!({"i": i + 1000})))
                .chain((50..60).map(|i| put(&format!("d{i}"), json!({"i": i}))))
                .collect(),
        );
        store.write(put("d55", json!({"i": 5500}))).unwrap();
        store.write(WriteOp::delete(key("d20"))).unwrap();
        store.write(WriteOp::delete(key("d52"))).unwrap();
    }
    let store = open(dir.path());
    let report = store.recovery_report();
    assert_eq!(report.rebuilt, None, "{report:?}");
    assert_eq!(report.documents, 58);
    assert_in_sync(&store);
    let body = |id: &str| store.get(&key(id)).unwrap().unwrap().source_json().unwrap();
    assert_eq!(body("d3"), json!({"i": 1003}));
    assert_eq!(body("d55"), json!({"i": 5500}));
}

#[test]
fn a_store_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(Store::open(dir.path(), StoreConfig::small()).is_err());
    drop(store);
    assert!(Store::open(dir.path(), StoreConfig::small()).is_ok());
}
