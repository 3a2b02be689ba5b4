//! Scroll: a search whose pages are read from the snapshot the first page saw. Contexts expire
//! after their keep-alive without a read.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tantivy::Searcher;

use super::search::{Target, execute_on};
use super::{AppState, Params, parse_object_body};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::respond;
use crate::scroll_contexts::{Contexts, ScrollLimits};
use cameodb_search::SearchSpec;

/// One open scroll.
struct Context {
    /// The search, with `from` at the next page.
    spec: SearchSpec,
    /// The snapshot of each index.
    targets: Vec<(Arc<IndexEntry>, Searcher)>,
}

/// The node's open scrolls.
pub struct Scrolls {
    /// The contexts, under the node's scroll limits.
    contexts: Contexts<Context>,
}

impl Scrolls {
    /// No scrolls yet, under `limits`.
    pub fn new(limits: ScrollLimits) -> Scrolls {
        Scrolls {
            contexts: Contexts::new(limits),
        }
    }

    /// Refuses, before the first page is searched, a scroll that [`Scrolls::open`] would
    /// refuse: its keep-alive is too long or no context is free.
    pub fn check_open(&self, keep_alive: Duration) -> Result<(), ApiError> {
        self.contexts.check_keep_alive(keep_alive)?;
        self.contexts.check_room()
    }

    /// Opens a scroll positioned after the page just returned; returns its id.
    pub fn open(
        &self,
        mut spec: SearchSpec,
        targets: Vec<(Arc<IndexEntry>, Searcher)>,
        keep_alive: Duration,
    ) -> Result<String, ApiError> {
        let id = crate::ids::generate_id();
        spec.from = spec.window();
        self.contexts
            .insert(id.clone(), Context { spec, targets }, keep_alive)?;
        Ok(id)
    }

    fn take_page(
        &self,
        id: &str,
        keep_alive: Option<Duration>,
    ) -> Result<(SearchSpec, Vec<Target>), ApiError> {
        self.contexts.read(id, keep_alive, |context, _| {
            let spec = context.spec.clone();
            context.spec.from = context.spec.window();
            let targets = context
                .targets
                .iter()
                .map(|(e, s)| (Arc::clone(e), Some(s.clone())))
                .collect();
            (spec, targets)
        })
    }

    /// The snapshot kept under `id`, with its expiry pushed back (a cluster scroll's node side:
    /// the coordinator does the paging).
    pub fn snapshot(
        &self,
        id: &str,
        keep_alive: Option<Duration>,
    ) -> Result<Vec<Target>, ApiError> {
        let (_, targets) = self.take_page(id, keep_alive)?;
        Ok(targets)
    }

    pub fn clear(&self, ids: &[String]) -> usize {
        self.contexts.remove(ids).len()
    }
}

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
    if let Some(ctx) = &state.cluster
        && let Some(owner) = crate::cluster::scatter::scroll_owner(&id)
    {
        let body = if owner == ctx.cluster.self_id() {
            crate::cluster::scatter::scroll_page(ctx, &id, keep_alive).await?
        } else {
            crate::cluster::scatter::forward_page(ctx, owner, &id, keep_alive).await?
        };
        return Ok(respond::ok(body));
    }
    let (spec, targets) = state.scrolls.take_page(&id, keep_alive)?;
    let (mut body, _) = execute_on(targets, &spec).await?;
    body["_scroll_id"] = json!(id);
    Ok(respond::ok(body))
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

fn clear_response(freed: usize) -> Response {
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

/// Frees local and cluster scrolls.
async fn clear_ids(state: &AppState, ids: &[String]) -> usize {
    let cluster = match &state.cluster {
        Some(ctx) => crate::cluster::scatter::clear_anywhere(ctx, ids).await,
        None => 0,
    };
    cluster + state.scrolls.clear(ids)
}
