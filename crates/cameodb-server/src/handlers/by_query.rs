//! `_delete_by_query` and `_update_by_query`: checked here, run by every node over the
//! documents it holds (see `leaf::by_query`), the counts summed.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{AppState, Params};
use crate::cluster::admin;
use crate::error::ApiError;
use crate::messages::{ByQueryPart, Tally};
use crate::request::params::{check_params, refresh_param};
use crate::request::parse_object_body;
use crate::request::search::query_spec;
use crate::respond;

#[derive(Clone, Copy, PartialEq)]
enum Action {
    Delete,
    Update,
}

/// `POST /_reindex`: copies documents from one index to another (see `cluster::reindex`).
pub async fn reindex(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.unwrap_or_default();
    let request = crate::request::reindex::ReindexRequest::parse(&params, body)?;
    let refresh = refresh_param(&params)?;
    let out = crate::cluster::reindex::reindex(&state.cluster, request, refresh).await?;
    Ok(respond::ok(out))
}

pub async fn delete_by_query(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(&state, &index, &params, &body, Action::Delete).await
}

pub async fn update_by_query(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(&state, &index, &params, &body, Action::Update).await
}

async fn handle(
    state: &AppState,
    index: &str,
    params: &Params,
    body: &Bytes,
    action: Action,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    check_params(
        params,
        &[
            "q",
            "df",
            "default_operator",
            "refresh",
            "conflicts",
            "wait_for_completion",
            "scroll_size",
            "slices",
        ],
    )?;
    if params
        .get("wait_for_completion")
        .is_some_and(|v| v == "false")
    {
        return Err(ApiError::illegal_argument(
            "wait_for_completion=false (tasks) is not supported",
        ));
    }
    let proceed = match params.get("conflicts").map(String::as_str) {
        None | Some("abort") => false,
        Some("proceed") => true,
        Some(other) => {
            return Err(ApiError::illegal_argument(format!(
                "conflicts may only be \"proceed\" or \"abort\" but was [{other}]"
            )));
        }
    };
    let body = parse_object_body(body)?.unwrap_or_default();
    let allowed: &[&str] = if action == Action::Update {
        &["query", "doc", "script", "conflicts"]
    } else {
        &["query", "conflicts"]
    };
    if body.contains_key("script") && body.contains_key("doc") {
        return Err(ApiError::illegal_argument(
            "use either [script] or [doc], not both",
        ));
    }
    if let Some(unknown) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "parsing_exception",
            format!("Unknown key for a START_OBJECT in [{unknown}]."),
        ));
    }
    let proceed = proceed || body.get("conflicts").and_then(Value::as_str) == Some("proceed");
    let refresh = refresh_param(params)?;
    if let Some(script) = body.get("script") {
        // Parsed here so a bad script fails before any node runs it.
        cameodb_search::script::parse(script)?;
    }
    let entries = state.catalog.resolve(index).await?;
    let part = ByQueryPart {
        indices: entries.iter().map(|e| e.name.clone()).collect(),
        update: action == Action::Update,
        query: query_spec(params, &body),
        doc: body.get("doc").cloned(),
        script: body.get("script").cloned(),
        refresh,
        proceed,
        ranges: Default::default(),
    };
    let total = admin::by_query(&state.cluster, &entries, part).await?;
    Ok(finish(started, total, action))
}

fn finish(started: Instant, total: Tally, action: Action) -> Response {
    let done_key = if action == Action::Delete {
        "deleted"
    } else {
        "updated"
    };
    let status = if total.failures.iter().any(|f| f["status"] == 409) {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let mut response = json!({
        "took": started.elapsed().as_millis() as u64, "timed_out": false, "total": total.total,
        "batches": total.batches, "version_conflicts": total.conflicts, "noops": total.noops,
        "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": -1.0,
        "throttled_until_millis": 0, "failures": total.failures,
    });
    response[done_key] = json!(total.done);
    if action == Action::Update {
        response["deleted"] = json!(0);
    }
    respond::json(status, response)
}

/// `_rethrottle` of a by-query task. By-query requests run to completion within their HTTP
/// request here, so no task ever runs in the background: an id naming another node gets
/// Elasticsearch's "no such node" failure, one naming this node "task not found".
pub async fn rethrottle(
    State(state): State<AppState>,
    Path(task): Path<String>,
) -> Result<Response, ApiError> {
    let (node, number) = task
        .split_once(':')
        .ok_or_else(|| ApiError::illegal_argument(format!("malformed task id {task}")))?;
    if node == state.node_name || node == state.node_id {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "resource_not_found_exception",
            format!("task [{node}:{number}] is missing"),
        ));
    }
    Ok(respond::ok(json!({
        "nodes": {},
        "node_failures": [{
            "type": "failed_node_exception",
            "reason": format!("Failed node [{node}]"),
            "node_id": node,
            "caused_by": {"type": "no_such_node_exception", "reason": format!("No such node [{node}]"), "node_id": node}
        }]
    })))
}
