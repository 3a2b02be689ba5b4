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
use crate::stamp::Stamp;

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
/// (id, ring token) → [`DocPointer`] of the delete that removed a document (seq of its delete
/// record): the version a replayed or late older write must beat to bring it back. Dropped with
/// the delete record when retention lets it go (Cassandra's `gc_grace_seconds`).
pub(crate) const TOMBSTONES: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("tombstones");
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
pub(crate) const LOG_FORMAT: u64 = 3;
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
    /// The version's place in the last-writer-wins order across replicas; its clock reading
    /// is the `_seq_no` clients see (the same on every replica, unlike `seq_no`).
    pub stamp: Stamp,
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
    /// The live version's stamp ([`Stamp::ZERO`] in rows written before stamps).
    pub stamp: Stamp,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Storage(format!("corrupt {what}"))
}

impl DocPointer {
    /// seq, version, stamp clock, stamp origin: four u64 LE.
    pub fn encode(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..16].copy_from_slice(&self.version.to_le_bytes());
        out[16..24].copy_from_slice(&self.stamp.hlc.to_le_bytes());
        out[24..].copy_from_slice(&self.stamp.origin.to_le_bytes());
        out
    }

    /// Decodes a row; rows written before stamps (16 bytes) get [`Stamp::ZERO`].
    pub fn decode(bytes: &[u8]) -> Result<DocPointer> {
        let word = |i: usize| -> Result<u64> {
            let chunk = bytes
                .get(i * 8..i * 8 + 8)
                .ok_or_else(|| corrupt("document row"))?;
            decode_u64(chunk)
        };
        let stamp = match bytes.len() {
            16 => Stamp::ZERO,
            32 => Stamp {
                hlc: word(2)?,
                origin: word(3)?,
            },
            _ => return Err(corrupt("document row")),
        };
        Ok(DocPointer {
            seq: word(0)?,
            version: word(1)?,
            stamp,
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
    /// Its stamp.
    pub stamp: Stamp,
    /// The JSON body.
    pub body: &'a [u8],
}

/// Encodes a log entry: version, stamp clock, stamp origin (u64 LE each), key length (u16 LE),
/// encoded key, body.
pub(crate) fn encode_log(key: &DocKey, version: u64, stamp: Stamp, body: &[u8]) -> Vec<u8> {
    let key = key.encode();
    let mut out = Vec::with_capacity(26 + key.len() + body.len());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&stamp.hlc.to_le_bytes());
    out.extend_from_slice(&stamp.origin.to_le_bytes());
    // Keys are at most 8 + 512 bytes, so the length always fits.
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&key);
    out.extend_from_slice(body);
    out
}

/// Splits off the three leading u64 of a format-3 entry or delete record.
fn split_words<'a>(bytes: &'a [u8], what: &str) -> Result<([u64; 3], &'a [u8])> {
    let (head, rest) = bytes
        .split_first_chunk::<24>()
        .ok_or_else(|| corrupt(what))?;
    let word = |i: usize| decode_u64(&head[i * 8..i * 8 + 8]);
    Ok(([word(0)?, word(1)?, word(2)?], rest))
}

/// Decodes a log entry.
pub(crate) fn decode_log(bytes: &[u8]) -> Result<LogEntry<'_>> {
    let ([version, hlc, origin], rest) = split_words(bytes, "log entry")?;
    let (key, body) = decode_v1(rest)?;
    Ok(LogEntry {
        key,
        version,
        stamp: Stamp { hlc, origin },
        body,
    })
}

/// Decodes a format-2 entry (version, key length, key, body: no stamp).
pub(crate) fn decode_v2(bytes: &[u8]) -> Result<(DocKey, u64, &[u8])> {
    let (version, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("log entry"))?;
    let (key, body) = decode_v1(rest)?;
    Ok((key, u64::from_le_bytes(*version), body))
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

/// Encodes a delete record: the version the delete produced, its stamp's clock and origin
/// (u64 LE each), then the encoded key.
pub(crate) fn encode_delete(key: &DocKey, version: u64, stamp: Stamp) -> Vec<u8> {
    let key = key.encode();
    let mut out = Vec::with_capacity(24 + key.len());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&stamp.hlc.to_le_bytes());
    out.extend_from_slice(&stamp.origin.to_le_bytes());
    out.extend_from_slice(&key);
    out
}

/// Decodes a delete record into its key, version and stamp.
pub(crate) fn decode_delete(bytes: &[u8]) -> Result<(DocKey, u64, Stamp)> {
    let ([version, hlc, origin], key) = split_words(bytes, "delete record")?;
    let key = DocKey::decode(key).ok_or_else(|| corrupt("delete record"))?;
    Ok((key, version, Stamp { hlc, origin }))
}

/// Decodes a format-2 delete record (version, key).
pub(crate) fn decode_delete_v2(bytes: &[u8]) -> Result<(DocKey, u64)> {
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
        stamp: entry.stamp,
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
        let stamp = Stamp {
            hlc: 11,
            origin: 12,
        };
        let entry = encode_log(&key, 4, stamp, b"{\"a\":1}");
        let decoded = decode_log(&entry).unwrap();
        assert_eq!(
            decoded,
            LogEntry {
                key,
                version: 4,
                stamp,
                body: &b"{\"a\":1}"[..]
            }
        );
        let p = DocPointer {
            seq: 7,
            version: 3,
            stamp,
        };
        assert_eq!(DocPointer::decode(&p.encode()).unwrap(), p);
        let legacy = DocPointer::decode(&p.encode()[..16]).unwrap();
        assert_eq!(legacy.stamp, Stamp::ZERO);
        assert!(decode_log(&[9, 0, 1]).is_err());
        assert!(decode_v1(&[9, 0, 1]).is_err());
        let deleted = encode_delete(&decoded.key, 9, stamp);
        assert_eq!(
            decode_delete(&deleted).unwrap(),
            (decoded.key.clone(), 9, stamp)
        );
        assert!(decode_delete(&[1, 2, 3]).is_err());
        assert!(DocPointer::decode(&[1, 2]).is_err());
    }
}
