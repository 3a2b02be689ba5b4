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

/// The health answer for `indices` indexes, each with one shard on every data node.
async fn health_body(state: &AppState, indices: usize) -> serde_json::Value {
    let (nodes, status, down) = super::nodes::health_of_nodes(state).await;
    let active = indices * nodes;
    let unassigned = indices * down;
    let percent = if active + unassigned == 0 {
        100.0
    } else {
        100.0 * active as f64 / (active + unassigned) as f64
    };
    json!({
        "cluster_name": "cameodb",
        "status": status,
        "timed_out": false,
        "number_of_nodes": nodes,
        "number_of_data_nodes": nodes,
        "active_primary_shards": active,
        "active_shards": active,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": unassigned,
        "unassigned_primary_shards": unassigned,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": percent,
    })
}

pub async fn health(State(state): State<AppState>) -> Response {
    let indices = state.catalog.all().await.len();
    respond::ok(health_body(&state, indices).await)
}

pub async fn health_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let indices = state.catalog.resolve(&index).await?;
    Ok(respond::ok(health_body(&state, indices.len()).await))
}
