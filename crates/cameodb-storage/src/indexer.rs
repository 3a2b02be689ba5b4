//! The indexer thread: applies durable operations to the tantivy IndexWriter in sequence order
//! and commits on the refresh policy, stamping each commit with the sequence it covers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};
use tantivy::indexer::UserOperation;
use tantivy::schema::Term;
use tantivy::{Index, IndexReader, IndexWriter, TantivyDocument};
use tracing::{debug, error, warn};

use crate::convert::IndexDoc;
use crate::error::{Result, StoreError};
use crate::visibility::Visibility;
use cameodb_schema::analysis;
use cameodb_schema::fields::Fields;
use cameodb_schema::mapping::Mapping;

/// One operation for the index.
pub(crate) enum IndexOp {
    /// Index `doc`, first removing whatever is indexed under `key` when `replaces` is set.
    /// A document the KV store did not have cannot be in the index (any earlier version's
    /// delete was queued before this), so creates skip the delete: tantivy evaluates every
    /// queued delete against every segment, which made deletes the top cost of bulk loads.
    Upsert {
        key: Vec<u8>,
        doc: IndexDoc,
        replaces: bool,
    },
    /// Remove whatever is indexed under `key`.
    Delete { key: Vec<u8> },
}

/// The operations of one durable redb transaction.
pub(crate) struct IndexBatch {
    /// In sequence order.
    pub ops: Vec<IndexOp>,
    /// Every sequence below this is durable once this batch is applied.
    pub next_seq: u64,
    /// Rough indexing cost, for the memory-budget trigger.
    pub approx_bytes: usize,
    /// The mapping, when this transaction changed it (analyzers may need registering).
    pub mapping: Option<Arc<Mapping>>,
}

/// Messages to the indexer thread.
pub(crate) enum IndexerMsg {
    /// Apply a batch.
    Batch(IndexBatch),
    /// Commit now (if anything is pending) and reply once searchable.
    Refresh(Sender<Result<()>>),
    /// Commit (if configured) and stop.
    Shutdown {
        commit: bool,
        reply: Sender<Result<()>>,
    },
}

/// What the indexer writes into each tantivy commit.
#[derive(Serialize, Deserialize)]
pub(crate) struct CommitPayload {
    /// Every operation with a lower sequence number is in this commit.
    pub next_seq: u64,
}

/// State owned by the indexer thread.
pub(crate) struct Indexer {
    pub index: Index,
    pub writer: IndexWriter<TantivyDocument>,
    pub reader: IndexReader,
    pub fields: Fields,
    /// Sequence below which every operation has been handed to the writer.
    pub applied_next: u64,
    /// Sequence below which everything is committed.
    pub committed_next: u64,
    /// Shared with the writer thread, which truncates the WAL behind it.
    pub committed: Arc<AtomicU64>,
    pub visibility: Arc<Visibility>,
    pub refresh_interval: Option<Duration>,
    /// Pending indexing bytes that commit whatever the refresh policy: the writer's memory
    /// budget or `StoreConfig::max_uncommitted_bytes`, the smaller.
    pub memory_budget: usize,
    /// Mapping whose analyzers are registered.
    pub mapping: Arc<Mapping>,
    /// The index's analysis settings, which the analyzers are built from.
    pub analysis: cameodb_schema::Analysis,
    /// Search activity: a search-idle store skips timed refreshes.
    pub activity: Arc<crate::activity::SearchActivity>,
    /// When the oldest uncommitted operation arrived.
    pub pending_since: Option<Instant>,
    pub pending_bytes: usize,
    /// Told after each commit, which may let superseded bodies go.
    pub snapshots: Arc<crate::snapshot::Registry>,
}

impl Indexer {
    /// Runs until shut down or every sender is gone.
    pub fn run(mut self, inbox: Receiver<IndexerMsg>) {
        loop {
            let msg = match (self.pending_since, self.refresh_interval) {
                (Some(since), Some(interval)) => {
                    let deadline = since + interval;
                    match inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(msg) => Some(msg),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                _ => match inbox.recv() {
                    Ok(msg) => Some(msg),
                    Err(_) => break,
                },
            };
            match msg {
                // Nobody is searching: leave the writes pending (the memory budget still
                // commits) and look again after another interval.
                None if self.activity.is_idle() => self.pending_since = Some(Instant::now()),
                None => self.commit_logged(),
                Some(IndexerMsg::Batch(batch)) => {
                    self.apply(batch);
                    if self.pending_bytes >= self.memory_budget {
                        self.commit_logged();
                    }
                }
                Some(IndexerMsg::Refresh(reply)) => {
                    let _ = reply.send(self.commit());
                }
                Some(IndexerMsg::Shutdown { commit, reply }) => {
                    let result = if commit { self.commit() } else { Ok(()) };
                    let result = result.and(self.finish_merges());
                    let _ = reply.send(result);
                    return;
                }
            }
        }
        debug!("indexer thread stopping");
        if let Err(err) = self.finish_merges() {
            warn!(error = %err, "waiting for index merges failed");
        }
    }

    /// Waits for running merges: dropping the writer alone leaves its merge threads writing
    /// into the index directory after the store is closed — racing an index deletion
    /// ("directory not empty", found by the benchmark) or the next writer opened on it.
    fn finish_merges(self) -> Result<()> {
        self.writer.wait_merging_threads()?;
        Ok(())
    }

    fn apply(&mut self, batch: IndexBatch) {
        if let Some(mapping) = batch.mapping {
            if analysis::slot_analyzers(&mapping) != analysis::slot_analyzers(&self.mapping) {
                // Segment writers capture analyzers when created: end them before switching.
                self.commit_logged();
                analysis::register(self.index.tokenizers(), &mapping, &self.analysis);
            } else {
                // New normalized keywords need their normalizers registered for queries.
                analysis::register_normalizers(self.index.tokenizers(), &mapping, &self.analysis);
            }
            self.mapping = mapping;
        }
        for op in batch.ops {
            match op {
                IndexOp::Upsert { key, doc, replaces } => {
                    let replaced = replaces.then(|| Term::from_field_bytes(self.fields.key, &key));
                    if let Err(err) = add_indexed(&self.writer, replaced, doc) {
                        error!(error = %err, "index add failed; the document is replayed from the wal on next open");
                    }
                }
                IndexOp::Delete { key } => {
                    self.writer
                        .delete_term(Term::from_field_bytes(self.fields.key, &key));
                }
            }
        }
        self.applied_next = batch.next_seq;
        self.pending_bytes += batch.approx_bytes;
        self.pending_since.get_or_insert_with(Instant::now);
    }

    fn commit_logged(&mut self) {
        if let Err(err) = self.commit() {
            warn!(error = %err, "index commit failed; will retry on the next refresh");
        }
    }

    /// Commits everything applied so far, makes it searchable and lets the WAL be truncated.
    pub fn commit(&mut self) -> Result<()> {
        if self.pending_since.is_none() && self.applied_next == self.committed_next {
            return Ok(());
        }
        commit_with_payload(&mut self.writer, self.applied_next)?;
        self.reader.reload()?;
        self.committed_next = self.applied_next;
        self.pending_since = None;
        self.pending_bytes = 0;
        self.committed.store(self.committed_next, Ordering::Release);
        self.visibility.publish(self.committed_next);
        self.snapshots.request_collect();
        Ok(())
    }
}

/// Hands `doc` to `writer`, first deleting what `replaced` names. A document with nested
/// elements goes as one batch, which tantivy writes into one segment in order: each element
/// lands just before the document holding it, which is what nested queries rely on.
pub(crate) fn add_indexed(
    writer: &IndexWriter<TantivyDocument>,
    replaced: Option<Term>,
    doc: IndexDoc,
) -> tantivy::Result<()> {
    if doc.children.is_empty() {
        if let Some(term) = replaced {
            writer.delete_term(term);
        }
        writer.add_document(doc.doc)?;
        return Ok(());
    }
    let mut ops: Vec<UserOperation<TantivyDocument>> = Vec::with_capacity(doc.children.len() + 2);
    ops.extend(replaced.map(UserOperation::Delete));
    ops.extend(doc.into_documents().into_iter().map(UserOperation::Add));
    writer.run(ops)?;
    Ok(())
}

/// Live documents in `searcher`, not counting nested elements' hidden documents: the number
/// the KV store's count must equal.
pub(crate) fn root_docs(searcher: &tantivy::Searcher, fields: &Fields) -> Result<u64> {
    let mark = Term::from_field_text(
        fields.field_names,
        cameodb_schema::mapping::nested::NESTED_MARK,
    );
    let hidden = searcher.search(
        &tantivy::query::TermQuery::new(mark, tantivy::schema::IndexRecordOption::Basic),
        &tantivy::collector::Count,
    )?;
    Ok(searcher.num_docs().saturating_sub(hidden as u64))
}

/// Commits `writer`, recording that every sequence below `next_seq` is included.
pub(crate) fn commit_with_payload(
    writer: &mut IndexWriter<TantivyDocument>,
    next_seq: u64,
) -> Result<()> {
    let payload = serde_json::to_string(&CommitPayload { next_seq })
        .map_err(|e| StoreError::Index(e.to_string()))?;
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&payload);
    prepared.commit()?;
    Ok(())
}

/// Reads the sequence a commit payload covers; `None` when the payload is absent or foreign.
pub(crate) fn payload_next_seq(payload: Option<&str>) -> Option<u64> {
    payload
        .and_then(|p| serde_json::from_str::<CommitPayload>(p).ok())
        .map(|p| p.next_seq)
}
