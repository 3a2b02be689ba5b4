//! Index snapshots and what they keep alive. A [`Snapshot`] is a tantivy searcher with the
//! sequence its commit covers, registered while any clone of it lives (a running search, a
//! scroll, a point in time). The bodies updates and deletes supersede stay in the `log` until
//! no registered snapshot can still match them: a body superseded by the write at sequence `u`
//! is reachable only from a snapshot whose commit does not cover `u`. The writer drops it once
//! the [`Registry::horizon`] passes `u`.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use tantivy::Searcher;

use crate::visibility::Visibility;

/// Asks the writer to collect superseded bodies (best effort, never blocks).
pub(crate) type Collector = Box<dyn Fn() + Send + Sync>;

/// The open snapshots of one store, by the sequence their commit covers.
pub(crate) struct Registry {
    /// Open snapshot count per covered sequence.
    open: Mutex<BTreeMap<u64, usize>>,
    /// What the index covers now: a snapshot taken now covers at least this.
    visibility: Arc<Visibility>,
    /// Asked to collect superseded bodies when the oldest snapshot closes.
    collect: Mutex<Option<Collector>>,
}

impl Registry {
    pub fn new(visibility: Arc<Visibility>) -> Registry {
        Registry {
            open: Mutex::default(),
            visibility,
            collect: Mutex::default(),
        }
    }

    /// How to ask for collection (a message to the writer), once the writer runs; `None`
    /// when the store closes.
    pub fn set_collector(&self, collector: Option<Collector>) {
        if let Ok(mut collect) = self.collect.lock() {
            *collect = collector;
        }
    }

    /// Registers a snapshot about to be taken and returns the sequence it is known to cover.
    /// Read under the lock the horizon is computed under, so no snapshot can register below a
    /// horizon already handed out; the searcher is taken after, so it covers at least this
    /// (the indexer publishes a sequence only after its reader reloaded).
    fn pin(&self) -> u64 {
        let Ok(mut open) = self.open.lock() else {
            return 0;
        };
        let seq = self.visibility.current();
        *open.entry(seq).or_default() += 1;
        seq
    }

    fn release(&self, seq: u64) {
        let oldest_closed = {
            let Ok(mut open) = self.open.lock() else {
                return;
            };
            let was_oldest = open.keys().next() == Some(&seq);
            match open.get_mut(&seq) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    open.remove(&seq);
                    was_oldest
                }
                None => false,
            }
        };
        if oldest_closed {
            // Best effort: a full inbox means writes are coming, and each one collects too.
            self.request_collect();
        }
    }

    /// Asks the writer to collect (after a commit moved the horizon); best effort.
    pub fn request_collect(&self) {
        if let Ok(collect) = self.collect.lock()
            && let Some(collect) = collect.as_ref()
        {
            collect();
        }
    }

    /// Bodies superseded by a write below this sequence are unreachable: every open snapshot,
    /// and every one taken from now on, covers that write.
    pub fn horizon(&self) -> u64 {
        let Ok(open) = self.open.lock() else {
            return 0;
        };
        let now = self.visibility.current();
        open.keys().next().map_or(now, |oldest| now.min(*oldest))
    }

    /// How many snapshots are open.
    pub fn open_count(&self) -> usize {
        self.open.lock().map_or(0, |open| open.values().sum())
    }
}

/// Keeps a snapshot registered while any clone of it lives.
struct Pin {
    seq: u64,
    registry: Arc<Registry>,
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.registry.release(self.seq);
    }
}

/// A point-in-time view of the index: search it, and read each hit's source as it was when
/// the snapshot's commit was made ([`crate::Store::snapshot_docs`]).
#[derive(Clone)]
pub struct Snapshot {
    /// The tantivy searcher.
    searcher: Searcher,
    /// The registration, shared by clones.
    pin: Arc<Pin>,
}

impl Snapshot {
    pub(crate) fn take(registry: &Arc<Registry>, searcher: impl FnOnce() -> Searcher) -> Snapshot {
        let seq = registry.pin();
        let pin = Arc::new(Pin {
            seq,
            registry: Arc::clone(registry),
        });
        Snapshot {
            searcher: searcher(),
            pin,
        }
    }

    /// The sequence the snapshot is known to cover: every write below it is in the snapshot.
    pub fn seq(&self) -> u64 {
        self.pin.seq
    }

    /// The tantivy searcher.
    pub fn searcher(&self) -> &Searcher {
        &self.searcher
    }
}

impl Deref for Snapshot {
    type Target = Searcher;

    fn deref(&self) -> &Searcher {
        &self.searcher
    }
}
