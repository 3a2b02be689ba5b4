//! `GET /{index}/_cameo/changes?since=&limit=&wait=`: the index's change feed (native API).
//! Changes come in each node's write order; `next` is the cursor to pass as `since`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::{AppState, Params};
use crate::cluster::changes::{FeedPage, decode_cursor, encode_cursor, read};
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
    render(&entry.name, page)
}

/// One change's fields, the source aside (written as stored).
#[derive(serde::Serialize)]
struct Head<'a> {
    _index: &'a str,
    _id: &'a str,
    op: &'static str,
    _seq_no: u64,
    _version: u64,
}

/// Writes the page straight into bytes, each source as stored (it was checked to be a JSON
/// object when written): nothing is parsed again on the way out.
fn render(index: &str, page: FeedPage) -> Result<Response, ApiError> {
    let encoding = |e: serde_json::Error| ApiError::internal(format!("encoding changes: {e}"));
    let size: usize = page
        .changes
        .iter()
        .map(|(_, c)| c.source.as_ref().map_or(0, Vec::len).saturating_add(120))
        .sum();
    let mut out = Vec::with_capacity(size.saturating_add(64));
    out.extend_from_slice(b"{\"changes\":[");
    for (n, (_, change)) in page.changes.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let head = Head {
            _index: index,
            _id: &change.id,
            op: if change.source.is_some() {
                "index"
            } else {
                "delete"
            },
            _seq_no: change.stamp.hlc,
            _version: change.version,
        };
        serde_json::to_writer(&mut out, &head).map_err(encoding)?;
        if let Some(source) = &change.source {
            // Reopen the object written above to add the source.
            out.pop();
            out.extend_from_slice(b",\"_source\":");
            out.extend_from_slice(source);
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"],\"next\":");
    serde_json::to_writer(&mut out, &encode_cursor(&page.next)).map_err(encoding)?;
    out.push(b'}');
    Ok((respond::json_headers(), out).into_response())
}
