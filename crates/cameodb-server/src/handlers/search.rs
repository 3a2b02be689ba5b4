//! `_search` and `_count`, over one or several indexes (hits merged by score or sort key).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tantivy::Searcher;
use tantivy::collector::Count;

use super::docs::check_params;
pub use super::search_spec::{parse_spec, query_spec};
use super::{AppState, Params, parse_object_body, run};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::respond;
use cameodb_search::{Partial, SearchSpec, ShardReport, build_query, render, search_store};

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

/// Runs a search over `entries` — on every node when this node has peers — opening a scroll
/// when `keep_alive` is set. `params` choose the nodes (`routing`, `preference`).
pub async fn search_entries(
    state: &AppState,
    entries: Vec<Arc<IndexEntry>>,
    params: &HashMap<String, String>,
    spec: SearchSpec,
    keep_alive: Option<std::time::Duration>,
) -> Result<Value, ApiError> {
    if let Some(ctx) = &state.cluster {
        let view = ctx.view().await;
        if !view.is_single() {
            return crate::cluster::scatter::search(
                ctx, &view, &entries, params, &spec, keep_alive,
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
    let out = search_entries(state, entries, params, spec, keep_alive).await?;
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
            let query = query_spec(params, &body);
            let out = crate::cluster::scatter::count(ctx, &view, &entries, params, query).await?;
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
