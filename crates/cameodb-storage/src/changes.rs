//! The change feed: the writes of a store in sequence order — upserts with their version and
//! body, deletes as tombstones — read from the `log` and `deletes` tables. Superseded bodies
//! and tombstones stay for the store's retention (and superseded bodies while snapshots need
//! them). A reader within the retention sees every change; one further behind may miss
//! intermediate versions a later write replaced (as a compacted log does) but never a delete:
//! once a tombstone past its cursor is collected, its cursor expires and it starts over.
//! Replaying the feed from the start onto an empty map gives exactly the live documents.

use std::time::Duration;

use crate::error::{Result, StoreError};
use crate::id::DocKey;
use crate::kv::{self, DELETES, LOG, META, META_FEED_FROM};
use crate::stamp::Stamp;
use crate::store::Store;

/// One change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Its sequence number (`_seq_no`).
    pub seq: u64,
    /// The document.
    pub key: DocKey,
    /// The version the change produced.
    pub version: u64,
    /// Its last-writer-wins stamp: what a replica applying the change compares.
    pub stamp: Stamp,
    /// The body written; `None` for a delete.
    pub source: Option<Vec<u8>>,
}

/// Where a reader is in the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The next sequence to read.
    pub seq: u64,
    /// The collection floor when the reader started: tombstones below it were gone already
    /// (with the bodies they deleted), so the reader never saw what they deleted. If more were
    /// collected since, past the reader's position, it may miss a delete: the cursor expires.
    pub floor: u64,
}

/// A page of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes {
    /// The changes, in sequence order.
    pub changes: Vec<Change>,
    /// Where the next read starts.
    pub next: Cursor,
}

impl Store {
    /// At most `limit` changes from `since` on; `None` reads from the start (what retention
    /// kept). A cursor that tombstones were collected past since it started is
    /// [`StoreError::ChangesExpired`].
    pub fn changes(&self, since: Option<Cursor>, limit: usize) -> Result<Changes> {
        let txn = self.db().begin_read()?;
        let feed_from = match txn.open_table(META)?.get(META_FEED_FROM)? {
            Some(v) => kv::decode_u64(v.value())?,
            None => 0,
        };
        let since = match since {
            None => Cursor {
                seq: 0,
                floor: feed_from,
            },
            Some(cursor) if cursor.seq >= feed_from => Cursor {
                seq: cursor.seq,
                floor: feed_from,
            },
            Some(cursor) if cursor.floor == feed_from => cursor,
            Some(cursor) => {
                return Err(StoreError::ChangesExpired {
                    since: cursor.seq,
                    oldest: feed_from,
                });
            }
        };
        let floor = since.floor;
        let since = since.seq;
        let (log, deletes) = (txn.open_table(LOG)?, txn.open_table(DELETES)?);
        let mut bodies = log.range(since..)?.peekable();
        let mut tombstones = deletes.range(since..)?.peekable();
        let mut changes = Vec::with_capacity(limit.min(1024));
        while changes.len() < limit {
            let body_seq = bodies
                .peek()
                .map(|r| r.as_ref().map(|(seq, _)| seq.value()).ok());
            let delete_seq = tombstones
                .peek()
                .map(|r| r.as_ref().map(|(seq, _)| seq.value()).ok());
            let take_body = match (body_seq, delete_seq) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(body), Some(delete)) => body <= delete,
            };
            if take_body {
                let Some(row) = bodies.next() else { break };
                let (seq, record) = row?;
                let entry = kv::decode_log(record.value())?;
                changes.push(Change {
                    seq: seq.value(),
                    key: entry.key,
                    version: entry.version,
                    stamp: entry.stamp,
                    source: Some(entry.body.to_vec()),
                });
            } else {
                let Some(row) = tombstones.next() else { break };
                let (seq, record) = row?;
                let (key, version, stamp) = kv::decode_delete(record.value())?;
                changes.push(Change {
                    seq: seq.value(),
                    key,
                    version,
                    stamp,
                    source: None,
                });
            }
        }
        let seq = changes.last().map_or(since, |c| c.seq + 1);
        Ok(Changes {
            changes,
            next: Cursor { seq, floor },
        })
    }

    /// Waits until a change with sequence `since` or later is durable, at most `timeout`;
    /// returns whether one is.
    pub fn wait_for_changes(&self, since: u64, timeout: Duration) -> bool {
        self.durable().wait_for(since, timeout)
    }
}
