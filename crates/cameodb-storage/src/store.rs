//! The public face of the engine: a [`Store`] is one shard — one redb file and one tantivy index
//! in a directory — with a writer thread (group commit) and an indexer thread (refresh).

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};
use redb::{ReadableTable, ReadableTableMetadata};
use serde_json::Value;
use tantivy::{DocAddress, Index, IndexReader};
use tracing::warn;

use crate::activity::SearchActivity;
use crate::config::StoreConfig;
use crate::db::Db;
use crate::error::{Result, StoreError};
use crate::id::{DocId, DocKey};
use crate::indexer::{Indexer, IndexerMsg};
use crate::kv::{self, DELETES, DOCS, LOG, StoredDoc};
use crate::ops::{WriteOp, WriteOutcome};
use crate::recovery::{self, RecoveryReport};
use crate::snapshot::{Registry, Snapshot};
use crate::visibility::Visibility;
use crate::writer::{Writer, WriterMsg};
use cameodb_schema::fields::{self as schema, Fields};
use cameodb_schema::mapping::Mapping;

/// One shard: a durable document store and its search index, kept in sync.
///
/// All methods block; call them from threads that may block (never from an async executor).
/// `Store` is `Send + Sync`: share it behind an `Arc`. Dropping it closes it.
pub struct Store {
    /// Where the store lives.
    dir: PathBuf,
    /// The database, shared with the writer thread; reads use their own transactions.
    db: Arc<Db>,
    /// Schema handles, for building queries.
    fields: Fields,
    /// The index's analysis settings (`_analyze`, and documents converted outside the writer).
    analysis: cameodb_schema::Analysis,
    /// The tantivy index (for its schema and tokenizers when building queries).
    index: Index,
    /// Searchers come from here; the indexer reloads it after each commit.
    reader: IndexReader,
    /// Current mapping, replaced (never mutated) by the writer after each durable change.
    mapping: Arc<RwLock<Arc<Mapping>>>,
    /// Which sequences are searchable.
    visibility: Arc<Visibility>,
    /// Requests to the writer; `None` once closed.
    writer_tx: Mutex<Option<Sender<WriterMsg>>>,
    /// Requests to the indexer (refresh, shutdown); `None` once closed.
    indexer_tx: Mutex<Option<Sender<IndexerMsg>>>,
    /// The two threads, joined on close.
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Whether close commits tantivy (see [`StoreConfig::commit_on_close`]).
    commit_on_close: bool,
    /// Sequence below which tantivy has committed: what a crash would not replay.
    committed: Arc<AtomicU64>,
    /// What opening had to do.
    recovery: RecoveryReport,
    /// When it was last searched (search-idle stores skip timed refreshes).
    activity: Arc<SearchActivity>,
    /// Whether timed refresh is on: only then does a search catch an idle store up first.
    timed_refresh: bool,
    /// Open snapshots: what keeps superseded bodies alive.
    snapshots: Arc<Registry>,
    /// Which sequences are durable: what change-feed readers wait on.
    durable: Arc<Visibility>,
}

impl Store {
    /// Opens the store in `dir`, creating it if needed, and recovers it: after this returns the
    /// index holds exactly the documents in the KV store.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        if config.background_nice <= 0 {
            return Store::open_here(dir, config);
        }
        // Open from a thread of lowered priority: the writer, the indexer and tantivy's own
        // threads are all started from it and inherit its nice value (see `priority`).
        std::thread::Builder::new()
            .name("cameodb-open".into())
            .spawn(move || {
                crate::priority::lower_current_thread(config.background_nice);
                Store::open_here(dir, config)
            })?
            .join()
            .map_err(|_| StoreError::Storage("store open panicked".into()))?
    }

    fn open_here(dir: PathBuf, config: StoreConfig) -> Result<Store> {
        let (schema, fields) = schema::build();
        let recovered = recovery::open(&dir, &config, &schema, &fields)?;
        let db = Arc::new(Db::new(recovered.db, dir.join(crate::recovery::DB_FILE)));
        let mapping = Arc::new(recovered.mapping);
        let shared_mapping = Arc::new(RwLock::new(Arc::clone(&mapping)));
        let visibility = Arc::new(Visibility::new(recovered.next_seq));
        let committed = Arc::new(AtomicU64::new(recovered.next_seq));
        // A few groups may wait for the indexer: enough to overlap the next redb commit with
        // indexing, and a bound on converted documents held in memory (at most four groups of
        // `max_group_ops`). Going from 64 to 4 or 2 made no measurable throughput difference.
        let (indexer_tx, indexer_rx) = bounded(4);
        let (writer_tx, writer_rx) = bounded(config.queue_capacity.max(1));
        let activity = Arc::new(SearchActivity::new(config.search_idle_after));
        let snapshots = Arc::new(Registry::new(Arc::clone(&visibility)));
        let collect_tx = writer_tx.clone();
        snapshots.set_collector(Some(Box::new(move || {
            // Best effort: a full inbox means writes are coming, and each one collects too.
            let _ = collect_tx.try_send(WriterMsg::Collect);
        })));
        let indexer = Indexer {
            snapshots: Arc::clone(&snapshots),
            activity: Arc::clone(&activity),
            index: recovered.index.clone(),
            writer: recovered.writer,
            reader: recovered.reader.clone(),
            fields: fields.clone(),
            applied_next: recovered.next_seq,
            committed_next: recovered.next_seq,
            committed: Arc::clone(&committed),
            visibility: Arc::clone(&visibility),
            refresh_interval: config.refresh_interval,
            memory_budget: config.writer_params().1.min(config.max_uncommitted_bytes),
            mapping: Arc::clone(&mapping),
            analysis: config.analysis.clone(),
            pending_since: None,
            pending_bytes: 0,
        };
        let durable = Arc::new(Visibility::new(recovered.next_seq));
        let writer = Writer {
            retention: config.changes_retention,
            written: std::collections::VecDeque::from([(0, std::time::Instant::now())]),
            retained_from: 0,
            feed_from: recovered.feed_from,
            durable: Arc::clone(&durable),
            compact_checked: None,
            dropped_since_check: 0,
            consumers: recovered.consumers,
            db: Arc::clone(&db),
            fields: fields.clone(),
            analysis: config.analysis.clone(),
            mapping: Mapping::clone(&mapping),
            shared_mapping: Arc::clone(&shared_mapping),
            next_seq: recovered.next_seq,
            indexer: indexer_tx.clone(),
            committed: Arc::clone(&committed),
            max_group_ops: config.max_group_ops.max(1),
            snapshots: Arc::clone(&snapshots),
            clock: crate::stamp::Hlc::new(),
            origin: config.origin,
        };
        let indexer_thread = std::thread::Builder::new()
            .name("cameodb-indexer".into())
            .spawn(move || indexer.run(indexer_rx))?;
        let writer_thread = std::thread::Builder::new()
            .name("cameodb-writer".into())
            .spawn(move || writer.run(writer_rx))?;
        Ok(Store {
            dir,
            db,
            fields,
            analysis: config.analysis.clone(),
            index: recovered.index,
            reader: recovered.reader,
            mapping: shared_mapping,
            visibility,
            writer_tx: Mutex::new(Some(writer_tx)),
            indexer_tx: Mutex::new(Some(indexer_tx)),
            threads: Mutex::new(vec![writer_thread, indexer_thread]),
            commit_on_close: config.commit_on_close,
            committed,
            recovery: recovered.report,
            activity,
            timed_refresh: config.refresh_interval.is_some(),
            snapshots,
            durable,
        })
    }

    /// What recovery did when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Whether the writer and indexer threads are alive (false once closed, or if one died).
    pub fn is_healthy(&self) -> bool {
        let open = self.writer_tx.lock().is_ok_and(|w| w.is_some());
        open && self
            .threads
            .lock()
            .is_ok_and(|threads| threads.iter().all(|t| !t.is_finished()))
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn writer(&self) -> Result<Sender<WriterMsg>> {
        self.writer_tx
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .ok_or(StoreError::Closed)
    }

    fn indexer(&self) -> Result<Sender<IndexerMsg>> {
        self.indexer_tx
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .ok_or(StoreError::Closed)
    }

    /// Applies a batch of writes. Each operation succeeds or fails on its own; the successful
    /// ones are durable (fsynced) when this returns. Concurrent callers share transactions.
    pub fn write_batch(&self, ops: Vec<WriteOp>) -> Vec<Result<WriteOutcome>> {
        let count = ops.len();
        if count == 0 {
            return Vec::new();
        }
        let (reply_tx, reply_rx) = bounded(1);
        let sent = self.writer().and_then(|tx| {
            tx.send(WriterMsg::Write {
                ops,
                reply: reply_tx,
            })
            .map_err(|_| StoreError::Closed)
        });
        match sent.and_then(|()| reply_rx.recv().map_err(|_| StoreError::Closed)) {
            Ok(results) => results,
            Err(err) => vec![Err(err); count],
        }
    }

    /// Applies one write.
    pub fn write(&self, op: WriteOp) -> Result<WriteOutcome> {
        self.write_batch(vec![op])
            .pop()
            .unwrap_or(Err(StoreError::Closed))
    }

    /// Real-time get: the latest durable version, whether or not it is searchable yet.
    pub fn get(&self, key: &DocKey) -> Result<Option<StoredDoc>> {
        self.db
            .read(|txn| kv::read(&txn.open_table(DOCS)?, &txn.open_table(LOG)?, key))
    }

    /// Gets several documents from one consistent snapshot.
    pub fn get_many(&self, keys: &[DocKey]) -> Result<Vec<Option<StoredDoc>>> {
        self.db.read(|txn| {
            let (docs, log) = (txn.open_table(DOCS)?, txn.open_table(LOG)?);
            keys.iter().map(|key| kv::read(&docs, &log, key)).collect()
        })
    }

    /// The current stamp of each of `keys`: its live version's, or its tombstone's when it was
    /// deleted (within the retention), or `None` when this store never saw it. What a replica
    /// compares with another's to tell which writes it lacks.
    pub fn stamps(&self, keys: &[DocKey]) -> Result<Vec<Option<crate::Stamp>>> {
        self.db.read(|txn| {
            let docs = txn.open_table(DOCS)?;
            let tombstones = txn.open_table(kv::TOMBSTONES)?;
            keys.iter()
                .map(|key| {
                    Ok(match kv::pointer(&docs, key)? {
                        Some(live) => Some(live.stamp),
                        None => kv::pointer(&tombstones, key)?.map(|t| t.stamp),
                    })
                })
                .collect()
        })
    }

    /// Calls `visit(id, token, version, stamp, deleted)` for every document this store holds a version
    /// of — live, or deleted within the retention (its tombstone) — from one snapshot: what
    /// replicas compare to find what one of them lacks.
    pub fn versions(
        &self,
        mut visit: impl FnMut(&str, u64, u64, crate::Stamp, bool),
    ) -> Result<()> {
        let txn = self.db.begin_read()?;
        for (table, deleted) in [(DOCS, false), (kv::TOMBSTONES, true)] {
            for row in txn.open_table(table)?.iter()? {
                let (key, pointer) = row?;
                let (id, token) = key.value();
                let pointer = kv::DocPointer::decode(pointer.value())?;
                visit(id, token, pointer.version, pointer.stamp, deleted);
            }
        }
        Ok(())
    }

    /// Number of documents in the KV store.
    pub fn doc_count(&self) -> Result<u64> {
        self.db.read(|txn| Ok(txn.open_table(DOCS)?.len()?))
    }

    /// Number of write-ahead records a crash now would replay: bodies written since tantivy's
    /// last commit plus delete records above it (diagnostics and tests).
    pub fn wal_len(&self) -> Result<u64> {
        let committed = self.committed.load(std::sync::atomic::Ordering::Acquire);
        let txn = self.db.begin_read()?;
        let deletes = txn.open_table(DELETES)?.range(committed..)?.count() as u64;
        // Superseded bodies kept for snapshots are not replayed: their successors are.
        let superseded = kv::superseded_from(&txn.open_table(kv::SUPERSEDED)?, committed)?;
        let mut uncommitted = 0u64;
        for entry in txn.open_table(LOG)?.range(committed..)? {
            let (seq, _) = entry?;
            uncommitted += u64::from(!superseded.contains(&seq.value()));
        }
        Ok(uncommitted + deletes)
    }

    /// Calls `visit` for every document whose token is in `tokens`, in id order, from one
    /// snapshot; stops early when `visit` returns false. Walks the whole `docs` table (it is
    /// keyed by id for write locality); moving token ranges is rare.
    pub fn scan(
        &self,
        tokens: RangeInclusive<u64>,
        mut visit: impl FnMut(DocKey, StoredDoc) -> bool,
    ) -> Result<()> {
        let txn = self.db.begin_read()?;
        let (docs, log) = (txn.open_table(DOCS)?, txn.open_table(LOG)?);
        for entry in docs.iter()? {
            let (key, row) = entry?;
            let (id, token) = key.value();
            if !tokens.contains(&token) {
                continue;
            }
            let key = DocKey {
                token,
                id: DocId::new(id)?,
            };
            let doc = kv::load(&log, kv::DocPointer::decode(row.value())?)?;
            if !visit(key, doc) {
                break;
            }
        }
        Ok(())
    }

    /// Makes every acknowledged write searchable now (a tantivy commit and reader reload).
    pub fn refresh(&self) -> Result<()> {
        let (tx, rx) = bounded(1);
        self.indexer()?
            .send(IndexerMsg::Refresh(tx))
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Waits until the write with sequence `seq_no` is searchable (`refresh=wait_for`), at most
    /// `timeout`. Returns whether it is.
    pub fn wait_searchable(&self, seq_no: u64, timeout: Duration) -> bool {
        // Someone is waiting to search: a search-idle store must resume its timed refreshes.
        self.activity.touch();
        self.visibility.wait_for(seq_no, timeout)
    }

    /// Every sequence below this is searchable.
    pub fn searchable_seq(&self) -> u64 {
        self.visibility.current()
    }

    /// Merges an Elasticsearch mapping body into the mapping, durably.
    pub fn put_mapping(&self, body: Value) -> Result<()> {
        let (tx, rx) = bounded(1);
        self.writer()?
            .send(WriterMsg::PutMapping { body, reply: tx })
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// The current mapping.
    pub fn mapping(&self) -> Arc<Mapping> {
        self.mapping
            .read()
            .map_or_else(|p| Arc::clone(&p.into_inner()), |m| Arc::clone(&m))
    }

    /// A snapshot of the latest refreshed state: search it, and read its hits' sources with
    /// [`Store::snapshot_docs`]. The versions it matched stay readable while it lives.
    pub fn searcher(&self) -> Snapshot {
        if self.activity.touch() && self.timed_refresh {
            // Search-idle until now: timed refreshes were skipped, so refresh before answering
            // to keep showing every acknowledged write, as Elasticsearch does.
            if let Err(err) = self.refresh() {
                tracing::warn!(error = %err, "refresh of a search-idle store failed");
            }
        }
        Snapshot::take(&self.snapshots, || self.reader.searcher())
    }

    /// The documents of `addresses` in `snapshot` as they were in it: the version each hit
    /// matched, whatever was written since.
    pub fn snapshot_docs(
        &self,
        snapshot: &Snapshot,
        addresses: &[DocAddress],
    ) -> Result<Vec<(DocKey, StoredDoc)>> {
        let hits = crate::hits::hit_seqs(snapshot, addresses)?;
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        hits.into_iter()
            .map(|(key, seq)| Ok((key, kv::load_seq(&log, seq)?)))
            .collect()
    }

    /// The database (the change feed reads it).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Which sequences are durable.
    pub(crate) fn durable(&self) -> &Visibility {
        &self.durable
    }

    /// Keeps the change feed from sequence `from` on for consumer `name` (a replica catching
    /// up), whatever the retention, until released; durable, so it survives a restart.
    pub fn hold_changes(&self, name: &str, from: u64) -> Result<()> {
        self.send_hold(name, Some(from))
    }

    /// Lets the history consumer `name` held go (to the retention).
    pub fn release_changes(&self, name: &str) -> Result<()> {
        self.send_hold(name, None)
    }

    fn send_hold(&self, name: &str, from: Option<u64>) -> Result<()> {
        let (tx, rx) = bounded(1);
        self.writer()?
            .send(WriterMsg::Hold {
                name: name.to_string(),
                from,
                reply: tx,
            })
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// How many superseded versions are kept for snapshots (diagnostics and tests).
    pub fn retained_versions(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(kv::SUPERSEDED)?.len()?)
    }

    /// How many snapshots are open (diagnostics and tests).
    pub fn open_snapshots(&self) -> usize {
        self.snapshots.open_count()
    }

    /// Schema field handles, for building queries.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The index's analysis settings.
    pub fn analysis(&self) -> &cameodb_schema::Analysis {
        &self.analysis
    }

    /// The tantivy index, for its schema and tokenizers when building queries.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Stops the threads after they finish queued work and commits the index (unless
    /// configured not to). Idempotent; also run on drop.
    pub fn close(&self) -> Result<()> {
        // The registry's sender would keep the writer thread waiting for more.
        self.snapshots.set_collector(None);
        let writer = self.writer_tx.lock().ok().and_then(|mut g| g.take());
        let Some(writer) = writer else { return Ok(()) };
        // Dropping the last writer sender lets the writer thread drain its queue and exit.
        drop(writer);
        let threads: Vec<_> = self
            .threads
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        let mut threads = threads.into_iter();
        if let Some(writer_thread) = threads.next() {
            let _ = writer_thread.join();
        }
        let mut result = Ok(());
        if let Some(indexer) = self.indexer_tx.lock().ok().and_then(|mut g| g.take()) {
            let (tx, rx) = bounded(1);
            if indexer
                .send(IndexerMsg::Shutdown {
                    commit: self.commit_on_close,
                    reply: tx,
                })
                .is_ok()
            {
                result = rx.recv().map_err(|_| StoreError::Closed).and_then(|r| r);
            }
        }
        for thread in threads {
            let _ = thread.join();
        }
        result
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(err) = self.close() {
            warn!(error = %err, dir = %self.dir.display(), "store close failed; the wal will be replayed on next open");
        }
    }
}
