//! Scroll: a search whose pages are read from the snapshot the first page saw. The scroll
//! lives on the node that opened it (its id names that node); any node passes a page request
//! on to it. Contexts expire after their keep-alive without a read.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{AppState, Params};
use crate::cluster::scatter;
use crate::error::ApiError;
use crate::request::parse_object_body;
use crate::respond;

fn scroll_request(
    params: &Params,
    body: &Bytes,
    path_id: Option<String>,
) -> Result<(String, Option<Duration>), ApiError> {
    let body = parse_object_body(body)?.unwrap_or_default();
    let id = path_id
        .or_else(|| {
            body.get("scroll_id")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .or_else(|| params.get("scroll_id").cloned())
        .ok_or_else(|| {
            ApiError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: scrollId is missing;",
            )
        })?;
    let keep_alive = match body
        .get("scroll")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| params.get("scroll").cloned())
    {
        Some(v) => Some(crate::units::required_time_value("scroll", &v)?),
        None => None,
    };
    Ok((id, keep_alive))
}

async fn next_page(
    state: &AppState,
    id: String,
    keep_alive: Option<Duration>,
) -> Result<Response, ApiError> {
    let page = scatter::next_page(&state.cluster, &id, keep_alive).await?;
    Ok(respond::ok(page))
}

pub async fn scroll(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (id, keep_alive) = scroll_request(&params, &body, None)?;
    next_page(&state, id, keep_alive).await
}

pub async fn scroll_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (id, keep_alive) = scroll_request(&params, &body, Some(id))?;
    next_page(&state, id, keep_alive).await
}

/// The answer to freeing scrolls or points in time: 404 when none was freed.
pub(super) fn clear_response(freed: usize) -> Response {
    respond::json(
        if freed > 0 {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        },
        json!({"succeeded": true, "num_freed": freed}),
    )
}

pub async fn clear(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.unwrap_or_default();
    let mut ids: Vec<String> = match body.get("scroll_id") {
        Some(Value::String(id)) => vec![id.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    if let Some(v) = params.get("scroll_id") {
        ids.extend(v.split(',').map(String::from));
    }
    Ok(clear_response(clear_ids(&state, &ids).await))
}

pub async fn clear_by_id(State(state): State<AppState>, Path(ids): Path<String>) -> Response {
    let ids: Vec<String> = ids.split(',').map(String::from).collect();
    clear_response(clear_ids(&state, &ids).await)
}

/// Frees scrolls wherever they are coordinated.
async fn clear_ids(state: &AppState, ids: &[String]) -> usize {
    scatter::clear_anywhere(&state.cluster, ids).await
}
