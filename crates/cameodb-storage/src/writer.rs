//! The single writer: coalesces concurrent write requests into one redb transaction (group
//! commit — one fsync for many callers), acknowledges them once durable, and hands the applied
//! operations to the indexer in sequence order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use redb::{ReadableTable, Table};
use serde_json::Value;
use tracing::{debug, error};

use crate::apply::{GroupTx, Tables};
use crate::db::Db;
use crate::error::{Result, StoreError};
use crate::indexer::{IndexBatch, IndexerMsg};
use crate::kv::{
    self, CONSUMERS, DELETES, DOCS, LOG, META, META_FEED_FROM, META_MAPPING, META_NEXT_SEQ,
    SUPERSEDED, TOMBSTONES,
};
use crate::ops::{WriteOp, WriteOutcome};
use crate::snapshot::Registry;
use crate::stamp::Hlc;
use crate::visibility::Visibility;
use cameodb_schema::fields::Fields;
use cameodb_schema::mapping::Mapping;

/// Replies to one write request: one result per operation, in order.
pub(crate) type BatchReply = Vec<Result<WriteOutcome>>;

/// Messages to the writer thread.
pub(crate) enum WriterMsg {
    /// Apply these operations and reply when they are durable.
    Write {
        ops: Vec<WriteOp>,
        reply: Sender<BatchReply>,
    },
    /// Merge an Elasticsearch mapping body into the mapping and persist it.
    PutMapping {
        body: Value,
        reply: Sender<Result<()>>,
    },
    /// Drop the superseded bodies no snapshot can reach any more (sent when the index commits
    /// and when the oldest snapshot closes).
    Collect,
    /// Keep the changes from `from` on for consumer `name` (a replica catching up), whatever
    /// the retention; `None` lets them go.
    Hold {
        name: String,
        from: Option<u64>,
        reply: Sender<Result<()>>,
    },
}

/// Superseded bodies dropped at most per write transaction: collection rides along with writes
/// without making any one of them slow.
const COLLECT_PER_GROUP: usize = 1_000;
/// Superseded bodies dropped at most per transaction of its own.
const COLLECT_PER_TXN: usize = 50_000;
/// Collected bodies after which the file is looked at for compaction.
const COMPACT_AFTER_DROPS: u64 = 1_000;
/// How finely write times are remembered for the change feed's retention: one sample per
/// this much time, so a day of writes costs tens of thousands of samples, not one per group.
const RETENTION_GRAIN: Duration = Duration::from_secs(1);

/// State owned by the writer thread.
pub(crate) struct Writer {
    /// The store's database; only this thread writes to it while the store is open.
    pub db: Arc<Db>,
    /// Schema handles for building index documents.
    pub fields: Fields,
    /// The index's analysis settings: what mappings may name, how keywords are normalized.
    pub analysis: cameodb_schema::Analysis,
    /// Authoritative mapping; published to `shared_mapping` after each durable change.
    pub mapping: Mapping,
    /// Read-side copy of the mapping for searches and callers.
    pub shared_mapping: Arc<RwLock<Arc<Mapping>>>,
    /// Next sequence number to allocate.
    pub next_seq: u64,
    /// Where applied operations go next.
    pub indexer: Sender<IndexerMsg>,
    /// Sequence below which tantivy has committed everything (set by the indexer): delete
    /// records below it are no longer needed for recovery.
    pub committed: Arc<AtomicU64>,
    /// Most operations per transaction.
    pub max_group_ops: usize,
    /// The open snapshots, which keep superseded bodies alive.
    pub snapshots: Arc<Registry>,
    /// How long superseded bodies and tombstones stay for the change feed.
    pub retention: Duration,
    /// (first sequence written, when), oldest first, one per [`RETENTION_GRAIN`]: which
    /// sequences are older than the retention. What was written before the store opened
    /// counts as written at opening (its times are not kept).
    pub written: VecDeque<(u64, Instant)>,
    /// Every sequence below this was written longer ago than the retention.
    pub retained_from: u64,
    /// The change feed is complete from this sequence on (see [`kv::META_FEED_FROM`]).
    pub feed_from: u64,
    /// Published after each durable transaction: what change-feed readers wait on.
    pub durable: Arc<Visibility>,
    /// When the file was last checked for compaction.
    pub compact_checked: Option<std::time::Instant>,
    /// Superseded bodies collected since the file was last checked for compaction.
    pub dropped_since_check: u64,
    /// Registered consumers of the change feed and the sequence each still needs (persisted in
    /// the `consumers` table): history from there on stays whatever the retention.
    pub consumers: std::collections::BTreeMap<String, u64>,
    /// Stamps the writes that arrive without one, and follows the stamps of those that do.
    pub clock: Hlc,
    /// This store's node in the stamps it makes (see [`crate::origin_of`]).
    pub origin: u64,
}

/// One coalesced transaction's worth of requests.
enum Pending {
    Write {
        ops: Vec<WriteOp>,
        reply: Sender<BatchReply>,
    },
    Mapping {
        body: Value,
        reply: Sender<Result<()>>,
    },
    Hold {
        name: String,
        from: Option<u64>,
        reply: Sender<Result<()>>,
    },
}

impl Writer {
    /// Runs until every sender is gone.
    pub fn run(mut self, inbox: Receiver<WriterMsg>) {
        while let Ok(first) = inbox.recv() {
            let mut group = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                // A collection request joins whatever transaction comes next.
                if let Some(pending) = into_pending(msg) {
                    group.push(pending);
                }
                if group_ops(&group) < self.max_group_ops {
                    next = inbox.try_recv().ok();
                }
            }
            if group.is_empty() {
                if let Err(err) = self.collect() {
                    error!(error = %err, "collecting superseded bodies failed; retried later");
                }
            } else {
                self.commit_group(group);
            }
        }
        debug!("writer thread stopping");
    }

    /// Every sequence below the returned one was written longer ago than the retention.
    fn retention_horizon(&mut self) -> u64 {
        let Some(cutoff) = Instant::now().checked_sub(self.retention) else {
            return self.retained_from;
        };
        while self.written.front().is_some_and(|(_, at)| *at < cutoff) {
            self.written.pop_front();
            self.retained_from = self.written.front().map_or(self.next_seq, |(seq, _)| *seq);
        }
        self.retained_from
    }

    /// Notes that sequences from `first` on were written now.
    fn note_written(&mut self, first: u64) {
        let now = Instant::now();
        let recent = self
            .written
            .back()
            .is_some_and(|(_, at)| now.duration_since(*at) < RETENTION_GRAIN);
        if !recent {
            self.written.push_back((first, now));
        }
    }

    /// Below which superseded bodies (no snapshot and no feed reader within retention needs
    /// them) and delete records (committed to tantivy, older than retention) may go.
    fn horizons(&mut self) -> (u64, u64) {
        let held = self.consumers.values().min().copied().unwrap_or(u64::MAX);
        let retained = self.retention_horizon().min(held);
        let collect_below = self.snapshots.horizon().min(retained);
        let truncate_below = self.committed.load(Ordering::Acquire).min(retained);
        (collect_below, truncate_below)
    }

    /// Drops, in a transaction of its own, what [`Writer::horizons`] lets go.
    fn collect(&mut self) -> Result<()> {
        let (collect_below, truncate_below) = self.horizons();
        let due = {
            let txn = self.db.begin_read()?;
            let superseded = txn.open_table(SUPERSEDED)?;
            let deletes = txn.open_table(DELETES)?;
            superseded
                .first()?
                .is_some_and(|(superseding, _)| superseding.value() < collect_below)
                || deletes
                    .first()?
                    .is_some_and(|(seq, _)| seq.value() < truncate_below)
        };
        if !due {
            return self.maybe_compact();
        }
        let database = self.db.shared()?;
        let txn = database.begin_write()?;
        let feed_from = {
            let mut log = txn.open_table(LOG)?;
            let mut superseded = txn.open_table(SUPERSEDED)?;
            let mut deletes = txn.open_table(DELETES)?;
            let mut tombstones = txn.open_table(TOMBSTONES)?;
            let mut meta = txn.open_table(META)?;
            self.dropped_since_check +=
                drop_superseded(&mut log, &mut superseded, collect_below, COLLECT_PER_TXN)?;
            let dropped = drop_deletes(&mut deletes, &mut tombstones, &superseded, truncate_below)?;
            self.note_feed_from(&mut meta, dropped)?
        };
        txn.commit()?;
        drop(database);
        self.feed_from = feed_from;
        self.maybe_compact()
    }

    /// Looks at compacting the file, once enough was collected since the last look: the look
    /// reads the database's statistics, which is not free, and a store that collects nothing
    /// (a pure load, or history still within retention) never needs it.
    fn maybe_compact(&mut self) -> Result<()> {
        if self.dropped_since_check < COMPACT_AFTER_DROPS {
            return Ok(());
        }
        // A look that found too little to gain keeps the count: the collection that makes it
        // worthwhile may be the one still running (at most one look a second either way).
        if let Some(true) = self.db.compact_if_worthwhile(&mut self.compact_checked)? {
            self.dropped_since_check = 0;
        }
        Ok(())
    }

    /// Records that the feed lost the sequences below `dropped_below`, if that moves it.
    fn note_feed_from(
        &self,
        meta: &mut Table<'_, &'static str, &'static [u8]>,
        dropped_below: u64,
    ) -> Result<u64> {
        if dropped_below > self.feed_from {
            meta.insert(META_FEED_FROM, dropped_below.to_le_bytes().as_slice())?;
            return Ok(dropped_below);
        }
        Ok(self.feed_from)
    }

    fn commit_group(&mut self, group: Vec<Pending>) {
        let (collect_below, truncate_below) = self.horizons();
        let mut tx = GroupTx {
            fields: &self.fields,
            analysis: &self.analysis,
            mapping: None,
            base_mapping: &self.mapping,
            next_seq: self.next_seq,
            index_ops: Vec::new(),
            index_bytes: 0,
            clock: &self.clock,
            origin: self.origin,
        };
        let database = match self.db.shared() {
            Ok(database) => database,
            Err(err) => {
                fail_group(group, &err);
                return;
            }
        };
        let outcome = database
            .begin_write()
            .map_err(StoreError::from)
            .and_then(|txn| {
                let results = {
                    let mut tables = Tables {
                        docs: txn.open_table(DOCS)?,
                        log: txn.open_table(LOG)?,
                        deletes: txn.open_table(DELETES)?,
                        superseded: txn.open_table(SUPERSEDED)?,
                        tombstones: txn.open_table(TOMBSTONES)?,
                    };
                    let mut meta = txn.open_table(META)?;
                    let mut consumers = txn.open_table(CONSUMERS)?;
                    let results: Vec<Reply> = group
                        .iter()
                        .map(|pending| match pending {
                            Pending::Write { ops, .. } => Reply::Write(
                                ops.iter().map(|op| tx.apply(&mut tables, op)).collect(),
                            ),
                            Pending::Mapping { body, .. } => Reply::Mapping(tx.put_mapping(body)),
                            Pending::Hold { name, from, .. } => Reply::Hold(
                                match from {
                                    Some(from) => consumers.insert(name.as_str(), from).map(drop),
                                    None => consumers.remove(name.as_str()).map(drop),
                                }
                                .map_err(StoreError::from),
                            ),
                        })
                        .collect();
                    // A storage failure mid-group may have left partial rows: abort the whole group.
                    if let Some(err) = results.iter().find_map(Reply::engine_error) {
                        return Err(err);
                    }
                    if tx.next_seq != self.next_seq {
                        meta.insert(META_NEXT_SEQ, tx.next_seq.to_le_bytes().as_slice())?;
                    }
                    if let Some(mapping) = &tx.mapping {
                        let json = serde_json::to_vec(mapping)
                            .map_err(|e| StoreError::Storage(e.to_string()))?;
                        meta.insert(META_MAPPING, json.as_slice())?;
                    }
                    let bodies = drop_superseded(
                        &mut tables.log,
                        &mut tables.superseded,
                        collect_below,
                        COLLECT_PER_GROUP,
                    )?;
                    let dropped = drop_deletes(
                        &mut tables.deletes,
                        &mut tables.tombstones,
                        &tables.superseded,
                        truncate_below,
                    )?;
                    let feed_from = self.note_feed_from(&mut meta, dropped)?;
                    (results, feed_from, bodies)
                };
                txn.commit()?;
                Ok(results)
            });
        drop(database);
        let outcome = outcome.map(|(results, feed_from, bodies)| {
            self.feed_from = feed_from;
            self.dropped_since_check += bodies;
            results
        });
        let GroupTx {
            mapping: changed_mapping,
            next_seq,
            index_ops,
            index_bytes,
            ..
        } = tx;
        match outcome {
            Ok(results) => {
                if next_seq != self.next_seq {
                    self.note_written(self.next_seq);
                }
                self.next_seq = next_seq;
                self.durable.publish(next_seq);
                let new_mapping = changed_mapping.map(Arc::new);
                if let Some(mapping) = &new_mapping {
                    self.mapping = Mapping::clone(mapping);
                    if let Ok(mut shared) = self.shared_mapping.write() {
                        *shared = Arc::clone(mapping);
                    }
                }
                if !index_ops.is_empty() || new_mapping.is_some() {
                    let batch = IndexBatch {
                        ops: index_ops,
                        next_seq: self.next_seq,
                        approx_bytes: index_bytes,
                        mapping: new_mapping,
                    };
                    // Queue before acknowledging, so a refresh requested after the ack covers it.
                    if self.indexer.send(IndexerMsg::Batch(batch)).is_err() {
                        error!(
                            "indexer is gone; writes stay durable and are replayed on next open"
                        );
                    }
                }
                for (pending, reply) in group.into_iter().zip(results) {
                    match (pending, reply) {
                        (Pending::Write { reply, .. }, Reply::Write(r)) => {
                            let _ = reply.send(r);
                        }
                        (Pending::Mapping { reply, .. }, Reply::Mapping(r)) => {
                            let _ = reply.send(r);
                        }
                        (Pending::Hold { name, from, reply }, Reply::Hold(r)) => {
                            if r.is_ok() {
                                match from {
                                    Some(from) => self.consumers.insert(name, from),
                                    None => self.consumers.remove(&name),
                                };
                            }
                            let _ = reply.send(r);
                        }
                        _ => error!("writer reply mismatch"),
                    }
                }
            }
            Err(err) => fail_group(group, &err),
        }
    }
}

/// Answers every request of a group that could not be written with `err`.
fn fail_group(group: Vec<Pending>, err: &StoreError) {
    error!(error = %err, "group commit failed; nothing from this group was written");
    for pending in group {
        match pending {
            Pending::Write { ops, reply } => {
                let _ = reply.send(ops.iter().map(|_| Err(err.clone())).collect());
            }
            Pending::Mapping { reply, .. } | Pending::Hold { reply, .. } => {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

enum Reply {
    Write(BatchReply),
    Mapping(Result<()>),
    Hold(Result<()>),
}

impl Reply {
    /// The first engine (non-client) error in this reply, if any.
    fn engine_error(&self) -> Option<StoreError> {
        let is_engine = |e: &&StoreError| !e.is_client_error();
        match self {
            Reply::Write(results) => results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .find(is_engine)
                .cloned(),
            Reply::Mapping(result) | Reply::Hold(result) => {
                result.as_ref().err().filter(is_engine).cloned()
            }
        }
    }
}

fn into_pending(msg: WriterMsg) -> Option<Pending> {
    match msg {
        WriterMsg::Write { ops, reply } => Some(Pending::Write { ops, reply }),
        WriterMsg::PutMapping { body, reply } => Some(Pending::Mapping { body, reply }),
        WriterMsg::Hold { name, from, reply } => Some(Pending::Hold { name, from, reply }),
        WriterMsg::Collect => None,
    }
}

/// Drops at most `limit` superseded bodies whose superseding write is below `horizon`. A feed
/// reader loses nothing it needs: the write that superseded a body is later in the feed.
fn drop_superseded(
    log: &mut Table<'_, u64, &'static [u8]>,
    superseded: &mut Table<'_, u64, u64>,
    horizon: u64,
    limit: usize,
) -> Result<u64> {
    let doomed: Vec<(u64, u64)> = superseded
        .range(..horizon)?
        .take(limit)
        .map(|row| row.map(|(superseding, body)| (superseding.value(), body.value())))
        .collect::<std::result::Result<_, _>>()?;
    for (superseding, body) in &doomed {
        superseded.remove(superseding)?;
        log.remove(body)?;
    }
    Ok(doomed.len() as u64)
}

/// Drops the delete records below `horizon`, and below the oldest body still kept for a
/// snapshot (so no reader from the start can see a body whose delete is gone), with the
/// tombstone rows they wrote; returns one past the highest dropped (0: none). A feed reader
/// behind a dropped tombstone would miss that delete: its cursor expires.
fn drop_deletes(
    deletes: &mut Table<'_, u64, &'static [u8]>,
    tombstones: &mut Table<'_, (&'static str, u64), &'static [u8]>,
    superseded: &Table<'_, u64, u64>,
    horizon: u64,
) -> Result<u64> {
    let kept = superseded
        .first()?
        .map_or(u64::MAX, |(superseding, _)| superseding.value());
    let horizon = horizon.min(kept);
    let last = deletes
        .range(..horizon)?
        .next_back()
        .transpose()?
        .map(|(seq, _)| seq.value());
    let Some(last) = last else {
        return Ok(0);
    };
    let mut doomed = Vec::new();
    for row in deletes.range(..horizon)? {
        let (seq, record) = row?;
        let (key, _, _) = kv::decode_delete(record.value())?;
        doomed.push((seq.value(), key));
    }
    for (seq, key) in doomed {
        let row = (key.id.as_str(), key.token);
        // A later delete of the same document rewrote the row: that one stays.
        if kv::pointer(tombstones, &key)?.is_some_and(|t| t.seq == seq) {
            tombstones.remove(row)?;
        }
    }
    deletes.retain_in(..horizon, |_, _| false)?;
    Ok(last + 1)
}

fn group_ops(group: &[Pending]) -> usize {
    group
        .iter()
        .map(|p| match p {
            Pending::Write { ops, .. } => ops.len(),
            Pending::Mapping { .. } | Pending::Hold { .. } => 1,
        })
        .sum()
}
