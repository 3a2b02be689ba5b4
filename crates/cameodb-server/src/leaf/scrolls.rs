//! Scroll snapshots on a node: the searchers a scroll's first page used, kept under an id so
//! later pages read the same point in time. Contexts expire after their keep-alive without a
//! read; the scroll itself (spec, paging) lives on its coordinator.

use std::sync::Arc;
use std::time::Duration;

use cameodb_storage::Snapshot;

use super::search::Target;
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::scroll_contexts::{Contexts, ScrollLimits};

/// One kept snapshot.
struct Context {
    /// The searcher of each index the search read.
    targets: Vec<(Arc<IndexEntry>, Snapshot)>,
}

/// The snapshots this node keeps for open scrolls.
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

    /// Keeps the searchers a search just used; returns the id to read them again under.
    pub fn open(
        &self,
        targets: Vec<(Arc<IndexEntry>, Snapshot)>,
        keep_alive: Duration,
    ) -> Result<String, ApiError> {
        let id = crate::ids::generate_id();
        self.contexts
            .insert(id.clone(), Context { targets }, keep_alive)?;
        Ok(id)
    }

    /// The snapshot kept under `id`, with its expiry pushed back (the coordinator does the
    /// paging).
    pub fn snapshot(
        &self,
        id: &str,
        keep_alive: Option<Duration>,
    ) -> Result<Vec<Target>, ApiError> {
        self.contexts.read(id, keep_alive, |context, _| {
            context
                .targets
                .iter()
                .map(|(e, s)| (Arc::clone(e), Some(s.clone())))
                .collect()
        })
    }

    /// Frees the snapshots `ids`; says how many there were.
    pub fn clear(&self, ids: &[String]) -> usize {
        self.contexts.remove(ids).len()
    }
}
