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

use super::search::{Target, execute_on};
use super::{AppState, Params, parse_object_body};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::respond;
use cameodb_search::SearchSpec;

/// Scroll limits, as Elasticsearch names them.
#[derive(Clone, Copy, Debug)]
pub struct ScrollLimits {
    /// `search.max_open_scroll_context`: most open contexts; a new scroll beyond it is refused
    /// (429), while the contexts already handed out keep working.
    pub max_open: usize,
    /// `search.max_keep_alive`: the longest keep-alive a scroll may ask for (400 beyond it).
    pub max_keep_alive: Duration,
}

impl Default for ScrollLimits {
    /// Elasticsearch's defaults: 500 contexts, 24 hours.
    fn default() -> Self {
        ScrollLimits {
            max_open: 500,
            max_keep_alive: Duration::from_secs(24 * 3600),
        }
    }
}

/// Contexts that expire after their keep-alive without a read: this node's scrolls and, on a
/// coordinator, its cluster scrolls.
pub struct Contexts<T> {
    /// Open contexts by id.
    entries: Mutex<HashMap<String, Kept<T>>>,
    /// How many may be open and for how long.
    limits: ScrollLimits,
}

/// A context with its lease.
struct Kept<T> {
    value: T,
    /// How long it lives without a read.
    keep_alive: Duration,
    /// When it expires.
    expires: Instant,
}

impl<T> Contexts<T> {
    /// An empty registry under `limits`.
    pub fn new(limits: ScrollLimits) -> Contexts<T> {
        Contexts {
            entries: Mutex::default(),
            limits,
        }
    }

    /// Refuses a keep-alive above `search.max_keep_alive` (checked before any work is done).
    pub fn check_keep_alive(&self, keep_alive: Duration) -> Result<(), ApiError> {
        if keep_alive > self.limits.max_keep_alive {
            return Err(ApiError::illegal_argument(format!(
                "Keep alive for request ({}) is too large. It must be less than ({}). This limit can be set by changing the [search.max_keep_alive] cluster level setting.",
                format_duration(keep_alive),
                format_duration(self.limits.max_keep_alive)
            )));
        }
        Ok(())
    }

    /// Refuses a new context when `search.max_open_scroll_context` are open (expired ones are
    /// dropped first). Checked before a scroll's first search runs; [`Contexts::insert`]
    /// checks again.
    pub fn check_room(&self) -> Result<(), ApiError> {
        self.with_room().map(drop)
    }

    /// The registry, locked, with expired contexts dropped; refused when it is full.
    fn with_room(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Kept<T>>>, ApiError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| ApiError::internal("scroll registry poisoned"))?;
        let now = Instant::now();
        entries.retain(|_, kept| kept.expires > now);
        if entries.len() >= self.limits.max_open {
            return Err(too_many_contexts(self.limits.max_open));
        }
        Ok(entries)
    }

    /// Keeps `value` under `id` for `keep_alive`; refused (and `value` dropped) beyond
    /// `search.max_keep_alive` or when `search.max_open_scroll_context` contexts are open.
    pub fn insert(&self, id: String, value: T, keep_alive: Duration) -> Result<(), ApiError> {
        self.check_keep_alive(keep_alive)?;
        let mut entries = self.with_room()?;
        let now = Instant::now();
        entries.insert(
            id,
            Kept {
                value,
                keep_alive,
                expires: now + keep_alive,
            },
        );
        Ok(())
    }

    /// Runs `read` on the live context `id` (with the keep-alive in force, `keep_alive` when
    /// given) and pushes its expiry back; 404 when it is gone.
    pub fn read<R>(
        &self,
        id: &str,
        keep_alive: Option<Duration>,
        read: impl FnOnce(&mut T, Duration) -> R,
    ) -> Result<R, ApiError> {
        if let Some(keep_alive) = keep_alive {
            self.check_keep_alive(keep_alive)?;
        }
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

/// The 429 for a scroll beyond `search.max_open_scroll_context`, as Elasticsearch words it.
fn too_many_contexts(max_open: usize) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_scroll_contexts_exception",
        format!(
            "Trying to create too many scroll contexts. Must be less than or equal to: [{max_open}]. This limit can be set by changing the [search.max_open_scroll_context] setting."
        ),
    )
}

/// A keep-alive as Elasticsearch prints time values (`1d`, `90m`, `1500ms`).
fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if millis >= per && millis.is_multiple_of(per) {
            return format!("{}{unit}", millis / per);
        }
    }
    format!("{millis}ms")
}

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
        let id = super::docs::generate_id();
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
