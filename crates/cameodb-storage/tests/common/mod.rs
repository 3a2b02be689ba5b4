//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;

use cameodb_storage::{DocId, DocKey, Source, Store, StoreConfig, WriteOp};
use serde_json::Value;
use tantivy::query::AllQuery;

/// Opens a store with the small test configuration.
pub fn open(dir: &Path) -> Store {
    Store::open(dir, StoreConfig::small()).expect("store opens")
}

pub fn key(id: &str) -> DocKey {
    DocKey::new(DocId::new(id).expect("valid id"), None).expect("valid key")
}

pub fn source(value: Value) -> Source {
    Source::from_value(value).expect("object")
}

pub fn put(id: &str, value: Value) -> WriteOp {
    WriteOp::put(key(id), source(value))
}

/// Every id the index can find with a match-all query, with duplicates kept.
pub fn indexed_ids(store: &Store) -> Vec<String> {
    let total = store.searcher().num_docs() as usize;
    let results = store.search(&AllQuery, 0, total.max(1)).expect("search");
    results
        .hits
        .into_iter()
        .map(|h| h.key.id.to_string())
        .collect()
}

/// Every id in the KV store.
pub fn stored_ids(store: &Store) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    store
        .scan(0..=u64::MAX, |key, _| {
            ids.insert(key.id.to_string());
            true
        })
        .expect("scan");
    ids
}

/// Asserts the index holds exactly the KV store's documents, each once.
pub fn assert_in_sync(store: &Store) {
    let indexed = indexed_ids(store);
    let unique: BTreeSet<String> = indexed.iter().cloned().collect();
    assert_eq!(unique.len(), indexed.len(), "an id is indexed twice");
    assert_eq!(unique, stored_ids(store), "index and kv store disagree");
}

/// Replays the change feed from the start: id -> (version, body).
pub fn feed_replay(store: &Store) -> std::collections::BTreeMap<String, (u64, Value)> {
    let mut docs = std::collections::BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = store.changes(cursor, 1000).expect("feed");
        if page.changes.is_empty() {
            return docs;
        }
        for change in page.changes {
            let id = change.key.id.to_string();
            match change.source {
                Some(body) => {
                    let body: Value = serde_json::from_slice(&body).expect("json");
                    docs.insert(id, (change.version, body));
                }
                None => {
                    docs.remove(&id);
                }
            }
        }
        cursor = Some(page.next);
    }
}

/// Asserts replaying the change feed gives exactly the KV store's documents and versions.
pub fn assert_feed_matches_store(store: &Store) {
    let mut stored = std::collections::BTreeMap::new();
    store
        .scan(0..=u64::MAX, |key, doc| {
            let body = doc.source_json().expect("json");
            stored.insert(key.id.to_string(), (doc.version, body));
            true
        })
        .expect("scan");
    assert_eq!(
        feed_replay(store),
        stored,
        "the change feed disagrees with the store"
    );
}
