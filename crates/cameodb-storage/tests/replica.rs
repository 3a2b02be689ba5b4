//! Replica writes converge: the same resolved writes applied in any order, any number of times,
//! leave two stores with identical content — the write with the greatest stamp per document,
//! deletes included — and the index agrees with the KV store.

mod common;

use std::collections::BTreeMap;

use cameodb_storage::{Source, Stamp, Store, WriteOp, WriteResult};
use common::{assert_in_sync, key, open, source};
use proptest::prelude::*;
use serde_json::{Value, json};

const IDS: &[&str] = &["a", "b", "c"];

/// One resolved write: id, stamp clock, stamp origin, body (`None`: delete).
type Resolved = (usize, u64, u64, Option<i64>);

fn resolved() -> impl Strategy<Value = Resolved> {
    (
        0..IDS.len(),
        1u64..20,
        0u64..3,
        prop::option::weighted(0.7, 0i64..100),
    )
}

fn apply(store: &Store, writes: &[Resolved]) {
    let ops: Vec<WriteOp> = writes
        .iter()
        .map(|&(id, hlc, origin, n)| {
            // The version is derived from the stamp so equal stamps carry equal writes, as
            // they do in a cluster (one stamp is one write).
            let body = n.map(|n| source(json!({"n": n, "hlc": hlc, "origin": origin})));
            WriteOp::replica(key(IDS[id]), hlc, Stamp { hlc, origin }, body)
        })
        .collect();
    for result in store.write_batch(ops) {
        result.expect("replica writes apply");
    }
}

/// id → (stamp, body) as the store holds it.
fn content(store: &Store) -> BTreeMap<String, (Stamp, Value)> {
    let mut out = BTreeMap::new();
    store
        .scan(0..=u64::MAX, |key, doc| {
            let body = doc.source_json().expect("json");
            out.insert(key.id.to_string(), (doc.stamp, body));
            true
        })
        .expect("scan");
    out
}

/// What last-writer-wins must leave: per id, the write with the greatest stamp, if a put.
fn model(writes: &[Resolved]) -> BTreeMap<String, (Stamp, Value)> {
    let mut winners: BTreeMap<usize, (Stamp, Option<i64>)> = BTreeMap::new();
    for &(id, hlc, origin, n) in writes {
        let stamp = Stamp { hlc, origin };
        if winners.get(&id).is_none_or(|(s, _)| stamp > *s) {
            winners.insert(id, (stamp, n));
        }
    }
    winners
        .into_iter()
        .filter_map(|(id, (stamp, n))| {
            let n = n?;
            let body = json!({"n": n, "hlc": stamp.hlc, "origin": stamp.origin});
            Some((IDS[id].to_string(), (stamp, body)))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_order_and_repetition_converges(
        writes in prop::collection::vec(resolved(), 1..30),
        seed in any::<u64>(),
    ) {
        // Equal stamps must mean equal writes: keep the first write of each stamp.
        let mut seen = std::collections::BTreeSet::new();
        let writes: Vec<Resolved> = writes
            .into_iter()
            .filter(|&(id, hlc, origin, _)| seen.insert((id, hlc, origin)))
            .collect();
        let mut shuffled = writes.clone();
        shuffled.extend(writes.iter().rev().cloned());
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (open(dir_a.path()), open(dir_b.path()));
        apply(&a, &writes);
        // One at a time on the other store, so the groups differ too.
        for write in &shuffled {
            apply(&b, std::slice::from_ref(write));
        }
        let expected = model(&writes);
        prop_assert_eq!(content(&a), expected.clone());
        prop_assert_eq!(content(&b), expected);
        a.refresh().unwrap();
        b.refresh().unwrap();
        assert_in_sync(&a);
        assert_in_sync(&b);
    }
}

#[test]
fn client_writes_stamp_past_what_they_replace_deletes_included() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let far = Stamp {
        hlc: u64::MAX / 4,
        origin: 9,
    };
    let body = Source::from_value(json!({"n": 1})).unwrap();
    store
        .write(WriteOp::replica(key("a"), 3, far, None))
        .unwrap();
    // An older replica put loses against the tombstone.
    let late = Stamp { hlc: 5, origin: 1 };
    let out = store
        .write(WriteOp::replica(key("a"), 1, late, Some(body.clone())))
        .unwrap();
    assert_eq!(out.result, WriteResult::Noop);
    assert!(store.get(&key("a")).unwrap().is_none());
    // A client write with a lower clock is raised past the tombstone, not lost.
    let out = store
        .write(WriteOp::put(key("a"), body).stamped(late))
        .unwrap();
    assert_eq!(out.result, WriteResult::Created);
    let stamp = out.stamp.unwrap();
    assert!(stamp > far);
    assert_eq!(stamp.origin, 1);
    assert_eq!(out.applied.unwrap().stamp, stamp);
    assert_eq!(store.get(&key("a")).unwrap().unwrap().stamp, stamp);
}
