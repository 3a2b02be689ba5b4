//! `GET /{index}/_cameo/changes?since=&limit=&wait=`: the index's change feed (native API).
//! Changes come in each node's write order; `next` is the cursor to pass as `since`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{AppState, Params};
use crate::cluster::changes::{decode_cursor, encode_cursor, read};
use crate::error::ApiError;
use crate::request::params::{check_params, number};
use crate::respond;

/// Changes per page when the reader names no `limit`.
const DEFAULT_LIMIT: usize = 1_000;
/// `changes.max_limit`: the most changes one page may ask for.
const MAX_LIMIT: usize = 10_000;
/// `changes.max_wait`: the longest a reader may wait for a change.
const MAX_WAIT: Duration = Duration::from_secs(60);

pub async fn changes(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    check_params(&params, &["since", "limit", "wait"])?;
    let limit: usize = number(&params, "limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::illegal_argument(format!(
            "[limit] must be between 1 and {MAX_LIMIT} ([changes.max_limit]), was [{limit}]"
        )));
    }
    let wait = match params.get("wait") {
        Some(text) => crate::units::required_time_value("wait", text)?,
        None => Duration::ZERO,
    };
    if wait > MAX_WAIT {
        return Err(ApiError::illegal_argument(format!(
            "[wait] may be at most {}s ([changes.max_wait]), was [{}]",
            MAX_WAIT.as_secs(),
            params.get("wait").map(String::as_str).unwrap_or_default()
        )));
    }
    let since = decode_cursor(params.get("since").map(String::as_str).unwrap_or_default())?;
    let entry = state.catalog.require(&index).await?;
    let page = read(&state.cluster, &entry.name, since, limit, wait).await?;
    let mut changes = Vec::with_capacity(page.changes.len());
    for (_, change) in page.changes {
        let mut item = json!({
            "_index": entry.name, "_id": change.id, "_seq_no": change.seq,
            "_version": change.version,
        });
        match change.source {
            Some(body) => {
                item["op"] = json!("index");
                item["_source"] = serde_json::from_slice::<Value>(&body).map_err(|e| {
                    ApiError::internal(format!("corrupt stored document [{}]: {e}", change.id))
                })?;
            }
            None => item["op"] = json!("delete"),
        }
        changes.push(item);
    }
    Ok(respond::ok(
        json!({"changes": changes, "next": encode_cursor(&page.next)}),
    ))
}
