//! Versions that order writes across replicas: a hybrid logical clock reading plus the id of
//! the node that made it. Replicas keep, per document, the write with the greatest stamp (last
//! writer wins), so applying the same writes twice or in any order gives the same content.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds from the Unix epoch to 2025-01-01T00:00:00Z, where clock readings start: with
/// [`LOGICAL_BITS`] logical bits a reading stays below 2^53 (exact in a JavaScript number, which
/// is how Elasticsearch's JS client parses `_seq_no`) until 2094.
pub const HLC_EPOCH_MS: u64 = 1_735_689_600_000;
/// Low bits of a reading that count events within one millisecond: 4,096 per ms before the
/// reading runs ahead of the wall clock (it then waits for nothing; it is just ahead).
pub const LOGICAL_BITS: u32 = 12;

/// The order of one document's versions. Compared by clock reading, then by origin, so two
/// writes stamped in the same tick on different nodes still have one winner everywhere.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp {
    /// Hybrid logical clock reading (see [`Hlc`]); shown to clients as `_seq_no`.
    pub hlc: u64,
    /// Hash of the node that assigned it (see [`origin_of`]): the tie-break.
    pub origin: u64,
}

impl Stamp {
    /// The stamp written before stamps existed: older than any real one.
    pub const ZERO: Stamp = Stamp { hlc: 0, origin: 0 };

    /// This stamp if its clock reading is past `floor`'s, else the first reading after
    /// `floor`'s (with this stamp's origin): a write must be newer than what it replaces,
    /// whatever the clock of the node that stamped it said — and by its reading alone, since
    /// the reading is the `_seq_no` a conditional write names the version by.
    pub fn after(self, floor: Stamp) -> Stamp {
        if self.hlc > floor.hlc {
            self
        } else {
            Stamp {
                hlc: floor.hlc.saturating_add(1),
                origin: self.origin,
            }
        }
    }
}

/// The origin of a node id: a stable 64-bit hash, equal on every node.
pub fn origin_of(node: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(node.as_bytes())
}

/// A hybrid logical clock: readings follow the wall clock (ms since [`HLC_EPOCH_MS`], shifted
/// by [`LOGICAL_BITS`]) but never repeat or go back, and never fall behind a reading observed
/// from another node — so a write stamped after seeing another is ordered after it even when
/// this node's wall clock is behind.
#[derive(Debug, Default)]
pub struct Hlc {
    /// The last reading given out or observed.
    last: AtomicU64,
}

impl Hlc {
    /// A clock that has seen nothing yet.
    pub fn new() -> Hlc {
        Hlc::default()
    }

    /// A reading greater than every earlier one.
    pub fn now(&self) -> u64 {
        let wall = wall_reading();
        let previous = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(wall.max(last.saturating_add(1)))
            })
            .unwrap_or_else(|last| last);
        wall.max(previous.saturating_add(1))
    }

    /// Notes a reading made elsewhere: later readings here are greater.
    pub fn observe(&self, reading: u64) {
        self.last.fetch_max(reading, Ordering::AcqRel);
    }
}

/// The wall clock as a reading with a zero logical part; 0 before the epoch.
fn wall_reading() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    ms.saturating_sub(HLC_EPOCH_MS) << LOGICAL_BITS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn readings_increase_and_follow_what_was_observed() {
        let clock = Hlc::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b > a);
        assert!(a < (1u64 << 53), "readings fit a JavaScript number");
        clock.observe(b + 1_000_000);
        assert!(clock.now() > b + 1_000_000);
    }

    proptest! {
        #[test]
        fn after_is_newer_than_the_floor(hlc: u64, origin: u64, fh: u64, fo: u64) {
            let floor = Stamp { hlc: fh, origin: fo };
            let stamp = Stamp { hlc, origin }.after(floor);
            prop_assert!(stamp.hlc > floor.hlc || fh == u64::MAX);
            prop_assert_eq!(stamp.origin, origin);
        }
    }
}
