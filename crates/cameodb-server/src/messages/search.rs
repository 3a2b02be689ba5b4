//! The typed messages nodes exchange for a cluster search and a cluster scroll: what the
//! coordinator sends (`ShardRequest`, `ScrollCall`) and what a node answers (`ShardAnswer`). The
//! cluster code sends them; the node-to-node endpoints serve them.

use cameodb_search::dfs::ClusterStats;
use cameodb_search::{Partial, SearchSpec};
use serde::{Deserialize, Serialize};

/// A search, as a coordinator sends it to each node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardRequest {
    /// The concrete indexes to search (a node skips those it lacks).
    pub indices: Vec<String>,
    /// The search, parsed once by the coordinator, with `from`/`size` rewritten to
    /// `0`/`from + size` (the coordinator pages the merge).
    pub spec: SearchSpec,
    /// Cluster-wide term statistics, for topology-independent scores.
    pub stats: Option<ClusterStats>,
    /// Scroll snapshot handling.
    pub pin: Option<Pin>,
    /// The token ranges to keep to, per index this node answers for only part of (with
    /// replicas, another node answers for the rest).
    #[serde(default)]
    pub ranges: std::collections::BTreeMap<String, cameodb_search::tokens::TokenRanges>,
}

/// How a node keeps the snapshot a cluster scroll reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Pin {
    /// Keep this search's snapshot for the keep-alive and say under which id.
    Open {
        /// Keep-alive, milliseconds.
        keep_alive_ms: u64,
    },
    /// Search the snapshot kept under this id.
    Use {
        /// The node-local scroll id.
        id: String,
        /// New keep-alive, milliseconds.
        keep_alive_ms: Option<u64>,
    },
}

/// A node's answer to a [`ShardRequest`], CBOR-encoded (aggregation partials have non-string
/// map keys, which JSON cannot carry).
#[derive(Default, Serialize, Deserialize)]
pub struct ShardAnswer {
    /// What this node found.
    pub partial: Partial,
    /// The snapshot id, when one was opened or used.
    pub pin: Option<String>,
}

/// A scroll page or clear, asked of the node that coordinates the scroll.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScrollCall {
    /// Cluster scroll ids.
    pub ids: Vec<String>,
    /// New keep-alive, milliseconds.
    pub keep_alive_ms: Option<u64>,
}
