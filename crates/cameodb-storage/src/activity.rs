//! Search activity, for search-idle refresh skipping (Elasticsearch's `index.search.idle.after`):
//! a store nobody has searched for a while skips its timed refreshes, so a bulk load into an
//! index nobody is reading is not cut into hundreds of tiny segments that then have to be
//! merged (a third of the CPU of a 100 ms-refresh bulk load). The first search afterwards
//! refreshes before it runs, so it still sees every acknowledged write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When the store was last searched.
pub(crate) struct SearchActivity {
    /// Time origin for `last_ms`.
    base: Instant,
    /// Milliseconds after `base` of the last search; `NEVER` before the first.
    last_ms: AtomicU64,
    /// Quiet time after which the store is search-idle; `None` disables idling.
    idle_after: Option<Duration>,
}

const NEVER: u64 = u64::MAX;

impl SearchActivity {
    pub fn new(idle_after: Option<Duration>) -> SearchActivity {
        SearchActivity {
            base: Instant::now(),
            last_ms: AtomicU64::new(NEVER),
            idle_after,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn idle_at(&self, last: u64, now: u64) -> bool {
        match self.idle_after {
            None => false,
            Some(after) => last == NEVER || now.saturating_sub(last) >= after.as_millis() as u64,
        }
    }

    /// Whether timed refreshes may be skipped now.
    pub fn is_idle(&self) -> bool {
        self.idle_at(self.last_ms.load(Ordering::Relaxed), self.now_ms())
    }

    /// Records a search; returns whether the store was search-idle until now.
    pub fn touch(&self) -> bool {
        let now = self.now_ms();
        let last = self.last_ms.swap(now, Ordering::Relaxed);
        self.idle_at(last, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_searched_is_idle_and_a_search_wakes_it() {
        let activity = SearchActivity::new(Some(Duration::from_secs(30)));
        assert!(activity.is_idle());
        assert!(activity.touch(), "the first search finds it idle");
        assert!(!activity.is_idle());
        assert!(!activity.touch());
    }

    #[test]
    fn idles_again_after_the_quiet_time() {
        let activity = SearchActivity::new(Some(Duration::from_millis(20)));
        activity.touch();
        std::thread::sleep(Duration::from_millis(30));
        assert!(activity.is_idle());
    }

    #[test]
    fn disabled_never_idles() {
        let activity = SearchActivity::new(None);
        assert!(!activity.is_idle());
        assert!(!activity.touch());
    }
}
