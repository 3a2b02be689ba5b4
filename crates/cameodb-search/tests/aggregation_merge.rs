//! Aggregations computed per index (as each node of a cluster computes them) and merged must
//! equal the aggregations of one index holding every document.

use cameodb_schema::mapping::Mapping;
use cameodb_schema::{fields as schema, register_analyzers};
use cameodb_search::aggregations;
use cameodb_storage::{DocId, DocKey, to_index_doc};
use proptest::prelude::*;
use serde_json::{Value, json};
use tantivy::query::AllQuery;
use tantivy::{Index, IndexWriter, TantivyDocument};

fn mapping() -> Mapping {
    Mapping::from_es_json(&json!({"properties": {
        "tag": {"type": "keyword"}, "n": {"type": "long"}
    }}))
    .expect("mapping")
}

/// An in-memory index of `docs` (the engine's schema and document conversion).
fn index_of(docs: &[(usize, Value)]) -> Index {
    let (schema, fields) = schema::build();
    let index = Index::create_in_ram(schema);
    let mapping = mapping();
    register_analyzers(
        index.tokenizers(),
        &mapping,
        &cameodb_schema::Analysis::default(),
    );
    let mut writer: IndexWriter<TantivyDocument> = index
        .writer_with_num_threads(1, 15_000_000)
        .expect("writer");
    for (id, doc) in docs {
        let key = DocKey::new(DocId::new(id.to_string()).expect("id"), None).expect("key");
        let object = doc.as_object().expect("object");
        let (doc, _) = to_index_doc(
            &mapping,
            &key,
            object,
            &cameodb_schema::Analysis::default(),
            &fields,
        )
        .expect("converts");
        writer.add_document(doc.into_document()).expect("adds");
    }
    writer.commit().expect("commits");
    index
}

/// The final aggregations of `parts`, each index's intermediate result merged.
fn aggregate(indexes: &[Index], request: &Value) -> Value {
    let prepared = aggregations::prepare(request, &mapping()).expect("prepares");
    let parts = indexes
        .iter()
        .map(|index| {
            let searcher = index.reader().expect("reader").searcher();
            aggregations::collect(
                &searcher,
                &AllQuery,
                prepared.clone(),
                index.tokenizers(),
                Default::default(),
            )
            .expect("collects")
        })
        .collect();
    aggregations::finish(parts, prepared).expect("finishes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn per_index_results_merge_to_the_one_index_answer(
        docs in prop::collection::vec((0u8..5, 0i64..100, 0usize..3), 1..60),
        parts in 1usize..4,
    ) {
        let request = json!({
            "tags": {"terms": {"field": "tag", "size": 10},
                     "aggs": {"total": {"sum": {"field": "n"}}, "low": {"min": {"field": "n"}}}},
            "spread": {"stats": {"field": "n"}},
            "bands": {"histogram": {"field": "n", "interval": 25}},
            "many": {"range": {"field": "n", "ranges": [{"to": 50}, {"from": 50}]}},
        });
        let docs: Vec<(usize, Value, usize)> = docs
            .into_iter()
            .enumerate()
            .map(|(id, (tag, n, part))| (id, json!({"tag": format!("t{tag}"), "n": n}), part % parts))
            .collect();
        let everything: Vec<(usize, Value)> =
            docs.iter().map(|(id, doc, _)| (*id, doc.clone())).collect();
        let split: Vec<Index> = (0..parts)
            .map(|part| {
                let mine: Vec<(usize, Value)> = docs
                    .iter()
                    .filter(|(_, _, p)| *p == part)
                    .map(|(id, doc, _)| (*id, doc.clone()))
                    .collect();
                index_of(&mine)
            })
            .collect();
        let merged = aggregate(&split, &request);
        let single = aggregate(&[index_of(&everything)], &request);
        prop_assert_eq!(merged, single);
    }
}
