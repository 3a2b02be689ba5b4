//! `significant_terms`: the terms unusually frequent in a set of documents (the query's, or a
//! bucket's) compared with the whole index.
//!
//! The foreground runs as a `terms` aggregation inside a `filter` of every document (whose
//! count is the set's size); the background of each field is a hidden top-level `global`
//! `terms` aggregation, so the collection runs over every document with the rest scoped to the
//! query (as for `global`). Both merge across indexes and nodes like any aggregation; the
//! scores are computed from the merged counts, so they are the whole cluster's.

use std::collections::HashMap;

use cameodb_schema::mapping::{FieldType, Mapping};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::aggregations::MAX_BUCKETS;
use crate::error::SearchError;

/// Marks a `significant_terms` name; its plan is written between two of them.
const MARK: char = '\u{9}';

/// Start of the name of a field's hidden background aggregation.
const BACKGROUND: &str = "\u{9}background\u{9}";

/// The name of the `terms` inside the foreground and background filters.
const TERMS: &str = "terms";

/// How a significance is scored.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
enum Heuristic {
    /// Elasticsearch's default: absolute times relative change of probability.
    Jlh,
    /// Foreground count over background count.
    Percentage,
}

/// What the rendering needs of the request.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    field: String,
    size: usize,
    min_doc_count: u64,
    heuristic: Heuristic,
}

fn parsing(reason: String) -> SearchError {
    SearchError::bad_request("parsing_exception", reason)
}

fn fields_in(aggs: &Value, out: &mut Vec<String>) {
    for spec in aggs.as_object().into_iter().flatten().map(|(_, s)| s) {
        if let Some(field) = spec
            .get("significant_terms")
            .and_then(|b| b.get("field"))
            .and_then(Value::as_str)
            && !out.iter().any(|f| f == field)
        {
            out.push(field.to_string());
        }
        if let Some(subs) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
            fields_in(subs, out);
        }
    }
}

/// True when `aggs` holds a `significant_terms` anywhere (the collection then runs over every
/// document, for the backgrounds).
pub(crate) fn present(aggs: &Value) -> bool {
    let mut fields = Vec::new();
    fields_in(aggs, &mut fields);
    !fields.is_empty()
}

/// `aggs` with a hidden `global` background aggregation per `significant_terms` field.
pub(crate) fn with_backgrounds(aggs: &Value) -> Value {
    let mut fields = Vec::new();
    fields_in(aggs, &mut fields);
    let mut out = aggs.clone();
    if let Some(level) = out.as_object_mut() {
        for field in fields {
            level.insert(
                format!("{BACKGROUND}{field}"),
                json!({"global": {}, "aggs": {TERMS: {"terms": {"field": field, "size": MAX_BUCKETS}}}}),
            );
        }
    }
    out
}

/// When `spec` is a `significant_terms`, the name it runs under and its ES spec as run (a
/// `filter` of every document holding a `terms`, with the sub-aggregations under the terms).
pub(crate) fn plan(
    name: &str,
    spec: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<Option<crate::calendar_histogram::Rewritten>, SearchError> {
    let Some(body) = spec.get("significant_terms") else {
        return Ok(None);
    };
    let body = body
        .as_object()
        .ok_or_else(|| parsing(format!("[significant_terms] [{name}] must be an object")))?;
    let mut plan = Plan {
        field: String::new(),
        size: 10,
        min_doc_count: 3,
        heuristic: Heuristic::Jlh,
    };
    for (key, value) in body {
        let count = || {
            value.as_u64().ok_or_else(|| {
                parsing(format!(
                    "[{key}] of significant_terms [{name}] must be a non-negative integer"
                ))
            })
        };
        match key.as_str() {
            "field" => plan.field = value.as_str().unwrap_or_default().to_string(),
            "size" => plan.size = count()?.min(u64::from(MAX_BUCKETS)) as usize,
            "min_doc_count" => plan.min_doc_count = count()?,
            "shard_size" | "shard_min_doc_count" | "execution_hint" => {}
            "jlh" => plan.heuristic = Heuristic::Jlh,
            "percentage" => plan.heuristic = Heuristic::Percentage,
            other => {
                return Err(parsing(format!(
                    "[{other}] of significant_terms [{name}] is not supported"
                )));
            }
        }
    }
    let field_type = mapping.resolve(&plan.field).map(|(_, f)| f.field_type);
    match field_type {
        None => {
            return Err(parsing(format!(
                "significant_terms [{name}] requires a mapped [field]"
            )));
        }
        Some(FieldType::Text | FieldType::Object) => {
            return Err(SearchError::illegal_argument(format!(
                "significant_terms [{name}] needs a keyword or numeric field, [{}] is not one",
                plan.field
            )));
        }
        Some(_) => {}
    }
    let mut terms = Map::new();
    terms.insert(
        "terms".into(),
        json!({"field": plan.field, "size": MAX_BUCKETS, "min_doc_count": 1}),
    );
    if let Some(subs) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
        terms.insert("aggs".into(), subs.clone());
    }
    let mut rewritten = Map::new();
    rewritten.insert("filter".into(), json!({"match_all": {}}));
    rewritten.insert("aggs".into(), json!({TERMS: Value::Object(terms)}));
    if let Some(meta) = spec.get("meta") {
        rewritten.insert("meta".into(), meta.clone());
    }
    Ok(Some((crate::planned::name(name, MARK, &plan)?, rewritten)))
}

/// A field's background: documents in the index and each term's count among them.
struct Background {
    size: u64,
    counts: HashMap<String, u64>,
}

/// Shows every `significant_terms` in `result` as Elasticsearch does, scored against the
/// backgrounds (which are removed from the result).
pub(crate) fn reshape(result: &mut Value) -> Result<(), SearchError> {
    let Some(level) = result.as_object_mut() else {
        return Ok(());
    };
    let hidden: Vec<String> = level
        .keys()
        .filter(|k| k.starts_with(BACKGROUND))
        .cloned()
        .collect();
    if hidden.is_empty() {
        return Ok(());
    }
    let mut backgrounds = HashMap::new();
    for key in hidden {
        let Some(found) = level.remove(&key) else {
            continue;
        };
        let counts = found[TERMS]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| (b["key"].to_string(), b["doc_count"].as_u64().unwrap_or(0)))
            .collect();
        backgrounds.insert(
            key[BACKGROUND.len()..].to_string(),
            Background {
                size: found["doc_count"].as_u64().unwrap_or(0),
                counts,
            },
        );
    }
    walk(result, &backgrounds)
}

fn walk(value: &mut Value, backgrounds: &HashMap<String, Background>) -> Result<(), SearchError> {
    crate::planned::reshape_all(value, MARK, None, &mut |raw, plan: Plan, _| {
        Ok(scored(raw, &plan, backgrounds.get(&plan.field)))
    })
}

fn score(heuristic: Heuristic, fg: u64, fg_size: u64, bg: u64, bg_size: u64) -> f64 {
    if fg == 0 || bg == 0 || fg_size == 0 || bg_size == 0 {
        return 0.0;
    }
    match heuristic {
        Heuristic::Percentage => fg as f64 / bg as f64,
        Heuristic::Jlh => {
            let subset = fg as f64 / fg_size as f64;
            let superset = bg as f64 / bg_size as f64;
            let absolute = subset - superset;
            if absolute <= 0.0 {
                0.0
            } else {
                absolute * (subset / superset)
            }
        }
    }
}

fn scored(mut raw: Value, plan: &Plan, background: Option<&Background>) -> Value {
    let fg_size = raw["doc_count"].as_u64().unwrap_or(0);
    let bg_size = background.map_or(fg_size, |b| b.size);
    let mut buckets: Vec<Value> = match raw[TERMS].get_mut("buckets").map(Value::take) {
        Some(Value::Array(buckets)) => buckets,
        _ => Vec::new(),
    };
    for bucket in &mut buckets {
        let fg = bucket["doc_count"].as_u64().unwrap_or(0);
        // The background holds the foreground: a term it lost count of has at least those.
        let bg = background
            .and_then(|b| b.counts.get(&bucket["key"].to_string()).copied())
            .unwrap_or(fg)
            .max(fg);
        bucket["score"] = json!(score(plan.heuristic, fg, fg_size, bg, bg_size));
        bucket["bg_count"] = json!(bg);
    }
    buckets.retain(|b| {
        b["doc_count"].as_u64().unwrap_or(0) >= plan.min_doc_count
            && b["score"].as_f64().unwrap_or(0.0) > 0.0
    });
    buckets.sort_by(|a, b| {
        let (x, y) = (
            a["score"].as_f64().unwrap_or(0.0),
            b["score"].as_f64().unwrap_or(0.0),
        );
        y.total_cmp(&x)
            .then_with(|| a["key"].to_string().cmp(&b["key"].to_string()))
    });
    buckets.truncate(plan.size);
    let mut out = json!({"doc_count": fg_size, "bg_count": bg_size, "buckets": buckets});
    if let Some(meta) = raw.get("meta") {
        out["meta"] = meta.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jlh_rewards_terms_more_frequent_in_the_set() {
        // 50 of 100 in the set, 100 of 10 000 overall: strongly significant.
        let strong = score(Heuristic::Jlh, 50, 100, 100, 10_000);
        assert!((strong - (0.49 * 50.0)).abs() < 1e-9, "{strong}");
        // As frequent in the set as overall: not significant.
        assert_eq!(score(Heuristic::Jlh, 1, 100, 100, 10_000), 0.0);
        assert_eq!(score(Heuristic::Percentage, 5, 10, 20, 100), 0.25);
    }

    #[test]
    fn backgrounds_are_added_once_per_field() {
        let aggs = json!({"a": {"significant_terms": {"field": "tag"}},
            "b": {"terms": {"field": "x"}, "aggs": {"c": {"significant_terms": {"field": "tag"}}}}});
        let with = with_backgrounds(&aggs);
        assert_eq!(with.as_object().unwrap().len(), 3);
        assert!(present(&aggs));
    }
}
