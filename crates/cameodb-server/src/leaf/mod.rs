//! The leaf executor: what one node does with its own indexes when a coordinator (itself or
//! another node) sends it its part of a request. Every input is a typed message, parsed and
//! checked where the request arrived; every answer is typed. Nothing here knows of HTTP
//! handlers or of the cluster: work that needs the rest of the cluster (registering new
//! dynamic fields) is asked of the caller through [`NewFields`].

pub mod admin;
pub mod by_query;
pub mod changes;
pub mod docs;
pub mod repair;
pub mod replica;
pub mod scrolls;
pub mod search;

use std::sync::Arc;
use std::time::Duration;

use cameodb_storage::{Store, WriteOp};
use futures::future::BoxFuture;

use crate::catalog::{Catalog, IndexEntry};
use crate::error::ApiError;
use crate::ingest_pool::IngestPool;
use crate::request::params::Refresh;

/// What a node's leaf executor works with.
pub struct Leaf {
    /// The node's indexes.
    pub catalog: Arc<Catalog>,
    /// Search snapshots kept for scrolls (whichever node coordinates them).
    pub scrolls: scrolls::Scrolls,
    /// Low-priority threads for parsing bulk sources.
    pub ingest: Arc<IngestPool>,
}

/// Registers, before they are written, the fields writes would add to an index's mapping
/// dynamically, so every node maps a new field the same way. The cluster's metadata service
/// implements it; the leaf only calls it.
pub trait NewFields: Send + Sync {
    /// Registers what `ops` would add to `entry`'s mapping; gives the ops back to be written.
    fn register<'a>(
        &'a self,
        entry: &'a Arc<IndexEntry>,
        ops: Vec<WriteOp>,
    ) -> BoxFuture<'a, Vec<WriteOp>>;
}

/// How long `refresh=wait_for` waits at most.
const WAIT_FOR_LIMIT: Duration = Duration::from_secs(30);

/// Applies `refresh` after a write whose highest sequence number is `seq` (on a blocking
/// thread); says whether it refreshed.
pub fn apply_refresh(store: &Store, refresh: Refresh, seq: Option<u64>) -> Result<bool, ApiError> {
    match (refresh, seq) {
        (Refresh::No, _) | (_, None) => Ok(false),
        (Refresh::Now, Some(_)) => {
            store.refresh()?;
            Ok(true)
        }
        (Refresh::WaitFor, Some(seq)) => {
            store.wait_searchable(seq, WAIT_FOR_LIMIT);
            Ok(false)
        }
    }
}
