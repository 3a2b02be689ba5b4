//! Document calls: a write or read of one document on its owner, and the per-owner parts of a
//! `_bulk` and an `_mget`. The coordinator parses and checks the request; the owner executes.

use cameodb_storage::{Source, StoredDoc, WriteOutcome, WriteResult};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::request::bulk::Action;
use crate::request::params::Refresh;

/// A document body parsed where the request arrived. A call to this node carries it as it is;
/// on the wire it travels as its original bytes and is parsed again where it is decoded (the
/// owner needs the parsed object to index it).
#[derive(Clone, Debug)]
pub struct WireSource(pub Source);

impl Serialize for WireSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.0.to_bytes().map_err(serde::ser::Error::custom)?;
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for WireSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WireSource, D::Error> {
        let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(deserializer)?;
        Source::from_slice(&bytes)
            .map(WireSource)
            .map_err(serde::de::Error::custom)
    }
}

/// One document write, on the document's owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocWrite {
    /// The index (created on the owner if `auto_create` and missing there).
    pub index: String,
    /// The document id.
    pub id: String,
    /// The `routing` value, which places the document instead of its id.
    pub routing: Option<String>,
    /// What to write.
    pub body: WriteBody,
    /// `if_seq_no` (with the only primary term there is): apply only at this sequence number.
    pub if_seq_no: Option<u64>,
    /// `version` with `version_type=external|external_gte`.
    #[serde(default)]
    pub external: Option<cameodb_storage::ExternalVersion>,
    /// `refresh`.
    pub refresh: Refresh,
    /// Whether a missing index is created (index, create, update) or an error (delete).
    pub auto_create: bool,
    /// The coordinator's stamp for the write (raised by the replica that resolves it past
    /// the stamp of what it replaces).
    #[serde(default)]
    pub stamp: Option<cameodb_storage::Stamp>,
    /// `wait_for_active_shards`: the coordinator's business, not the lead's.
    #[serde(default)]
    pub wait: crate::request::params::ActiveShards,
}

/// What a [`DocWrite`] writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WriteBody {
    /// Store the document (`create`: only if it does not exist).
    Index {
        /// The document.
        source: WireSource,
        /// `op_type=create` or `_create`.
        create: bool,
    },
    /// A partial update: `doc` merged into the document.
    Update {
        /// The partial document.
        doc: WireSource,
        /// What to store when the document is missing.
        upsert: Option<WireSource>,
        /// Store `doc` itself when the document is missing.
        doc_as_upsert: bool,
    },
    /// A scripted update, read-modify-write on the owner.
    Script {
        /// The `script` object.
        script: Value,
        /// The `upsert` document, if any.
        upsert: Option<Value>,
        /// Whether the script also runs on the upsert document.
        scripted_upsert: bool,
        /// `retry_on_conflict`.
        retries: usize,
    },
    /// Remove the document.
    Delete,
}

/// What a write did, as the coordinator renders it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Written {
    /// The document id.
    pub id: String,
    /// Created, updated, deleted, not found or noop.
    pub result: WriteResult,
    /// The document's `_seq_no` after the write: its stamp's clock reading, the same on
    /// every replica.
    pub seq_no: Option<u64>,
    /// The document's version after the write.
    pub version: Option<u64>,
    /// Whether the write refreshed the index (`refresh=true`).
    pub forced_refresh: bool,
    /// What the write did, for the other replicas; `None` when it wrote nothing.
    #[serde(default)]
    pub applied: Option<super::replica::WireApplied>,
}

impl Written {
    /// From the store's outcome.
    pub fn new(outcome: WriteOutcome, forced_refresh: bool) -> Written {
        Written {
            id: outcome.key.id.to_string(),
            result: outcome.result,
            seq_no: outcome.stamp.map(|s| s.hlc),
            version: outcome.version,
            forced_refresh,
            applied: outcome.applied.map(Into::into),
        }
    }
}

/// One document read, on the document's owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocRead {
    /// The index.
    pub index: String,
    /// The document id.
    pub id: String,
    /// The `routing` value.
    pub routing: Option<String>,
    /// `refresh=true`: refresh the index before reading.
    pub refresh: bool,
    /// `preference=_local`: read this node's copy when it holds one.
    #[serde(default)]
    pub local: bool,
}

/// A stored document, as read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FoundDoc {
    /// `_seq_no`: the stamp's clock reading, the same on every replica.
    pub seq_no: u64,
    /// `_version`.
    pub version: u64,
    /// The version's stamp (read repair compares replicas by it).
    pub stamp: cameodb_storage::Stamp,
    /// The document as stored (JSON bytes).
    #[serde(with = "serde_bytes")]
    pub source: Vec<u8>,
}

impl From<StoredDoc> for FoundDoc {
    fn from(doc: StoredDoc) -> FoundDoc {
        FoundDoc {
            seq_no: doc.stamp.hlc,
            version: doc.version,
            stamp: doc.stamp,
            source: doc.source,
        }
    }
}

impl FoundDoc {
    /// The document as a JSON value.
    pub fn source_json(&self) -> Result<Value, crate::error::ApiError> {
        serde_json::from_slice(&self.source)
            .map_err(|e| crate::error::ApiError::internal(format!("corrupt stored document: {e}")))
    }
}

/// The items of a `_bulk` one node owns, in request order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BulkPart {
    /// The items.
    pub items: Vec<BulkItem>,
    /// `refresh`, once for the whole part.
    pub refresh: Refresh,
}

/// One `_bulk` item whose action line the coordinator checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BulkItem {
    /// What it does.
    pub action: Action,
    /// The index.
    pub index: String,
    /// The document id (generated by the coordinator when the line had none).
    pub id: String,
    /// The `routing` value.
    pub routing: Option<String>,
    /// `if_seq_no`, resolved against the primary term.
    pub if_seq_no: Option<u64>,
    /// `version` with `version_type: external|external_gte`.
    #[serde(default)]
    pub external: Option<cameodb_storage::ExternalVersion>,
    /// `create` for index actions (`op_type: create`).
    pub create: bool,
    /// The coordinator's stamp for the write.
    #[serde(default)]
    pub stamp: Option<cameodb_storage::Stamp>,
    /// The source line, parsed on the owner (a malformed one fails only its item); a slice of
    /// the request body, not a copy, for a part this node owns.
    pub source: bytes::Bytes,
}
