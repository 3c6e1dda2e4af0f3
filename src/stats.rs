//! [`PoolStats`]: a lock-free snapshot of the pool's gauges and counters.
//!
//! Every counter is a `Relaxed` atomic: each is an independent tally that nothing synchronises
//! on, so a snapshot may mix values from slightly different instants (as any lock-free snapshot
//! does), but no count is ever lost.
//!
//! The two counters the hot path touches on every cycle (`checkouts` and `returns`; `in_use` and
//! "served at once" are derived from them) are [`PerThread`]: one cell per thread, so an
//! increment is a plain load and store on a cache line no other thread writes, instead of a
//! locked read-modify-write on a line every core fights over. On the 2-vCPU benchmark machine a
//! locked RMW costs about as much as the rest of an uncontended cycle's bookkeeping combined.

use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::engine::loom::{worker_index, WORKER_INDICES};
use crate::engine::{State, TALLIES};

// Plain std atomics, not the loom facade: counters never order anything, and modelling them
// would only multiply the interleavings loom has to explore.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Why a resource was destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DestroyReason {
    /// `Manager::is_reusable` said no on release.
    Broken,
    /// `Manager::is_open` said no, or `Manager::check` failed (or either panicked), before
    /// hand-out.
    CheckFailed,
    /// It sat idle longer than `idle_timeout`.
    IdleTimeout,
    /// It outlived its (jittered) `max_lifetime`.
    Lifetime,
    /// A hook returned `false` or an error.
    HookRejected,
    /// The pool was closed.
    Closed,
    /// `PoolConnection::close` or `discard` was called, or `Pool::retain` rejected it.
    ClosedByUser,
    /// Given up unfinished: the background check of a cancelled acquire ran out of time or met
    /// `close()`, or a cancelled check or a background create with `after_create` found no
    /// runtime to finish on.
    Cancelled,
    /// `Pool::set_max_connections` lowered the bound below the pool's size: retired idle, or
    /// when it came back from its user.
    Resized,
    /// A [`KeyedPool`](crate::KeyedPool) closed it, idle, to make room for another key (or to
    /// keep the idle total under `max_idle_total`).
    Evicted,
}

impl DestroyReason {
    /// Every reason, for exporters that report a series per reason.
    pub const ALL: [DestroyReason; 10] = [
        DestroyReason::Broken,
        DestroyReason::CheckFailed,
        DestroyReason::IdleTimeout,
        DestroyReason::Lifetime,
        DestroyReason::HookRejected,
        DestroyReason::Closed,
        DestroyReason::ClosedByUser,
        DestroyReason::Cancelled,
        DestroyReason::Resized,
        DestroyReason::Evicted,
    ];

    /// A short name, used in tracing events.
    pub fn as_str(self) -> &'static str {
        match self {
            DestroyReason::Broken => "broken",
            DestroyReason::CheckFailed => "check_failed",
            DestroyReason::IdleTimeout => "idle_timeout",
            DestroyReason::Lifetime => "max_lifetime",
            DestroyReason::HookRejected => "hook_rejected",
            DestroyReason::Closed => "pool_closed",
            DestroyReason::ClosedByUser => "closed_by_user",
            DestroyReason::Cancelled => "cancelled",
            DestroyReason::Resized => "resized",
            DestroyReason::Evicted => "evicted",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many threads get a cell of their own (their worker index, `engine/loom`); later threads
/// share one cell through RMWs.
const CELLS: usize = WORKER_INDICES;

/// `N` counters with one cell per thread: increments are plain stores on the thread's own cache
/// line; reads sum the cells. Counters that always move together (a parked acquire's count and
/// its wait) share a cell, so one update finds the thread's cell once.
pub(crate) struct PerThread<const N: usize = 1> {
    /// `CELLS` owned cells plus the shared fallback at index `CELLS`. An array, not a slice:
    /// its length is known, so indexing it with a worker index needs no bounds check. Boxed: the
    /// cells inline in the counters (one pointer hop fewer per count) took 0.2 ns off S1 but
    /// cost S7 2% (`benches/RESULTS.md`).
    cells: Box<[CachePadded<[AtomicU64; N]>; CELLS + 1]>,
}

impl<const N: usize> Default for PerThread<N> {
    fn default() -> Self {
        PerThread {
            cells: Box::new(std::array::from_fn(|_| {
                CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)))
            })),
        }
    }
}

impl PerThread {
    #[inline]
    pub(crate) fn bump(&self) {
        self.add_each([1]);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.sum_of(0)
    }
}

impl<const N: usize> PerThread<N> {
    /// Adds `n[i]` to counter `i`.
    #[inline]
    pub(crate) fn add_each(&self, n: [u64; N]) {
        // A thread that is exiting (its slot already destroyed) counts in the shared cell.
        let slot = worker_index().unwrap_or(CELLS);
        let counters = self.cells[slot].iter().zip(n);
        if slot < CELLS {
            // Only this thread writes this cell while it owns the index (a live thread's index is
            // its own; the next owner acquires our last store), so load + store loses nothing
            // and needs no locked instruction. Relaxed: readers only sum the cells.
            for (counter, n) in counters {
                counter.store(
                    counter.load(Ordering::Relaxed).wrapping_add(n),
                    Ordering::Relaxed,
                );
            }
        } else {
            for (counter, n) in counters {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Counter `i`, summed over the cells.
    pub(crate) fn sum_of(&self, i: usize) -> u64 {
        self.cells.iter().fold(0u64, |sum, c| {
            sum.wrapping_add(c[i].load(Ordering::Relaxed))
        })
    }
}

/// The pool's counters.
#[derive(Default)]
pub(crate) struct Counters {
    /// Resources handed to users, except those taken from the worker's own hot slot, which are
    /// counted on the slot's line (`Tally`). Hot: one per acquire.
    pub(crate) checkouts: PerThread,
    /// Resources users gave back (drop, detach, close), except those parked in the worker's own
    /// hot slot, likewise. Hot: one per release.
    pub(crate) returns: PerThread,
    /// Acquires that parked (counter 0) and the nanoseconds they waited (counter 1). Per-thread:
    /// under contention nearly every acquire parks.
    pub(crate) waits: PerThread<2>,
    pub(crate) timeouts: AtomicU64,
    pub(crate) created: AtomicU64,
    pub(crate) create_failed: AtomicU64,
    pub(crate) destroyed: [AtomicU64; DestroyReason::ALL.len()],
    pub(crate) detached: AtomicU64,
    pub(crate) maintenance_passes: AtomicU64,
    /// Idle resources whose check or `before_acquire` hook finished after its acquire was
    /// cancelled, passed, and went back to the idle set.
    pub(crate) recovered_after_cancel: AtomicU64,
    /// Acquires that failed at once because `max_waiters` were already waiting.
    pub(crate) rejected_waiters: AtomicU64,
    /// Gauge: creates in flight (foreground and background).
    pub(crate) creating: AtomicUsize,
    /// Gauge: acquirers that are creating while counted in the state word's `waiters` (so a
    /// release can hand them a resource); subtracted from the `waiting` gauge and added to the
    /// `max_waiters` limit (`acquire::waiter_limit`). Entered just after the creator registers
    /// and left just after it unregisters: a registration or removal in between can see the
    /// two counts one apart (a limit one lower or higher, for that moment only).
    pub(crate) creators_in_line: AtomicUsize,
    /// Gauge: resources whose asynchronous teardown is still running (their units still count in
    /// `size`).
    pub(crate) tearing_down: AtomicUsize,
}

/// Counts one in a gauge for as long as it lives.
pub(crate) struct GaugeGuard<'a>(&'a AtomicUsize);

impl<'a> GaugeGuard<'a> {
    pub(crate) fn enter(gauge: &'a AtomicUsize) -> Self {
        // Relaxed: a gauge, read for statistics, as a bound in `reap`, and (`creators_in_line`)
        // as an allowance in `max_waiters`' limit; no other memory is published through it.
        gauge.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    #[inline]
    pub(crate) fn bump(counter: &AtomicU64) {
        // Relaxed: an independent tally (see the module docs).
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn destroyed(&self, reason: DestroyReason) {
        Self::bump(&self.destroyed[reason.index()]);
    }
}

/// A snapshot of a pool, from [`Pool::stats`](crate::Pool::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Units of capacity in use: live resources plus creates and asynchronous teardowns in
    /// flight.
    pub size: usize,
    /// Idle resources that an acquire can take now.
    pub idle: usize,
    /// Resources checked out by users.
    pub in_use: usize,
    /// Acquirers parked in line waiting for a resource. Acquirers that are creating one are not
    /// counted here (see [`creating`](Self::creating)).
    pub waiting: usize,
    /// Creates in flight, for acquirers and in the background (warm-up to `min_connections`, or a
    /// create whose acquirer was handed a released resource first).
    pub creating: usize,
    /// `max_connections`: the bound now in force (see `Pool::set_max_connections`).
    pub max: usize,
    /// Whether the pool is closed.
    pub closed: bool,
    /// Acquires that never parked (served from the idle set, or by creating a resource).
    pub acquired_immediately: u64,
    /// Acquires that parked in the waiter line at least once.
    pub acquired_after_wait: u64,
    /// Total time those acquires spent from parking to being served. Real time, read from the
    /// CPU's time-stamp counter (or the system's monotonic clock where that counter is not
    /// invariant), not tokio's clock: a test that pauses tokio's time still sees real durations.
    pub total_wait: Duration,
    /// Acquires that hit `acquire_timeout`.
    pub timeouts: u64,
    /// Resources created.
    pub created: u64,
    /// Creates that failed, panicked or timed out.
    pub create_failed: u64,
    /// Resources destroyed, by reason.
    pub destroyed: DestroyedStats,
    /// Resources taken out of the pool with `PoolConnection::detach`.
    pub detached: u64,
    /// Passes the maintenance task has made. It makes none while the pool is empty and has no
    /// minimum to keep.
    pub maintenance_passes: u64,
    /// Idle resources whose health check or `before_acquire` hook was still running when its
    /// acquire was cancelled (a timeout, a dropped request), finished in the background, passed,
    /// and went back to the idle set instead of being destroyed.
    pub recovered_after_cancel: u64,
    /// Acquires that failed at once with `Error::TooManyWaiters` (the `max_waiters` limit).
    pub rejected_waiters: u64,
}

/// Resources destroyed, by [`DestroyReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DestroyedStats {
    /// Judged not reusable on release.
    pub broken: u64,
    /// Failed `is_open` or the health check before hand-out.
    pub check_failed: u64,
    /// Idle longer than `idle_timeout`.
    pub idle_timeout: u64,
    /// Past `max_lifetime`.
    pub lifetime: u64,
    /// Rejected by a hook.
    pub hook_rejected: u64,
    /// Destroyed because the pool closed.
    pub closed: u64,
    /// Closed by the user with `PoolConnection::close` or `PoolConnection::discard`, or removed
    /// by `Pool::retain`.
    pub closed_by_user: u64,
    /// Given up unfinished ([`DestroyReason::Cancelled`]).
    pub cancelled: u64,
    /// Retired because `Pool::set_max_connections` lowered the bound below the pool's size.
    pub resized: u64,
    /// Evicted, idle, by a [`KeyedPool`](crate::KeyedPool) to make room for another key.
    pub evicted: u64,
}

impl DestroyedStats {
    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.broken
            + self.check_failed
            + self.idle_timeout
            + self.lifetime
            + self.hook_rejected
            + self.closed
            + self.closed_by_user
            + self.cancelled
            + self.resized
            + self.evicted
    }
}

/// The two counts a pool keeps on its workers' hot slot lines when it can, as indices into the
/// slots' tallies: a take from the worker's own slot for a hand-out (`Engine::claim_tallying`)
/// and a park of a returned resource (`Engine::release`) count there; everything else, and the
/// corrections (`Shared::untally`, `Host::tally_unparked`), in the per-thread cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tally {
    /// A resource handed to a user: `Counters::checkouts`.
    Checkout = 0,
    /// A resource given back: `Counters::returns`.
    Return = 1,
}

impl Tally {
    /// Both, in index order.
    pub(crate) const ALL: [Tally; TALLIES] = [Tally::Checkout, Tally::Return];
}

impl Counters {
    /// The per-thread cells of `tally`, for threads without a hot slot.
    #[inline]
    pub(crate) fn per_thread(&self, tally: Tally) -> &PerThread {
        match tally {
            Tally::Checkout => &self.checkouts,
            Tally::Return => &self.returns,
        }
    }

    /// The public snapshot: gauges from the state word `state`, tallies from the counters plus
    /// `in_slots`, the part of each [`Tally`] kept in the pool's hot slot lines.
    pub(crate) fn snapshot(&self, state: State, max: usize, in_slots: [u64; TALLIES]) -> PoolStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let d = |r: DestroyReason| get(&self.destroyed[r.index()]);
        // Read as signed and clamped at zero: a take from a hot slot counts +1 in the slot and,
        // if it is not handed out after all, -1 in the cells; a snapshot between the two can see
        // the -1 alone, which must read as 0, not as 2^64 - 1 (the counts never reach 2^63).
        let count = |t: Tally| {
            let n = self.per_thread(t).sum().wrapping_add(in_slots[t as usize]);
            (n as i64).max(0) as u64
        };
        let (checkouts, returns) = (count(Tally::Checkout), count(Tally::Return));
        let waited = self.waits.sum_of(0);
        PoolStats {
            size: state.size(),
            idle: state.avail(),
            in_use: checkouts.saturating_sub(returns) as usize,
            waiting: state
                .waiters()
                .saturating_sub(self.creators_in_line.load(Ordering::Relaxed)),
            creating: self.creating.load(Ordering::Relaxed),
            max,
            closed: state.is_closed(),
            acquired_immediately: checkouts.saturating_sub(waited),
            acquired_after_wait: waited,
            total_wait: Duration::from_nanos(self.waits.sum_of(1)),
            timeouts: get(&self.timeouts),
            created: get(&self.created),
            create_failed: get(&self.create_failed),
            destroyed: DestroyedStats {
                broken: d(DestroyReason::Broken),
                check_failed: d(DestroyReason::CheckFailed),
                idle_timeout: d(DestroyReason::IdleTimeout),
                lifetime: d(DestroyReason::Lifetime),
                hook_rejected: d(DestroyReason::HookRejected),
                closed: d(DestroyReason::Closed),
                closed_by_user: d(DestroyReason::ClosedByUser),
                cancelled: d(DestroyReason::Cancelled),
                resized: d(DestroyReason::Resized),
                evicted: d(DestroyReason::Evicted),
            },
            detached: get(&self.detached),
            maintenance_passes: get(&self.maintenance_passes),
            recovered_after_cancel: get(&self.recovered_after_cancel),
            rejected_waiters: get(&self.rejected_waiters),
        }
    }
}

#[cfg(all(test, not(shadowcat_loom)))]
mod tests {
    use super::*;

    #[test]
    fn per_thread_counts_are_exact_across_threads_and_recycled_cells() {
        let counter = std::sync::Arc::new(PerThread::default());
        // 3 waves of 100 threads alive at once: more threads than cells (some share the fallback
        // cell), and cells recycled from one wave to the next.
        for _ in 0..3 {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(100));
            let threads: Vec<_> = (0..100)
                .map(|_| {
                    let (counter, barrier) = (counter.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait(); // all 100 alive together
                        for _ in 0..1_000 {
                            counter.bump();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
        assert_eq!(counter.sum(), 300_000);
    }
}
