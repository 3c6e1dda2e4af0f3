//! The engine: the state word, the idle queue and the paths that move capacity between them.
//!
//! # Implementation details
//!
//! The algorithm is "handoff reservations on one packed state word" (`state.rs`,
//! `shared/notes/fairness.md`):
//!
//! * Idle resources live in a bounded lock-free queue ([`Queue`], crossbeam's `ArrayQueue`) with
//!   room for `max` items. The state word counts `avail`, the queued items anyone may claim.
//! * **Claim, then pop.** An acquirer first takes a count with a CAS (`avail - 1`, or `size + 1` to
//!   create), and only then pops. Because every queued item is covered by exactly one claim or
//!   reservation, a pop after a successful claim always finds an item (unless the pool closed
//!   and a closer drained it).
//! * **Fairness.** A fresh acquire claims only while `waiters == 0`. A release that sees waiters
//!   leaves its item in the queue *unpublished* and notifies the oldest waiter, which now owns it
//!   (a reservation). Freed capacity is handed over the same way (a slot reservation). So a parked
//!   waiter is never overtaken, and `try_acquire` never barges. The waiter protocol is in
//!   `waiters.rs`.
//! * **Release is synchronous**: push, then one CAS to publish (`avail + 1`) when nobody waits.
//!   No lock, no allocation, no spawn, no clock read unless an option needs one.
//! * **Close** sets the closed bit and zeroes `avail` with one RMW on the state word. From then on
//!   every item in the queue, and every slot reservation, belongs to whoever drains it. Anybody
//!   who deposits something (pushes an item, adds a slot reservation) performs an RMW on the state
//!   word afterwards and drains if it sees the bit: the two RMWs are totally ordered, so either
//!   the depositor sees `closed`, or the closer's RMW synchronises with the depositor's and the
//!   closer's drain sees the deposit. Nothing is ever stranded in a closed pool.
//!
//! Orderings: RMWs on `state` that publish or claim are `AcqRel` (a claim must see the push that
//! the publishing CAS released; a publish must order its push before the claim); plain loads of
//! `state` are `Relaxed` or `Acquire` hints whose value is always confirmed by a later CAS.

use crate::clock::{Clock, Stamp};
use crossbeam_utils::CachePadded;

use crate::guard::{CapacityGuard, Floating, Idle, Live};
use crate::manager::{BoxFuture, DynManager};
use crate::options::Config;
use crate::state::{State, AVAIL, CLOSED, SIZE};
use crate::stats::{Counters, DestroyReason};
use crate::sync::{Arc, AtomicU64, AtomicUsize, Event, Ordering, Queue};
use crate::unwind::{guarded, guarded_sync, Outcome};
use crate::waitlist::WaitList;

/// What a synchronous claim on the state word produced.
pub(crate) enum Claim<T: Send + 'static> {
    /// An idle resource, popped under a claim.
    Idle(Floating<T>),
    /// A unit of capacity to create a resource with.
    Create(CapacityGuard<T>),
    /// Nothing now: the caller must wait its turn.
    Wait,
    /// The pool is closed.
    Closed,
}

/// What one [`PoolInner::claim_step`] took.
pub(crate) enum Step {
    /// An `avail` count: the caller pops one item.
    Item,
    /// One unit of capacity (`size + 1`).
    Unit,
    /// Nothing (nothing available, or the caller's `stop` said so).
    Neither,
    /// The pool is closed.
    Closed,
}

/// The shared engine behind every `Pool` handle and `PoolConnection`.
pub(crate) struct PoolInner<T: Send + 'static> {
    /// The packed state word (`state.rs`). On its own cache line: it is the hot contended word.
    pub(crate) state: CachePadded<AtomicU64>,
    /// Count of waiter registrations, used by `hand_off` to detect a waiter that registered
    /// between a notify that found nobody and the publish that followed (race 3).
    pub(crate) registrations: CachePadded<AtomicUsize>,
    /// Units of capacity handed to notified waiters (they create with it) and not yet taken.
    pub(crate) slot_reservations: AtomicUsize,
    /// Idle resources, plus items reserved for notified waiters. Capacity `max`.
    pub(crate) queue: Queue<Idle<T>>,
    /// Parked acquirers (`waitlist.rs`).
    pub(crate) waiters: WaitList,
    /// Woken when a closed pool's `size` reaches zero (`close()` waits on it).
    pub(crate) drained: Event,
    /// Woken once when the pool closes (`close_event()` waits on it).
    pub(crate) closed_event: Event,
    /// Woken when the maintenance task has something to look at again (a resource appeared, or
    /// the pool closed).
    pub(crate) maintenance_wake: Event,
    /// Live `Pool` handles; the last one to drop closes the pool.
    pub(crate) handles: AtomicUsize,
    /// Creates started by the maintenance task and not finished.
    pub(crate) warmups_in_flight: AtomicUsize,
    /// Source of resource ids.
    pub(crate) next_id: AtomicU64,
    /// The epoch that resource timestamps count from.
    pub(crate) clock: Clock,
    pub(crate) manager: Box<dyn DynManager<T>>,
    pub(crate) config: Config<T>,
    pub(crate) stats: Counters,
}

impl<T: Send + 'static> PoolInner<T> {
    pub(crate) fn new(config: Config<T>, manager: Box<dyn DynManager<T>>) -> Self {
        PoolInner {
            state: CachePadded::new(AtomicU64::new(0)),
            registrations: CachePadded::new(AtomicUsize::new(0)),
            slot_reservations: AtomicUsize::new(0),
            queue: Queue::new(config.max),
            waiters: WaitList::new(),
            drained: Event::new(),
            closed_event: Event::new(),
            maintenance_wake: Event::new(),
            handles: AtomicUsize::new(1),
            warmups_in_flight: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            clock: Clock::new(),
            manager,
            config,
            stats: Counters::default(),
        }
    }

    #[inline]
    pub(crate) fn load_state(&self) -> State {
        // Acquire: callers that act on `closed` or on counts re-confirm with a CAS; the acquire
        // pairs with the release half of the RMW that set the bit, so a task that sees `closed`
        // also sees what the closer did before.
        State(self.state.load(Ordering::Acquire))
    }

    /// One compare-and-swap of the state word from the snapshot `s` to `update(s)`. On failure,
    /// `s` becomes the value found, and the caller's loop decides again from it.
    ///
    /// `AcqRel` on success, because every transition both consumes and publishes: a claim must
    /// acquire the push that a publish released, a publish must release its push, a grow pairs
    /// with the free of the unit's previous owner, and close synchronises with every earlier
    /// depositor (DESIGN.md §6–7). `Relaxed` on failure: nothing is decided from a failed CAS.
    /// Weak: it sits in a retry loop, so a spurious failure only costs one more turn.
    #[inline]
    pub(crate) fn cas(&self, s: &mut State, update: impl FnOnce(State) -> u64) -> bool {
        let new = update(*s);
        match self
            .state
            .compare_exchange_weak(s.0, new, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(actual) => {
                *s = State(actual);
                false
            }
        }
    }

    // ===== claiming =====

    /// The one claiming loop: takes an available item (if `items`), else grows by one unit while
    /// `size < grow_below`, retrying CAS races; gives up when the pool is closed or `stop` says
    /// so. Every claim and grow in the engine goes through here, except the waiter's
    /// registration loop, which must register on the same word it inspected.
    #[inline]
    pub(crate) fn claim_step(
        &self,
        items: bool,
        grow_below: usize,
        stop: impl Fn(State) -> bool,
    ) -> Step {
        // Relaxed: only a hint; the CAS below re-reads and decides.
        let mut s = State(self.state.load(Ordering::Relaxed));
        loop {
            if s.is_closed() {
                return Step::Closed;
            }
            if stop(s) {
                return Step::Neither;
            }
            if items && s.avail() > 0 {
                // Claim one available item; the caller then pops it (claim, then pop).
                if self.cas(&mut s, |s| s.0 - AVAIL) {
                    return Step::Item;
                }
            } else if s.size() < grow_below {
                // Grow by one unit; never above the bound, because the CAS checked it.
                if self.cas(&mut s, |s| s.0 + SIZE) {
                    return Step::Unit;
                }
            } else {
                return Step::Neither;
            }
        }
    }

    /// The synchronous fast path: claim an idle resource or room to create one, fairly.
    ///
    /// With `create == false` (for `try_acquire`) it never grows the pool.
    #[inline]
    pub(crate) fn try_claim(self: &Arc<Self>, create: bool) -> Claim<T> {
        let grow_below = if create { self.config.max } else { 0 };
        // Fairness: while anyone is counted as waiting, arrivals queue behind them.
        match self.claim_step(true, grow_below, |s| s.waiters() > 0) {
            Step::Item => self.pop_claimed(),
            Step::Unit => Claim::Create(CapacityGuard::adopt(self.clone())),
            Step::Neither => Claim::Wait,
            Step::Closed => Claim::Closed,
        }
    }

    /// Pops the item covered by a claim or reservation we hold.
    #[inline]
    pub(crate) fn pop_claimed(self: &Arc<Self>) -> Claim<T> {
        match self.queue.pop() {
            Some(idle) => Claim::Idle(Floating::new(
                idle.live,
                idle.idle_since,
                CapacityGuard::adopt(self.clone()),
            )),
            // Only a closer (or a depositor that saw `closed`) can have taken our item.
            None => {
                debug_assert!(
                    self.load_state().is_closed(),
                    "claimed item missing from queue"
                );
                Claim::Closed
            }
        }
    }

    // ===== releasing =====

    /// Returns a healthy resource to the idle set. Synchronous, lock-free, allocation-free.
    pub(crate) fn release_idle(live: Live<T>, idle_since: Stamp, guard: CapacityGuard<T>) {
        // The unit of capacity moves from the guard into the queue.
        let pool = guard.disarm();
        if let Err(idle) = pool.queue.push(Idle { live, idle_since }) {
            // Impossible while `queue items <= size <= max`; if it ever happens, do not lose the
            // unit: destroy the resource through a fresh guard.
            debug_assert!(false, "idle queue full");
            let guard = CapacityGuard::adopt(pool.clone());
            PoolInner::destroy(idle.live, guard, DestroyReason::Broken);
            return;
        }
        pool.publish_item();
    }

    /// The idle timestamp a released resource gets: read from the clock only when an option or
    /// hook needs it.
    #[inline]
    pub(crate) fn idle_stamp(&self) -> Stamp {
        if self.config.release_needs_clock {
            self.clock.now()
        } else {
            Stamp::NONE
        }
    }

    /// After pushing an item: make it claimable, or reserve it for the oldest waiter.
    fn publish_item(self: &Arc<Self>) {
        // Relaxed: a hint for the CAS.
        let mut s = State(self.state.load(Ordering::Relaxed));
        loop {
            if s.is_closed() {
                // The closer may have drained before our push: drain it ourselves.
                self.drain_closed();
                return;
            }
            if s.waiters() > 0 {
                // Leave the item in the queue, unpublished, as a reservation.
                self.hand_off();
                return;
            }
            // Publish; AcqRel: release our push to the claimer (and to a closer, whose RMW
            // comes after ours in the word's modification order if it does not make ours fail).
            if self.cas(&mut s, |s| s.0 + AVAIL) {
                return;
            }
        }
    }

    /// Gives back one unit of capacity: to the oldest waiter (as a slot reservation) if there is
    /// one, otherwise to the pool. Wakes `close()` when a closed pool's last unit goes.
    pub(crate) fn return_capacity(self: &Arc<Self>) {
        // Relaxed: a hint for the CAS.
        let mut s = State(self.state.load(Ordering::Relaxed));
        loop {
            if s.waiters() > 0 && !s.is_closed() {
                // Hand the unit over instead of freeing it, so a fresh arrival cannot take it
                // ahead of the waiter. AcqRel: ordered before our notify and state RMW.
                self.slot_reservations.fetch_add(1, Ordering::AcqRel);
                self.hand_off();
                return;
            }
            // Free the unit. The CAS fails if a waiter registered meanwhile (it saw size == max);
            // we then hand the unit to it instead.
            debug_assert!(s.size() > 0, "size underflow");
            if self.cas(&mut s, |s| s.0 - SIZE) {
                self.after_size_decrement(s);
                return;
            }
        }
    }

    /// Called after `size` went from `before.size()` down by one.
    pub(crate) fn after_size_decrement(&self, before: State) {
        if before.is_closed() && before.size() == 1 {
            // The last unit of a closed pool: wake `close()`. notify emits a SeqCst fence first.
            self.drained.notify_all();
        }
    }

    // ===== destroying and closing =====

    /// Destroys `live` for `reason`; `guard`'s unit is returned once teardown is finished.
    pub(crate) fn destroy(live: Live<T>, guard: CapacityGuard<T>, reason: DestroyReason) {
        if let Some(guard) = Self::destroy_keeping_unit(live, guard, reason) {
            drop(guard);
        }
    }

    /// Destroys `live` for `reason`. If the teardown finishes at once (the default teardown is a
    /// plain drop), the caller gets `guard` back to reuse the unit; otherwise the teardown runs in
    /// a task that owns the guard, bounded by `release_timeout`.
    pub(crate) fn destroy_keeping_unit(
        live: Live<T>,
        guard: CapacityGuard<T>,
        reason: DestroyReason,
    ) -> Option<CapacityGuard<T>> {
        let pool = guard.pool().clone();
        let mut teardown = pool.start_teardown(live, reason);
        // Poll once: the default teardown (drop) finishes at once and needs no task.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match guarded_sync(|| teardown.as_mut().poll(&mut cx)) {
            Some(std::task::Poll::Ready(())) => return Some(guard),
            None => {
                tracing::warn!("Manager::destroy panicked");
                return Some(guard);
            }
            Some(std::task::Poll::Pending) => {}
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                // The task owns the guard: if it never runs (runtime shutdown), dropping it still
                // returns the unit.
                let limit = pool.config.release_timeout;
                handle.spawn(async move {
                    if let Outcome::TimedOut(_) = guarded(limit, || teardown).await {
                        tracing::warn!("Manager::destroy timed out; dropped the resource");
                    }
                    drop(guard);
                });
            }
            Err(_) => {
                // No runtime to finish it: drop the teardown (and with it the resource).
                let _ = guarded_sync(|| drop(teardown));
                drop(guard);
            }
        }
        None
    }

    /// Counts and logs the destruction of `live`, and returns `Manager::destroy`'s future, which
    /// owns what it needs. Shared by the synchronous paths above and `PoolConnection::close`.
    pub(crate) fn start_teardown(
        self: &Arc<Self>,
        live: Live<T>,
        reason: DestroyReason,
    ) -> BoxFuture<'static, ()> {
        use tracing::Instrument;
        self.stats.destroyed(reason);
        let span = tracing::debug_span!(
            "shadowcat_pool::destroy",
            id = live.id,
            reason = reason.as_str()
        );
        span.in_scope(|| tracing::debug!("destroying pooled resource"));
        let inner = self.clone();
        Box::pin(async move { inner.manager.destroy(live.resource).await }.instrument(span))
    }

    /// Marks the pool closed, wakes every waiter, and destroys idle resources.
    /// Returns `true` for the call that closed it.
    pub(crate) fn mark_closed(self: &Arc<Self>) -> bool {
        // One RMW sets the bit and takes `avail` to zero: the idle items now belong to whoever
        // drains. AcqRel: synchronises with every depositor's earlier RMW (see module docs).
        let mut s = State(self.state.load(Ordering::Relaxed));
        let first = loop {
            if s.is_closed() {
                break false;
            }
            let new = State(s.without_avail()).0 | CLOSED;
            match self
                .state
                .compare_exchange_weak(s.0, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break true,
                Err(actual) => s = State(actual),
            }
        };
        if first {
            tracing::info!(size = s.size(), waiting = s.waiters(), "pool closing");
            // Wake close_event() and a parked maintenance task.
            self.closed_event.notify_all();
            self.maintenance_wake.notify_all();
        }
        self.waiters.notify_all();
        self.drain_closed();
        if s.size() == 0 && first {
            self.drained.notify_all();
        }
        first
    }

    /// Destroys everything queued and frees every slot reservation of a closed pool. Safe to run
    /// from any number of threads: each item and reservation is taken exactly once.
    pub(crate) fn drain_closed(self: &Arc<Self>) {
        while let Some(idle) = self.queue.pop() {
            let guard = CapacityGuard::adopt(self.clone());
            PoolInner::destroy(idle.live, guard, DestroyReason::Closed);
        }
        // AcqRel: pairs with the depositors' fetch_add.
        let slots = self.slot_reservations.swap(0, Ordering::AcqRel);
        for _ in 0..slots {
            drop(CapacityGuard::adopt(self.clone()));
        }
    }
}
