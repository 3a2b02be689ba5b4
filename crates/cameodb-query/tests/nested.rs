//! The `nested` query against a real tantivy index, compared with a model: a document matches
//! when one of its elements matches every clause (never clauses met by different elements).

mod common;

use common::{Fixture, fixture_with};
use proptest::prelude::*;
use serde_json::{Value, json};
use tantivy::query::AllQuery;

const COLORS: [&str; 3] = ["red", "blue", "green"];

/// One document: its elements as (color, size).
type Doc = Vec<(usize, i64)>;

fn fixture(docs: &[Doc], segment_every: usize) -> Fixture {
    let mapping = json!({"properties": {
        "c": {"type": "nested", "properties": {
            "color": {"type": "keyword"}, "size": {"type": "long"}
        }}
    }});
    let bodies: Vec<(String, Value)> = docs
        .iter()
        .enumerate()
        .map(|(n, elements)| {
            let items: Vec<Value> = elements
                .iter()
                .map(|(color, size)| json!({"color": COLORS[*color], "size": size}))
                .collect();
            (format!("d{n}"), json!({"c": items}))
        })
        .collect();
    let refs: Vec<(&str, Value)> = bodies
        .iter()
        .map(|(id, body)| (id.as_str(), body.clone()))
        .collect();
    fixture_with(&mapping, &refs, segment_every)
}

fn expected(docs: &[Doc], keep: impl Fn(&Doc) -> bool) -> Vec<String> {
    let mut ids: Vec<String> = docs
        .iter()
        .enumerate()
        .filter(|(_, d)| keep(d))
        .map(|(n, _)| format!("d{n}"))
        .collect();
    ids.sort();
    ids
}

fn docs() -> impl Strategy<Value = Vec<Doc>> {
    prop::collection::vec(prop::collection::vec((0usize..3, 0i64..5), 0..4), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn one_element_must_match_every_clause(
        docs in docs(),
        color in 0usize..3,
        min in 0i64..5,
        segment_every in 0usize..8,
        mode in prop::sample::select(vec!["avg", "max", "min", "sum", "none"]),
    ) {
        let fixture = fixture(&docs, segment_every);
        let query = json!({"nested": {"path": "c", "score_mode": mode, "query": {"bool": {"must": [
            {"term": {"c.color": COLORS[color]}},
            {"range": {"c.size": {"gte": min}}}
        ]}}}});
        prop_assert_eq!(
            fixture.ids(query),
            expected(&docs, |d| d.iter().any(|(c, s)| *c == color && *s >= min))
        );
        // Outside a nested query the elements' fields match nothing, and every query sees
        // each document once.
        prop_assert_eq!(fixture.ids(json!({"term": {"c.color": COLORS[color]}})), Vec::<String>::new());
        prop_assert_eq!(fixture.ids(json!({"match_all": {}})), expected(&docs, |_| true));
        let without = json!({"bool": {"must_not": {"nested": {"path": "c", "query": {"match_all": {}}}}}});
        prop_assert_eq!(fixture.ids(without), expected(&docs, Vec::is_empty));
        let searcher = fixture.index.reader().unwrap().searcher();
        let all: usize = docs.iter().map(|d| 1 + d.len()).sum();
        prop_assert_eq!(searcher.search(&AllQuery, &tantivy::collector::Count).unwrap(), all);
    }
}
