//! The in-memory index the query tests translate against: the engine's schema and document
//! conversion, a fixed mapping and a few documents.
#![allow(dead_code)]

use cameodb_query::{QueryContext, nested::top_level, query_string, translate};
use cameodb_schema::mapping::Mapping;
use cameodb_schema::{fields as schema, register_analyzers};
use cameodb_storage::to_index_doc;
use cameodb_storage::{DocId, DocKey, hit_keys};
use serde_json::{Value, json};
use tantivy::collector::TopDocs;
use tantivy::indexer::UserOperation;
use tantivy::{Index, IndexWriter, TantivyDocument};

pub struct Fixture {
    pub index: Index,
    pub mapping: Mapping,
    pub fields: schema::Fields,
}

pub fn fixture(docs: &[(&str, Value)]) -> Fixture {
    let mapping = json!({"properties": {
        "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
        "tag": {"type": "keyword"}, "n": {"type": "long"}, "price": {"type": "double"},
        "day": {"type": "date"}, "ok": {"type": "boolean"}
    }});
    fixture_with(&mapping, docs, 0)
}

/// An index of `docs` under the mapping `mapping`, committed into a new segment after every
/// `segment_every` documents (0: one segment). Each document goes to the writer as one batch
/// with its nested elements, as the engine's indexer hands it.
pub fn fixture_with(mapping: &Value, docs: &[(&str, Value)], segment_every: usize) -> Fixture {
    let (schema, fields) = schema::build();
    let index = Index::create_in_ram(schema);
    let mut mapping = Mapping::from_es_json(mapping).unwrap();
    register_analyzers(
        index.tokenizers(),
        &mapping,
        &cameodb_schema::Analysis::default(),
    );
    let mut writer: IndexWriter<TantivyDocument> =
        index.writer_with_num_threads(1, 15_000_000).unwrap();
    for (n, (id, doc)) in docs.iter().enumerate() {
        let key = DocKey::new(DocId::new(*id).unwrap(), None).unwrap();
        let (doc, updated) = to_index_doc(
            &mapping,
            &key,
            doc.as_object().unwrap(),
            &cameodb_schema::Analysis::default(),
            &fields,
        )
        .unwrap();
        if let Some(updated) = updated {
            mapping = updated;
        }
        let batch: Vec<_> = doc
            .into_documents()
            .into_iter()
            .map(UserOperation::Add)
            .collect();
        writer.run(batch).unwrap();
        if segment_every > 0 && n % segment_every == 0 {
            writer.commit().unwrap();
        }
    }
    writer.commit().unwrap();
    Fixture {
        index,
        mapping,
        fields,
    }
}

impl Fixture {
    pub fn ctx(&self) -> QueryContext<'_> {
        QueryContext::new(&self.mapping, &self.fields, self.index.tokenizers())
    }

    pub fn ids_for(&self, query: &dyn tantivy::query::Query) -> Vec<String> {
        let searcher = self.index.reader().unwrap().searcher();
        let top = searcher
            .search(query, &TopDocs::with_limit(100).order_by_score())
            .unwrap();
        let addrs: Vec<_> = top.iter().map(|(_, a)| *a).collect();
        let mut ids: Vec<String> = hit_keys(&searcher, &addrs)
            .unwrap()
            .into_iter()
            .map(|k| k.id.to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Ids of the documents the query matches, as a search asks it (nested elements' hidden
    /// documents excluded).
    pub fn ids(&self, dsl: Value) -> Vec<String> {
        let ctx = self.ctx();
        let query = translate(&dsl, &ctx).unwrap_or_else(|e| panic!("{dsl}: {e}"));
        self.ids_for(top_level(query, &ctx).as_ref())
    }

    pub fn lucene(&self, text: &str) -> Vec<String> {
        let query = query_string(text, None, false, &self.ctx()).unwrap();
        self.ids_for(query.as_ref())
    }
}

pub fn library() -> Fixture {
    fixture(&[
        (
            "1",
            json!({"title": "The Quick Brown Fox", "tag": "animal", "n": 1, "price": 1.5, "day": "2024-01-01", "ok": true}),
        ),
        (
            "2",
            json!({"title": "Lazy dogs sleep", "tag": "animal", "n": 2, "price": 2.0, "day": "2024-02-01", "ok": false}),
        ),
        (
            "3",
            json!({"title": "Quick thinking", "tag": "mind", "n": 3, "price": 10.25, "day": "2024-03-01"}),
        ),
        (
            "4",
            json!({"free": "unmapped text lands in dynamic mapping", "n": 4}),
        ),
    ])
}
