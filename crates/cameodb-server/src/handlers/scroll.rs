//! Scroll: a search whose pages are read from the snapshot the first page saw. Contexts expire
//! after their keep-alive without a read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tantivy::Searcher;

use super::search::{SearchSpec, Target, execute_on};
use super::{AppState, Params, parse_object_body};
use crate::catalog::{IndexEntry, parse_interval};
use crate::error::ApiError;
use crate::respond;

/// Most open scroll contexts (Elasticsearch's `search.max_open_scroll_context`).
const MAX_OPEN: usize = 500;

/// Contexts that expire after their keep-alive without a read: this node's scrolls and, on a
/// coordinator, its cluster scrolls.
pub struct Contexts<T> {
    /// Open contexts by id.
    entries: Mutex<HashMap<String, Kept<T>>>,
}

/// A context with its lease.
struct Kept<T> {
    value: T,
    /// How long it lives without a read.
    keep_alive: Duration,
    /// When it expires.
    expires: Instant,
}

impl<T> Default for Contexts<T> {
    fn default() -> Self {
        Contexts {
            entries: Mutex::default(),
        }
    }
}

impl<T> Contexts<T> {
    /// Keeps `value` under `id` for `keep_alive`; expired contexts go first, and beyond
    /// [`MAX_OPEN`] nothing more is kept (its id then answers 404, as an expired one does).
    pub fn insert(&self, id: String, value: T, keep_alive: Duration) {
        if let Ok(mut entries) = self.entries.lock() {
            let now = Instant::now();
            entries.retain(|_, kept| kept.expires > now);
            if entries.len() < MAX_OPEN {
                let expires = now + keep_alive;
                entries.insert(
                    id,
                    Kept {
                        value,
                        keep_alive,
                        expires,
                    },
                );
            }
        }
    }

    /// Runs `read` on the live context `id` (with the keep-alive in force, `keep_alive` when
    /// given) and pushes its expiry back; 404 when it is gone.
    pub fn read<R>(
        &self,
        id: &str,
        keep_alive: Option<Duration>,
        read: impl FnOnce(&mut T, Duration) -> R,
    ) -> Result<R, ApiError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| ApiError::internal("scroll registry poisoned"))?;
        let kept = entries
            .get_mut(id)
            .filter(|kept| kept.expires > Instant::now())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "search_context_missing_exception",
                    format!("No search context found for id [{id}]"),
                )
            })?;
        if let Some(keep_alive) = keep_alive {
            kept.keep_alive = keep_alive;
        }
        kept.expires = Instant::now() + kept.keep_alive;
        Ok(read(&mut kept.value, kept.keep_alive))
    }

    /// Removes the contexts `ids` (`_all`: every one) and returns them.
    pub fn remove(&self, ids: &[String]) -> Vec<T> {
        let Ok(mut entries) = self.entries.lock() else {
            return Vec::new();
        };
        if ids.iter().any(|id| id == "_all") {
            return entries.drain().map(|(_, kept)| kept.value).collect();
        }
        ids.iter()
            .filter_map(|id| entries.remove(id.as_str()))
            .map(|kept| kept.value)
            .collect()
    }
}

/// One open scroll.
struct Context {
    /// The search, with `from` at the next page.
    spec: SearchSpec,
    /// The snapshot of each index.
    targets: Vec<(Arc<IndexEntry>, Searcher)>,
}

/// The node's open scrolls.
#[derive(Default)]
pub struct Scrolls {
    contexts: Contexts<Context>,
}

impl Scrolls {
    /// Opens a scroll positioned after the page just returned; returns its id.
    pub fn open(
        &self,
        mut spec: SearchSpec,
        targets: Vec<(Arc<IndexEntry>, Searcher)>,
        keep_alive: Duration,
    ) -> String {
        let id = super::docs::generate_id();
        spec.from += spec.size;
        self.contexts
            .insert(id.clone(), Context { spec, targets }, keep_alive);
        id
    }

    fn take_page(
        &self,
        id: &str,
        keep_alive: Option<Duration>,
    ) -> Result<(SearchSpec, Vec<Target>), ApiError> {
        self.contexts.read(id, keep_alive, |context, _| {
            let spec = context.spec.clone();
            context.spec.from += context.spec.size;
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
        Some(v) => parse_interval(&v)?,
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
