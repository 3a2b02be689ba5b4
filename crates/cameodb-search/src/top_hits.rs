//! `top_hits` and `top_metrics`: the best documents of each bucket by a sort on fields.
//!
//! tantivy's `top_hits` keeps, per bucket, the sort values and fast-column values of the top
//! documents, merged across indexes and nodes like any aggregation; it reads no stored
//! documents. So the aggregation runs as a tantivy `top_hits` reading `_id`, and each node
//! looks up the sources of its own candidates in the snapshot the search read (see
//! [`wanted_ids`]), sending them beside its partial result; the coordinator then shows every
//! winning hit from those ([`fill`]) in Elasticsearch's shape. The request's own parameters
//! (source filter, sort fields, metrics) travel in the aggregation's name, between two marks.

use std::collections::HashMap;

use cameodb_schema::fields::{EXACT_FIELD, ID_FIELD};
use cameodb_schema::mapping::{FieldType, Mapping};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::aggregations::MAX_BUCKETS;
use crate::error::SearchError;
use crate::execute::Hit;
use crate::source_filter::{SourceFilter, values_at};

/// Marks a `top_hits` / `top_metrics` name; its plan is written between two of them.
const MARK: char = '\u{8}';

/// The name of the tantivy `top_hits` inside the filter that holds it.
const INNER: &str = "hits";

/// `index.max_inner_result_window`: most `from + size` of one `top_hits` (Elasticsearch's
/// default). Each is fetched for every bucket, so this bounds the documents read per bucket.
pub const MAX_INNER_RESULT_WINDOW: u64 = 100;

/// `top_metrics`' most `size`, as in Elasticsearch (`top_metrics_max_size`).
pub const MAX_TOP_METRICS_SIZE: u64 = 10;

/// One sort key, as shown back.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct SortField {
    /// The field it reads (an alias resolved).
    path: String,
    /// Descending order: a multi-valued field sorts by its largest value.
    descending: bool,
    /// A date field: shown in epoch milliseconds.
    date: bool,
    /// The date field's format (`None` for the default).
    format: Option<String>,
}

/// What the rendering needs of the request.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    /// `top_metrics`: the metric fields; `None` for `top_hits`.
    metrics: Option<Vec<String>>,
    /// The sort keys.
    sort: Vec<SortField>,
    /// `_source` filtering of the hits.
    source: SourceFilter,
    /// `version: true`.
    version: bool,
    /// `seq_no_primary_term: true`.
    seq_no: bool,
}

fn parsing(reason: String) -> SearchError {
    SearchError::bad_request("parsing_exception", reason)
}

/// True when `aggs` (an Elasticsearch request) holds a `top_hits` or `top_metrics` anywhere.
pub(crate) fn present(aggs: &Value) -> bool {
    aggs.as_object().is_some_and(|level| {
        level.values().any(|spec| {
            spec.get("top_hits").is_some()
                || spec.get("top_metrics").is_some()
                || spec
                    .get("aggs")
                    .or_else(|| spec.get("aggregations"))
                    .is_some_and(present)
        })
    })
}

/// When `spec` is a `top_hits` or `top_metrics`, the name it runs under and its tantivy spec.
pub(crate) fn plan(
    name: &str,
    spec: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<Option<(String, Value)>, SearchError> {
    let (kind, body) = match (spec.get("top_hits"), spec.get("top_metrics")) {
        (Some(body), _) => ("top_hits", body),
        (_, Some(body)) => ("top_metrics", body),
        _ => return Ok(None),
    };
    if spec.contains_key("aggs") || spec.contains_key("aggregations") {
        return Err(parsing(format!(
            "Aggregator [{name}] of type [{kind}] cannot accept sub-aggregations"
        )));
    }
    let body = body
        .as_object()
        .ok_or_else(|| parsing(format!("[{kind}] aggregation [{name}] must be an object")))?;
    let allowed: &[&str] = if kind == "top_hits" {
        &[
            "size",
            "from",
            "sort",
            "_source",
            "version",
            "seq_no_primary_term",
        ]
    } else {
        &["size", "sort", "metrics"]
    };
    if let Some(key) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(parsing(format!(
            "[{key}] of [{kind}] aggregation [{name}] is not supported"
        )));
    }
    let count = |key: &str, default: u64| -> Result<u64, SearchError> {
        match body.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| {
                parsing(format!(
                    "[{key}] of [{kind}] aggregation [{name}] must be a non-negative integer"
                ))
            }),
        }
    };
    let from = count("from", 0)?;
    let size = count("size", if kind == "top_hits" { 3 } else { 1 })?;
    if kind == "top_hits" && from.saturating_add(size) > MAX_INNER_RESULT_WINDOW {
        return Err(SearchError::illegal_argument(format!(
            "Top hits result window is too large, the top hits aggregator [{name}]'s from + size must be less than or equal to: [{MAX_INNER_RESULT_WINDOW}] but was [{}]. This limit can be set by changing the [index.max_inner_result_window] index level setting.",
            from.saturating_add(size)
        )));
    }
    if kind == "top_metrics" && size > MAX_TOP_METRICS_SIZE {
        return Err(SearchError::illegal_argument(format!(
            "[top_metrics.size] must not be more than [{MAX_TOP_METRICS_SIZE}] but was [{size}]"
        )));
    }
    let sort = sort_fields(name, kind, body.get("sort"), mapping)?;
    let metrics = match kind {
        "top_metrics" => Some(metric_fields(name, body.get("metrics"), mapping)?),
        _ => None,
    };
    let plan = Plan {
        metrics,
        source: SourceFilter::default().with_body(body.get("_source"))?,
        version: body
            .get("version")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        seq_no: body
            .get("seq_no_primary_term")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        sort,
    };
    let tantivy_sort: Vec<Value> = plan
        .sort
        .iter()
        .map(|s| {
            let order = if s.descending { "desc" } else { "asc" };
            json!({format!("{EXACT_FIELD}.{}", s.path): order})
        })
        .collect();
    // tantivy ranks a document without the sort field first in ascending order, where
    // Elasticsearch puts it last: only documents holding the first sort field compete.
    let holding =
        crate::filter_agg::filter_body(&json!({"exists": {"field": plan.sort[0].path}}), mapping)
            .map_err(|e| parsing(format!("[{kind}] aggregation [{name}]: {e}")))?;
    Ok(Some((
        crate::planned::name(name, MARK, &plan)?,
        json!({"filter": holding, "aggs": {INNER: {"top_hits": {
            "size": size, "from": from, "sort": tantivy_sort, "docvalue_fields": [ID_FIELD]
        }}}}),
    )))
}

fn sort_fields(
    name: &str,
    kind: &str,
    sort: Option<&Value>,
    mapping: &Mapping,
) -> Result<Vec<SortField>, SearchError> {
    let keys = match sort {
        Some(sort) => crate::sorting::parse(sort)?,
        None => Vec::new(),
    };
    if keys.is_empty() {
        return Err(parsing(format!(
            "[{kind}] aggregation [{name}] needs a [sort] on a numeric or date field: scores are not available to aggregations"
        )));
    }
    keys.into_iter()
        .map(|key| {
            let resolved = mapping.resolve(&key.field);
            let (path, field) = match resolved {
                Some((path, field)) => (path.to_string(), field),
                None if key.field.starts_with('_') => {
                    return Err(parsing(format!(
                        "[{kind}] aggregation [{name}] cannot sort by [{}]: only numeric and date fields",
                        key.field
                    )));
                }
                None => {
                    return Err(parsing(format!(
                        "No mapping found for [{}] in order to sort on",
                        key.field
                    )));
                }
            };
            if field.variant == Some(cameodb_schema::mapping::Variant::GeoPoint) {
                return Err(parsing(format!(
                    "[{kind}] aggregation [{name}] cannot sort by geo_point field [{}]",
                    key.field
                )));
            }
            let date = match field.field_type {
                FieldType::Date => true,
                other @ (FieldType::Text | FieldType::Keyword | FieldType::Object) => {
                    return Err(parsing(format!(
                        "[{kind}] aggregation [{name}] cannot sort by [{}] of type [{}]: only numeric and date fields",
                        key.field,
                        other.name()
                    )));
                }
                _ => false,
            };
            if key.missing_first {
                return Err(parsing(format!(
                    "[missing] of the sort of [{kind}] aggregation [{name}] is not supported"
                )));
            }
            Ok(SortField {
                path,
                descending: key.descending,
                date,
                format: field.format.clone(),
            })
        })
        .collect()
}

fn metric_fields(
    name: &str,
    metrics: Option<&Value>,
    mapping: &Mapping,
) -> Result<Vec<String>, SearchError> {
    let items: Vec<&Value> = match metrics {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    if items.is_empty() {
        return Err(parsing(format!(
            "[top_metrics] aggregation [{name}] requires [metrics]"
        )));
    }
    items
        .into_iter()
        .map(|item| {
            let field = item.get("field").and_then(Value::as_str).ok_or_else(|| {
                parsing(format!(
                    "each metric of [top_metrics] aggregation [{name}] must be {{\"field\": ...}}"
                ))
            })?;
            if mapping.resolve(field).is_none() {
                return Err(parsing(format!(
                    "No mapping found for [{field}] in [top_metrics] aggregation [{name}]"
                )));
            }
            Ok(field.to_string())
        })
        .collect()
}

/// The request as a node reads its own candidates: every bucket kept (sizes widened, no
/// minimum count), since a bucket this node alone would drop may win once nodes are merged.
pub(crate) fn widened(aggs: &Value) -> Value {
    let mut out = aggs.clone();
    widen(&mut out);
    out
}

fn widen(value: &mut Value) {
    let Some(level) = value.as_object_mut() else {
        return;
    };
    for spec in level.values_mut() {
        let Some(spec) = spec.as_object_mut() else {
            continue;
        };
        for kind in ["terms", "multi_terms", "composite"] {
            if let Some(Value::Object(body)) = spec.get_mut(kind) {
                body.insert("size".into(), Value::from(MAX_BUCKETS));
                if kind != "composite" {
                    body.insert("min_doc_count".into(), Value::from(1));
                    body.remove("shard_size");
                }
            }
        }
        for key in ["aggs", "aggregations"] {
            if let Some(subs) = spec.get_mut(key) {
                widen(subs);
            }
        }
    }
}

/// The `_id`s of the hits in a (node-local, final) aggregation result.
pub(crate) fn wanted_ids(result: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_ids(result, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect_ids(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key.ends_with(MARK) {
                    for hit in child[INNER]["hits"].as_array().into_iter().flatten() {
                        if let Some(id) = hit_id(hit) {
                            out.push(id.to_string());
                        }
                    }
                } else {
                    collect_ids(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_ids(i, out)),
        _ => {}
    }
}

fn hit_id(hit: &Value) -> Option<&str> {
    match &hit["docvalue_fields"][ID_FIELD] {
        Value::Array(ids) => ids.first().and_then(Value::as_str),
        other => other.as_str(),
    }
}

/// Shows every `top_hits` / `top_metrics` in `result` as Elasticsearch does, from the hits the
/// nodes fetched; `total` is the search's, for those at the top level.
pub(crate) fn fill(result: &mut Value, fetched: &[Hit], total: usize) -> Result<(), SearchError> {
    let mut by_id: HashMap<&str, &Hit> = HashMap::with_capacity(fetched.len());
    for hit in fetched {
        by_id.entry(hit.id.as_str()).or_insert(hit);
    }
    crate::planned::reshape_all(
        result,
        MARK,
        Some(total as u64),
        &mut |raw, plan: Plan, count| Ok(shown(&raw, &plan, &by_id, count.unwrap_or(total as u64))),
    )
}

fn shown(raw: &Value, plan: &Plan, by_id: &HashMap<&str, &Hit>, count: u64) -> Value {
    let found: Vec<&Hit> = raw[INNER]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|hit| hit_id(hit).and_then(|id| by_id.get(id).copied()))
        .collect();
    if let Some(metrics) = &plan.metrics {
        let top: Vec<Value> = found
            .iter()
            .map(|hit| {
                let source = hit.source.clone().unwrap_or(Value::Null);
                let values: Map<String, Value> = metrics
                    .iter()
                    .map(|m| (m.clone(), first_value(&source, m)))
                    .collect();
                json!({"sort": sort_values(&source, plan), "metrics": values})
            })
            .collect();
        return json!({"top": top});
    }
    let hits: Vec<Value> = found
        .iter()
        .map(|hit| {
            let full = hit.source.clone().unwrap_or(Value::Null);
            let mut out = json!({"_index": hit.index, "_id": hit.id, "_score": null});
            if plan.version {
                out["_version"] = json!(hit.version);
            }
            if plan.seq_no {
                out["_seq_no"] = json!(hit.seq_no);
                out["_primary_term"] = json!(cameodb_storage::PRIMARY_TERM);
            }
            out["sort"] = Value::Array(sort_values(&full, plan));
            if let Some(source) = plan.source.apply(full) {
                out["_source"] = source;
            }
            out
        })
        .collect();
    json!({"hits": {"total": {"value": count, "relation": "eq"}, "max_score": null, "hits": hits}})
}

/// A hit's sort values as Elasticsearch shows them: numbers, dates in epoch milliseconds;
/// of several values the one the order sorted by.
fn sort_values(source: &Value, plan: &Plan) -> Vec<Value> {
    plan.sort
        .iter()
        .map(|key| {
            let leaves = values_at(source, &key.path)
                .into_iter()
                .flat_map(|v| match v {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                });
            let numbers = leaves.filter_map(|v| {
                if key.date {
                    cameodb_schema::mapping::date::parse_value(v, key.format.as_deref())
                        .map(|ms| ms as f64)
                } else {
                    v.as_f64()
                        .or_else(|| v.as_bool().map(|b| f64::from(u8::from(b))))
                }
            });
            let best = if key.descending {
                numbers.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            } else {
                numbers.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
            };
            match best {
                Some(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => json!(v as i64),
                Some(v) => json!(v),
                None => Value::Null,
            }
        })
        .collect()
}

fn first_value(source: &Value, path: &str) -> Value {
    values_at(source, path)
        .into_iter()
        .next()
        .cloned()
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, source: Value) -> Hit {
        Hit {
            index: "i".into(),
            id: id.into(),
            score: f32::NAN,
            sort: None,
            rank: None,
            source: Some(source),
            version: 3,
            seq_no: 0,
            highlight: None,
            fields: None,
            explanation: None,
            collapse: None,
            inner_hits: None,
        }
    }

    #[test]
    fn winners_are_shown_from_fetched_sources_with_their_bucket_total() {
        let marked = format!(
            "t{MARK}{}{MARK}",
            serde_json::to_string(&Plan {
                metrics: None,
                sort: vec![SortField {
                    path: "at".into(),
                    descending: true,
                    date: true,
                    format: None
                }],
                source: SourceFilter {
                    includes: vec!["title".into()],
                    ..SourceFilter::default()
                },
                version: true,
                seq_no: false,
            })
            .unwrap()
        );
        let mut result = json!({"terms": {"buckets": [{"key": "a", "doc_count": 7,
        marked.clone(): {"doc_count": 5, INNER: {"hits": [
            {"sort": [1], "docvalue_fields": {ID_FIELD: ["2"]}},
            {"sort": [0], "docvalue_fields": {ID_FIELD: ["1"]}}
        ]}}}]}});
        assert_eq!(wanted_ids(&result), ["1", "2"]);
        let fetched = [
            hit(
                "1",
                json!({"title": "one", "at": ["2024-01-01", "2023-01-01"]}),
            ),
            hit("2", json!({"title": "two", "at": "2024-02-01"})),
        ];
        fill(&mut result, &fetched, 99).unwrap();
        let top = &result["terms"]["buckets"][0]["t"]["hits"];
        assert_eq!(top["total"]["value"], json!(7));
        assert_eq!(top["hits"][0]["_id"], json!("2"));
        assert_eq!(top["hits"][0]["_source"], json!({"title": "two"}));
        assert_eq!(top["hits"][0]["_version"], json!(3));
        // Descending: a multi-valued field sorts by its largest value.
        assert_eq!(top["hits"][1]["sort"], json!([1_704_067_200_000i64]));
    }

    #[test]
    fn a_node_keeps_every_bucket_when_it_reads_its_candidates() {
        let request = json!({"t": {"terms": {"field": "k", "size": 1, "min_doc_count": 5},
            "aggs": {"inner": {"multi_terms": {"terms": [], "size": 2}, "aggs": {"h": {"top_hits": {}}}}}}});
        let wide = widened(&request);
        assert_eq!(wide["t"]["terms"]["size"], json!(MAX_BUCKETS));
        assert_eq!(wide["t"]["terms"]["min_doc_count"], json!(1));
        assert_eq!(
            wide["t"]["aggs"]["inner"]["multi_terms"]["size"],
            json!(MAX_BUCKETS)
        );
        assert!(present(&request));
        assert!(!present(&json!({"t": {"terms": {"field": "k"}}})));
    }
}
