//! Write operations and their outcomes.

use serde_json::{Map, Value};

use crate::error::{Result, StoreError};
use crate::id::DocKey;
use crate::stamp::Stamp;

/// A validated JSON object body. Parsing happens on the caller's thread, so malformed input is
/// rejected before it reaches the single writer.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// The parsed object, for indexing and merging.
    map: Map<String, Value>,
    /// The bytes it was parsed from, stored as they came (as Elasticsearch keeps `_source`)
    /// and so that the writer need not serialize the object again.
    raw: Option<Vec<u8>>,
}

impl Source {
    /// Parses raw bytes; invalid UTF-8, invalid JSON and non-objects are errors, and so is a
    /// parse that passes the memory budget of the request it runs for.
    pub fn from_slice(bytes: &[u8]) -> Result<Source> {
        let value = cameodb_memory::json::from_slice(bytes).map_err(|e| match e {
            cameodb_memory::json::JsonError::Breaker(err) => StoreError::Breaker(err),
            cameodb_memory::json::JsonError::Syntax(e) => StoreError::InvalidJson {
                reason: e.to_string(),
            },
        })?;
        let mut source = Source::from_value(value)?;
        source.raw = Some(bytes.to_vec());
        Ok(source)
    }

    /// Wraps an already parsed value, which must be an object.
    pub fn from_value(value: Value) -> Result<Source> {
        match value {
            Value::Object(map) => Ok(Source::from_map(map)),
            other => Err(StoreError::NotAnObject {
                found: json_kind(&other),
            }),
        }
    }

    pub(crate) fn from_map(map: Map<String, Value>) -> Source {
        Source { map, raw: None }
    }

    /// The body as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// The body as stored: the original bytes when there are some.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        match &self.raw {
            Some(raw) => Ok(raw.clone()),
            None => serde_json::to_vec(&self.map).map_err(|e| StoreError::InvalidJson {
                reason: e.to_string(),
            }),
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One write.
#[derive(Clone, Debug)]
pub struct WriteOp {
    /// The document it targets.
    pub key: DocKey,
    /// What to do.
    pub kind: OpKind,
    /// Optimistic concurrency: apply only if the document's current `_seq_no` (its stamp's
    /// clock reading, see [`Stamp`]) equals this.
    pub if_seq_no: Option<u64>,
    /// The stamp its coordinator gave the write; the store raises it past the stamp of what the
    /// write replaces (see [`Stamp::after`]). `None`: the store's own clock stamps it.
    pub stamp: Option<Stamp>,
    /// `version_type=external|external_gte`: the client's own version, which becomes the
    /// document's `_version` if it is above (or with `gte` at least) the current one.
    pub external: Option<ExternalVersion>,
}

/// A version the client keeps itself (Elasticsearch's external versioning): a write carrying
/// one applies only over an older version, so replaying a primary database's changes in any
/// order leaves the newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExternalVersion {
    /// The version the write brings.
    pub version: u64,
    /// `external_gte`: an equal version applies too.
    pub gte: bool,
}

impl ExternalVersion {
    /// Whether a write of this version may replace `current`.
    pub fn beats(self, current: u64) -> bool {
        if self.gte {
            self.version >= current
        } else {
            self.version > current
        }
    }
}

/// The kinds of write.
#[derive(Clone, Debug)]
pub enum OpKind {
    /// Store `source` as the document: replace it, or with `create`, fail if it exists.
    Index { source: Source, create: bool },
    /// Merge `doc` into the existing document. When missing: index `doc` if `doc_as_upsert`,
    /// else index `upsert` if given, else fail.
    Update {
        doc: Source,
        upsert: Option<Source>,
        doc_as_upsert: bool,
    },
    /// Remove the document.
    Delete,
    /// Fault injection for repair tests: the document vanishes from this store as a disk fault
    /// would lose it — no tombstone, no change-feed entry, so nothing tells a replica. Never
    /// sent by anything but the fault-injection endpoint.
    Lose,
    /// A write another replica already resolved (see [`Applied`]): applied only if its stamp
    /// is newer than the document's current one, live or deleted (last writer wins), with the
    /// version and stamp it carries. Idempotent, and any order of the same writes converges.
    Replica {
        /// The document's version after the write.
        version: u64,
        /// The write's stamp.
        stamp: Stamp,
        /// The new body; `None` for a delete.
        source: Option<Source>,
    },
}

/// What a write did to a document, as every replica applies it: the whole new body (or its
/// absence), never the request that produced it, so applying it needs no earlier state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The document's version after the write.
    pub version: u64,
    /// Its stamp.
    pub stamp: Stamp,
    /// The new body as stored; `None` for a delete.
    pub body: Option<Vec<u8>>,
}

impl WriteOp {
    /// Create-or-replace.
    pub fn put(key: DocKey, source: Source) -> WriteOp {
        WriteOp {
            key,
            kind: OpKind::Index {
                source,
                create: false,
            },
            if_seq_no: None,
            external: None,
            stamp: None,
        }
    }

    /// Create; fails if the document exists.
    pub fn create(key: DocKey, source: Source) -> WriteOp {
        WriteOp {
            key,
            kind: OpKind::Index {
                source,
                create: true,
            },
            if_seq_no: None,
            external: None,
            stamp: None,
        }
    }

    /// Delete.
    pub fn delete(key: DocKey) -> WriteOp {
        WriteOp {
            key,
            kind: OpKind::Delete,
            if_seq_no: None,
            external: None,
            stamp: None,
        }
    }

    /// Partial update (merge), failing when the document is missing.
    pub fn update(key: DocKey, doc: Source) -> WriteOp {
        WriteOp {
            key,
            kind: OpKind::Update {
                doc,
                upsert: None,
                doc_as_upsert: false,
            },
            if_seq_no: None,
            external: None,
            stamp: None,
        }
    }

    /// Applies a write another replica resolved: `source` is the new body, `None` a delete.
    pub fn replica(key: DocKey, version: u64, stamp: Stamp, source: Option<Source>) -> WriteOp {
        WriteOp {
            key,
            kind: OpKind::Replica {
                version,
                stamp,
                source,
            },
            if_seq_no: None,
            external: None,
            stamp: None,
        }
    }

    /// The same operation, stamped by its coordinator.
    pub fn stamped(mut self, stamp: Stamp) -> WriteOp {
        self.stamp = Some(stamp);
        self
    }

    /// The same operation, conditional on the document's current sequence number.
    pub fn if_seq_no(mut self, seq_no: u64) -> WriteOp {
        self.if_seq_no = Some(seq_no);
        self
    }
}

/// What a successful write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WriteResult {
    /// A new document was stored.
    Created,
    /// An existing document was replaced or changed.
    Updated,
    /// The document was removed.
    Deleted,
    /// Delete of a document that did not exist; nothing was written.
    NotFound,
    /// Update that changed nothing, or a replica write older than the document's current
    /// version; nothing was written.
    Noop,
}

impl WriteResult {
    /// Elasticsearch's name for the result.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteResult::Created => "created",
            WriteResult::Updated => "updated",
            WriteResult::Deleted => "deleted",
            WriteResult::NotFound => "not_found",
            WriteResult::Noop => "noop",
        }
    }
}

/// The outcome of one successful write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The document's key.
    pub key: DocKey,
    /// What happened.
    pub result: WriteResult,
    /// Sequence number of this write, or of the current document for `Noop`; `None` for
    /// `NotFound`. Pass it to [`crate::Store::wait_searchable`] for `refresh=wait_for`.
    pub seq_no: Option<u64>,
    /// The document's version after the write (its last version for deletes).
    pub version: Option<u64>,
    /// The document's stamp after the write (its `_seq_no` is the clock reading); `None` for
    /// `NotFound`.
    pub stamp: Option<Stamp>,
    /// What the write did, for the other replicas; `None` when it wrote nothing.
    pub applied: Option<Applied>,
}

/// Recursive merge of `patch` into `target`, as Elasticsearch's partial update does: objects
/// merge key by key, anything else is replaced.
pub(crate) fn merge_json(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match (target.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_json(existing, incoming)
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sources_must_be_objects_of_valid_json() {
        assert!(Source::from_slice(br#"{"a":1}"#).is_ok());
        assert!(matches!(
            Source::from_slice(b"[1]"),
            Err(StoreError::NotAnObject { .. })
        ));
        assert!(matches!(
            Source::from_slice(b"{"),
            Err(StoreError::InvalidJson { .. })
        ));
        assert!(matches!(
            Source::from_slice(b"{\"a\":\"\xff\"}"),
            Err(StoreError::InvalidJson { .. })
        ));
    }

    #[test]
    fn merge_is_recursive_for_objects_only() {
        let Value::Object(mut target) = json!({"a": {"x": 1, "y": 2}, "b": [1, 2], "c": 1}) else {
            unreachable!()
        };
        let Value::Object(patch) = json!({"a": {"y": 3}, "b": [3], "d": true}) else {
            unreachable!()
        };
        merge_json(&mut target, &patch);
        assert_eq!(
            Value::Object(target),
            json!({"a": {"x": 1, "y": 3}, "b": [3], "c": 1, "d": true})
        );
    }
}
