//! Open scroll contexts under Elasticsearch's limits: each lives for its keep-alive after its last
//! read, no more than `search.max_open_scroll_context` are open, and none may ask for more than
//! `search.max_keep_alive`. Used for this node's scrolls and for the cluster scrolls a
//! coordinator holds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::error::ApiError;

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
