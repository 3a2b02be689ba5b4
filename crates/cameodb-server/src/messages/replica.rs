//! Replication calls: a resolved write sent to the other replicas of its document, and the
//! catch-up reads a replica makes of its peers (a digest of their change feed, then the
//! documents it lacks).

use cameodb_search::tokens::TokenRanges;
use cameodb_storage::{Applied, Stamp};
use serde::{Deserialize, Serialize};

use super::changes::NodeCursor;
use crate::request::params::Refresh;

/// What a write did to one document, as every replica applies it (see
/// `cameodb_storage::Applied`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireApplied {
    /// The document's version after the write.
    pub version: u64,
    /// The write's last-writer-wins stamp.
    pub stamp: Stamp,
    /// The new body; `None` for a delete.
    #[serde(with = "serde_bytes")]
    pub body: Option<Vec<u8>>,
}

impl From<Applied> for WireApplied {
    fn from(applied: Applied) -> WireApplied {
        WireApplied {
            version: applied.version,
            stamp: applied.stamp,
            body: applied.body,
        }
    }
}

/// One resolved write for a replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplicaOp {
    /// The concrete index.
    pub index: String,
    /// The document id.
    pub id: String,
    /// Its ring token (from its id or routing), so the replica needs no routing value.
    pub token: u64,
    /// What to apply.
    pub applied: WireApplied,
}

/// Resolved writes for one replica, applied last-writer-wins.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplicaBatch {
    /// The writes, in the order they were resolved.
    pub ops: Vec<ReplicaOp>,
    /// `refresh` of the request they came from: searches may go to any replica.
    pub refresh: Refresh,
}

/// Read a digest of this node's feed of an index: which documents changed, at which stamp.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestCall {
    /// The concrete index.
    pub index: String,
    /// Where the reader is (`None`: from the start).
    pub since: Option<NodeCursor>,
    /// At most this many feed entries are read (before filtering).
    pub limit: usize,
    /// The reading replica: this node keeps its feed from `since` on until the reader moves
    /// on (a change-feed consumer named after it), so a replica that is down does not miss
    /// the history it needs to catch up.
    pub holder: String,
    /// The token ranges the reader holds: only their changes are listed.
    pub ranges: TokenRanges,
}

/// One feed entry, without its body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestEntry {
    /// The document id.
    pub id: String,
    /// Its ring token.
    pub token: u64,
    /// The change's version.
    pub version: u64,
    /// The change's stamp.
    pub stamp: Stamp,
    /// A delete.
    pub deleted: bool,
}

/// A page of a feed digest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestPage {
    /// The entries in the reader's ranges, in feed order.
    pub entries: Vec<DigestEntry>,
    /// Where the reader goes on.
    pub next: NodeCursor,
    /// Whether the feed had nothing more when it was read.
    pub at_end: bool,
}

/// Fetch the current versions of documents (for a catching-up replica).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FetchCall {
    /// The concrete index.
    pub index: String,
    /// The documents, as (id, token).
    pub keys: Vec<(String, u64)>,
}

/// Buckets of an anti-entropy digest: documents fall in one by the top bits of their token.
pub const DIGEST_BUCKETS: usize = 256;

/// The bucket of `token` in an anti-entropy digest.
pub fn digest_bucket(token: u64) -> usize {
    // The top 8 bits of a u64 always fit a bucket index.
    (token >> 56) as usize
}

/// Compare-and-repair calls between two replicas of the same token ranges.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RepairCall {
    /// A hash per bucket of (id, token, stamp, deleted) of every version held in `ranges`.
    Digest {
        /// The concrete index.
        index: String,
        /// The ranges both replicas hold.
        ranges: TokenRanges,
    },
    /// The versions held in `ranges` that fall in `buckets`.
    Versions {
        /// The concrete index.
        index: String,
        /// The ranges both replicas hold.
        ranges: TokenRanges,
        /// The buckets whose hashes differed.
        buckets: Vec<usize>,
    },
}
