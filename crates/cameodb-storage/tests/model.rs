//! Model-based test: random operation sequences against a `BTreeMap` model. After every step
//! the real-time get, the versions and sequence numbers, and what search sees all agree with
//! the model exactly.

mod common;

use std::collections::BTreeMap;

use cameodb_storage::{OpKind, Store, StoreConfig, StoreError, WriteOp, WriteOutcome, WriteResult};
use common::{indexed_ids, key, source};
use proptest::prelude::*;
use serde_json::{Value, json};
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Term};

const IDS: &[&str] = &["a", "b", "c", "d", "e", "f"];
const WORDS: &[&str] = &["red", "green", "blue"];

#[derive(Clone, Debug)]
enum Step {
    Put { id: usize, word: usize, n: i64 },
    Create { id: usize, word: usize },
    Delete { id: usize },
    Update { id: usize, n: i64 },
    PutIfSeq { id: usize, word: usize, stale: bool },
    Refresh,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let id = 0..IDS.len();
    let word = 0..WORDS.len();
    prop_oneof![
        4 => (id.clone(), word.clone(), 0i64..3).prop_map(|(id, word, n)| Step::Put { id, word, n }),
        2 => (id.clone(), word.clone()).prop_map(|(id, word)| Step::Create { id, word }),
        2 => id.clone().prop_map(|id| Step::Delete { id }),
        2 => (id.clone(), 0i64..3).prop_map(|(id, n)| Step::Update { id, n }),
        1 => (id, word, any::<bool>()).prop_map(|(id, word, stale)| Step::PutIfSeq { id, word, stale }),
        1 => Just(Step::Refresh),
        1 => Just(Step::Reopen),
    ]
}

/// What the store should hold.
#[derive(Clone, Default)]
struct Model {
    /// id → (document, version, seq_no).
    docs: BTreeMap<String, (Value, u64, u64)>,
    /// id → the stamp's clock reading (`_seq_no` to clients) of its last write, deletes
    /// included: every write must stamp past it.
    stamps: BTreeMap<String, u64>,
    next_seq: u64,
    /// Versions survive deletes only until the row is gone; we track the last one for outcomes.
    searchable: BTreeMap<String, Value>,
}

impl Model {
    fn write(&mut self, id: &str, doc: Value) -> (WriteResult, u64, u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (result, version) = match self.docs.get(id) {
            Some((_, v, _)) => (WriteResult::Updated, v + 1),
            None => (WriteResult::Created, 1),
        };
        self.docs.insert(id.to_string(), (doc, version, seq));
        (result, seq, version)
    }

    /// Records the stamp a write of `id` got, checking that it is newer than the last.
    fn stamped(&mut self, id: &str, out: &WriteOutcome) -> Result<(), TestCaseError> {
        let hlc = out.stamp.map(|s| s.hlc);
        prop_assert!(hlc.is_some(), "a write reports its stamp");
        let hlc = hlc.unwrap_or_default();
        if let Some(last) = self.stamps.insert(id.to_string(), hlc) {
            prop_assert!(hlc > last, "stamps of {id} grow: {last} then {hlc}");
        }
        Ok(())
    }

    /// The `_seq_no` clients see for `id`'s live version.
    fn seq_no(&self, id: &str) -> Option<u64> {
        self.docs
            .contains_key(id)
            .then(|| self.stamps.get(id).copied())
            .flatten()
    }

    fn snapshot(&mut self) {
        self.searchable = self
            .docs
            .iter()
            .map(|(k, (v, _, _))| (k.clone(), v.clone()))
            .collect();
    }
}

fn doc(word: usize, n: i64) -> Value {
    json!({"word": WORDS[word], "n": n})
}

fn config() -> StoreConfig {
    // No timed refresh: what search sees is then exactly the state at the last refresh.
    StoreConfig {
        refresh_interval: None,
        verify_index_on_open: true,
        ..StoreConfig::small()
    }
}

fn word_query(store: &Store, word: &str) -> TermQuery {
    let slot = store.mapping().get("word").and_then(|f| f.slot);
    let field = store
        .fields()
        .text_field(slot)
        .expect("word is a text field");
    TermQuery::new(Term::from_field_text(field, word), IndexRecordOption::Basic)
}

fn check(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    for id in IDS {
        let got = store
            .get(&key(id))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = model.docs.get(*id);
        match (got, expected) {
            (None, None) => {}
            (Some(doc), Some((value, version, seq))) => {
                prop_assert_eq!(&doc.source_json().unwrap(), value);
                prop_assert_eq!(doc.version, *version);
                prop_assert_eq!(doc.seq_no, *seq);
                prop_assert_eq!(Some(doc.stamp.hlc), model.seq_no(id));
            }
            (got, expected) => prop_assert!(false, "get {id}: store {got:?} vs model {expected:?}"),
        }
    }
    // The change feed replays to the same documents and versions.
    let replayed = common::feed_replay(store);
    let expected_docs: std::collections::BTreeMap<String, (u64, Value)> = model
        .docs
        .iter()
        .map(|(id, (value, version, _))| (id.clone(), (*version, value.clone())))
        .collect();
    prop_assert_eq!(replayed, expected_docs);
    let mut indexed = indexed_ids(store);
    indexed.sort();
    let expected: Vec<String> = model.searchable.keys().cloned().collect();
    prop_assert_eq!(indexed, expected);
    if store.mapping().get("word").is_some() {
        for word in WORDS {
            let hits = store.search(&word_query(store, word), 0, 10).unwrap().total;
            let want = model
                .searchable
                .values()
                .filter(|v| v["word"] == *word)
                .count();
            prop_assert_eq!(hits, want, "term {}", word);
        }
    }
    Ok(())
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), config()).unwrap();
    let mut model = Model::default();
    for step in steps {
        match step {
            Step::Put { id, word, n } => {
                let out = store
                    .write(WriteOp::put(key(IDS[id]), source(doc(word, n))))
                    .unwrap();
                let (result, seq, version) = model.write(IDS[id], doc(word, n));
                prop_assert_eq!(
                    (out.result, out.seq_no, out.version),
                    (result, Some(seq), Some(version))
                );
                model.stamped(IDS[id], &out)?;
            }
            Step::Create { id, word } => {
                let out = store.write(WriteOp::create(key(IDS[id]), source(doc(word, 0))));
                if model.docs.contains_key(IDS[id]) {
                    prop_assert!(
                        matches!(out, Err(StoreError::DocumentExists { .. })),
                        "expected {}, got {:?}",
                        "DocumentExists",
                        out
                    );
                } else {
                    let (_, seq, _) = model.write(IDS[id], doc(word, 0));
                    let out = out.unwrap();
                    prop_assert_eq!(out.seq_no, Some(seq));
                    model.stamped(IDS[id], &out)?;
                }
            }
            Step::Delete { id } => {
                let out = store.write(WriteOp::delete(key(IDS[id]))).unwrap();
                // Deleting a missing document still records its tombstone.
                let seq = model.next_seq;
                model.next_seq += 1;
                match model.docs.remove(IDS[id]) {
                    Some((_, version, _)) => prop_assert_eq!(
                        (out.result, out.seq_no, out.version),
                        (WriteResult::Deleted, Some(seq), Some(version + 1))
                    ),
                    None => prop_assert_eq!(
                        (out.result, out.seq_no),
                        (WriteResult::NotFound, Some(seq))
                    ),
                }
                model.stamped(IDS[id], &out)?;
            }
            Step::Update { id, n } => {
                let op = WriteOp {
                    key: key(IDS[id]),
                    kind: OpKind::Update {
                        doc: source(json!({"n": n})),
                        upsert: None,
                        doc_as_upsert: false,
                    },
                    if_seq_no: None,
                    stamp: None,
                    external: None,
                };
                let out = store.write(op);
                match model.docs.get(IDS[id]).cloned() {
                    None => prop_assert!(
                        matches!(out, Err(StoreError::DocumentMissing { .. })),
                        "expected {}, got {:?}",
                        "DocumentMissing",
                        out
                    ),
                    Some((current, _, seq)) if current["n"] == json!(n) => {
                        let out = out.unwrap();
                        prop_assert_eq!((out.result, out.seq_no), (WriteResult::Noop, Some(seq)));
                    }
                    Some((mut current, _, _)) => {
                        current["n"] = json!(n);
                        let (result, seq, _) = model.write(IDS[id], current);
                        let out = out.unwrap();
                        prop_assert_eq!((out.result, out.seq_no), (result, Some(seq)));
                        model.stamped(IDS[id], &out)?;
                    }
                }
            }
            Step::PutIfSeq { id, word, stale } => {
                let current = model.seq_no(IDS[id]);
                let expect_seq = match (current, stale) {
                    (Some(seq), false) => seq,
                    (Some(seq), true) => seq + 1000,
                    (None, _) => 7,
                };
                let out = store
                    .write(WriteOp::put(key(IDS[id]), source(doc(word, 9))).if_seq_no(expect_seq));
                if current == Some(expect_seq) {
                    let (_, seq, _) = model.write(IDS[id], doc(word, 9));
                    let out = out.unwrap();
                    prop_assert_eq!(out.seq_no, Some(seq));
                    model.stamped(IDS[id], &out)?;
                } else {
                    prop_assert!(
                        matches!(out, Err(StoreError::VersionConflict { .. })),
                        "expected {}, got {:?}",
                        "VersionConflict",
                        out
                    );
                }
            }
            Step::Refresh => {
                store.refresh().unwrap();
                model.snapshot();
            }
            Step::Reopen => {
                drop(store);
                store = Store::open(dir.path(), config()).unwrap();
                model.snapshot();
            }
        }
        check(&store, &model)?;
    }
    store.refresh().unwrap();
    model.snapshot();
    check(&store, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_a_btreemap_model(steps in proptest::collection::vec(step(), 1..40)) {
        run(steps)?;
    }
}
