//! Translation checked against an in-memory tantivy index built with the engine's schema and
//! document conversion: each clause must select exactly the expected documents, and bad input
//! must be rejected with an error that names the problem.

mod common;

use cameodb_query::{QueryError, query_string, translate};
use cameodb_storage::hit_keys;
use common::{fixture, library};
use proptest::prelude::*;
use serde_json::{Value, json};
use tantivy::collector::TopDocs;

#[test]
fn every_supported_clause_selects_the_right_documents() {
    let f = library();
    assert_eq!(f.ids(json!({"match_all": {}})), ["1", "2", "3", "4"]);
    assert!(f.ids(json!({"match_none": {}})).is_empty());
    assert_eq!(f.ids(json!({"match": {"title": "quick"}})), ["1", "3"]);
    assert_eq!(
        f.ids(json!({"match": {"title": {"query": "quick fox", "operator": "and"}}})),
        ["1"]
    );
    assert_eq!(
        f.ids(json!({"match_phrase": {"title": "brown fox"}})),
        ["1"]
    );
    assert!(
        f.ids(json!({"match_phrase": {"title": "fox brown"}}))
            .is_empty()
    );
    assert_eq!(f.ids(json!({"term": {"tag": "mind"}})), ["3"]);
    assert!(
        f.ids(json!({"term": {"tag": "Mind"}})).is_empty(),
        "keywords are exact"
    );
    assert_eq!(
        f.ids(json!({"term": {"title.raw": "Quick thinking"}})),
        ["3"]
    );
    assert_eq!(f.ids(json!({"terms": {"n": [1, 4, 99]}})), ["1", "4"]);
    assert_eq!(
        f.ids(json!({"range": {"n": {"gt": 1, "lte": 3}}})),
        ["2", "3"]
    );
    assert_eq!(f.ids(json!({"range": {"price": {"gte": 2}}})), ["2", "3"]);
    assert_eq!(
        f.ids(json!({"range": {"day": {"lt": "2024-02-15"}}})),
        ["1", "2"]
    );
    assert_eq!(f.ids(json!({"term": {"ok": true}})), ["1"]);
    assert_eq!(
        f.ids(json!({"ids": {"values": ["2", "4", "nope"]}})),
        ["2", "4"]
    );
    assert_eq!(f.ids(json!({"exists": {"field": "ok"}})), ["1", "2"]);
    assert_eq!(f.ids(json!({"match": {"free": "dynamic"}})), ["4"]);
    assert!(f.ids(json!({"match": {"never_mapped": "x"}})).is_empty());
    assert_eq!(
        f.ids(json!({"bool": {"must": {"term": {"tag": "animal"}}, "must_not": [{"term": {"ok": false}}]}})),
        ["1"]
    );
    assert_eq!(f.ids(json!({"bool": {"filter": [{"range": {"n": {"gte": 2}}}], "should": [{"match": {"title": "quick"}}], "minimum_should_match": 1}})), ["3"]);
    assert_eq!(
        f.ids(json!({"bool": {"must_not": [{"term": {"tag": "animal"}}]}})),
        ["3", "4"]
    );
    assert_eq!(
        f.ids(json!({"constant_score": {"filter": {"term": {"tag": "mind"}}, "boost": 2.0}})),
        ["3"]
    );
    assert_eq!(
        f.ids(json!({"query_string": {"query": "quick AND tag:mind"}})),
        ["3"]
    );
    assert_eq!(f.lucene("fox OR dogs"), ["1", "2"]);
    assert_eq!(f.lucene("n:[2 TO 3]"), ["2", "3"]);
    assert_eq!(f.lucene("\"brown fox\""), ["1"]);
    assert_eq!(f.lucene("-tag:animal"), ["3", "4"]);
}

#[test]
fn pattern_fuzzy_and_multi_field_clauses() {
    let f = library();
    assert_eq!(f.ids(json!({"prefix": {"tag": "ani"}})), ["1", "2"]);
    assert_eq!(f.ids(json!({"prefix": {"title": "thin"}})), ["3"]);
    assert_eq!(f.ids(json!({"wildcard": {"tag": "m?n*"}})), ["3"]);
    assert_eq!(f.ids(json!({"wildcard": {"title.raw": "*Fox"}})), ["1"]);
    assert_eq!(f.ids(json!({"regexp": {"tag": "an.*l"}})), ["1", "2"]);
    assert_eq!(f.ids(json!({"regexp": {"title": "do.s?"}})), ["2"]);
    assert_eq!(f.ids(json!({"fuzzy": {"title": "quikc"}})), ["1", "3"]);
    assert_eq!(
        f.ids(json!({"fuzzy": {"tag": {"value": "animl", "fuzziness": 1}}})),
        ["1", "2"]
    );
    assert!(
        f.ids(json!({"fuzzy": {"tag": {"value": "animl", "fuzziness": 0}}}))
            .is_empty()
    );
    assert_eq!(
        f.ids(json!({"match": {"title": {"query": "qiuck", "fuzziness": "AUTO"}}})),
        ["1", "3"]
    );
    assert_eq!(
        f.ids(
            json!({"match": {"title": {"query": "quick brown lazy", "minimum_should_match": 2}}})
        ),
        ["1"]
    );
    assert_eq!(
        f.ids(
            json!({"match": {"title": {"query": "quick brown lazy", "minimum_should_match": "-2"}}})
        ),
        ["1", "2", "3"]
    );
    assert_eq!(
        f.ids(json!({"match_phrase_prefix": {"title": "quick br"}})),
        ["1"]
    );
    assert_eq!(
        f.ids(json!({"match_phrase_prefix": {"title": "laz"}})),
        ["2"]
    );
    assert_eq!(
        f.ids(json!({"multi_match": {"query": "quick", "fields": ["title^2", "tag"]}})),
        ["1", "3"]
    );
    assert_eq!(f.ids(json!({"multi_match": {"query": "animal", "fields": ["title", "tag"], "type": "most_fields"}})), ["1", "2"]);
    assert_eq!(f.ids(json!({"dis_max": {"queries": [{"term": {"tag": "mind"}}, {"match": {"title": "lazy"}}], "tie_breaker": 0.3}})), ["2", "3"]);
    assert_eq!(
        f.ids(json!({"simple_query_string": {"query": "fox | dogs", "fields": ["title"]}})),
        ["1", "2"]
    );
    assert_eq!(
        f.ids(json!({"simple_query_string": {"query": "quick -fox", "default_operator": "and"}})),
        ["3"]
    );
    assert_eq!(
        f.ids(json!({"simple_query_string": {"query": "((( broken"}})),
        Vec::<String>::new()
    );
    assert_eq!(
        f.ids(json!({"range": {"day": {"lt": "now", "gte": "now-100y"}}})),
        ["1", "2", "3"]
    );
    assert!(
        f.ids(json!({"range": {"day": {"gt": "now+1d"}}}))
            .is_empty()
    );
}

#[test]
fn bad_queries_are_rejected_and_named() {
    let f = library();
    let err = |q: Value| {
        translate(&q, &f.ctx())
            .err()
            .unwrap_or_else(|| panic!("{q} should fail"))
    };
    assert!(
        err(json!({"frobnicate": {}}))
            .to_string()
            .contains("frobnicate")
    );
    assert!(
        err(json!({"match": {"title": {"query": "x", "cutoff_frequency": 0.1}}}))
            .to_string()
            .contains("cutoff_frequency")
    );
    assert!(
        err(json!({"bool": {"must": [], "unknown": 1}}))
            .to_string()
            .contains("unknown")
    );
    assert!(
        err(json!({"boosting": {"positive": {"match_all": {}}}}))
            .to_string()
            .contains("negative")
    );
    assert!(
        err(json!({"prefix": {"n": "1"}}))
            .to_string()
            .contains("keyword and text")
    );
    assert!(
        err(json!({"regexp": {"tag": "(unclosed"}}))
            .to_string()
            .contains("regexp")
    );
    assert!(
        err(json!({"multi_match": {"query": "x", "type": "sideways"}}))
            .to_string()
            .contains("sideways")
    );
    assert!(matches!(
        err(json!({"term": {"n": "not a number"}})),
        QueryError::Shard(_)
    ));
    assert!(matches!(
        err(json!({"match": {"a": 1}, "term": {"b": 2}})),
        QueryError::Parsing(_)
    ));
    assert!(err(json!("match_all")).to_string().contains("object"));
    assert!(query_string("title:(unclosed", None, false, &f.ctx()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// Random bool combinations of term and range filters select exactly what a brute-force
    /// evaluation over the same documents selects.
    #[test]
    fn bool_filters_match_brute_force(
        values in proptest::collection::vec((0i64..6, 0usize..3), 1..25),
        must_tag in 0usize..3, lo in 0i64..6, hi in 0i64..6, negate in any::<bool>(),
    ) {
        const TAGS: [&str; 3] = ["a", "b", "c"];
        let docs: Vec<(String, Value)> = values.iter().enumerate()
            .map(|(i, (n, t))| (i.to_string(), json!({"n": n, "tag": TAGS[*t]})))
            .collect();
        let refs: Vec<(&str, Value)> = docs.iter().map(|(id, d)| (id.as_str(), d.clone())).collect();
        let f = fixture(&refs);
        let range = json!({"range": {"n": {"gte": lo, "lte": hi}}});
        let tag = json!({"term": {"tag": TAGS[must_tag]}});
        let dsl = if negate {
            json!({"bool": {"filter": [range], "must_not": [tag]}})
        } else {
            json!({"bool": {"must": [tag], "filter": [range]}})
        };
        let mut expected: Vec<String> = values.iter().enumerate()
            .filter(|(_, (n, t))| (lo..=hi).contains(n) && ((*t == must_tag) != negate))
            .map(|(i, _)| i.to_string())
            .collect();
        expected.sort();
        prop_assert_eq!(f.ids(dsl), expected);
    }
}

#[test]
fn boosting_demotes_without_excluding() {
    let f = library();
    let searcher = f.index.reader().unwrap().searcher();
    let scores = |dsl: Value| -> Vec<(String, f32)> {
        let query = translate(&dsl, &f.ctx()).unwrap();
        let top = searcher
            .search(query.as_ref(), &TopDocs::with_limit(10).order_by_score())
            .unwrap();
        let addrs: Vec<_> = top.iter().map(|(_, a)| *a).collect();
        let keys = hit_keys(&searcher, &addrs).unwrap();
        top.iter()
            .zip(keys)
            .map(|((s, _), k)| (k.id.to_string(), *s))
            .collect()
    };
    let plain = scores(json!({"match": {"title": "quick"}}));
    let boosted = scores(
        json!({"boosting": {"positive": {"match": {"title": "quick"}}, "negative": {"term": {"tag": "animal"}}, "negative_boost": 0.1}}),
    );
    let of = |list: &[(String, f32)], id: &str| {
        list.iter().find(|(i, _)| i == id).map(|(_, s)| *s).unwrap()
    };
    assert_eq!(boosted.len(), 2, "demoted, not dropped");
    assert_eq!(boosted[0].0, "3");
    assert!((of(&boosted, "1") - 0.1 * of(&plain, "1")).abs() < 1e-6);
    assert!((of(&boosted, "3") - of(&plain, "3")).abs() < 1e-6);
}
