//! What each fuzz target does with its input, shared by the cargo-fuzz crate in `fuzz/`
//! (nightly, run by hand) and by `tests/corpus.rs`, which replays the committed corpora in
//! `./test.sh`. Every function takes arbitrary bytes and must return: no panic, no stack
//! overflow, no runaway memory.

use std::sync::OnceLock;

use cameodb_query::{QueryContext, query_string, translate};
use cameodb_schema::mapping::{Mapping, date};
use cameodb_schema::{fields as schema, register_analyzers};
use cameodb_storage::to_index_doc;
use cameodb_storage::{DocId, DocKey, hit_keys};
use serde_json::{Value, json};
use tantivy::collector::TopDocs;
use tantivy::{Index, TantivyDocument};

/// An in-memory index with the engine's schema, a mapping of every field type, and a few
/// documents, built once.
struct Fixture {
    index: Index,
    /// One searcher for every input (a reader per input would pile up their threads).
    searcher: tantivy::Searcher,
    mapping: Mapping,
    fields: schema::Fields,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (schema, fields) = schema::build();
        let index = Index::create_in_ram(schema);
        let mut mapping = Mapping::from_es_json(&json!({"properties": {
            "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "tag": {"type": "keyword"}, "n": {"type": "long"}, "price": {"type": "double"},
            "day": {"type": "date"}, "ok": {"type": "boolean"}
        }}))
        .unwrap_or_default();
        register_analyzers(index.tokenizers(), &mapping, &cameodb_schema::Analysis::default());
        if let Ok(mut writer) = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000) {
            let docs = [
                json!({"title": "The Quick Brown Fox", "tag": "a", "n": 1, "price": 1.5, "day": "2024-01-01", "ok": true}),
                json!({"title": "Lazy dogs sleep", "tag": "b", "n": 2, "day": "2024-02-01"}),
                json!({"free": "dynamic text", "nested": {"x": 3}}),
            ];
            for (i, doc) in docs.iter().enumerate() {
                let Ok(key) = DocId::new(i.to_string()).and_then(|id| DocKey::new(id, None))
                else {
                    continue;
                };
                let Some(doc) = doc.as_object() else { continue };
                if let Ok((doc, updated)) = to_index_doc(&mapping, &key, doc, &cameodb_schema::Analysis::default(), &fields) {
                    if let Some(updated) = updated {
                        mapping = updated;
                    }
                    let _ = writer.add_document(doc.into_document());
                }
            }
            let _ = writer.commit();
        }
        let searcher = match index.reader() {
            Ok(reader) => reader.searcher(),
            Err(err) => panic!("the fuzz fixture's index cannot be read: {err}"),
        };
        Fixture {
            index,
            searcher,
            mapping,
            fields,
        }
    })
}

/// Runs `query` on the fixture's documents, reading the ids of its hits.
fn run(query: &dyn tantivy::query::Query) {
    let searcher = &fixture().searcher;
    if let Ok(top) = searcher.search(query, &TopDocs::with_limit(10).order_by_score()) {
        let addresses: Vec<_> = top.into_iter().map(|(_, a)| a).collect();
        let _ = hit_keys(searcher, &addresses);
    }
}

fn context(fixture: &Fixture) -> QueryContext<'_> {
    QueryContext::new(
        &fixture.mapping,
        &fixture.fields,
        fixture.index.tokenizers(),
    )
}

/// The JSON query DSL: any JSON value as the `query` of a search.
pub fn query_dsl(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let fixture = fixture();
    if let Ok(query) = translate(&value, &context(fixture)) {
        run(query.as_ref());
    }
}

/// Lucene syntax, as `q=` / `query_string` and as `simple_query_string`.
pub fn lucene(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let fixture = fixture();
    for and in [false, true] {
        if let Ok(query) = query_string(&text, None, and, &context(fixture)) {
            run(query.as_ref());
        }
    }
    let simple = json!({"simple_query_string": {"query": text}});
    if let Ok(query) = translate(&simple, &context(fixture)) {
        run(query.as_ref());
    }
}

/// A `_bulk` body, through the node's NDJSON parser.
pub fn bulk(data: &[u8]) {
    let _ = cameodb_server::fuzz::bulk(data);
}

/// A mapping (first line), then a document indexed under it (second line). A mapping that
/// parses must render to Elasticsearch's JSON and parse again to the same mapping.
pub fn mapping(data: &[u8]) {
    let mut lines = data.splitn(2, |b| *b == b'\n');
    let Some(Ok(body)) = lines.next().map(serde_json::from_slice::<Value>) else {
        return;
    };
    let Ok(mapping) = Mapping::from_es_json(&body) else {
        return;
    };
    let rendered = mapping.to_es_json();
    match Mapping::from_es_json(&rendered) {
        Ok(again) => assert_eq!(
            again.to_es_json(),
            rendered,
            "a rendered mapping reads back"
        ),
        Err(err) => panic!("a rendered mapping must parse again: {err}: {rendered}"),
    }
    let Some(Ok(Value::Object(doc))) = lines.next().map(serde_json::from_slice::<Value>) else {
        return;
    };
    let (_, fields) = schema::build();
    if let Ok(key) = DocId::new("fuzz").and_then(|id| DocKey::new(id, None)) {
        let _ = to_index_doc(
            &mapping,
            &key,
            &doc,
            &cameodb_schema::Analysis::default(),
            &fields,
        );
    }
}

/// Date math and date formats: a format (first line) and a value (second line), parsed by the
/// mapping's date parser and used as a range bound on a date field.
pub fn date_math(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (format, value) = text.split_once('\n').unwrap_or(("", &text));
    if date::validate_formats(format).is_ok() {
        let _ = date::parse_str(value, format);
    }
    let _ = date::parse_str(value, date::DEFAULT_FORMATS);
    let fixture = fixture();
    for bound in ["gte", "lt"] {
        let range = json!({"range": {"day": {bound: value, "format": format}}});
        if let Ok(query) = translate(&range, &context(fixture)) {
            run(query.as_ref());
        }
    }
    let term = json!({"term": {"day": value}});
    if let Ok(query) = translate(&term, &context(fixture)) {
        run(query.as_ref());
    }
}
