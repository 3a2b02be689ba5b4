//! The change feed against a model: whatever the writes, and whatever retention collected,
//! replaying the feed from the start gives exactly the live documents; a reader that follows
//! the feed sees every change in order; a cursor older than retention is refused by name.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cameodb_storage::{Cursor, Store, StoreConfig, StoreError, WriteOp};
use common::{key, put};
use proptest::prelude::*;
use serde_json::{Value, json};

/// id -> (version, source).
type Model = BTreeMap<String, (u64, Value)>;

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Refresh,
    Follow,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..10, any::<u8>()).prop_map(|(id, n)| Op::Put(id, n)),
        2 => (0u8..10).prop_map(Op::Delete),
        1 => Just(Op::Refresh),
        2 => Just(Op::Follow),
    ]
}

/// Replays the feed from the start; a collection that expires the cursor between pages (only
/// with a zero retention) means starting over.
fn replay_from_start(store: &Store, page: usize) -> (Model, Option<Cursor>) {
    for _ in 0..100 {
        let mut map = Model::new();
        match replay(store, None, page, &mut map) {
            Ok(next) => return (map, next),
            Err(StoreError::ChangesExpired { .. }) => continue,
            Err(err) => panic!("replay from the start failed: {err}"),
        }
    }
    panic!("the feed never held still");
}

/// Applies the feed from `since` to `map` in pages of `page`; returns the next cursor.
fn replay(
    store: &Store,
    since: Option<Cursor>,
    page: usize,
    map: &mut Model,
) -> Result<Option<Cursor>, StoreError> {
    let mut cursor = since;
    loop {
        let changes = store.changes(cursor, page)?;
        let mut last = None;
        for change in &changes.changes {
            assert!(last.is_none_or(|l| l < change.seq), "in sequence order");
            last = Some(change.seq);
            let id = change.key.id.to_string();
            match &change.source {
                Some(body) => {
                    let body: Value = serde_json::from_slice(body).expect("json");
                    map.insert(id, (change.version, body));
                }
                None => {
                    map.remove(&id);
                }
            }
        }
        if changes.changes.is_empty() {
            return Ok(Some(changes.next));
        }
        cursor = Some(changes.next);
    }
}

fn store_with(dir: &std::path::Path, retention: Duration) -> Store {
    let config = StoreConfig {
        refresh_interval: None,
        changes_retention: retention,
        ..StoreConfig::small()
    };
    Store::open(dir, config).expect("open")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_feed_gives_the_live_documents(
        ops in prop::collection::vec(op(), 1..60),
        page in 1usize..7,
        short_retention in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let retention = if short_retention { Duration::ZERO } else { Duration::from_secs(3600) };
        let store = store_with(dir.path(), retention);
        let mut model = Model::new();
        // A follower that reads the feed as it goes: it must track the model exactly.
        let mut follower = Model::new();
        let mut cursor = None;
        for op in &ops {
            match *op {
                Op::Put(id, n) => {
                    let id = format!("d{id}");
                    let body = json!({"n": n});
                    let outcome = store.write(put(&id, body.clone())).expect("put");
                    let version = outcome.version.expect("version");
                    model.insert(id, (version, body));
                }
                Op::Delete(id) => {
                    store.write(WriteOp::delete(key(&format!("d{id}")))).expect("delete");
                    model.remove(&format!("d{id}"));
                }
                Op::Refresh => store.refresh().expect("refresh"),
                Op::Follow => {
                    cursor = match replay(&store, cursor, page, &mut follower) {
                        Ok(next) => next,
                        // Fell behind retention: the documented way back is to start over.
                        Err(StoreError::ChangesExpired { .. }) if short_retention => {
                            let (map, next) = replay_from_start(&store, page);
                            follower = map;
                            next
                        }
                        Err(err) => panic!("a follower within retention was refused: {err}"),
                    };
                    prop_assert_eq!(&follower, &model);
                }
            }
        }
        let (from_start, _) = replay_from_start(&store, page);
        prop_assert_eq!(&from_start, &model);
        if !short_retention {
            // Nothing was collected: a follower anywhere can go on.
            cursor = replay(&store, cursor, page, &mut follower).expect("within retention");
            prop_assert_eq!(&follower, &model);
        }
        let _ = cursor;
    }
}

#[test]
fn a_cursor_older_than_retention_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with(dir.path(), Duration::ZERO);
    for round in 0..3 {
        store.write(put("a", json!({"round": round}))).expect("put");
        store.write(WriteOp::delete(key("a"))).expect("delete");
        store.refresh().expect("refresh");
    }
    let stale = Cursor { seq: 1, floor: 0 };
    // Collection rides on writes and commits: wait until round 0's tombstone is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        store.write(put("c", json!({}))).expect("put");
        store.refresh().expect("refresh");
        match store.changes(Some(stale), 10) {
            Err(err) => break err,
            Ok(_) => {
                assert!(Instant::now() < deadline, "retention 0 collects tombstones");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let StoreError::ChangesExpired { since, oldest } = err else {
        panic!("expected an expired cursor, got {err}");
    };
    assert_eq!(since, 1);
    assert!(oldest > 1);
    assert!(err.to_string().contains(&format!("[{oldest}]")), "{err}");
    let fresh = store.changes(None, 10).expect("starting over works");
    assert!(store.changes(Some(fresh.next), 10).is_ok());
}

#[test]
fn a_waiting_reader_wakes_when_a_write_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(store_with(dir.path(), Duration::from_secs(3600)));
    store.write(put("a", json!({}))).expect("put");
    let next = store.changes(None, 10).expect("feed").next;
    assert!(
        !store.wait_for_changes(next.seq, Duration::from_millis(50)),
        "nothing new yet"
    );
    let writer = std::sync::Arc::clone(&store);
    let started = Instant::now();
    let handle = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        writer.write(put("b", json!({}))).expect("put");
    });
    assert!(store.wait_for_changes(next.seq, Duration::from_secs(10)));
    let waited = started.elapsed();
    handle.join().expect("writer");
    let changes = store.changes(Some(next), 10).expect("feed");
    assert_eq!(changes.changes.len(), 1);
    assert_eq!(changes.changes[0].key.id.as_str(), "b");
    // Woken by the write, not by the deadline (10 s).
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn a_registered_consumer_keeps_the_history_it_needs_past_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with(dir.path(), Duration::ZERO);
    store.hold_changes("replica-a", 0).expect("hold");
    let start = store.changes(None, 1).expect("feed").next;
    for round in 0..3 {
        store.write(put("a", json!({"round": round}))).expect("put");
        store.write(WriteOp::delete(key("a"))).expect("delete");
        store.refresh().expect("refresh");
    }
    // Collection runs on every write and commit: with zero retention it would drop both the
    // superseded bodies and the tombstones by now, but the consumer holds them.
    for _ in 0..10 {
        store.write(put("tick", json!({}))).expect("put");
        store.refresh().expect("refresh");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Three bodies of `a` (each superseded by its delete) and nine of `tick`.
    assert_eq!(store.retained_versions().expect("count"), 12);
    let held = store
        .changes(Some(start), 100)
        .expect("the consumer's cursor is still good");
    let ids: Vec<String> = held.changes.iter().map(|c| c.key.id.to_string()).collect();
    assert_eq!(
        &ids[..6],
        ["a", "a", "a", "a", "a", "a"],
        "every write of a, in order"
    );
    // The hold survives a restart.
    drop(store);
    let store = store_with(dir.path(), Duration::ZERO);
    store.write(put("tick", json!({}))).expect("put");
    store.refresh().expect("refresh");
    assert!(store.changes(Some(start), 100).is_ok());
    // Released, the history goes.
    store.release_changes("replica-a").expect("release");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.retained_versions().expect("count") > 0 || store.changes(Some(start), 1).is_ok() {
        assert!(Instant::now() < deadline, "released history is collected");
        store.write(put("tick", json!({}))).expect("put");
        store.refresh().expect("refresh");
        std::thread::sleep(Duration::from_millis(20));
    }
}
