//! The memory breaker. A request is given an [`Account`] under the node's [`NodeBudget`]; work
//! done for it on a thread *enters* the account ([`Account::enter`]), and from then until the
//! guard drops, every byte that thread allocates or frees is counted to it by the process's
//! global allocator ([`CountingAlloc`]). Bytes known up front (a request body) are reserved
//! explicitly ([`Account::reserve`]).
//!
//! Counting is real: aggregation buckets, decoded bulk items, parsed JSON are measured as
//! allocated, not estimated. When an account passes the per-request limit, or the node's
//! accounts together pass the node-wide limit, the account *trips*; the work polls
//! [`check`] (or [`Account::check`]) at its safe points and gives up with
//! [`BreakerError`] — Elasticsearch's `circuit_breaking_exception`, a 429. An allocation is never
//! refused (that would abort the process); the overshoot is what a thread allocates between two
//! checks.
//!
//! Counting costs one thread-local read per allocation outside any account, and one
//! uncontended atomic add inside one; the node-wide total moves in 1 MiB steps.

pub mod json;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

/// Granularity of what an account charges the node: the node total is touched only when an
/// account's usage crosses a multiple of this, so threads of different requests rarely meet on
/// one cache line.
const CHUNK: i64 = 1 << 20;

/// The global allocator wrapper: allocates with `A`, counts to the current thread's account.
pub struct CountingAlloc<A>(pub A);

thread_local! {
    /// The account this thread counts to, or null. Set only by [`Account::enter`] while its
    /// guard (which keeps the account alive) lives on this thread.
    static CURRENT: Cell<*const Account> = const { Cell::new(std::ptr::null()) };
}

/// Counts `delta` bytes to the current thread's account, if any. Never allocates.
fn count(delta: i64) {
    let _ = CURRENT.try_with(|current| {
        let account = current.get();
        if !account.is_null() {
            // SAFETY: `CURRENT` is non-null only between `Account::enter` and the drop of the
            // `Entered` guard it returned, on this same thread (the guard is `!Send`); the
            // guard holds an `Arc` of that account, so it is alive for this whole call.
            unsafe { (*account).charge(delta) };
        }
    });
}

fn size_of(layout: Layout) -> i64 {
    i64::try_from(layout.size()).unwrap_or(i64::MAX)
}

// SAFETY: every method forwards to `A` with the caller's arguments unchanged and returns its
// result unchanged, so `A`'s guarantees are ours. The counting around it only touches a
// thread-local and atomics, never allocates, and never unwinds.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received (see the impl's comment).
        let ptr = unsafe { self.0.alloc(layout) };
        if !ptr.is_null() {
            count(size_of(layout));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let ptr = unsafe { self.0.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(size_of(layout));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { self.0.dealloc(ptr, layout) };
        count(-size_of(layout));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let new = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(i64::try_from(new_size).unwrap_or(i64::MAX) - size_of(layout));
        }
        new
    }
}

/// The node-wide budget all accounts draw from (`indices.breaker.total.limit`). It is passed
/// when the live accounts together hold more than its limit, or — once
/// [`NodeBudget::watch_process_memory`] runs — when the whole process's anonymous resident
/// memory does (Elasticsearch's "real memory" parent breaker): what accounts count is live
/// bytes, while the process also holds allocator overhead, freed-but-resident pages and
/// memory no request owns (indexing buffers, caches).
#[derive(Debug)]
pub struct NodeBudget {
    /// Limit in bytes.
    limit: u64,
    /// Bytes charged by live accounts.
    used: AtomicI64,
    /// The process's anonymous resident memory at the last sample, bytes (0: not sampled).
    resident: AtomicI64,
    /// How many accounts tripped on this budget or their own limit (for metrics and tests).
    trips: AtomicU64,
}

impl NodeBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<NodeBudget> {
        Arc::new(NodeBudget {
            limit,
            used: AtomicI64::new(0),
            resident: AtomicI64::new(0),
            trips: AtomicU64::new(0),
        })
    }

    /// Samples the process's anonymous resident memory (`RssAnon`) every `interval` on a
    /// thread of its own, for as long as the budget lives; the node limit then applies to it
    /// too. Does nothing where `/proc/self/status` cannot be read.
    pub fn watch_process_memory(self: &Arc<Self>, interval: std::time::Duration) {
        if resident_anon_bytes().is_none() {
            return;
        }
        let budget = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("cameodb-memory-watch".into())
            .spawn(move || {
                while let Some(budget) = budget.upgrade() {
                    if let Some(bytes) = resident_anon_bytes() {
                        budget
                            .resident
                            .store(i64::try_from(bytes).unwrap_or(i64::MAX), Ordering::Relaxed);
                    }
                    drop(budget);
                    std::thread::sleep(interval);
                }
            });
        // Without the thread the breaker still counts requests; nothing else depends on it.
        drop(spawned);
    }

    /// The process's anonymous resident memory at the last sample, bytes.
    pub fn resident(&self) -> u64 {
        u64::try_from(self.resident.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// The larger of what live accounts hold and what the process holds, when over the limit.
    fn over_by(&self) -> Option<i64> {
        let limit = i64::try_from(self.limit).unwrap_or(i64::MAX);
        let held = self
            .used
            .load(Ordering::Relaxed)
            .max(self.resident.load(Ordering::Relaxed));
        (held > limit).then_some(held)
    }

    /// The limit, bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes charged by live accounts now.
    pub fn used(&self) -> u64 {
        u64::try_from(self.used.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// How many accounts have tripped since start.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    /// A new account for one request, with a limit of its own.
    pub fn account(self: &Arc<Self>, label: &'static str, limit: u64) -> Arc<Account> {
        Arc::new(Account {
            label,
            limit,
            node: Arc::clone(self),
            used: AtomicI64::new(0),
            reserved: AtomicI64::new(0),
            charged: AtomicI64::new(0),
            tripped: AtomicU8::new(NOT_TRIPPED),
            tripped_at: AtomicI64::new(0),
        })
    }
}

const NOT_TRIPPED: u8 = 0;
const TRIPPED_REQUEST: u8 = 1;
const TRIPPED_NODE: u8 = 2;

/// What one request is charged: bytes its threads allocated while entered, plus reservations.
#[derive(Debug)]
pub struct Account {
    /// What the request is (`<http_request>`, `<agg>`, …), for the error message.
    label: &'static str,
    /// Per-request limit (`indices.breaker.request.limit`).
    limit: u64,
    /// The node budget it draws from.
    node: Arc<NodeBudget>,
    /// Net bytes allocated by threads while entered (negative when they freed older memory).
    used: AtomicI64,
    /// Bytes reserved explicitly.
    reserved: AtomicI64,
    /// What this account has charged the node: `reserved` plus `used` rounded up to [`CHUNK`].
    charged: AtomicI64,
    /// Whether, and on which limit, it tripped; sticky.
    tripped: AtomicU8,
    /// What the tripped limit's total was when it tripped (the error reports it).
    tripped_at: AtomicI64,
}

impl Account {
    /// Counts this thread's allocations to this account until the guard drops.
    pub fn enter(self: &Arc<Self>) -> Entered<'_> {
        let previous = CURRENT.with(|current| current.replace(Arc::as_ptr(self)));
        Entered {
            _account: self,
            previous,
            _not_send: std::marker::PhantomData,
        }
    }

    /// Runs `work` entered in this account.
    pub fn run<T>(self: &Arc<Self>, work: impl FnOnce() -> T) -> T {
        let _entered = self.enter();
        work()
    }

    /// Reserves `bytes` known up front (a request body); fails, reserving nothing, when that
    /// would pass either limit.
    pub fn reserve(&self, bytes: u64) -> Result<(), BreakerError> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let wanted = self.total().saturating_add(bytes);
        if wanted > i64::try_from(self.limit).unwrap_or(i64::MAX) {
            self.node.trips.fetch_add(1, Ordering::Relaxed);
            return Err(self.error(Breaker::Request, wanted));
        }
        let node_wanted = self.node.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let resident = self
            .node
            .resident
            .load(Ordering::Relaxed)
            .saturating_add(bytes);
        let node_held = node_wanted.max(resident);
        if node_held > i64::try_from(self.node.limit).unwrap_or(i64::MAX) {
            self.node.used.fetch_sub(bytes, Ordering::Relaxed);
            self.node.trips.fetch_add(1, Ordering::Relaxed);
            return Err(self.error(Breaker::Node, node_held));
        }
        self.reserved.fetch_add(bytes, Ordering::Relaxed);
        self.charged.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Gives back `bytes` of an earlier reservation.
    pub fn release(&self, bytes: u64) {
        let bytes = i64::try_from(bytes)
            .unwrap_or(i64::MAX)
            .min(self.reserved.load(Ordering::Relaxed));
        self.reserved.fetch_sub(bytes, Ordering::Relaxed);
        self.charged.fetch_sub(bytes, Ordering::Relaxed);
        self.node.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The per-request limit, bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes this account holds: allocated while entered plus reserved.
    pub fn total(&self) -> i64 {
        self.used
            .load(Ordering::Relaxed)
            .max(0)
            .saturating_add(self.reserved.load(Ordering::Relaxed))
    }

    /// Trips the account unless `bytes` more would still fit, in its own limit and the node's:
    /// for work about to take a step it cannot be stopped in (a vector that doubles, a
    /// conversion of everything collected so far).
    pub fn ensure_headroom(&self, bytes: i64) -> Result<(), BreakerError> {
        self.check()?;
        let bytes = bytes.max(0);
        let held = self.total().saturating_add(bytes);
        let trip = if held > i64::try_from(self.limit).unwrap_or(i64::MAX) {
            Some((TRIPPED_REQUEST, held))
        } else {
            let node = self
                .node
                .used
                .load(Ordering::Relaxed)
                .max(self.node.resident.load(Ordering::Relaxed))
                .saturating_add(bytes);
            (node > i64::try_from(self.node.limit).unwrap_or(i64::MAX))
                .then_some((TRIPPED_NODE, node))
        };
        if let Some((tripped, at)) = trip {
            self.trip(tripped, at);
            return self.check();
        }
        Ok(())
    }

    /// The error to give up with, once this account has tripped.
    pub fn check(&self) -> Result<(), BreakerError> {
        let at = self.tripped_at.load(Ordering::Relaxed);
        match self.tripped.load(Ordering::Relaxed) {
            NOT_TRIPPED => Ok(()),
            TRIPPED_REQUEST => Err(self.error(Breaker::Request, at)),
            _ => Err(self.error(Breaker::Node, at)),
        }
    }

    /// Counts an allocation (`delta` > 0) or a free. Called from the allocator: no allocation,
    /// no panic.
    fn charge(&self, delta: i64) {
        let used = self
            .used
            .fetch_add(delta, Ordering::Relaxed)
            .saturating_add(delta);
        let rounded = used.max(0).saturating_add(CHUNK - 1) / CHUNK * CHUNK;
        let target = rounded.saturating_add(self.reserved.load(Ordering::Relaxed));
        let charged = self.charged.load(Ordering::Relaxed);
        if target != charged
            && self
                .charged
                .compare_exchange(charged, target, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.node
                .used
                .fetch_add(target - charged, Ordering::Relaxed);
        }
        if self.tripped.load(Ordering::Relaxed) != NOT_TRIPPED || delta <= 0 {
            return;
        }
        let held = used.saturating_add(self.reserved.load(Ordering::Relaxed));
        let (tripped, at) = if held > i64::try_from(self.limit).unwrap_or(i64::MAX) {
            (TRIPPED_REQUEST, held)
        } else if let Some(node_held) = self.node.over_by() {
            (TRIPPED_NODE, node_held)
        } else {
            return;
        };
        self.trip(tripped, at);
    }

    /// Marks the account tripped by `tripped` (the first trip wins) at `at` bytes held.
    /// Called from the allocator: no allocation, no panic.
    fn trip(&self, tripped: u8, at: i64) {
        self.tripped_at.store(at, Ordering::Relaxed);
        if self
            .tripped
            .compare_exchange(NOT_TRIPPED, tripped, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.node.trips.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn error(&self, breaker: Breaker, wanted: i64) -> BreakerError {
        BreakerError {
            breaker,
            label: self.label,
            wanted: u64::try_from(wanted).unwrap_or(0),
            limit: match breaker {
                Breaker::Request => self.limit,
                Breaker::Node => self.node.limit,
            },
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        // What it charged goes back to the node when the request is over.
        let charged = self.charged.swap(0, Ordering::Relaxed);
        self.node.used.fetch_sub(charged, Ordering::Relaxed);
    }
}

/// While alive, the thread that made it counts its allocations to the account.
pub struct Entered<'a> {
    /// Keeps the account (an `Arc`'s) alive while the thread-local points at it.
    _account: &'a Arc<Account>,
    /// What the thread counted to before (accounts nest: the inner one wins).
    previous: *const Account,
    /// Thread-bound: the thread-local it restores is this thread's.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let previous = self.previous;
        let _ = CURRENT.try_with(|current| current.set(previous));
    }
}

/// The limit an account passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breaker {
    /// Its own, per-request limit (`indices.breaker.request.limit`).
    Request,
    /// The node's (`indices.breaker.total.limit`): requests together use too much.
    Node,
}

/// Work gave up because its account tripped (Elasticsearch's `circuit_breaking_exception`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "[{}] Data too large, data for [{label}] would be [{wanted}/{}], which is larger than the limit of [{limit}/{}] ([{}])",
    self.breaker_name(),
    human(*wanted),
    human(*limit),
    self.setting()
)]
pub struct BreakerError {
    /// Which limit.
    pub breaker: Breaker,
    /// What the request was doing.
    pub label: &'static str,
    /// Bytes it would have held.
    pub wanted: u64,
    /// The limit passed.
    pub limit: u64,
}

impl BreakerError {
    /// Elasticsearch's breaker name: `request` or `parent`.
    pub fn breaker_name(&self) -> &'static str {
        match self.breaker {
            Breaker::Request => "request",
            Breaker::Node => "parent",
        }
    }

    /// The setting that sets the limit passed.
    pub fn setting(&self) -> &'static str {
        match self.breaker {
            Breaker::Request => "indices.breaker.request.limit",
            Breaker::Node => "indices.breaker.total.limit",
        }
    }
}

/// `RssAnon` of `/proc/self/status`: the process's private resident memory, without the
/// page cache of mapped index files.
fn resident_anon_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: u64 = line
        .trim_start_matches("RssAnon:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// Bytes as Elasticsearch prints them in breaker messages (`512mb`, `1.5gb`).
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["b", "kb", "mb", "gb", "tb"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// [`Account::check`] on the account the current thread counts to (`Ok` when none): what deep
/// code without a handle on the request (a collector, a JSON visitor) polls.
pub fn check() -> Result<(), BreakerError> {
    let current = CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null());
    if current.is_null() {
        return Ok(());
    }
    // SAFETY: as in `count`: non-null only while an `Entered` guard on this thread keeps the
    // account alive.
    unsafe { (*current).check() }
}

/// [`Account::ensure_headroom`] on the account the current thread counts to (`Ok` when none).
pub fn ensure_headroom(bytes: i64) -> Result<(), BreakerError> {
    let current = CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null());
    if current.is_null() {
        return Ok(());
    }
    // SAFETY: as in `count`: non-null only while an `Entered` guard on this thread keeps the
    // account alive.
    unsafe { (*current).ensure_headroom(bytes) }
}

/// True when the current thread counts to a tripped account.
pub fn tripped() -> bool {
    check().is_err()
}

/// The account the current thread counts to: what work handed to another thread (a blocking
/// job, an ingest thread) enters there, so the request is charged wherever its work runs.
pub fn current() -> Option<Arc<Account>> {
    let current = CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null());
    if current.is_null() {
        return None;
    }
    // SAFETY: `current` came from `Arc::as_ptr` in `Account::enter`, whose guard on this
    // thread borrows that `Arc` for as long as the pointer is set, so the allocation is alive
    // and its strong count is at least one; taking one more strong reference is sound.
    unsafe {
        Arc::increment_strong_count(current);
        Some(Arc::from_raw(current))
    }
}

/// Runs `work` counted to `account` when there is one (the caller's [`current`], carried to
/// another thread).
pub fn run_in<T>(account: Option<&Arc<Account>>, work: impl FnOnce() -> T) -> T {
    match account {
        Some(account) => account.run(work),
        None => work(),
    }
}

/// A future counted to an account: every poll enters it, so whatever the future's code
/// allocates on whichever thread polls it is charged to the request.
pub struct Accounted<F> {
    account: Arc<Account>,
    inner: std::pin::Pin<Box<F>>,
}

impl<F> Accounted<F> {
    /// `inner`, counted to `account`.
    pub fn new(account: Arc<Account>, inner: F) -> Accounted<F> {
        Accounted {
            account,
            inner: Box::pin(inner),
        }
    }
}

impl<F: std::future::Future> std::future::Future for Accounted<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = &mut *self;
        let _entered = this.account.enter();
        this.inner.as_mut().poll(cx)
    }
}
