//! Nested elements are hidden documents beside the document holding them: they must appear,
//! change and disappear with it — through updates, deletes, WAL replay after a crash and a
//! rebuild from the KV store — compared against a `BTreeMap` model.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use cameodb_schema::fields::{FIELD_NAMES_FIELD, KEY_FIELD};
use cameodb_schema::mapping::nested::NESTED_MARK;
use cameodb_storage::{INDEX_DIR, Store, StoreConfig, WriteOp};
use common::{key, put};
use proptest::prelude::*;
use serde_json::{Value, json};
use tantivy::collector::Count;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocSet, Term};

/// Writes are left uncommitted at close, so reopening replays them from the WAL.
fn lazy() -> StoreConfig {
    StoreConfig {
        refresh_interval: None,
        commit_on_close: false,
        ..StoreConfig::small()
    }
}

fn open(dir: &Path) -> Store {
    let store = Store::open(dir, lazy()).expect("store opens");
    store
        .put_mapping(
            json!({"properties": {"c": {"type": "nested", "properties": {
                "n": {"type": "integer"},
                "d": {"type": "nested", "properties": {"x": {"type": "keyword"}}}
            }}}}),
        )
        .expect("mapping");
    store
}

/// A body with `elements` elements of `c`, each holding one element of `c.d`.
fn body(elements: usize) -> Value {
    let items: Vec<Value> = (0..elements)
        .map(|n| json!({"n": n, "d": [{"x": format!("v{n}")}]}))
        .collect();
    json!({"c": items})
}

fn count(store: &Store, term: Term) -> usize {
    let searcher = store.searcher();
    searcher
        .search(&TermQuery::new(term, IndexRecordOption::Basic), &Count)
        .expect("count")
}

/// Every document holds as many hidden documents as the model says: two per element.
fn assert_matches(store: &Store, model: &BTreeMap<String, usize>) {
    store.refresh().expect("refresh");
    let schema = store.index().schema();
    let names = schema.get_field(FIELD_NAMES_FIELD).unwrap();
    let keys = schema.get_field(KEY_FIELD).unwrap();
    let hidden: usize = model.values().map(|n| 2 * n).sum();
    assert_eq!(
        count(store, Term::from_field_text(names, NESTED_MARK)),
        hidden
    );
    assert_eq!(
        store.searcher().num_docs() as usize,
        model.len() + hidden,
        "documents and their elements"
    );
    for (id, elements) in model {
        let term = Term::from_field_bytes(keys, &key(id).encode());
        assert_eq!(
            count(store, term.clone()),
            1 + 2 * elements,
            "document {id}"
        );
        assert_one_block(store, &term, names);
    }
}

/// A document's live index entries sit next to each other in one segment, the document
/// itself last: what nested queries find elements' documents by.
fn assert_one_block(store: &Store, term: &Term, names: tantivy::schema::Field) {
    let searcher = store.searcher();
    let mut blocks = 0;
    for reader in searcher.segment_readers() {
        let index = reader.inverted_index(term.field()).unwrap();
        let Some(mut postings) = index.read_postings(term, IndexRecordOption::Basic).unwrap()
        else {
            continue;
        };
        let mut docs = Vec::new();
        let mut doc = postings.doc();
        while doc != tantivy::TERMINATED {
            if reader.alive_bitset().is_none_or(|a| a.is_alive(doc)) {
                docs.push(doc);
            }
            doc = postings.advance();
        }
        if docs.is_empty() {
            continue;
        }
        blocks += 1;
        assert!(
            docs.windows(2).all(|w| w[1] == w[0] + 1),
            "entries apart: {docs:?}"
        );
        let marks = reader.inverted_index(names).unwrap();
        let mark = Term::from_field_text(names, NESTED_MARK);
        let mut hidden = Vec::new();
        if let Some(mut p) = marks
            .read_postings(&mark, IndexRecordOption::Basic)
            .unwrap()
        {
            let mut d = p.doc();
            while d != tantivy::TERMINATED {
                hidden.push(d);
                d = p.advance();
            }
        }
        let (last, elements) = docs.split_last().unwrap();
        assert!(!hidden.contains(last), "the document itself comes last");
        assert!(elements.iter().all(|d| hidden.contains(d)));
    }
    assert_eq!(blocks, 1, "one segment holds the document");
}

#[test]
fn merged_segments_keep_every_document_beside_its_elements() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    {
        let store = open(dir.path());
        for round in 0..30 {
            for i in 0..15 {
                let id = format!("d{}", (round * 7 + i) % 200);
                let elements = (round + i) % 4;
                store.write(put(&id, body(elements))).unwrap();
                model.insert(id, elements);
            }
            // Each refresh seals a segment; tantivy merges them as they pile up.
            store.refresh().unwrap();
        }
        assert_matches(&store, &model);
    }
    let store = open(dir.path());
    assert_eq!(store.recovery_report().documents as usize, model.len());
    assert_matches(&store, &model);
}

#[derive(Clone, Debug)]
enum Op {
    Put(u8, usize),
    Delete(u8),
    Refresh,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, 0usize..4).prop_map(|(id, n)| Op::Put(id, n)),
        2 => (0u8..6).prop_map(Op::Delete),
        1 => Just(Op::Refresh),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn elements_follow_their_document_through_replay_and_rebuild(
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = BTreeMap::new();
        {
            let store = open(dir.path());
            for op in &ops {
                match op {
                    Op::Put(id, n) => {
                        let id = format!("d{id}");
                        store.write(put(&id, body(*n))).unwrap();
                        model.insert(id, *n);
                    }
                    Op::Delete(id) => {
                        let id = format!("d{id}");
                        let _ = store.write(WriteOp::delete(key(&id)));
                        model.remove(&id);
                    }
                    Op::Refresh => store.refresh().unwrap(),
                }
            }
            assert_matches(&store, &model);
        }
        // Closed without a commit: the tail is replayed from the WAL.
        let store = open(dir.path());
        prop_assert_eq!(store.recovery_report().documents as usize, model.len());
        assert_matches(&store, &model);
        drop(store);
        // Without its index the store rebuilds it from the KV store.
        std::fs::remove_dir_all(dir.path().join(INDEX_DIR)).unwrap();
        let store = open(dir.path());
        prop_assert!(store.recovery_report().rebuilt.is_some());
        prop_assert_eq!(store.recovery_report().documents as usize, model.len());
        assert_matches(&store, &model);
    }
}
