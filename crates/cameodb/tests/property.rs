//! Property test through a real server: random bool / range / term / terms / exists queries over
//! generated documents return exactly the hit set a brute-force evaluation computes here.

mod common;

use std::collections::BTreeSet;

use common::{Server, ndjson};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TAGS: [&str; 4] = ["red", "green", "blue", "gray"];

/// A generated document.
#[derive(Clone, Debug)]
struct Doc {
    n: i64,
    tag: &'static str,
    flag: Option<bool>,
    price: Option<f64>,
}

fn docs() -> Vec<Doc> {
    (0..200i64)
        .map(|i| Doc {
            n: (i * 7) % 20,
            tag: TAGS[(i as usize * 3) % 4],
            flag: if i % 5 == 0 { None } else { Some(i % 2 == 0) },
            price: if i % 3 == 0 {
                None
            } else {
                Some((i % 11) as f64 * 1.25)
            },
        })
        .collect()
}

/// The query language under test, with its own evaluator.
#[derive(Clone, Debug)]
enum Q {
    Term(&'static str),
    Terms(Vec<&'static str>),
    Range {
        lo: i64,
        hi: i64,
        inclusive: bool,
    },
    Exists(&'static str),
    Flag(bool),
    Bool {
        must: Vec<Q>,
        filter: Vec<Q>,
        should: Vec<Q>,
        must_not: Vec<Q>,
    },
}

impl Q {
    fn matches(&self, d: &Doc) -> bool {
        match self {
            Q::Term(t) => d.tag == *t,
            Q::Terms(ts) => ts.contains(&d.tag),
            Q::Range { lo, hi, inclusive } => {
                d.n >= *lo && if *inclusive { d.n <= *hi } else { d.n < *hi }
            }
            Q::Exists(field) => match *field {
                "flag" => d.flag.is_some(),
                _ => d.price.is_some(),
            },
            Q::Flag(b) => d.flag == Some(*b),
            Q::Bool {
                must,
                filter,
                should,
                must_not,
            } => {
                let required = must.iter().chain(filter).all(|q| q.matches(d));
                let excluded = must_not.iter().any(|q| q.matches(d));
                let should_ok = if must.is_empty() && filter.is_empty() && !should.is_empty() {
                    should.iter().any(|q| q.matches(d))
                } else {
                    true
                };
                required && !excluded && should_ok
            }
        }
    }

    fn dsl(&self) -> Value {
        match self {
            Q::Term(t) => json!({"term": {"tag": t}}),
            Q::Terms(ts) => json!({"terms": {"tag": ts}}),
            Q::Range {
                lo,
                hi,
                inclusive: true,
            } => json!({"range": {"n": {"gte": lo, "lte": hi}}}),
            Q::Range {
                lo,
                hi,
                inclusive: false,
            } => json!({"range": {"n": {"gte": lo, "lt": hi}}}),
            Q::Exists(field) => json!({"exists": {"field": field}}),
            Q::Flag(b) => json!({"term": {"flag": b}}),
            Q::Bool {
                must,
                filter,
                should,
                must_not,
            } => {
                let list = |qs: &Vec<Q>| Value::Array(qs.iter().map(Q::dsl).collect());
                json!({"bool": {"must": list(must), "filter": list(filter), "should": list(should), "must_not": list(must_not)}})
            }
        }
    }
}

fn leaf() -> impl Strategy<Value = Q> {
    prop_oneof![
        proptest::sample::select(TAGS.to_vec()).prop_map(Q::Term),
        proptest::sample::subsequence(TAGS.to_vec(), 0..4).prop_map(Q::Terms),
        (0i64..20, 0i64..20, any::<bool>()).prop_map(|(a, b, inclusive)| Q::Range {
            lo: a.min(b),
            hi: a.max(b),
            inclusive
        }),
        proptest::sample::select(vec!["flag", "price"]).prop_map(Q::Exists),
        any::<bool>().prop_map(Q::Flag),
    ]
}

fn query() -> impl Strategy<Value = Q> {
    leaf().prop_recursive(2, 12, 3, |inner| {
        let list = proptest::collection::vec(inner, 0..3);
        (list.clone(), list.clone(), list.clone(), list).prop_map(
            |(must, filter, should, must_not)| Q::Bool {
                must,
                filter,
                should,
                must_not,
            },
        )
    })
}

#[test]
fn random_queries_match_brute_force() {
    let server = Server::start();
    server.call("PUT", "/p", Some(json!({"mappings": {"properties": {
        "n": {"type": "long"}, "tag": {"type": "keyword"}, "flag": {"type": "boolean"}, "price": {"type": "double"}
    }}})));
    let docs = docs();
    let mut lines = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        lines.push(json!({"index": {"_index": "p", "_id": i.to_string()}}));
        let mut body = json!({"n": d.n, "tag": d.tag});
        if let Some(flag) = d.flag {
            body["flag"] = json!(flag);
        }
        if let Some(price) = d.price {
            body["price"] = json!(price);
        }
        lines.push(body);
    }
    let (status, _) = server.raw(
        "POST",
        "/_bulk?refresh=true",
        "application/x-ndjson",
        ndjson(&lines),
    );
    assert_eq!(status, StatusCode::OK);

    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&query(), |q| {
            let (status, body) = server.call(
                "POST",
                "/p/_search",
                Some(json!({"query": q.dsl(), "size": 500, "_source": false})),
            );
            prop_assert_eq!(status, StatusCode::OK, "{}", body);
            let got: BTreeSet<usize> = body["hits"]["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["_id"].as_str().unwrap().parse().unwrap())
                .collect();
            let want: BTreeSet<usize> = docs
                .iter()
                .enumerate()
                .filter(|(_, d)| q.matches(d))
                .map(|(i, _)| i)
                .collect();
            prop_assert_eq!(got, want, "query {}", q.dsl());
            Ok(())
        })
        .unwrap();
}
