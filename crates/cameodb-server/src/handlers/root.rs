//! `GET /`, `HEAD /`, `GET /_cluster/health`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::error::ApiError;
use crate::respond;

/// The Elasticsearch version we answer as; clients check the major.
pub const COMPAT_VERSION: &str = "8.17.0";

pub async fn info(State(state): State<AppState>) -> Response {
    respond::ok(json!({
        "name": state.node_name,
        "node_id": state.node_id,
        "cluster_name": "cameodb",
        "cluster_uuid": state.cluster_uuid,
        "version": {
            "number": COMPAT_VERSION,
            "build_flavor": "default",
            "build_type": "cameodb",
            "build_hash": env!("CARGO_PKG_VERSION"),
            "build_date": "2026-11-24T00:00:00.000Z",
            "build_snapshot": false,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }))
}

pub async fn ping() -> Response {
    StatusCode::OK.into_response()
}

/// The health answer for `entries`, from their shards' copies (see `cluster::health`).
async fn health_body(
    state: &AppState,
    entries: &[std::sync::Arc<crate::catalog::IndexEntry>],
) -> serde_json::Value {
    let view = state.cluster.view().await;
    let nodes = view.members.iter().filter(|m| view.is_live(&m.id)).count();
    let health = crate::cluster::health::health(&view, entries);
    json!({
        "cluster_name": "cameodb",
        "status": health.status(),
        "timed_out": false,
        "number_of_nodes": nodes,
        "number_of_data_nodes": nodes,
        "active_primary_shards": health.active_primary,
        "active_shards": health.active,
        "relocating_shards": health.relocating,
        "initializing_shards": health.initializing,
        "unassigned_shards": health.unassigned,
        "unassigned_primary_shards": health.unassigned_primary,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": health.active_percent(),
    })
}

pub async fn health(State(state): State<AppState>) -> Response {
    let entries = state.catalog.all().await;
    respond::ok(health_body(&state, &entries).await)
}

pub async fn health_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let entries = state.catalog.resolve(&index).await?;
    Ok(respond::ok(health_body(&state, &entries).await))
}
