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
    /// `refresh`.
    pub refresh: Refresh,
    /// Whether a missing index is created (index, create, update) or an error (delete).
    pub auto_create: bool,
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
    /// The write's sequence number (or the current document's, for a noop).
    pub seq_no: Option<u64>,
    /// The document's version after the write.
    pub version: Option<u64>,
    /// Whether the write refreshed the index (`refresh=true`).
    pub forced_refresh: bool,
}

impl Written {
    /// From the store's outcome.
    pub fn new(outcome: WriteOutcome, forced_refresh: bool) -> Written {
        Written {
            id: outcome.key.id.to_string(),
            result: outcome.result,
            seq_no: outcome.seq_no,
            version: outcome.version,
            forced_refresh,
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
}

/// A stored document, as read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FoundDoc {
    /// `_seq_no`.
    pub seq_no: u64,
    /// `_version`.
    pub version: u64,
    /// The document as stored (JSON bytes).
    #[serde(with = "serde_bytes")]
    pub source: Vec<u8>,
}

impl From<StoredDoc> for FoundDoc {
    fn from(doc: StoredDoc) -> FoundDoc {
        FoundDoc {
            seq_no: doc.seq_no,
            version: doc.version,
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
    /// `create` for index actions (`op_type: create`).
    pub create: bool,
    /// The source line, parsed on the owner (a malformed one fails only its item); a slice of
    /// the request body, not a copy, for a part this node owns.
    pub source: bytes::Bytes,
}
