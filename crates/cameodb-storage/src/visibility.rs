//! Which sequence numbers have reached a stage (searchable, durable), with a way to wait for
//! one: the indexer publishes what searches can see, the writer what is durable.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Which sequence numbers have reached a stage, with a way to wait for one.
#[derive(Default)]
pub(crate) struct Visibility {
    /// Every sequence below this value is searchable.
    next: Mutex<u64>,
    /// Signalled on every advance.
    advanced: Condvar,
}

impl Visibility {
    pub fn new(next: u64) -> Self {
        Visibility {
            next: Mutex::new(next),
            advanced: Condvar::new(),
        }
    }

    pub fn publish(&self, next: u64) {
        if let Ok(mut guard) = self.next.lock() {
            *guard = (*guard).max(next);
            self.advanced.notify_all();
        }
    }

    pub fn current(&self) -> u64 {
        self.next.lock().map_or(0, |g| *g)
    }

    /// Waits until `seq` is searchable or `timeout` passes; returns whether it is.
    pub fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        let Ok(guard) = self.next.lock() else {
            return false;
        };
        match self
            .advanced
            .wait_timeout_while(guard, timeout, |next| *next <= seq)
        {
            Ok((guard, _)) => *guard > seq,
            Err(_) => false,
        }
    }
}
