//! Change-feed calls: one node's part of a feed read.

use serde::{Deserialize, Serialize};

/// Read this node's feed of one index.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangesCall {
    /// The concrete index.
    pub index: String,
    /// Where this node's reader is (`None`: from the start).
    pub since: Option<NodeCursor>,
    /// At most this many changes.
    pub limit: usize,
    /// Wait at most this long (milliseconds) for a change when there is none yet.
    pub wait_ms: u64,
    /// Only changes of documents in these token ranges (the ranges this node owns, with
    /// replicas: every change then comes from one node); `None`: all.
    #[serde(default)]
    pub ranges: Option<cameodb_search::tokens::TokenRanges>,
}

/// A reader's position in one node's feed (see `cameodb_storage::Cursor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCursor {
    /// The next sequence to read.
    pub seq: u64,
    /// The collection floor when the reader started.
    pub floor: u64,
}

/// One change, as the coordinator renders it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangeItem {
    /// The document id.
    pub id: String,
    /// Its sequence number on its node.
    pub seq: u64,
    /// The version the change produced.
    pub version: u64,
    /// The change's stamp: its clock reading is the `_seq_no` GET shows for that version.
    pub stamp: cameodb_storage::Stamp,
    /// The body written; `None` for a delete.
    #[serde(with = "serde_bytes")]
    pub source: Option<Vec<u8>>,
}

/// One node's page of the feed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChangesPage {
    /// The changes, in this node's sequence order.
    pub changes: Vec<ChangeItem>,
    /// Where this node's reader goes on.
    pub next: NodeCursor,
}
