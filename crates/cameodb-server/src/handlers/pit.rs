//! Points in time: `POST /{index}/_pit?keep_alive=…` opens one, a `_search` whose body names
//! it reads it (see `search.rs`), `DELETE /_pit` closes it.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::scroll::clear_response;
use super::{AppState, Params};
use crate::cluster::pit;
use crate::error::ApiError;
use crate::request::params::check_params;
use crate::request::parse_object_body;
use crate::respond;

pub async fn open(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let (id, shards) = open_pit(&state, &index, &params).await?;
    Ok(respond::ok(json!({
        "id": id,
        "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
    })))
}

/// OpenSearch's `POST /{index}/_search/point_in_time?keep_alive=…` (what opensearch-py's
/// `create_pit` calls): the same point in time, answered in OpenSearch's shape.
pub async fn open_opensearch(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let (id, shards) = open_pit(&state, &index, &params).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Ok(respond::ok(json!({
        "pit_id": id,
        "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
        "creation_time": now,
    })))
}

/// OpenSearch's `DELETE /_search/point_in_time` with `{"pit_id": [...]}`.
pub async fn close_opensearch(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.unwrap_or_default();
    let ids = ids_of(&body, "pit_id")?;
    let freed = pit::close(&state.cluster, &ids).await;
    let pits: Vec<Value> = ids
        .iter()
        .map(|id| json!({"pit_id": id, "successful": freed > 0}))
        .collect();
    Ok(respond::ok(json!({"pits": pits})))
}

/// The point-in-time ids under `key` of a close body (one id or a list).
fn ids_of(body: &serde_json::Map<String, Value>, key: &str) -> Result<Vec<String>, ApiError> {
    match body.get(key) {
        Some(Value::String(id)) => Ok(vec![id.clone()]),
        Some(Value::Array(ids)) => Ok(ids
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()),
        _ => Err(ApiError::bad_request(
            "action_request_validation_exception",
            format!("Validation Failed: 1: [{key}] of a point in time is missing;"),
        )),
    }
}

async fn open_pit(
    state: &AppState,
    index: &str,
    params: &Params,
) -> Result<(String, usize), ApiError> {
    check_params(
        params,
        &[
            "keep_alive",
            "ignore_unavailable",
            "expand_wildcards",
            "preference",
            "routing",
            "allow_partial_search_results",
        ],
    )?;
    let keep_alive = params.get("keep_alive").ok_or_else(|| {
        ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: [keep_alive] is not specified;",
        )
    })?;
    let keep_alive = crate::units::required_time_value("keep_alive", keep_alive)?;
    let entries = state.catalog.resolve(index).await?;
    let shards = entries.len();
    let id = pit::open(&state.cluster, &entries, keep_alive).await?;
    Ok((id, shards))
}

pub async fn close(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.unwrap_or_default();
    let ids = ids_of(&body, "id")?;
    Ok(clear_response(pit::close(&state.cluster, &ids).await))
}

/// A `pit` object of a search body: its id and new keep-alive.
pub struct PitRequest {
    /// The point-in-time id.
    pub id: String,
    /// New keep-alive, if given.
    pub keep_alive: Option<std::time::Duration>,
}

/// Reads the `pit` object of a search body, if it has one.
pub fn pit_of(body: &serde_json::Map<String, Value>) -> Result<Option<PitRequest>, ApiError> {
    let Some(pit) = body.get("pit") else {
        return Ok(None);
    };
    let id = pit
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::parse("[pit] must be an object with a string [id]"))?;
    let keep_alive = match pit.get("keep_alive") {
        None => None,
        Some(Value::String(text)) => Some(crate::units::required_time_value("keep_alive", text)?),
        Some(_) => return Err(ApiError::parse("[pit.keep_alive] must be a time value")),
    };
    Ok(Some(PitRequest {
        id: id.to_string(),
        keep_alive,
    }))
}
