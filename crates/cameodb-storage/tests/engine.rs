//! Behaviour of the engine through its public API, on real files.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cameodb_storage::{
    DocId, DocKey, OpKind, Source, Store, StoreConfig, StoreError, WriteOp, WriteResult,
};
use common::{assert_in_sync, indexed_ids, key, open, put, source};
use serde_json::json;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Term};

fn text_term(store: &Store, path: &str, word: &str) -> TermQuery {
    let mapping = store.mapping();
    let slot = mapping.get(path).and_then(|f| f.slot);
    let field = store
        .fields()
        .text_field(slot)
        .expect("text field has a slot");
    TermQuery::new(Term::from_field_text(field, word), IndexRecordOption::Basic)
}

fn exact_term(store: &Store, path: &str, value: &str) -> TermQuery {
    let mut term = Term::from_field_json_path(store.fields().exact, path, true);
    term.append_type_and_str(value);
    TermQuery::new(term, IndexRecordOption::Basic)
}

#[test]
fn put_get_update_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let created = store
        .write(put("1", json!({"title": "Dune", "year": 1965})))
        .unwrap();
    assert_eq!(
        (created.result, created.seq_no, created.version),
        (WriteResult::Created, Some(0), Some(1))
    );
    let replaced = store
        .write(put("1", json!({"title": "Dune Messiah", "year": 1969})))
        .unwrap();
    assert_eq!(
        (replaced.result, replaced.version),
        (WriteResult::Updated, Some(2))
    );

    let doc = store.get(&key("1")).unwrap().unwrap();
    assert_eq!(
        doc.source_json().unwrap(),
        json!({"title": "Dune Messiah", "year": 1969})
    );
    assert_eq!((doc.seq_no, doc.version), (1, 2));

    let updated = store
        .write(WriteOp::update(key("1"), source(json!({"rating": 5}))))
        .unwrap();
    assert_eq!(updated.result, WriteResult::Updated);
    let noop = store
        .write(WriteOp::update(key("1"), source(json!({"rating": 5}))))
        .unwrap();
    assert_eq!(
        (noop.result, noop.seq_no),
        (WriteResult::Noop, updated.seq_no)
    );
    assert_eq!(
        store
            .get(&key("1"))
            .unwrap()
            .unwrap()
            .source_json()
            .unwrap(),
        json!({"title": "Dune Messiah", "year": 1969, "rating": 5})
    );

    store.refresh().unwrap();
    assert_eq!(
        store
            .search(&text_term(&store, "title", "messiah"), 0, 10)
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        store
            .search(&exact_term(&store, "title.keyword", "Dune Messiah"), 0, 10)
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        store
            .search(&text_term(&store, "title", "dune"), 0, 10)
            .unwrap()
            .hits[0]
            .key
            .id
            .as_str(),
        "1"
    );

    let deleted = store.write(WriteOp::delete(key("1"))).unwrap();
    assert_eq!(deleted.result, WriteResult::Deleted);
    assert_eq!(
        store.write(WriteOp::delete(key("1"))).unwrap().result,
        WriteResult::NotFound
    );
    assert!(store.get(&key("1")).unwrap().is_none());
    store.refresh().unwrap();
    assert!(indexed_ids(&store).is_empty());
}

#[test]
fn create_conditional_writes_and_update_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = store
        .write(WriteOp::create(key("a"), source(json!({"n": 1}))))
        .unwrap();
    let err = store
        .write(WriteOp::create(key("a"), source(json!({"n": 2}))))
        .unwrap_err();
    assert!(matches!(err, StoreError::DocumentExists { .. }));

    let seq = first.stamp.unwrap().hlc;
    let stale = store
        .write(put("a", json!({"n": 3})).if_seq_no(seq + 100))
        .unwrap_err();
    assert!(matches!(stale, StoreError::VersionConflict { .. }));
    store
        .write(put("a", json!({"n": 3})).if_seq_no(seq))
        .unwrap();
    // The same condition is now stale.
    assert!(
        store
            .write(put("a", json!({"n": 4})).if_seq_no(seq))
            .is_err()
    );
    assert!(
        store
            .write(WriteOp::delete(key("zz")).if_seq_no(0))
            .is_err()
    );

    assert!(matches!(
        store.write(WriteOp::update(key("missing"), source(json!({"x": 1})))),
        Err(StoreError::DocumentMissing { .. })
    ));
    let upsert = WriteOp {
        key: key("u"),
        kind: OpKind::Update {
            doc: source(json!({"x": 1})),
            upsert: Some(source(json!({"x": 0}))),
            doc_as_upsert: false,
        },
        if_seq_no: None,
        stamp: None,
        external: None,
    };
    store.write(upsert.clone()).unwrap();
    assert_eq!(
        store
            .get(&key("u"))
            .unwrap()
            .unwrap()
            .source_json()
            .unwrap(),
        json!({"x": 0})
    );
    store.write(upsert).unwrap();
    assert_eq!(
        store
            .get(&key("u"))
            .unwrap()
            .unwrap()
            .source_json()
            .unwrap(),
        json!({"x": 1})
    );
    let as_upsert = WriteOp {
        key: key("v"),
        kind: OpKind::Update {
            doc: source(json!({"y": 1})),
            upsert: None,
            doc_as_upsert: true,
        },
        if_seq_no: None,
        stamp: None,
        external: None,
    };
    assert_eq!(store.write(as_upsert).unwrap().result, WriteResult::Created);
}

#[test]
fn bad_input_is_rejected_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .put_mapping(json!({"properties": {"n": {"type": "long"}, "d": {"type": "date"}, "b": {"type": "boolean"}}}))
        .unwrap();
    store.write(put("good", json!({"n": 1}))).unwrap();

    assert!(DocId::new("").is_err());
    assert!(DocId::new("x".repeat(513)).is_err());
    assert!(DocId::from_bytes(b"\xff\xfe").is_err());
    assert!(DocKey::new(DocId::new("a").unwrap(), Some("")).is_err());
    assert!(matches!(
        Source::from_slice(b"[1,2]"),
        Err(StoreError::NotAnObject { .. })
    ));
    assert!(matches!(
        Source::from_slice(b"\"text\""),
        Err(StoreError::NotAnObject { .. })
    ));
    assert!(matches!(
        Source::from_slice(b"{\"a\": \"\xc3\x28\"}"),
        Err(StoreError::InvalidJson { .. })
    ));
    assert!(matches!(
        Source::from_slice(b"{\"a\": 1"),
        Err(StoreError::InvalidJson { .. })
    ));

    // In one batch: bad values fail on their own, good neighbours land.
    let results = store.write_batch(vec![
        put("bad-n", json!({"n": "twelve"})),
        put("ok-1", json!({"n": "12"})),
        put("bad-d", json!({"d": "not a date"})),
        put("bad-b", json!({"b": 3})),
        put("bad-obj", json!({"n": {"nested": 1}})),
        put("ok-2", json!({"n": 7, "extra": "dynamic text"})),
    ]);
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [false, true, false, false, false, true]);
    for (result, id) in results
        .iter()
        .zip(["bad-n", "ok-1", "bad-d", "bad-b", "bad-obj", "ok-2"])
    {
        if let Err(err) = result {
            assert!(err.is_client_error(), "{id}: {err}");
            assert!(
                store.get(&key(id)).unwrap().is_none(),
                "{id} must not be stored"
            );
        }
    }
    // A mapping conflict is rejected and leaves the mapping as it was.
    assert!(
        store
            .put_mapping(json!({"properties": {"n": {"type": "text"}}}))
            .is_err()
    );
    assert_eq!(store.mapping().get("n").unwrap().field_type.name(), "long");

    store.refresh().unwrap();
    assert_eq!(store.doc_count().unwrap(), 3);
    assert_in_sync(&store);
}

#[test]
fn mapping_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .put_mapping(json!({"properties": {"tag": {"type": "keyword"}}}))
            .unwrap();
        store
            .write(put(
                "1",
                json!({"tag": "x", "auto": 5, "when": "2024-02-03T04:05:06Z"}),
            ))
            .unwrap();
    }
    let store = open(dir.path());
    let mapping = store.mapping().to_es_json();
    assert_eq!(
        mapping,
        json!({"properties": {"auto": {"type": "long"}, "tag": {"type": "keyword"}, "when": {"type": "date"}}})
    );
    assert_eq!(
        store
            .search(&exact_term(&store, "tag", "x"), 0, 10)
            .unwrap()
            .total,
        1
    );
}

#[test]
fn wait_searchable_and_timed_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        refresh_interval: Some(Duration::from_millis(50)),
        ..StoreConfig::small()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let outcome = store
        .write(put("1", json!({"title": "visible soon"})))
        .unwrap();
    assert!(store.wait_searchable(outcome.seq_no.unwrap(), Duration::from_secs(10)));
    assert_eq!(indexed_ids(&store), ["1"]);

    // With timed refresh off, a write stays invisible until an explicit refresh.
    drop(store);
    let config = StoreConfig {
        refresh_interval: None,
        ..StoreConfig::small()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let outcome = store.write(put("2", json!({"title": "hidden"}))).unwrap();
    assert!(!store.wait_searchable(outcome.seq_no.unwrap(), Duration::from_millis(200)));
    assert!(
        store.get(&key("2")).unwrap().is_some(),
        "real-time get sees it anyway"
    );
    store.refresh().unwrap();
    assert!(store.wait_searchable(outcome.seq_no.unwrap(), Duration::ZERO));
}

#[test]
fn concurrent_writers_share_transactions_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..50 {
                    store
                        .write(put(
                            &format!("t{t}-{i}"),
                            json!({"body": format!("thread {t} doc {i}")}),
                        ))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    store.refresh().unwrap();
    assert_eq!(store.doc_count().unwrap(), 400);
    assert_in_sync(&store);
}

#[test]
fn routing_places_documents_by_routing_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let routed = DocKey::new(DocId::new("1").unwrap(), Some("tenant-a")).unwrap();
    store
        .write(WriteOp::put(routed.clone(), source(json!({"a": 1}))))
        .unwrap();
    assert!(
        store.get(&key("1")).unwrap().is_none(),
        "unrouted key is a different document"
    );
    assert!(store.get(&routed).unwrap().is_some());
    let mut seen = Vec::new();
    store
        .scan(routed.token..=routed.token, |k, _| {
            seen.push(k);
            true
        })
        .unwrap();
    assert_eq!(seen, [routed]);
}

#[test]
fn a_search_idle_store_skips_timed_refreshes_and_the_next_search_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        refresh_interval: Some(Duration::from_millis(20)),
        search_idle_after: Some(Duration::from_secs(30)),
        ..StoreConfig::small()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let first = store.write(put("1", json!({"title": "bulk"}))).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        store.searchable_seq() <= first.seq_no.unwrap(),
        "never searched: the timed refreshes were skipped"
    );
    assert_eq!(indexed_ids(&store), ["1"], "a search refreshes first");

    // Searched now, so no longer idle: the timer makes new writes visible on its own.
    let second = store.write(put("2", json!({"title": "live"}))).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(store.searchable_seq() > second.seq_no.unwrap());

    // Without a timed refresh a search must not refresh either.
    drop(store);
    let config = StoreConfig {
        refresh_interval: None,
        ..StoreConfig::small()
    };
    let store = Store::open(dir.path(), config).unwrap();
    store.write(put("3", json!({"title": "hidden"}))).unwrap();
    let mut ids = indexed_ids(&store);
    ids.sort();
    assert_eq!(ids, ["1", "2"]);
}

#[test]
fn external_versions_apply_only_over_older_ones() {
    use cameodb_storage::ExternalVersion;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let versioned = |id: &str, n: u64, version: u64, gte: bool| WriteOp {
        external: Some(ExternalVersion { version, gte }),
        ..WriteOp::put(key(id), source(json!({"n": n})))
    };
    let out = store.write(versioned("e", 1, 5, false)).unwrap();
    assert_eq!(out.version, Some(5));
    assert!(matches!(
        store.write(versioned("e", 2, 3, false)),
        Err(StoreError::ExternalVersionConflict {
            current: 5,
            provided: 3,
            ..
        })
    ));
    assert!(store.write(versioned("e", 2, 5, false)).is_err());
    assert_eq!(
        store.write(versioned("e", 2, 5, true)).unwrap().version,
        Some(5)
    );
    let delete = WriteOp {
        external: Some(ExternalVersion {
            version: 7,
            gte: false,
        }),
        ..WriteOp::delete(key("e"))
    };
    assert_eq!(store.write(delete).unwrap().version, Some(7));
    // The delete's version holds: an older write does not bring the document back.
    assert!(store.write(versioned("e", 3, 6, false)).is_err());
    assert_eq!(
        store.write(versioned("e", 3, 8, false)).unwrap().version,
        Some(8)
    );
    let doc = store.get(&key("e")).unwrap().unwrap();
    assert_eq!(doc.version, 8);
    assert_eq!(doc.source_json().unwrap(), json!({"n": 3}));
}
