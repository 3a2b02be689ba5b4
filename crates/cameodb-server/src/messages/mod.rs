//! The typed calls nodes make to each other and their typed answers. A coordinator builds a
//! [`NodeCall`] from the request it parsed (or from its part for one node) and sends it through
//! [`crate::cluster::ClusterCtx::call_node`]: to itself as a direct call, to another node as
//! CBOR over libp2p. Nothing on the far side parses an HTTP request again.

pub mod changes;
pub mod docs;
pub mod replica;
pub mod search;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use cameodb_search::dfs::ClusterStats;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aliases::{AliasChange, AliasMeta};
use crate::catalog::IndexMeta;
use crate::error::ApiError;
use crate::templates::TemplateRecord;
pub use docs::{BulkPart, DocRead, DocWrite, FoundDoc, Written};
pub use search::{Pin, ScrollCall, ShardAnswer, ShardRequest};

/// What one node asks of another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum NodeCall {
    /// This node's part of a search (or a count, or a scroll page).
    Search(ShardRequest),
    /// This node's term statistics for a search (round one of a scored search).
    Dfs(ShardRequest),
    /// Free scroll snapshots this node keeps for another coordinator.
    ReleasePins(Vec<String>),
    /// The next page of a scroll this node coordinates.
    ScrollPage(ScrollCall),
    /// Free scrolls this node coordinates.
    ClearScrolls(ScrollCall),
    /// A search on a point in time this node coordinates.
    PitSearch {
        /// The point-in-time id.
        id: String,
        /// New keep-alive, milliseconds.
        keep_alive_ms: Option<u64>,
        /// The search (its sort already with the `_shard_doc` tiebreaker).
        spec: cameodb_search::SearchSpec,
    },
    /// Close points in time this node coordinates.
    ClosePits(Vec<String>),
    /// One document write on its owner.
    Write(DocWrite),
    /// One document read on its owner.
    Read(DocRead),
    /// The items of a `_bulk` this node owns, in request order.
    Bulk(BulkPart),
    /// The documents of an `_mget` this node owns, in request order.
    Mget(Vec<DocRead>),
    /// A delete- or update-by-query over the documents this node holds.
    ByQuery(ByQueryPart),
    /// Refresh these indexes here.
    Refresh(Vec<String>),
    /// This node's change feed of an index.
    Changes(changes::ChangesCall),
    /// Apply writes another replica resolved.
    Replicate(replica::ReplicaBatch),
    /// A digest of this node's feed of an index, for a replica catching up.
    Digest(replica::DigestCall),
    /// The current versions of some documents, for a replica catching up.
    Fetch(replica::FetchCall),
    /// Anti-entropy: compare what two replicas hold.
    Repair(replica::RepairCall),
    /// Documents and bytes per index held here.
    NodeStats,
    /// Documents of an index here per shard, and its bytes here (`_cat/shards`).
    ShardDocs {
        /// The concrete index.
        index: String,
        /// Each shard's id and token ranges.
        shards: Vec<(usize, cameodb_search::tokens::TokenRanges)>,
    },
    /// As the metadata owner of `index`: create it if missing and tell every node.
    EnsureIndex(String),
    /// As the metadata owner: create an index from a create-index body and tell every node.
    CreateIndex {
        /// The index name.
        index: String,
        /// The checked create-index request.
        request: CreateIndex,
    },
    /// As the metadata owner: apply a mapping change and tell every node.
    PutMapping {
        /// The index expression.
        index: String,
        /// The mapping body.
        mapping: Value,
    },
    /// As the metadata owner: change an index's dynamic settings and tell every node.
    PutSettings {
        /// The concrete index.
        index: String,
        /// The checked changes, by full name.
        changes: BTreeMap<String, String>,
    },
    /// Take these template records where newer than this node's.
    ApplyTemplates(Vec<TemplateRecord>),
    /// Every template record this node has (for a node whose template digest differs).
    GetTemplates,
    /// As the metadata owner: change an index's aliases and tell every node (as settings).
    ChangeAliases {
        /// The concrete index.
        index: String,
        /// The changes, in order.
        changes: Vec<AliasChange>,
    },
    /// Take an index's new settings if newer than this node's (the owner tells every node).
    ApplySettings {
        /// The concrete index.
        index: String,
        /// Its identity and settings.
        meta: IndexMeta,
    },
    /// Apply a mapping change to this node's copy only (the owner tells every node this).
    ApplyMapping {
        /// The concrete index.
        index: String,
        /// The mapping body.
        mapping: Value,
    },
    /// This node's descriptor of an index (metadata sync).
    GetIndex(String),
    /// Another node created (or describes) an index.
    PutIndex {
        /// The index name.
        name: String,
        /// Its identity, settings and mapping.
        descriptor: IndexDescriptor,
    },
    /// Another node deleted an index; this copy goes if it is the same one (same uuid).
    DeleteIndex {
        /// The index name.
        name: String,
        /// The deleted index's uuid.
        uuid: String,
    },
    /// Take these cluster settings if they are newer than yours (`_cluster/settings`).
    ApplyClusterSettings(crate::cluster::dynamic::Versioned),
    /// What you streamed from your peers (`_cat/recovery`).
    Recoveries,
}

/// What a node answers to a [`NodeCall`] that succeeded.
#[derive(Serialize, Deserialize)]
pub enum NodeReply {
    /// Done; nothing to report.
    Ack,
    /// To `Search`.
    Shard(ShardAnswer),
    /// To `Dfs`.
    Stats(ClusterStats),
    /// To `ReleasePins`, `ClearScrolls` and `ClosePits`: how many were freed.
    Freed(usize),
    /// To `ScrollPage` and `PitSearch`: the page as the client sees it.
    Page(Value),
    /// To `Write`.
    Written(Written),
    /// To `Read`: the document, if it exists.
    Doc(Option<FoundDoc>),
    /// To `Bulk`: each item's outcome, in order.
    Bulk(Vec<Result<Written, WireError>>),
    /// To `Mget`: each document's outcome, in order.
    Docs(Vec<Result<Option<FoundDoc>, WireError>>),
    /// To `ByQuery`.
    Tally(Tally),
    /// To `Changes`.
    Changes(changes::ChangesPage),
    /// To `Replicate`: each write's outcome, in order (applied, or already superseded).
    Replicated(Vec<Result<(), WireError>>),
    /// To `Digest`.
    Digest(replica::DigestPage),
    /// To `Fetch`: each document's current version, if it has one.
    Fetched(Vec<Option<replica::WireApplied>>),
    /// To `Repair(Digest)`: one hash per bucket.
    RangeDigest(Vec<u64>),
    /// To `Repair(Versions)`: the versions held.
    Versions(Vec<replica::DigestEntry>),
    /// To `NodeStats`: (documents, bytes) per index.
    Sizes(BTreeMap<String, (u64, u64)>),
    /// A node's recoveries (`_cat/recovery`).
    Recoveries(Vec<crate::cluster::recovery::Recovery>),
    /// To `ShardDocs`: documents per shard (in the order asked) and the index's bytes.
    ShardDocs(Vec<u64>, u64),
    /// To `GetIndex`.
    Descriptor(IndexDescriptor),
    /// To `GetTemplates`.
    Templates(Vec<TemplateRecord>),
}

/// A checked create-index request.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CreateIndex {
    /// Index settings, flattened (`index.` prefixes stripped).
    pub settings: BTreeMap<String, String>,
    /// The `mappings` object, if any.
    pub mappings: Option<Value>,
    /// The `aliases` object, checked.
    #[serde(default)]
    pub aliases: BTreeMap<String, AliasMeta>,
}

/// What nodes exchange about an index they hold: its identity and settings, and its mapping.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexDescriptor {
    /// Identity (uuid, creation date, placement) and settings.
    pub meta: IndexMeta,
    /// The mapping, as Elasticsearch renders it.
    pub mappings: Value,
}

/// Which by-query operation, and how.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ByQueryPart {
    /// The concrete indexes.
    pub indices: Vec<String>,
    /// Update (`true`) or delete.
    pub update: bool,
    /// Which documents.
    pub query: cameodb_search::QuerySpec,
    /// For an update: the partial document merged into each (a CameoDB extension).
    pub doc: Option<Value>,
    /// For an update: the `script` object run on each.
    pub script: Option<Value>,
    /// `refresh` after the writes.
    pub refresh: crate::request::params::Refresh,
    /// `conflicts=proceed`: count conflicts instead of failing on them.
    pub proceed: bool,
    /// The token ranges to keep to, per index this node answers for only part of.
    #[serde(default)]
    pub ranges: BTreeMap<String, cameodb_search::tokens::TokenRanges>,
}

/// What a by-query operation did on one node; tallies add up across nodes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Documents that matched.
    pub total: u64,
    /// Documents deleted or updated.
    pub done: u64,
    /// Documents an update left unchanged.
    pub noops: u64,
    /// Write batches.
    pub batches: u64,
    /// Writes that lost to a concurrent change.
    pub conflicts: u64,
    /// Failed documents (and nodes), in Elasticsearch's shape.
    pub failures: Vec<Value>,
    /// The writes made, for the other replicas of their documents.
    #[serde(default)]
    pub applied: Vec<replica::ReplicaOp>,
}

impl Tally {
    /// Adds another node's (or index's) tally to this one.
    pub fn add(&mut self, other: Tally) {
        self.total += other.total;
        self.done += other.done;
        self.noops += other.noops;
        self.batches += other.batches;
        self.conflicts += other.conflicts;
        self.failures.extend(other.failures);
        self.applied.extend(other.applied);
    }
}

/// An [`ApiError`] as it crosses the wire: the same fields, the status as a number.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireError {
    /// HTTP status.
    status: u16,
    /// Elasticsearch error type.
    kind: String,
    /// Human-readable reason.
    reason: String,
    /// The index concerned.
    index: Option<String>,
    /// Further fields of the error object.
    details: Option<Box<Map<String, Value>>>,
}

impl From<ApiError> for WireError {
    fn from(err: ApiError) -> WireError {
        WireError {
            status: err.status.as_u16(),
            kind: err.kind,
            reason: err.reason,
            index: err.index,
            details: err.details,
        }
    }
}

impl From<WireError> for ApiError {
    fn from(err: WireError) -> ApiError {
        let mut out = ApiError::new(
            StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_GATEWAY),
            &err.kind,
            err.reason,
        );
        out.index = err.index;
        out.details = err.details;
        out
    }
}

/// The answer to a call as it crosses the wire.
pub type WireAnswer = Result<NodeReply, WireError>;

/// Encodes a message as CBOR (aggregation partials have non-string map keys, which JSON
/// cannot carry); a value that cannot be encoded is an error, never an empty message.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    ciborium::into_writer(message, &mut out)
        .map_err(|e| ApiError::internal(format!("cannot encode a node message: {e}")))?;
    Ok(out)
}

/// Decodes a CBOR message.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    ciborium::from_reader(bytes)
        .map_err(|e| ApiError::internal(format!("undecodable node message: {e}")))
}

impl NodeReply {
    /// The reply's name, for the error when a call got an answer of another kind.
    fn name(&self) -> &'static str {
        match self {
            NodeReply::Ack => "ack",
            NodeReply::Shard(_) => "shard",
            NodeReply::Stats(_) => "stats",
            NodeReply::Freed(_) => "freed",
            NodeReply::Page(_) => "page",
            NodeReply::Written(_) => "written",
            NodeReply::Doc(_) => "doc",
            NodeReply::Bulk(_) => "bulk",
            NodeReply::Docs(_) => "docs",
            NodeReply::Tally(_) => "tally",
            NodeReply::Changes(_) => "changes",
            NodeReply::Replicated(_) => "replicated",
            NodeReply::Digest(_) => "digest",
            NodeReply::Fetched(_) => "fetched",
            NodeReply::RangeDigest(_) => "range digest",
            NodeReply::Versions(_) => "versions",
            NodeReply::Sizes(_) => "sizes",
            NodeReply::Recoveries(_) => "recoveries",
            NodeReply::ShardDocs(..) => "shard docs",
            NodeReply::Descriptor(_) => "descriptor",
            NodeReply::Templates(_) => "templates",
        }
    }

    /// The error for a reply that does not answer the call made.
    pub fn unexpected(&self, wanted: &str) -> ApiError {
        ApiError::internal(format!(
            "a node answered [{}] to a [{wanted}] call",
            self.name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::docs::{WireSource, WriteBody};
    use crate::request::params::Refresh;

    #[test]
    fn a_write_crosses_the_wire_with_its_document() {
        let source = cameodb_storage::Source::from_slice(br#"{"title":"Alien","year":1979}"#)
            .expect("an object");
        let call = NodeCall::Write(DocWrite {
            index: "movies".into(),
            id: "1".into(),
            routing: Some("r".into()),
            body: WriteBody::Index {
                source: WireSource(source.clone()),
                create: true,
            },
            if_seq_no: Some(7),
            external: Some(cameodb_storage::ExternalVersion {
                version: 3,
                gte: true,
            }),
            refresh: Refresh::WaitFor,
            auto_create: true,
            stamp: None,
            wait: Default::default(),
        });
        let NodeCall::Write(back) =
            decode::<NodeCall>(&encode(&call).expect("encodes")).expect("decodes")
        else {
            panic!("another call came back");
        };
        assert_eq!((back.index.as_str(), back.id.as_str()), ("movies", "1"));
        assert_eq!(back.routing.as_deref(), Some("r"));
        assert_eq!((back.if_seq_no, back.refresh), (Some(7), Refresh::WaitFor));
        let WriteBody::Index {
            source: back,
            create,
        } = back.body
        else {
            panic!("another body came back");
        };
        assert!(create);
        assert_eq!(back.0.as_map(), source.as_map());
    }

    #[test]
    fn an_error_comes_back_as_the_same_error() {
        let mut details = Map::new();
        details.insert("bytes_limit".into(), Value::from(1024));
        let mut err = ApiError::rejected("busy").with_index("movies");
        err.details = Some(Box::new(details));
        let answer: WireAnswer = Err(err.clone().into());
        let back: WireAnswer = decode(&encode(&answer).expect("encodes")).expect("decodes");
        let Err(back) = back else {
            panic!("an answer came back");
        };
        let back = ApiError::from(back);
        assert_eq!(back.body(), err.body());
        assert_eq!(back.status, err.status);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\xff\xff", b"\xa1\x63abc\x00"] {
            assert!(decode::<NodeCall>(bytes).is_err());
        }
        // A document that is not an object is refused as it is decoded.
        let mut bytes = Vec::new();
        ciborium::into_writer(&serde_bytes::Bytes::new(b"[1,2]"), &mut bytes).expect("encodes");
        assert!(decode::<WireSource>(&bytes).is_err());
    }
}
