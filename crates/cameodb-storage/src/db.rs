//! The store's redb database, shared by readers and the writer thread, with room for what
//! needs it alone: compaction, which gives the pages collection freed back to the file system.
//! Every transaction runs under a read lock held as long as the transaction lives; compaction
//! takes the write lock, so it starts only when no transaction is open and none starts
//! meanwhile (redb refuses to compact under an open transaction).

use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase};
use tracing::info;

use crate::error::{Result, StoreError};

/// Compact when the file is at least this large …
const COMPACT_MIN_FILE: u64 = 4 * 1024 * 1024;
/// … and at least this many times what its pages hold.
const COMPACT_RATIO: f64 = 1.5;
/// Look at most this often (the check opens a write transaction for the statistics).
const COMPACT_CHECK_EVERY: Duration = Duration::from_secs(1);

/// A read transaction and the lock that keeps compaction out while it lives. Fields drop in
/// order: the transaction ends before the lock is released.
pub(crate) struct ReadTxn<'a> {
    txn: ReadTransaction,
    _guard: RwLockReadGuard<'a, Database>,
}

impl std::ops::Deref for ReadTxn<'_> {
    type Target = ReadTransaction;

    fn deref(&self) -> &ReadTransaction {
        &self.txn
    }
}

pub(crate) struct Db {
    /// The database.
    inner: RwLock<Database>,
    /// Its file, whose length the compaction check reads.
    path: PathBuf,
}

fn poisoned() -> StoreError {
    StoreError::Storage("database lock poisoned by a panicked thread".into())
}

impl Db {
    pub fn new(database: Database, path: PathBuf) -> Db {
        Db {
            inner: RwLock::new(database),
            path,
        }
    }

    /// Runs `read` in a read transaction.
    pub fn read<T>(&self, read: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        let txn = self.begin_read()?;
        read(&txn)
    }

    /// A read transaction that holds the read lock as long as it lives.
    pub fn begin_read(&self) -> Result<ReadTxn<'_>> {
        let guard = self.inner.read().map_err(|_| poisoned())?;
        let txn = guard.begin_read()?;
        Ok(ReadTxn { txn, _guard: guard })
    }

    /// The database, for a write transaction that must end before the guard does.
    pub fn shared(&self) -> Result<RwLockReadGuard<'_, Database>> {
        self.inner.read().map_err(|_| poisoned())
    }

    /// Compacts the file when it is much larger than what it holds; `last` rate-limits the
    /// check (`None`: not looked at now). Called by the writer thread only (the one writer),
    /// between transactions.
    pub fn compact_if_worthwhile(&self, last: &mut Option<Instant>) -> Result<Option<bool>> {
        if last.is_some_and(|at| at.elapsed() < COMPACT_CHECK_EVERY) {
            return Ok(None);
        }
        *last = Some(Instant::now());
        let file = std::fs::metadata(&self.path)?.len();
        if file < COMPACT_MIN_FILE {
            return Ok(Some(false));
        }
        let held = {
            let database = self.shared()?;
            let txn = database.begin_write()?;
            let stats = txn.stats()?;
            txn.abort()?;
            stats.allocated_pages() * stats.page_size() as u64
        };
        if (file as f64) < held as f64 * COMPACT_RATIO {
            return Ok(Some(false));
        }
        let started = Instant::now();
        let mut database = self.inner.write().map_err(|_| poisoned())?;
        let mut rounds = 0;
        while rounds < 8
            && database
                .compact()
                .map_err(|e| StoreError::Storage(e.to_string()))?
        {
            rounds += 1;
        }
        drop(database);
        let after = std::fs::metadata(&self.path)?.len();
        info!(
            before = file,
            after,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "database compacted"
        );
        Ok(Some(true))
    }
}
