//! Hostile queries: nesting, size and arithmetic a client controls. Translation (and tantivy's
//! own recursion over what it builds) must stay within a small stack at the nesting limit, and
//! refuse anything past a limit with an error naming it — never overflow the stack or panic.

mod common;

use cameodb_query::{
    MAX_CLAUSE_COUNT, MAX_NESTED_DEPTH, MAX_TERMS_COUNT, QueryError, query_string, translate,
};
use common::{Fixture, library};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The stack the parsers are proven to fit in at the nesting limit, in a debug build (larger
/// frames than release): a quarter of the 2 MiB that tokio's threads (where queries are
/// translated and run) have. 256 KiB overflows at the limit in a debug build.
const SMALL_STACK: usize = 512 * 1024;

/// Runs `work` on a thread with [`SMALL_STACK`]; a stack overflow would abort the test binary.
fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(work)
        .expect("spawn")
        .join()
        .expect("no panic")
}

/// `depth` levels of `wrap` around a leaf, built without recursion.
fn nest(depth: usize, wrap: impl Fn(Value) -> Value) -> Value {
    let mut query = json!({"term": {"tag": "animal"}});
    for _ in 0..depth {
        query = wrap(query);
    }
    query
}

/// A compound clause around an inner query.
type Wrap = fn(Value) -> Value;

fn wrappers() -> Vec<(&'static str, Wrap)> {
    vec![
        ("bool.must", |q| json!({"bool": {"must": [q]}})),
        ("bool.should", |q| json!({"bool": {"should": q}})),
        ("bool.filter", |q| json!({"bool": {"filter": [q]}})),
        ("bool.must_not", |q| json!({"bool": {"must_not": [q]}})),
        (
            "constant_score",
            |q| json!({"constant_score": {"filter": q}}),
        ),
        ("dis_max", |q| json!({"dis_max": {"queries": [q]}})),
        (
            "boosting",
            |q| json!({"boosting": {"positive": q, "negative": {"match_none": {}}, "negative_boost": 0.5}}),
        ),
    ]
}

/// Translates and runs `dsl` against the fixture, on the calling thread.
fn run_dsl(fixture: &Fixture, dsl: &Value) -> Result<Vec<String>, QueryError> {
    let query = translate(dsl, &fixture.ctx())?;
    Ok(fixture.ids_for(query.as_ref()))
}

fn run_lucene(fixture: &Fixture, text: &str) -> Result<Vec<String>, QueryError> {
    let query = query_string(text, None, false, &fixture.ctx())?;
    Ok(fixture.ids_for(query.as_ref()))
}

fn assert_limit(result: Result<Vec<String>, QueryError>, what: &str, name: &str) {
    match result {
        Err(QueryError::Limit(reason)) => assert!(reason.contains(name), "{what}: {reason}"),
        other => panic!("{what}: expected a limit error naming {name}, got {other:?}"),
    }
}

#[test]
fn json_nesting_at_the_limit_runs_and_past_it_is_refused_on_a_small_stack() {
    on_small_stack(|| {
        let fixture = library();
        for (name, wrap) in wrappers() {
            // The leaf is a level too: the limit counts every clause on the path.
            let at_limit = nest(MAX_NESTED_DEPTH - 1, wrap);
            let found = run_dsl(&fixture, &at_limit).unwrap_or_else(|e| panic!("{name}: {e}"));
            // (must_not flips the answer at every level.)
            if name != "bool.must_not" {
                assert_eq!(found, ["1", "2"], "{name}");
            }
            for depth in [MAX_NESTED_DEPTH, 127] {
                let too_deep = nest(depth, wrap);
                assert_limit(
                    run_dsl(&fixture, &too_deep),
                    name,
                    "indices.query.bool.max_nested_depth",
                );
            }
        }
    });
}

#[test]
fn lucene_nesting_at_the_limit_runs_and_past_it_is_refused_on_a_small_stack() {
    on_small_stack(|| {
        let fixture = library();
        let at_limit = format!(
            "{}quick{}",
            "(".repeat(MAX_NESTED_DEPTH - 1),
            ")".repeat(MAX_NESTED_DEPTH - 1)
        );
        assert_eq!(
            run_lucene(&fixture, &at_limit).expect("at the limit"),
            ["1", "3"]
        );
        let hostile = [
            "(".repeat(2200),
            format!("{}a{}", "(".repeat(2200), ")".repeat(2200)),
            "+(".repeat(2200),
            "-(".repeat(2200),
            "title:(".repeat(2200),
            "NOT ".repeat(5000) + "a",
            format!("{}a", "(NOT ".repeat(2000)),
            format!("a AND {}b", "(".repeat(MAX_NESTED_DEPTH + 1)),
        ];
        for text in &hostile {
            assert_limit(
                run_lucene(&fixture, text),
                &text[..20.min(text.len())],
                "indices.query.bool.max_nested_depth",
            );
            for clause in ["query_string", "simple_query_string"] {
                let dsl = json!({clause: {"query": text}});
                assert_limit(
                    run_dsl(&fixture, &dsl),
                    clause,
                    "indices.query.bool.max_nested_depth",
                );
            }
        }
    });
}

#[test]
fn clause_and_term_counts_are_bounded() {
    let fixture = library();
    let words: Vec<String> = (0..=MAX_CLAUSE_COUNT).map(|i| format!("w{i}")).collect();
    let words = words.join(" ");
    assert_limit(
        run_dsl(&fixture, &json!({"match": {"title": words}})),
        "match",
        "indices.query.bool.max_clause_count",
    );
    assert_limit(
        run_lucene(&fixture, &words),
        "query_string",
        "indices.query.bool.max_clause_count",
    );
    let many: Vec<Value> = (0..=MAX_CLAUSE_COUNT)
        .map(|i| json!({"term": {"tag": i.to_string()}}))
        .collect();
    assert_limit(
        run_dsl(&fixture, &json!({"bool": {"should": many}})),
        "bool",
        "indices.query.bool.max_clause_count",
    );
    let values: Vec<Value> = (0..=MAX_TERMS_COUNT).map(|i| json!(i)).collect();
    assert_limit(
        run_dsl(&fixture, &json!({"terms": {"n": values}})),
        "terms",
        "index.max_terms_count",
    );
    assert_limit(
        run_dsl(&fixture, &json!({"ids": {"values": values}})),
        "ids",
        "index.max_terms_count",
    );
}

#[test]
fn hostile_numbers_and_dates_are_clear_errors() {
    let fixture = library();
    let refused = [
        json!({"range": {"day": {"gte": "now\u{e9}"}}}),
        json!({"range": {"day": {"gte": "now+\u{e9}d"}}}),
        json!({"range": {"day": {"gte": "now/\u{e9}"}}}),
        json!({"range": {"day": {"gte": "now+9999999999y"}}}),
        json!({"term": {"day": "9999-12-31"}}),
        json!({"match": {"title": {"query": "quick", "boost": -1}}}),
        json!({"match": {"title": {"query": "quick", "boost": 1e300}}}),
        json!({"match_phrase": {"title": {"query": "quick fox", "slop": 18446744073709551615u64}}}),
        json!({"match_phrase_prefix": {"title": {"query": "quick fo", "max_expansions": 4294967296u64}}}),
    ];
    for dsl in refused {
        let result = run_dsl(&fixture, &dsl);
        assert!(result.is_err(), "{dsl} gave {result:?}");
    }
    // Beyond what the index holds, a range bound is clamped: every stored date lies inside.
    assert_eq!(
        run_dsl(&fixture, &json!({"range": {"day": {"lte": "9999-12-31"}}})).expect("range"),
        ["1", "2", "3"]
    );
    assert!(
        run_dsl(&fixture, &json!({"range": {"day": {"gte": "9999-12-31"}}}))
            .expect("range")
            .is_empty()
    );
    // Percentages and counts that would overflow are clamped, as Elasticsearch clamps them.
    for msm in [
        json!("-9223372036854775808"),
        json!("9223372036854775807%"),
        json!(i64::MIN),
    ] {
        let dsl =
            json!({"bool": {"should": [{"term": {"tag": "animal"}}], "minimum_should_match": msm}});
        assert!(run_dsl(&fixture, &dsl).is_ok(), "{msm}");
    }
}

/// Any JSON at all in a clause: a leaf value, or a clause of a known kind with random content.
fn hostile_query() -> impl Strategy<Value = Value> {
    let kinds = prop::sample::select(vec![
        "match_all",
        "match_none",
        "match",
        "match_phrase",
        "term",
        "terms",
        "range",
        "ids",
        "exists",
        "bool",
        "constant_score",
        "query_string",
        "simple_query_string",
        "multi_match",
        "dis_max",
        "match_phrase_prefix",
        "prefix",
        "wildcard",
        "regexp",
        "fuzzy",
        "boosting",
        "unknown",
    ]);
    let keys = prop::sample::select(vec![
        "title",
        "tag",
        "n",
        "price",
        "day",
        "ok",
        "free",
        "query",
        "must",
        "should",
        "filter",
        "must_not",
        "queries",
        "positive",
        "negative",
        "negative_boost",
        "boost",
        "value",
        "values",
        "gte",
        "lt",
        "fields",
        "fuzziness",
        "operator",
        "slop",
        "minimum_should_match",
        "tie_breaker",
        "field",
        "max_expansions",
        "default_operator",
        "type",
        "format",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z()*?\\\\\"~^:+\\-! |\u{e9}0-9/]{0,24}".prop_map(Value::from),
        prop::sample::select(vec![
            "now-1d/d",
            "now\u{e9}",
            "AUTO",
            "and",
            "or",
            "2024-01-01",
            "*"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner.clone(), 0..4).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
            (kinds.clone(), inner).prop_map(|(kind, body)| json!({ kind: body })),
        ]
    })
}

/// One fixture for every generated case (building an index per case would dominate the run).
fn shared() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(library)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    /// Whatever the JSON, translation answers Ok or a clean error, and what it builds runs.
    #[test]
    fn any_json_translates_or_is_refused_without_panicking(query in hostile_query()) {
        let _ = run_dsl(shared(), &query);
    }

    /// Whatever the text, the Lucene syntax translates or is refused without panicking.
    #[test]
    fn any_lucene_text_translates_or_is_refused(text in "[a-z()*?\\\\\"~^:+\\-! |\u{e9}\\[\\]{}0-9/.]{0,64}") {
        let _ = run_lucene(shared(), &text);
    }
}
