//! Store tuning knobs.

use std::time::Duration;

/// How a store behaves; [`StoreConfig::default`] is what a server uses.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Pending writes become searchable (tantivy commit + reader reload) at most this long after
    /// they are acknowledged. `None` disables timed refresh: only explicit refreshes, the memory
    /// budget and close commit.
    pub refresh_interval: Option<Duration>,
    /// tantivy IndexWriter memory budget, shared by its threads. Pending index data beyond this
    /// also triggers a commit.
    pub writer_memory_bytes: usize,
    /// Most indexing bytes (as `IndexBatch::approx_bytes` counts them) left uncommitted in
    /// tantivy, whatever the refresh policy: what a crash leaves for the next open to replay
    /// (Elasticsearch's `index.translog.flush_threshold_size`). Replay re-indexes at tantivy's
    /// indexing rate, so this bounds the cold start after a crash: measured on text-all, the
    /// 16 MB tail was 20,338 records replayed in 1.9 s (140,338 in 4.8 s under the writer's
    /// 64 MB budget alone); with refresh off, a bulk load commits (and what it committed becomes searchable, as at the writer's memory
    /// budget before) once per 16 MB of indexing bytes.
    pub max_uncommitted_bytes: usize,
    /// tantivy indexing threads.
    pub indexer_threads: usize,
    /// Most operations coalesced into one redb transaction, bounding transaction size.
    pub max_group_ops: usize,
    /// Write requests that may wait for the writer before callers block (back-pressure).
    pub queue_capacity: usize,
    /// Commit tantivy when the store closes. Turning this off leaves the WAL tail for the next
    /// open to replay — only benchmarks and recovery tests want that.
    pub commit_on_close: bool,
    /// Verify tantivy file checksums on open and rebuild from redb on mismatch.
    pub verify_index_on_open: bool,
    /// A store not searched for this long skips timed refreshes until the next search, which
    /// refreshes first (Elasticsearch's `index.search.idle.after`, same default). `None` keeps
    /// refreshing on the timer; a server sets that for indexes with an explicit refresh interval.
    pub search_idle_after: Option<Duration>,
    /// redb page cache. redb's default (1 GiB) is per database, so a node that bulk-loaded a few
    /// indexes held gigabytes of cached pages; bodies are read rarely and the OS page cache
    /// backs the file anyway.
    pub kv_cache_bytes: usize,
    /// How long the change feed keeps superseded versions and tombstones
    /// (`index.cameo.changes.retention`): a reader (a consumer, a replica catching up) that
    /// falls further behind than this must start over.
    pub changes_retention: Duration,
    /// Nice value for the store's threads (writer, indexer and the tantivy indexing and merge
    /// threads they start), so ingest yields the CPU to reads; 0 keeps the caller's priority.
    pub background_nice: i32,
    /// The node this store belongs to, as stamped into the writes it stamps itself (see
    /// [`crate::origin_of`]); 0 for a store outside a server.
    pub origin: u64,
    /// The index's analysis settings (`index.analysis`): its own analyzers and normalizers,
    /// which text slots and normalized keywords are built from.
    pub analysis: cameodb_schema::Analysis,
}

/// The change feed's default retention: 12 hours, Elasticsearch's retention-lease period for
/// soft deletes, long enough for a replica down overnight to catch up from the feed.
pub const DEFAULT_CHANGES_RETENTION: Duration = Duration::from_secs(12 * 3600);

/// tantivy refuses budgets below 15 MB per thread.
const MIN_BUDGET_PER_THREAD: usize = 15_000_000;

impl Default for StoreConfig {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4);
        StoreConfig {
            refresh_interval: Some(Duration::from_millis(100)),
            writer_memory_bytes: 64_000_000,
            max_uncommitted_bytes: 16_000_000,
            indexer_threads: threads,
            max_group_ops: 10_000,
            queue_capacity: 1024,
            commit_on_close: true,
            verify_index_on_open: true,
            search_idle_after: Some(Duration::from_secs(30)),
            kv_cache_bytes: 64 * 1024 * 1024,
            changes_retention: DEFAULT_CHANGES_RETENTION,
            background_nice: 10,
            origin: 0,
            analysis: cameodb_schema::Analysis::default(),
        }
    }
}

impl StoreConfig {
    /// A small-footprint configuration for tests: one indexing thread, minimal budget.
    pub fn small() -> Self {
        StoreConfig {
            writer_memory_bytes: MIN_BUDGET_PER_THREAD,
            indexer_threads: 1,
            ..StoreConfig::default()
        }
    }

    /// Threads and budget adjusted so tantivy accepts them.
    pub(crate) fn writer_params(&self) -> (usize, usize) {
        let threads = self.indexer_threads.max(1);
        (
            threads,
            self.writer_memory_bytes
                .max(threads * MIN_BUDGET_PER_THREAD),
        )
    }
}
