//! The load generator: closed-loop (a fixed number of callers, each waiting for its answer
//! before the next request) and open-loop (requests issued on a fixed schedule whatever the
//! answers do; latency counted from the scheduled time, so a stall is not hidden by the callers
//! slowing down). Latencies go into HDR histograms in microseconds.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// One operation; the argument is its sequence number (to pick a document or query).
pub type Op =
    Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What a run measured.
pub struct Summary {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed (first error kept in `first_error`).
    pub errors: u64,
    /// The first failure, to show why.
    pub first_error: Option<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latencies of successful operations, µs.
    pub hist: Histogram<u64>,
}

impl Summary {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency quantile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.hist.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Shared accumulation for the callers of one run.
struct Tally {
    hist: Mutex<Histogram<u64>>,
    ok: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn new() -> Arc<Tally> {
        Arc::new(Tally {
            hist: Mutex::new(histogram()),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
        })
    }

    fn record(&self, result: Result<(), String>, latency: Duration) {
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut hist) = self.hist.lock() {
                    let _ = hist.record((latency.as_micros() as u64).clamp(1, 600_000_000));
                }
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert(e);
                }
            }
        }
    }

    fn summary(&self, elapsed: Duration) -> Summary {
        Summary {
            ok: self.ok.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            first_error: self.first_error.lock().ok().and_then(|f| f.clone()),
            elapsed,
            hist: self
                .hist
                .lock()
                .map(|h| h.clone())
                .unwrap_or_else(|_| histogram()),
        }
    }
}

/// `concurrency` callers issue `op` back to back for `duration` (or until `limit` operations).
pub async fn closed(concurrency: usize, duration: Duration, limit: Option<u64>, op: Op) -> Summary {
    let tally = Tally::new();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let callers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (tally, next, op) = (Arc::clone(&tally), Arc::clone(&next), Arc::clone(&op));
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if limit.is_some_and(|limit| n >= limit) {
                        break;
                    }
                    let t = Instant::now();
                    let result = op(n).await;
                    tally.record(result, t.elapsed());
                }
            })
        })
        .collect();
    for caller in callers {
        let _ = caller.await;
    }
    tally.summary(started.elapsed())
}

/// `op` issued `rate` times a second for `duration`, each at its scheduled time; latency runs
/// from the scheduled time (no coordinated omission).
pub async fn open(rate: f64, duration: Duration, op: Op) -> Summary {
    let tally = Tally::new();
    let started = Instant::now();
    let total = (rate * duration.as_secs_f64()) as u64;
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let scheduled = started + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let (tally, op) = (Arc::clone(&tally), Arc::clone(&op));
        tasks.push(tokio::spawn(async move {
            let result = op(n).await;
            tally.record(result, scheduled.elapsed());
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    tally.summary(started.elapsed())
}
