//! The systems CameoDB is measured against, fed the same documents in the same run.

pub mod postgres;
pub mod sqlite;
pub mod tantivy;

use std::time::Duration;

/// A bulk load's outcome.
pub struct Load {
    /// Documents loaded and searchable at the end.
    pub docs: usize,
    /// Source bytes loaded.
    pub bytes: usize,
    /// From the first write to everything searchable.
    pub elapsed: Duration,
    /// Bytes on disk afterwards.
    pub disk: u64,
}

impl Load {
    pub fn docs_per_sec(&self) -> f64 {
        self.docs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}
