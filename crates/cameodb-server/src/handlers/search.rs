//! `_search` and `_count`, over one or several indexes: parsed here, run by the coordinator on
//! every node that holds data, merged by score or sort key.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::pit::pit_of;
use super::{AppState, Params};
use crate::catalog::IndexEntry;
use crate::cluster::pit;
use crate::cluster::scatter;
use crate::error::ApiError;
use crate::request::params::{check_params, flag};
use crate::request::parse_object_body;
use crate::request::search::{parse_spec, query_spec};
use crate::respond;
use cameodb_search::SearchSpec;
use cameodb_search::sorting::SortKey;

/// Runs a search over `entries`, opening a scroll when `keep_alive` is set. `params` choose
/// the nodes (`routing`).
pub async fn search_entries(
    state: &AppState,
    entries: Vec<Arc<IndexEntry>>,
    params: &HashMap<String, String>,
    spec: SearchSpec,
    keep_alive: Option<std::time::Duration>,
) -> Result<Value, ApiError> {
    if let Some(keep_alive) = keep_alive {
        // Refused before any search runs: a scroll that could not be kept.
        state.cluster.leaf.scrolls.check_open(keep_alive)?;
        state.cluster.scrolls.check_room()?;
    }
    let view = state.cluster.view().await;
    scatter::search(&state.cluster, &view, &entries, params, &spec, keep_alive).await
}

/// Runs a search, opening a scroll when the request asks for one (`scroll=<keep-alive>`).
pub(super) async fn respond_search(
    state: &AppState,
    entries: Vec<Arc<IndexEntry>>,
    params: &HashMap<String, String>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(body)?.unwrap_or_default();
    let spec = parse_spec(params, Some(body))?;
    let keep_alive = params
        .get("scroll")
        .map(|v| crate::units::required_time_value("scroll", v))
        .transpose()?;
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
    let parsed = parse_object_body(&body)?;
    if parsed.as_ref().is_some_and(|b| b.contains_key("pit")) {
        return Err(ApiError::illegal_argument(
            "[indices] cannot be used with point in time. Do not specify any index with point in time.",
        ));
    }
    parse_spec(&params, parsed)?;
    let entries = targets(&state, &index, &params).await?;
    respond_search(&state, entries, &params, &body).await
}

pub async fn search_all(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parsed = parse_object_body(&body)?.unwrap_or_default();
    if let Some(pit) = pit_of(&parsed)? {
        if params.contains_key("scroll") {
            return Err(ApiError::illegal_argument(
                "using [point in time] is not allowed in a scroll context",
            ));
        }
        let mut spec = parse_spec(&params, Some(parsed))?;
        // As in Elasticsearch: a sorted search on a point in time ends with the `_shard_doc`
        // tiebreaker, so `search_after` never skips or repeats a document.
        if !spec.sort.is_empty() && !spec.sort.iter().any(|k| k.field == "_shard_doc") {
            spec.sort.push(SortKey {
                field: "_shard_doc".into(),
                descending: false,
                missing_first: false,
                geo: None,
                nested: None,
            });
        }
        let out = pit::search(&state.cluster, &pit.id, pit.keep_alive, spec).await?;
        return Ok(respond::ok(out));
    }
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
    let query = query_spec(params, &body);
    let view = state.cluster.view().await;
    let out = scatter::count(&state.cluster, &view, &entries, params, query).await?;
    Ok(respond::ok(out))
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
pub(super) async fn targets(
    state: &AppState,
    index: &str,
    params: &HashMap<String, String>,
) -> Result<Vec<Arc<IndexEntry>>, ApiError> {
    let ignore = flag(params, "ignore_unavailable")?.unwrap_or(false);
    let allow_none = flag(params, "allow_no_indices")?.unwrap_or(true);
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
