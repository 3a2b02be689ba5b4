//! `_search` and `_count`, over one or several indexes (hits merged by score or sort key).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use cameodb_query::{QueryContext, query_string, translate};
use cameodb_storage::mapping::FieldType;
use cameodb_storage::{Store, hit_keys};
use serde_json::{Map, Value, json};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, Query};
use tantivy::{DocAddress, Searcher};

use super::docs::check_params;
use super::source_filter::SourceFilter;
use super::{AppState, Params, number, parse_object_body, run};
use super::{aggregations, sort_key};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::respond;

/// Elasticsearch's default `index.max_result_window`.
const MAX_RESULT_WINDOW: usize = 10_000;

const SEARCH_PARAMS: &[&str] = &[
    "scroll",
    "q",
    "df",
    "default_operator",
    "from",
    "size",
    "sort",
    "_source",
    "_source_includes",
    "_source_excludes",
    "track_total_hits",
    "rest_total_hits_as_int",
    "ignore_unavailable",
    "allow_no_indices",
    "expand_wildcards",
    "preference",
    "routing",
    "search_type",
    "typed_keys",
    "request_cache",
    "batched_reduce_size",
    "ccs_minimize_roundtrips",
];

/// A sort key: a field (or `_score`) and a direction.
#[derive(Clone, Debug)]
struct SortKey {
    field: String,
    descending: bool,
}

/// A parsed search request.
#[derive(Clone, Debug)]
pub struct SearchSpec {
    /// The query DSL (or a `q=` string).
    query: QuerySpec,
    pub from: usize,
    pub size: usize,
    sort: Option<SortKey>,
    source: SourceFilter,
    rest_total_as_int: bool,
    /// The `aggs` request, as sent.
    aggs: Option<Value>,
    /// `version: true`: hits carry `_version`.
    version: bool,
    /// `seq_no_primary_term: true`: hits carry `_seq_no` and `_primary_term`.
    seq_no: bool,
}

#[derive(Clone, Debug)]
pub enum QuerySpec {
    All,
    Dsl(Value),
    Lucene {
        text: String,
        default_field: Option<String>,
        and: bool,
    },
}

fn parse_sort_value(value: &Value) -> Result<Option<SortKey>, ApiError> {
    let key = |field: &str, order: Option<&str>| -> Result<SortKey, ApiError> {
        let descending = match order {
            None => field == "_score",
            Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(ApiError::parse(format!("[sort] unknown order [{other}]"))),
        };
        Ok(SortKey {
            field: field.to_string(),
            descending,
        })
    };
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if items.len() > 1 {
        return Err(ApiError::parse(
            "sorting by more than one key is not supported yet",
        ));
    }
    let Some(item) = items.first() else {
        return Ok(None);
    };
    Ok(Some(match item {
        Value::String(s) => match s.split_once(':') {
            Some((field, order)) => key(field, Some(order))?,
            None => key(s, None)?,
        },
        Value::Object(map) if map.len() == 1 => {
            let (field, spec) = map
                .iter()
                .next()
                .ok_or_else(|| ApiError::parse("[sort] is empty"))?;
            match spec {
                Value::String(order) => key(field, Some(order))?,
                Value::Object(opts) => {
                    if let Some(unknown) = opts.keys().find(|k| k.as_str() != "order") {
                        return Err(ApiError::parse(format!(
                            "[sort] option [{unknown}] is not supported"
                        )));
                    }
                    key(field, opts.get("order").and_then(Value::as_str))?
                }
                _ => return Err(ApiError::parse("[sort] malformed")),
            }
        }
        _ => return Err(ApiError::parse("[sort] malformed")),
    }))
}

/// The query of a request: `q=` (Lucene syntax) wins over a body `query`; neither is match_all.
pub fn query_spec(params: &HashMap<String, String>, body: &Map<String, Value>) -> QuerySpec {
    if let Some(q) = params.get("q") {
        let and = params
            .get("default_operator")
            .is_some_and(|op| op.eq_ignore_ascii_case("and"));
        return QuerySpec::Lucene {
            text: q.clone(),
            default_field: params.get("df").cloned(),
            and,
        };
    }
    body.get("query")
        .cloned()
        .map_or(QuerySpec::All, QuerySpec::Dsl)
}

pub fn parse_spec(
    params: &HashMap<String, String>,
    body: Option<Map<String, Value>>,
) -> Result<SearchSpec, ApiError> {
    check_params(params, SEARCH_PARAMS)?;
    let body = body.unwrap_or_default();
    const BODY_KEYS: &[&str] = &[
        "query",
        "from",
        "size",
        "sort",
        "_source",
        "track_total_hits",
        "timeout",
        "aggs",
        "aggregations",
        "version",
        "seq_no_primary_term",
    ];
    if let Some(unknown) = body.keys().find(|k| !BODY_KEYS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "parsing_exception",
            format!("Unknown key for a START_OBJECT in [{unknown}]."),
        ));
    }
    let query = query_spec(params, &body);
    let from = number::<usize>(params, "from")?
        .or(body.get("from").and_then(Value::as_u64).map(|v| v as usize))
        .unwrap_or(0);
    let size = number::<usize>(params, "size")?
        .or(body.get("size").and_then(Value::as_u64).map(|v| v as usize))
        .unwrap_or(10);
    for key in ["from", "size"] {
        if body.get(key).is_some_and(|v| !v.is_u64()) {
            return Err(ApiError::parse(format!(
                "[{key}] must be a non-negative integer"
            )));
        }
    }
    if from + size > MAX_RESULT_WINDOW {
        return Err(ApiError::illegal_argument(format!(
            "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{}]. See the scroll api for a more efficient way to request large data sets.",
            from + size
        )));
    }
    let sort = match (params.get("sort"), body.get("sort")) {
        (Some(s), _) => parse_sort_value(&Value::String(s.clone()))?,
        (None, Some(v)) => parse_sort_value(v)?,
        (None, None) => None,
    };
    let source = SourceFilter::from_params(params).with_body(body.get("_source"))?;
    let rest_total_as_int = super::flag(params, "rest_total_hits_as_int")?.unwrap_or(false);
    let aggs = body
        .get("aggs")
        .or_else(|| body.get("aggregations"))
        .cloned();
    let version = body
        .get("version")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let seq_no = body
        .get("seq_no_primary_term")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(SearchSpec {
        query,
        from,
        size,
        sort,
        source,
        rest_total_as_int,
        aggs,
        version,
        seq_no,
    })
}

/// One hit from one index, before merging.
struct Hit {
    index: String,
    id: String,
    score: f32,
    sort: Option<Value>,
    source: Option<Value>,
    version: u64,
    seq_no: u64,
}

/// One index's mergeable aggregation result, with the request it answers.
type AggPart = (
    tantivy::aggregation::agg_req::Aggregations,
    tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults,
);

pub fn build_query(store: &Store, spec: &QuerySpec) -> Result<Box<dyn Query>, ApiError> {
    let mapping = store.mapping();
    let ctx = QueryContext {
        mapping: &mapping,
        fields: store.fields(),
        tokenizers: store.index().tokenizers(),
    };
    Ok(match spec {
        QuerySpec::All => Box::new(AllQuery),
        QuerySpec::Dsl(dsl) => translate(dsl, &ctx)?,
        QuerySpec::Lucene {
            text,
            default_field,
            and,
        } => {
            let fields = default_field
                .as_ref()
                .filter(|f| f.as_str() != "*")
                .map(|f| vec![f.clone()]);
            query_string(text, fields.as_deref(), *and, &ctx)?
        }
    })
}

/// Top `limit` docs by a field, with their sort values as JSON.
fn sorted_by_field(
    store: &Store,
    searcher: &Searcher,
    query: &dyn Query,
    key: &SortKey,
    limit: usize,
) -> Result<(usize, Vec<(Value, DocAddress)>), ApiError> {
    let mapping = store.mapping();
    let field_type = mapping.lookup(&key.field).map(|f| f.field_type);
    let (keyword, integral) = match field_type {
        Some(FieldType::Keyword) => (true, false),
        Some(
            FieldType::Long
            | FieldType::Integer
            | FieldType::Short
            | FieldType::Byte
            | FieldType::Date
            | FieldType::Boolean,
        ) => (false, true),
        Some(FieldType::Double | FieldType::Float) => (false, false),
        Some(FieldType::Text) => {
            return Err(ApiError::illegal_argument(format!(
                "Fielddata is disabled on [{}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead.",
                key.field
            )));
        }
        _ => {
            return Err(ApiError::bad_request(
                "query_shard_exception",
                format!("No mapping found for [{}] in order to sort on", key.field),
            ));
        }
    };
    let total = searcher.search(query, &Count)?;
    let top = sort_key::top_by_field(searcher, query, &key.field, keyword, key.descending, limit)?;
    Ok((
        total,
        top.into_iter()
            .map(|(v, a)| (v.to_json(integral), a))
            .collect(),
    ))
}

/// Runs the search on one index: the total and its top `from + size` hits.
fn search_store(
    store: &Store,
    searcher: &Searcher,
    index: &str,
    spec: &SearchSpec,
) -> Result<(usize, Vec<Hit>, Option<AggPart>), ApiError> {
    let query = build_query(store, &spec.query)?;
    let aggs = match &spec.aggs {
        Some(request) => {
            let prepared = aggregations::prepare(request, &store.mapping())?;
            let part = aggregations::collect(
                searcher,
                query.as_ref(),
                prepared.clone(),
                store.index().tokenizers(),
            )?;
            Some((prepared, part))
        }
        None => None,
    };
    let limit = spec.from + spec.size;
    let (total, ranked): (usize, Vec<(f32, Option<Value>, DocAddress)>) = match &spec.sort {
        Some(key) if key.field != "_score" => {
            let (total, docs) =
                sorted_by_field(store, searcher, query.as_ref(), key, limit.max(1))?;
            (
                total,
                docs.into_iter()
                    .map(|(v, a)| (f32::NAN, Some(v), a))
                    .collect(),
            )
        }
        _ if limit == 0 => (searcher.search(query.as_ref(), &Count)?, Vec::new()),
        _ => {
            let (total, top) = searcher.search(
                query.as_ref(),
                &(Count, TopDocs::with_limit(limit).order_by_score()),
            )?;
            (total, top.into_iter().map(|(s, a)| (s, None, a)).collect())
        }
    };
    let addresses: Vec<DocAddress> = ranked.iter().map(|(_, _, a)| *a).collect();
    let keys = hit_keys(searcher, &addresses)?;
    let docs = store.get_many(&keys)?;
    let mut hits = Vec::with_capacity(ranked.len());
    for (((score, sort, _), key), doc) in ranked.into_iter().zip(keys).zip(docs) {
        // A hit deleted since the searcher's snapshot is skipped.
        let Some(doc) = doc else { continue };
        let source = spec.source.apply(doc.source_json()?);
        hits.push(Hit {
            index: index.to_string(),
            id: key.id.to_string(),
            score,
            sort: sort.map(|v| json!([v])),
            source,
            version: doc.version,
            seq_no: doc.seq_no,
        });
    }
    Ok((total, hits, aggs))
}

fn compare_hits(a: &Hit, b: &Hit, sort: Option<&SortKey>) -> Ordering {
    match sort {
        Some(key) if key.field != "_score" => {
            let value = |h: &Hit| {
                h.sort
                    .as_ref()
                    .and_then(|s| s.get(0))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            let ord = compare_json(&value(a), &value(b));
            if key.descending { ord.reverse() } else { ord }
        }
        _ => b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal),
    }
}

fn compare_json(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        // Missing values sort last.
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        _ => Ordering::Equal,
    }
}

/// An index to search, with the point-in-time searcher to use (a scroll's snapshot) or `None`
/// for the latest refreshed state.
pub type Target = (Arc<IndexEntry>, Option<Searcher>);

/// Runs `spec` over `targets`, merging their hits. Also returns the searcher each index used, so
/// a scroll can keep reading the same snapshot.
pub async fn execute_on(
    targets: Vec<Target>,
    spec: &SearchSpec,
) -> Result<(Value, Vec<(Arc<IndexEntry>, Searcher)>), ApiError> {
    let started = Instant::now();
    let shards = targets.len();
    let mut total = 0usize;
    let mut hits: Vec<Hit> = Vec::new();
    let mut used = Vec::with_capacity(shards);
    let mut agg_parts: Vec<AggPart> = Vec::new();
    for (entry, snapshot) in targets {
        let spec = spec.clone();
        let name = entry.name.clone();
        let (n, mut found, aggs, searcher) = run(&entry.shard, move |store| {
            let searcher = snapshot.unwrap_or_else(|| store.searcher());
            let (n, found, aggs) = search_store(store, &searcher, &name, &spec)?;
            Ok((n, found, aggs, searcher))
        })
        .await
        .map_err(|e| e.with_index(&entry.name))?;
        total += n;
        hits.append(&mut found);
        agg_parts.extend(aggs);
        used.push((entry, searcher));
    }
    hits.sort_by(|a, b| compare_hits(a, b, spec.sort.as_ref()));
    let page: Vec<Value> = hits
        .into_iter()
        .skip(spec.from)
        .take(spec.size)
        .map(|hit| {
            let score = if hit.score.is_nan() {
                Value::Null
            } else {
                json!(hit.score)
            };
            let mut out = json!({"_index": hit.index, "_id": hit.id, "_score": score});
            if let Some(source) = hit.source {
                out["_source"] = source;
            }
            if let Some(sort) = hit.sort {
                out["sort"] = sort;
            }
            if spec.version {
                out["_version"] = json!(hit.version);
            }
            if spec.seq_no {
                out["_seq_no"] = json!(hit.seq_no);
                out["_primary_term"] = json!(super::docs::PRIMARY_TERM);
            }
            out
        })
        .collect();
    let max_score = page
        .iter()
        .filter_map(|h| h["_score"].as_f64())
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    let total_json = if spec.rest_total_as_int {
        json!(total)
    } else {
        json!({"value": total, "relation": "eq"})
    };
    let mut body = json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
        "hits": {"total": total_json, "max_score": max_score, "hits": page},
    });
    if let Some((request, _)) = agg_parts.first() {
        let request = request.clone();
        let parts = agg_parts.into_iter().map(|(_, part)| part).collect();
        body["aggregations"] = aggregations::finish(parts, request)?;
    }
    Ok((body, used))
}

/// Runs a search, opening a scroll when the request asks for one (`scroll=<keep-alive>`).
async fn respond_search(
    state: &AppState,
    entries: Vec<Arc<IndexEntry>>,
    params: &HashMap<String, String>,
    spec: SearchSpec,
) -> Result<Response, ApiError> {
    let keep_alive = params
        .get("scroll")
        .map(|v| crate::catalog::parse_interval(v))
        .transpose()?
        .flatten();
    let targets = entries.into_iter().map(|e| (e, None)).collect();
    let (mut body, used) = execute_on(targets, &spec).await?;
    if let Some(keep_alive) = keep_alive {
        body["_scroll_id"] = json!(state.scrolls.open(spec, used, keep_alive));
    }
    Ok(respond::ok(body))
}

pub async fn search(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec = parse_spec(&params, parse_object_body(&body)?)?;
    let entries = state.catalog.resolve(&index).await?;
    respond_search(&state, entries, &params, spec).await
}

pub async fn search_all(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec = parse_spec(&params, parse_object_body(&body)?)?;
    let entries = state.catalog.all().await;
    respond_search(&state, entries, &params, spec).await
}

async fn count_entries(
    entries: Vec<Arc<IndexEntry>>,
    params: &HashMap<String, String>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    check_params(
        params,
        &[
            "q",
            "df",
            "default_operator",
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "routing",
            "preference",
        ],
    )?;
    let body = parse_object_body(body)?.unwrap_or_default();
    if let Some(unknown) = body.keys().find(|k| k.as_str() != "query") {
        return Err(ApiError::bad_request(
            "parsing_exception",
            format!("request does not support [{unknown}]"),
        ));
    }
    let query = query_spec(params, &body);
    let shards = entries.len();
    let mut count = 0usize;
    for entry in entries {
        let query = query.clone();
        count += run(&entry.shard, move |store| {
            let q = build_query(store, &query)?;
            Ok(store.searcher().search(q.as_ref(), &Count)?)
        })
        .await
        .map_err(|e| e.with_index(&entry.name))?;
    }
    Ok(respond::ok(
        json!({"count": count, "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}}),
    ))
}

pub async fn count(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    count_entries(state.catalog.resolve(&index).await?, &params, &body).await
}

pub async fn count_all(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    count_entries(state.catalog.all().await, &params, &body).await
}
