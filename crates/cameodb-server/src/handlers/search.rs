//! `_search` and `_count`, over one or several indexes (hits merged by score or sort key).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use cameodb_query::{QueryContext, query_string, translate};
use cameodb_storage::{Store, hit_keys};
use serde_json::{Map, Value, json};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, Query};
use tantivy::{DocAddress, Searcher};

use super::docs::check_params;
pub use super::search_spec::{QuerySpec, SearchSpec, parse_spec, query_spec};
use super::{AppState, Params, parse_object_body, run};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::respond;
use cameodb_search::sorting::{self, RankKey};
use cameodb_search::{aggregations, highlight};

/// One hit from one index, before merging. Serializable: a node of a cluster answers the
/// coordinator with its top hits.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Hit {
    index: String,
    id: String,
    score: f32,
    sort: Option<Value>,
    /// Sort key, for merging hits of several indexes.
    rank: Option<RankKey>,
    source: Option<Value>,
    version: u64,
    seq_no: u64,
    highlight: Option<Value>,
    fields: Option<Value>,
}

/// `fields` of a hit: every requested path's values, as arrays (as Elasticsearch lists them).
fn field_values(source: &Value, paths: &[String]) -> Value {
    let mut out = Map::new();
    for path in paths {
        let nodes = cameodb_search::source_filter::values_at(source, path);
        let mut values = Vec::new();
        for node in nodes {
            match node {
                Value::Array(items) => values.extend(
                    items
                        .iter()
                        .filter(|v| !v.is_object() && !v.is_null())
                        .cloned(),
                ),
                Value::Null | Value::Object(_) => {}
                other => values.push(other.clone()),
            }
        }
        if !values.is_empty() {
            out.insert(path.clone(), Value::Array(values));
        }
    }
    Value::Object(out)
}

/// One index's mergeable aggregation result, with the request it answers.
type AggPart = (
    tantivy::aggregation::agg_req::Aggregations,
    tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults,
);

/// What one node found for a search, before merging: everything the coordinator needs to
/// rank, page, count and aggregate across nodes.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Partial {
    /// Matching documents.
    pub total: usize,
    /// The node's top `from + size` hits of every index searched.
    pub hits: Vec<Hit>,
    /// Mergeable aggregation results, with the request they answer.
    pub aggs: Vec<AggPart>,
    /// Indexes searched (Elasticsearch's shard count, one shard per index per node).
    pub shards: usize,
}

pub fn build_query(store: &Store, spec: &QuerySpec) -> Result<Box<dyn Query>, ApiError> {
    let mapping = store.mapping();
    let ctx = QueryContext::new(&mapping, store.fields(), store.index().tokenizers());
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

/// Runs the search on one index: the total and its top `from + size` hits.
fn search_store(
    store: &Store,
    searcher: &Searcher,
    index: &str,
    spec: &SearchSpec,
    stats: Option<&cameodb_search::dfs::IndexStats>,
) -> Result<(usize, Vec<Hit>, Option<AggPart>), ApiError> {
    let query = build_query(store, &spec.query)?;
    let scoring = stats.map(|stats| cameodb_search::dfs::GlobalScoring {
        stats,
        local: searcher,
        keys: cameodb_search::dfs::FieldKeys::new(store, &store.mapping()),
    });
    let provider = scoring
        .as_ref()
        .map(|s| s as &dyn tantivy::query::Bm25StatisticsProvider);
    let aggs = match &spec.aggs {
        Some(request) => {
            let prepared = aggregations::prepare(request, &store.mapping())?;
            if let Some(account) = cameodb_memory::current() {
                cameodb_search::bucket_budget::check(
                    searcher,
                    query.as_ref(),
                    request,
                    account.limit(),
                )?;
            }
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
    let limit = spec.window();
    type Ranked = (f32, Option<(Value, RankKey)>, DocAddress);
    let by_fields = !sorting::by_score_only(&spec.sort) || spec.search_after.is_some();
    let (total, ranked): (usize, Vec<Ranked>) = match () {
        () if by_fields => {
            let keys = if spec.sort.is_empty() {
                sorting::parse(&json!("_score"))?
            } else {
                spec.sort.clone()
            };
            let plan = sorting::plan(&keys, &store.mapping(), spec.search_after.as_ref())?;
            let (total, top) = sorting::top(searcher, query.as_ref(), &plan, limit, provider)?;
            let score_key = keys.iter().position(|k| k.field == "_score");
            let ranked = top
                .into_iter()
                .map(|(key, addr)| {
                    let score = match score_key.map(|i| &key.values[i]) {
                        Some(sorting::SortValue::Number(s)) => *s as f32,
                        _ => f32::NAN,
                    };
                    (score, Some((sorting::render(&plan, &key), key)), addr)
                })
                .collect();
            (total, ranked)
        }
        () if limit == 0 => (searcher.search(query.as_ref(), &Count)?, Vec::new()),
        () => {
            let collector = (Count, TopDocs::with_limit(limit).order_by_score());
            let (total, top) = match provider {
                Some(p) => {
                    searcher.search_with_statistics_provider(query.as_ref(), &collector, p)?
                }
                None => searcher.search(query.as_ref(), &collector)?,
            };
            (total, top.into_iter().map(|(s, a)| (s, None, a)).collect())
        }
    };
    let addresses: Vec<DocAddress> = ranked.iter().map(|(_, _, a)| *a).collect();
    let keys = hit_keys(searcher, &addresses)?;
    let docs = store.get_many(&keys)?;
    let mut hits = Vec::with_capacity(ranked.len());
    let mut highlighter = match &spec.highlight {
        Some(request) => Some(highlight::Highlighter::new(
            request,
            store,
            searcher,
            query.as_ref(),
        )?),
        None => None,
    };
    for (((score, sort, _), key), doc) in ranked.into_iter().zip(keys).zip(docs) {
        // A hit deleted since the searcher's snapshot is skipped.
        let Some(doc) = doc else { continue };
        let full = doc.source_json()?;
        let highlighted = highlighter.as_mut().and_then(|h| h.highlight(&full));
        let fields = (!spec.fields.is_empty()).then(|| field_values(&full, &spec.fields));
        let source = spec.source.apply(full);
        hits.push(Hit {
            index: index.to_string(),
            id: key.id.to_string(),
            score,
            sort: sort.as_ref().map(|(v, _)| v.clone()),
            rank: sort.map(|(_, k)| k),
            source,
            version: doc.version,
            seq_no: doc.seq_no,
            highlight: highlighted,
            fields,
        });
    }
    Ok((total, hits, aggs))
}

fn compare_hits(a: &Hit, b: &Hit) -> Ordering {
    match (&a.rank, &b.rank) {
        (Some(x), Some(y)) => y.rank_cmp(x),
        _ => b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal),
    }
}

/// An index to search, with the point-in-time searcher to use (a scroll's snapshot) or `None`
/// for the latest refreshed state.
pub type Target = (Arc<IndexEntry>, Option<Searcher>);

/// Runs `spec` over `targets` on this node (with cluster-wide statistics, when a coordinator
/// sent them). Also returns the searcher each index used, so a scroll can keep reading the
/// same snapshot.
pub async fn collect(
    targets: Vec<Target>,
    spec: &SearchSpec,
    stats: Option<&cameodb_search::dfs::ClusterStats>,
) -> Result<(Partial, Vec<(Arc<IndexEntry>, Searcher)>), ApiError> {
    let mut partial = Partial {
        shards: targets.len(),
        ..Partial::default()
    };
    let mut used = Vec::with_capacity(targets.len());
    for (entry, snapshot) in targets {
        let spec = spec.clone();
        let name = entry.name.clone();
        let index_stats = stats.and_then(|s| s.get(&entry.name)).cloned();
        let (n, mut found, aggs, searcher) = run(&entry.shard, move |store| {
            let searcher = snapshot.unwrap_or_else(|| store.searcher());
            let (n, found, aggs) =
                search_store(store, &searcher, &name, &spec, index_stats.as_ref())?;
            Ok((n, found, aggs, searcher))
        })
        .await
        .map_err(|e| e.with_index(&entry.name))?;
        partial.total += n;
        partial.hits.append(&mut found);
        partial.aggs.extend(aggs);
        used.push((entry, searcher));
    }
    Ok((partial, used))
}

/// Shard accounting of a merged answer.
#[derive(Clone, Debug, Default)]
pub struct ShardReport {
    /// Shards asked.
    pub total: usize,
    /// Shards that answered.
    pub successful: usize,
    /// Why the others did not (Elasticsearch's `_shards.failures` entries).
    pub failures: Vec<Value>,
    /// A node missed the search's `timeout` (Elasticsearch's `timed_out`).
    pub timed_out: bool,
}

/// Merges partial results (one per node) into Elasticsearch's search answer.
pub fn render(
    partials: Vec<Partial>,
    spec: &SearchSpec,
    shards: ShardReport,
    started: Instant,
) -> Result<Value, ApiError> {
    let mut total = 0usize;
    let mut hits: Vec<Hit> = Vec::new();
    let mut agg_parts: Vec<AggPart> = Vec::new();
    for partial in partials {
        total += partial.total;
        hits.extend(partial.hits);
        agg_parts.extend(partial.aggs);
    }
    hits.sort_by(compare_hits);
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
            if let Some(h) = hit.highlight {
                out["highlight"] = h;
            }
            if let Some(f) = hit.fields {
                out["fields"] = f;
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
    let total_json = match spec.track_total {
        None => Value::Null,
        Some(limit) if total > limit => {
            if spec.rest_total_as_int {
                json!(limit)
            } else {
                json!({"value": limit, "relation": "gte"})
            }
        }
        Some(_) if spec.rest_total_as_int => json!(total),
        Some(_) => json!({"value": total, "relation": "eq"}),
    };
    let mut body = json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": shards.timed_out,
        "_shards": shards_json(&shards),
        "hits": {"total": total_json, "max_score": max_score, "hits": page},
    });
    if spec.track_total.is_none()
        && let Some(hits) = body["hits"].as_object_mut()
    {
        hits.remove("total");
    }
    if let Some((request, _)) = agg_parts.first() {
        let request = request.clone();
        let parts = agg_parts.into_iter().map(|(_, part)| part).collect();
        let mut result = aggregations::finish(parts, request)?;
        if spec.typed_keys
            && let Some(raw) = &spec.aggs
        {
            aggregations::typed_keys(raw, &mut result);
        }
        body["aggregations"] = result;
    }
    Ok(body)
}

/// The `_shards` object.
pub fn shards_json(shards: &ShardReport) -> Value {
    let mut out = json!({
        "total": shards.total,
        "successful": shards.successful,
        "skipped": 0,
        "failed": shards.total - shards.successful.min(shards.total),
    });
    if !shards.failures.is_empty() {
        out["failures"] = Value::Array(shards.failures.clone());
    }
    out
}

/// Runs `spec` over `targets` on this node alone and renders the answer.
pub async fn execute_on(
    targets: Vec<Target>,
    spec: &SearchSpec,
) -> Result<(Value, Vec<(Arc<IndexEntry>, Searcher)>), ApiError> {
    let started = Instant::now();
    let (partial, used) = collect(targets, spec, None).await?;
    let shards = ShardReport {
        total: partial.shards,
        successful: partial.shards,
        failures: Vec::new(),
        timed_out: false,
    };
    Ok((render(vec![partial], spec, shards, started)?, used))
}

impl SearchSpec {
    /// `from + size`: how many hits each index must rank (a scroll's `from` grows page by
    /// page, so this saturates rather than wraps).
    pub fn window(&self) -> usize {
        self.from.saturating_add(self.size)
    }

    /// True when hits are ranked or reported by score, so cluster-wide term statistics matter.
    pub fn uses_scores(&self) -> bool {
        self.window() > 0 && (self.sort.is_empty() || self.sort.iter().any(|k| k.field == "_score"))
    }
}

/// Runs a search over `entries` — on every node when this node has peers — opening a scroll
/// when `keep_alive` is set. `params` and `body` are the request as sent, for the other nodes.
pub async fn search_entries(
    state: &AppState,
    entries: Vec<Arc<IndexEntry>>,
    params: &HashMap<String, String>,
    body: &Map<String, Value>,
    spec: SearchSpec,
    keep_alive: Option<std::time::Duration>,
) -> Result<Value, ApiError> {
    if let Some(ctx) = &state.cluster {
        let view = ctx.view().await;
        if !view.is_single() {
            return crate::cluster::scatter::search(
                ctx, &view, &entries, params, body, &spec, keep_alive,
            )
            .await;
        }
    }
    let targets = entries.into_iter().map(|e| (e, None)).collect();
    let (mut out, used) = execute_on(targets, &spec).await?;
    if let Some(keep_alive) = keep_alive {
        out["_scroll_id"] = json!(state.scrolls.open(spec, used, keep_alive)?);
    }
    Ok(out)
}

/// Runs a search, opening a scroll when the request asks for one (`scroll=<keep-alive>`).
async fn respond_search(
    state: &AppState,
    entries: Vec<Arc<IndexEntry>>,
    params: &HashMap<String, String>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(body)?.unwrap_or_default();
    let spec = parse_spec(params, Some(body.clone()))?;
    let keep_alive = params
        .get("scroll")
        .map(|v| crate::units::required_time_value("scroll", v))
        .transpose()?;
    if let Some(keep_alive) = keep_alive {
        // Refused before any search runs: a scroll that could not be kept.
        state.scrolls.check_open(keep_alive)?;
        if let Some(ctx) = &state.cluster {
            ctx.scrolls.check_room()?;
        }
    }
    let out = search_entries(state, entries, params, &body, spec, keep_alive).await?;
    Ok(respond::ok(out))
}

pub async fn search(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Parse errors come before a missing index, as in Elasticsearch.
    parse_spec(&params, parse_object_body(&body)?)?;
    let entries = targets(&state, &index, &params).await?;
    respond_search(&state, entries, &params, &body).await
}

pub async fn search_all(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let entries = state.catalog.all().await;
    respond_search(&state, entries, &params, &body).await
}

async fn count_entries(
    state: &AppState,
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
    if let Some(ctx) = &state.cluster {
        let view = ctx.view().await;
        if !view.is_single() {
            let out = crate::cluster::scatter::count(ctx, &view, &entries, params, &body).await?;
            return Ok(respond::ok(out));
        }
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
    count_entries(
        &state,
        targets(&state, &index, &params).await?,
        &params,
        &body,
    )
    .await
}

pub async fn count_all(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    count_entries(&state, state.catalog.all().await, &params, &body).await
}

/// The indexes a search addresses, honouring `ignore_unavailable` and `allow_no_indices`.
async fn targets(
    state: &AppState,
    index: &str,
    params: &HashMap<String, String>,
) -> Result<Vec<Arc<IndexEntry>>, ApiError> {
    let ignore = super::flag(params, "ignore_unavailable")?.unwrap_or(false);
    let allow_none = super::flag(params, "allow_no_indices")?.unwrap_or(true);
    let entries = if ignore {
        state.catalog.resolve_available(index).await
    } else {
        state.catalog.resolve(index).await?
    };
    if entries.is_empty() && !allow_none {
        return Err(ApiError::index_not_found(index));
    }
    Ok(entries)
}
