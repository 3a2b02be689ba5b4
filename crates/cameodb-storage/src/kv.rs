//! The redb side: table layouts and the binary encodings of rows and WAL records.

use redb::TableDefinition;

use crate::error::{Result, StoreError};
use crate::id::DocKey;

/// Documents keyed by (ring token, id). Value: see [`encode_row`].
pub(crate) const DOCS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("docs");
/// Write-ahead log: sequence number → [`WalOp`] byte + encoded [`DocKey`]. Entries at or below
/// tantivy's committed sequence are deleted in later transactions.
pub(crate) const WAL: TableDefinition<u64, &[u8]> = TableDefinition::new("wal");
/// Store metadata by name.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Meta key: the next sequence number to allocate (u64, little-endian).
pub(crate) const META_NEXT_SEQ: &str = "next_seq";
/// Meta key: the mapping, as JSON.
pub(crate) const META_MAPPING: &str = "mapping";

/// Row header length: sequence number + version.
const ROW_HEADER: usize = 16;

/// A document as stored in redb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDoc {
    /// Sequence number of the write that produced this version (Elasticsearch `_seq_no`).
    pub seq_no: u64,
    /// Per-document version, 1 on creation and +1 on every change (Elasticsearch `_version`).
    pub version: u64,
    /// The document body, as JSON.
    pub source: Vec<u8>,
}

impl StoredDoc {
    /// The body parsed as a JSON value.
    pub fn source_json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.source)
            .map_err(|e| StoreError::Storage(format!("corrupt stored document: {e}")))
    }
}

/// Encodes a row: seq (8 bytes LE), version (8 bytes LE), then the JSON body.
pub(crate) fn encode_row(seq_no: u64, version: u64, source: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ROW_HEADER + source.len());
    out.extend_from_slice(&seq_no.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(source);
    out
}

/// Decodes a row written by [`encode_row`].
pub(crate) fn decode_row(bytes: &[u8]) -> Result<StoredDoc> {
    let corrupt = || StoreError::Storage("corrupt document row".into());
    let (seq, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let (version, source) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
    Ok(StoredDoc {
        seq_no: u64::from_le_bytes(*seq),
        version: u64::from_le_bytes(*version),
        source: source.to_vec(),
    })
}

/// What a WAL record says happened to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WalOp {
    /// The document was written (created, replaced or updated).
    Upsert = 1,
    /// The document was deleted.
    Delete = 2,
}

pub(crate) fn encode_wal(op: WalOp, key: &DocKey) -> Vec<u8> {
    let mut out = vec![op as u8];
    out.extend_from_slice(&key.encode());
    out
}

/// Decodes a WAL record. Replay only needs the key: it re-reads the row to decide.
pub(crate) fn decode_wal(bytes: &[u8]) -> Result<DocKey> {
    match bytes.split_first() {
        Some((op, key)) if *op == WalOp::Upsert as u8 || *op == WalOp::Delete as u8 => {
            DocKey::decode(key).ok_or_else(|| StoreError::Storage("corrupt wal key".into()))
        }
        _ => Err(StoreError::Storage("corrupt wal record".into())),
    }
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64> {
    bytes
        .try_into()
        .map(u64::from_le_bytes)
        .map_err(|_| StoreError::Storage("corrupt counter".into()))
}
