//! The redb side: table layouts and the binary encodings of rows.
//!
//! Documents are stored log-structured. `log` holds every document body under the sequence
//! number of the write that produced it, so a bulk load appends to it in key order; it doubles
//! as the write-ahead log for upserts (replay = the live `log` entries at or above tantivy's
//! committed sequence). `docs` maps (id, ring token) to the live sequence number and version.
//! `deletes` is the write-ahead log for deletes, truncated once tantivy has committed past them.
//!
//! A body an update or delete supersedes stays in `log` while an open index snapshot may still
//! match it, so a hit's source is always the version that matched (snapshot reads);
//! `superseded` lists such bodies by the sequence that superseded them, for the collector
//! that drops them once no snapshot can reach them.

use redb::{ReadableTable, TableDefinition};

use crate::error::{Result, StoreError};
use crate::id::DocKey;

/// (id, ring token) → [`DocPointer`]. Id first: ids written together (a bulk load, time-ordered
/// generated ids) are neighbours in the B-tree, so a transaction rewrites a few leaves instead of
/// one random leaf per document (token first cost 3× the redb time and ~1 GB of page writes per
/// 265k-doc load). Token-range scans walk the whole table; they are rare (moving ranges).
pub(crate) const DOCS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("docs_by_id");
/// sequence → version, encoded key and JSON body of the version written at that sequence.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// superseding sequence → sequence of the `log` body it superseded (kept for snapshots).
pub(crate) const SUPERSEDED: TableDefinition<u64, u64> = TableDefinition::new("superseded");
/// sequence → version and encoded key of a delete: the write-ahead record until tantivy has
/// committed past it, then the tombstone the change feed serves until retention lets it go.
pub(crate) const DELETES: TableDefinition<u64, &[u8]> = TableDefinition::new("deletes");
/// change-feed consumer name → the sequence it still needs (history from there on is kept).
pub(crate) const CONSUMERS: TableDefinition<&str, u64> = TableDefinition::new("consumers");
/// Store metadata by name.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Meta key: the next sequence number to allocate (u64, little-endian).
pub(crate) const META_NEXT_SEQ: &str = "next_seq";
/// Meta key: the mapping, as JSON.
pub(crate) const META_MAPPING: &str = "mapping";
/// Meta key: the format of `log` entries (u64, little-endian); absent in stores written before
/// entries carried their version (format 1), which are converted when opened.
pub(crate) const META_LOG_FORMAT: &str = "log_format";
/// The `log` entry format this version writes.
pub(crate) const LOG_FORMAT: u64 = 2;
/// Meta key: a feed cursor from this sequence on misses no delete (u64, little-endian): below
/// it, tombstones may have been collected. (Collected superseded bodies miss nothing: the
/// write that superseded each is later in the feed.)
pub(crate) const META_FEED_FROM: &str = "feed_from";

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

/// Where a document's live version is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DocPointer {
    /// Sequence of the live version: its key in `log`.
    pub seq: u64,
    /// The document's version.
    pub version: u64,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Storage(format!("corrupt {what}"))
}

impl DocPointer {
    pub fn encode(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..].copy_from_slice(&self.version.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<DocPointer> {
        let (seq, version) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("document row"))?;
        let version: [u8; 8] = version.try_into().map_err(|_| corrupt("document row"))?;
        Ok(DocPointer {
            seq: u64::from_le_bytes(*seq),
            version: u64::from_le_bytes(version),
        })
    }
}

/// One `log` entry, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LogEntry<'a> {
    /// The document's key.
    pub key: DocKey,
    /// The version this write produced.
    pub version: u64,
    /// The JSON body.
    pub body: &'a [u8],
}

/// Encodes a log entry: version (u64 LE), key length (u16 LE), encoded key, body.
pub(crate) fn encode_log(key: &DocKey, version: u64, body: &[u8]) -> Vec<u8> {
    let key = key.encode();
    let mut out = Vec::with_capacity(10 + key.len() + body.len());
    out.extend_from_slice(&version.to_le_bytes());
    // Keys are at most 8 + 512 bytes, so the length always fits.
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&key);
    out.extend_from_slice(body);
    out
}

/// Decodes a log entry.
pub(crate) fn decode_log(bytes: &[u8]) -> Result<LogEntry<'_>> {
    let (version, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("log entry"))?;
    let (key, body) = decode_v1(rest)?;
    Ok(LogEntry {
        key,
        version: u64::from_le_bytes(*version),
        body,
    })
}

/// Decodes a format-1 entry (key length, key, body: no version), as stores written before
/// format 2 hold them.
pub(crate) fn decode_v1(bytes: &[u8]) -> Result<(DocKey, &[u8])> {
    let (len, rest) = bytes
        .split_first_chunk::<2>()
        .ok_or_else(|| corrupt("log entry"))?;
    let (key, body) = rest
        .split_at_checked(usize::from(u16::from_le_bytes(*len)))
        .ok_or_else(|| corrupt("log entry"))?;
    Ok((DocKey::decode(key).ok_or_else(|| corrupt("log key"))?, body))
}

/// Encodes a delete record: the version the delete produced (u64 LE), then the encoded key.
pub(crate) fn encode_delete(key: &DocKey, version: u64) -> Vec<u8> {
    let key = key.encode();
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&key);
    out
}

/// Decodes a delete record into its key and version.
pub(crate) fn decode_delete(bytes: &[u8]) -> Result<(DocKey, u64)> {
    let (version, key) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("delete record"))?;
    let key = DocKey::decode(key).ok_or_else(|| corrupt("delete record"))?;
    Ok((key, u64::from_le_bytes(*version)))
}

/// The `log` bodies at or above `from` that a later write superseded (kept for snapshots and
/// the feed): what replay skips, since their successors are replayed. A body superseded at `u`
/// has its row under `u` > its own sequence, so rows from `from` on suffice; collection never
/// drops a row at or above what the index covers.
pub(crate) fn superseded_from(
    superseded: &impl ReadableTable<u64, u64>,
    from: u64,
) -> Result<std::collections::HashSet<u64>> {
    let mut out = std::collections::HashSet::new();
    for row in superseded.range(from..)? {
        let (_, body) = row?;
        if body.value() >= from {
            out.insert(body.value());
        }
    }
    Ok(out)
}

/// Reads the live pointer of `key`.
pub(crate) fn pointer<T>(docs: &T, key: &DocKey) -> Result<Option<DocPointer>>
where
    T: ReadableTable<(&'static str, u64), &'static [u8]>,
{
    docs.get((key.id.as_str(), key.token))?
        .map(|row| DocPointer::decode(row.value()))
        .transpose()
}

/// Reads the live version of the document a pointer points at.
pub(crate) fn load<L>(log: &L, pointer: DocPointer) -> Result<StoredDoc>
where
    L: ReadableTable<u64, &'static [u8]>,
{
    load_seq(log, pointer.seq)
}

/// Reads the version written at `seq`, live or superseded.
pub(crate) fn load_seq<L>(log: &L, seq: u64) -> Result<StoredDoc>
where
    L: ReadableTable<u64, &'static [u8]>,
{
    let entry = log
        .get(seq)?
        .ok_or_else(|| corrupt("store: document body missing"))?;
    let entry = decode_log(entry.value())?;
    Ok(StoredDoc {
        seq_no: seq,
        version: entry.version,
        source: entry.body.to_vec(),
    })
}

/// Reads the live version of `key`.
pub(crate) fn read<T, L>(docs: &T, log: &L, key: &DocKey) -> Result<Option<StoredDoc>>
where
    T: ReadableTable<(&'static str, u64), &'static [u8]>,
    L: ReadableTable<u64, &'static [u8]>,
{
    pointer(docs, key)?.map(|p| load(log, p)).transpose()
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64> {
    bytes
        .try_into()
        .map(u64::from_le_bytes)
        .map_err(|_| corrupt("counter"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::DocId;

    #[test]
    fn encodings_round_trip() {
        let key = DocKey::new(DocId::new("abc").unwrap(), Some("r")).unwrap();
        let entry = encode_log(&key, 4, b"{\"a\":1}");
        let decoded = decode_log(&entry).unwrap();
        assert_eq!(
            decoded,
            LogEntry {
                key,
                version: 4,
                body: &b"{\"a\":1}"[..]
            }
        );
        let p = DocPointer { seq: 7, version: 3 };
        assert_eq!(DocPointer::decode(&p.encode()).unwrap(), p);
        assert!(decode_log(&[9, 0, 1]).is_err());
        assert!(decode_v1(&[9, 0, 1]).is_err());
        let deleted = encode_delete(&decoded.key, 9);
        assert_eq!(decode_delete(&deleted).unwrap(), (decoded.key.clone(), 9));
        assert!(decode_delete(&[1, 2, 3]).is_err());
        assert!(DocPointer::decode(&[1, 2]).is_err());
    }
}
