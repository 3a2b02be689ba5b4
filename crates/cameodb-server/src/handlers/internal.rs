//! Node-to-node endpoints (`/_cameo/internal/...`): what a coordinator asks of the other nodes
//! of a cluster. They are reachable only through the local router other nodes call over
//! libp2p, never on the public HTTP port.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::search::{Target, collect};
use super::{AppState, Params, run};
use crate::catalog::IndexEntry;
use crate::cluster::metadata::{IndexDescriptor, apply, describe, ensure_here};
use crate::error::ApiError;
use crate::messages::{Pin, ScrollCall, ShardAnswer, ShardRequest};
use crate::respond;
use cameodb_search::build_query;
use cameodb_search::dfs::{ClusterStats, IndexStats};

fn parse_request(body: &Bytes) -> Result<ShardRequest, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::parse(format!("bad shard request: {e}")))
}

async fn local_entries(state: &AppState, indices: &[String]) -> Vec<Arc<IndexEntry>> {
    let mut out = Vec::new();
    for name in indices {
        if let Some(entry) = state.catalog.get(name).await {
            out.push(entry);
        }
    }
    out
}

/// `POST /_cameo/internal/search`: this node's part of a cluster search.
pub async fn shard_search(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = parse_request(&body)?;
    // Parsed and checked by the coordinator; its window is already this node's part (scroll
    // pages go past the result window by design).
    let spec = request.spec;
    let targets: Vec<Target> = match &request.pin {
        Some(Pin::Use { id, keep_alive_ms }) => state
            .scrolls
            .snapshot(id, keep_alive_ms.map(Duration::from_millis))?,
        _ => local_entries(&state, &request.indices)
            .await
            .into_iter()
            .map(|e| (e, None))
            .collect(),
    };
    let (partial, used) = collect(targets, &spec, request.stats.as_ref()).await?;
    let pin = match request.pin {
        Some(Pin::Open { keep_alive_ms }) => Some(state.scrolls.open(
            spec,
            used,
            Duration::from_millis(keep_alive_ms),
        )?),
        Some(Pin::Use { id, .. }) => Some(id),
        None => None,
    };
    let mut encoded = Vec::new();
    ciborium::into_writer(&ShardAnswer { partial, pin }, &mut encoded)
        .map_err(|e| ApiError::internal(format!("encoding a shard answer failed: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/cbor")], encoded).into_response())
}

/// `POST /_cameo/internal/dfs`: this node's term statistics for a search.
pub async fn shard_stats(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request = parse_request(&body)?;
    let spec = request.spec;
    let mut out = ClusterStats::new();
    for entry in local_entries(&state, &request.indices).await {
        let query = spec.query.clone();
        let stats: IndexStats = run(&entry.shard, move |store| {
            let searcher = store.searcher();
            let query = build_query(store, &query)?;
            Ok(cameodb_search::dfs::collect(
                store,
                &searcher,
                query.as_ref(),
            )?)
        })
        .await
        .map_err(|e| e.with_index(&entry.name))?;
        out.insert(entry.name.clone(), stats);
    }
    respond::serialized(StatusCode::OK, &out)
}

/// `GET /_cameo/internal/index/{name}`: this node's descriptor of an index.
pub async fn get_index(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let entry = state.catalog.require(&name).await?;
    let descriptor = describe(&entry).await?;
    respond::serialized(StatusCode::OK, &descriptor)
}

/// `PUT /_cameo/internal/index/{name}`: another node created (or describes) an index.
pub async fn put_index(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let descriptor: IndexDescriptor = serde_json::from_slice(&body)
        .map_err(|e| ApiError::parse(format!("bad index descriptor: {e}")))?;
    apply(&state.catalog, &name, descriptor).await?;
    Ok(respond::ok(serde_json::json!({"acknowledged": true})))
}

/// `DELETE /_cameo/internal/index/{name}?uuid=…`: another node deleted an index; this copy
/// goes too if it is the same index (same uuid).
pub async fn delete_index(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let uuid = params.get("uuid").cloned().unwrap_or_default();
    match state.catalog.get(&name).await {
        Some(entry) if entry.meta.uuid == uuid => state.catalog.delete(&name).await?,
        _ => {}
    }
    Ok(respond::json(
        StatusCode::OK,
        serde_json::json!({"acknowledged": true}),
    ))
}

fn coordinator(state: &AppState) -> Result<&Arc<crate::cluster::ClusterCtx>, ApiError> {
    state
        .coordinator
        .get()
        .ok_or_else(|| ApiError::internal("this node runs without a cluster"))
}

fn parse_scroll_call(body: &Bytes) -> Result<ScrollCall, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::parse(format!("bad scroll call: {e}")))
}

/// `POST /_cameo/internal/scroll`: the next page of a scroll this node coordinates.
pub async fn scroll_page(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let call = parse_scroll_call(&body)?;
    let ctx = coordinator(&state)?;
    let id = call.ids.first().cloned().unwrap_or_default();
    let page = crate::cluster::scatter::scroll_page(
        ctx,
        &id,
        call.keep_alive_ms.map(Duration::from_millis),
    )
    .await?;
    Ok(respond::ok(page))
}

/// `DELETE /_cameo/internal/scroll`: frees scrolls this node coordinates.
pub async fn clear_scroll(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let call = parse_scroll_call(&body)?;
    let freed = crate::cluster::scatter::clear_scrolls(coordinator(&state)?, &call.ids).await;
    Ok(respond::ok(serde_json::json!({"num_freed": freed})))
}

/// `PUT /_cameo/internal/ensure/{index}`: this node is the index's metadata owner; it makes
/// sure the index exists (auto-create on a write) and tells every other node when it made it.
/// Answers 200 either way, so concurrent auto-creates of one name all succeed.
pub async fn ensure_index_as_owner(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    ensure_here(&state.catalog, state.cluster_ctx(), &index).await?;
    Ok(respond::ok(serde_json::json!({"acknowledged": true})))
}
