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

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use tokio::time::Instant;

use crate::connection::PoolConnection;
use crate::error::{BoxError, CreateTimedOut, Error, HookKind, Panicked};
use crate::guard::{CapacityGuard, Floating, Idle, Live};
use crate::manager::{BoxFuture, DynManager};
use crate::options::Config;
use crate::state::{State, AVAIL, CLOSED, SIZE};
use crate::stats::{Counters, DestroyReason};
use crate::sync::{Arc, AtomicU64, AtomicUsize, Event, Ordering, Queue};

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
    /// Parked acquirers.
    pub(crate) waiters: Event,
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
            waiters: Event::new(),
            drained: Event::new(),
            closed_event: Event::new(),
            maintenance_wake: Event::new(),
            handles: AtomicUsize::new(1),
            warmups_in_flight: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
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

    /// The synchronous fast path: claim an idle resource or room to create one, fairly.
    ///
    /// With `create == false` (for `try_acquire`) it never grows the pool.
    pub(crate) fn try_claim(self: &Arc<Self>, create: bool) -> Claim<T> {
        // Relaxed: only a hint; the CAS below re-reads and decides.
        let mut s = State(self.state.load(Ordering::Relaxed));
        loop {
            if s.is_closed() {
                return Claim::Closed;
            }
            // Fairness: while anyone is counted as waiting, arrivals queue behind them.
            if s.waiters() > 0 {
                return Claim::Wait;
            }
            if s.avail() > 0 {
                // Claim one available item; AcqRel: acquire the push that the publishing CAS
                // released, so the pop below finds it.
                if self.cas(&mut s, |s| s.0 - AVAIL) {
                    return self.pop_claimed();
                }
            } else if create && s.size() < self.config.max {
                // Grow by one unit; never above max, because the CAS checked `size < max`.
                if self.cas(&mut s, |s| s.0 + SIZE) {
                    return Claim::Create(CapacityGuard::adopt(self.clone()));
                }
            } else {
                return Claim::Wait;
            }
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
    pub(crate) fn release_idle(
        live: Live<T>,
        idle_since: Option<Instant>,
        guard: CapacityGuard<T>,
    ) {
        // The unit of capacity moves from the guard into the queue.
        let pool = guard.disarm();
        if let Err(idle) = pool.queue.push(Idle { live, idle_since }) {
            // Impossible while `queue items <= size <= max`; if it ever happens, do not lose the
            // unit: destroy the resource through a fresh guard.
            debug_assert!(false, "idle queue full");
            let guard = CapacityGuard::adopt(pool.clone());
            pool.destroy(idle.live, guard, DestroyReason::Broken);
            return;
        }
        pool.publish_item();
    }

    /// The idle timestamp a released resource gets: read from the clock only when an option or
    /// hook needs it.
    #[inline]
    pub(crate) fn idle_stamp(&self) -> Option<Instant> {
        self.config.release_needs_clock.then(Instant::now)
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
    pub(crate) fn destroy(
        self: Arc<Self>,
        live: Live<T>,
        guard: CapacityGuard<T>,
        reason: DestroyReason,
    ) {
        self.stats.destroyed(reason);
        let _span = tracing::debug_span!(
            "shadowcat_pool::destroy",
            id = live.id,
            reason = reason.as_str()
        )
        .entered();
        tracing::debug!("destroying pooled resource");
        tracing::debug!(
            id = live.id,
            reason = reason.as_str(),
            "destroying pooled resource"
        );
        let inner = self.clone();
        let mut teardown: BoxFuture<'static, ()> = Box::pin(async move {
            inner.manager.destroy(live.resource).await;
        });
        // Poll once: the default teardown (drop) finishes at once and needs no task.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let done = std::panic::catch_unwind(AssertUnwindSafe(|| teardown.as_mut().poll(&mut cx)));
        match done {
            Ok(std::task::Poll::Ready(())) => drop(guard),
            Err(_) => {
                tracing::warn!(reason = reason.as_str(), "Manager::destroy panicked");
                drop(guard);
            }
            Ok(std::task::Poll::Pending) => match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    // The task holds the guard: if it never runs (runtime shutdown), dropping
                    // it still returns the unit.
                    handle.spawn(async move {
                        teardown.await;
                        drop(guard);
                    });
                }
                Err(_) => {
                    drop(teardown);
                    drop(guard);
                }
            },
        }
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
            // Each notify emits a SeqCst fence before it looks at its list.
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
            self.clone().destroy(
                idle.live,
                CapacityGuard::adopt(self.clone()),
                DestroyReason::Closed,
            );
        }
        // AcqRel: pairs with the depositors' fetch_add.
        let slots = self.slot_reservations.swap(0, Ordering::AcqRel);
        for _ in 0..slots {
            drop(CapacityGuard::adopt(self.clone()));
        }
    }

    // ===== creating =====

    /// Makes a new resource with `guard`'s unit: `create` (bounded by `create_timeout`, panics
    /// caught), then `after_create`.
    pub(crate) fn create_future(self: &Arc<Self>) -> BoxFuture<'static, Result<Live<T>, Error>> {
        use tracing::Instrument;
        let inner = self.clone();
        let span = tracing::debug_span!("shadowcat_pool::create");
        Box::pin(
            async move {
                let created = {
                    let fut = futures_util::FutureExt::catch_unwind(AssertUnwindSafe(
                        inner.manager.create(),
                    ));
                    match inner.config.create_timeout {
                        Some(limit) => match tokio::time::timeout(limit, fut).await {
                            Ok(r) => r,
                            Err(_) => Ok(Err(Box::new(CreateTimedOut(limit)) as BoxError)),
                        },
                        None => fut.await,
                    }
                };
                let resource = match created {
                    Ok(Ok(resource)) => resource,
                    Ok(Err(e)) => {
                        Counters::bump(&inner.stats.create_failed);
                        tracing::warn!(error = %e, "creating a pooled resource failed");
                        return Err(Error::Create(e));
                    }
                    Err(panic) => {
                        Counters::bump(&inner.stats.create_failed);
                        let p = Panicked::new("Manager::create", panic);
                        tracing::error!(error = %p, "creating a pooled resource panicked");
                        return Err(Error::Create(Box::new(p)));
                    }
                };
                let created_at = Instant::now();
                let expires_at = inner.config.max_lifetime.map(|life| {
                    let jitter = inner.config.lifetime_jitter;
                    let cut = if jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        Duration::from_nanos(fastrand::u64(0..=jitter.as_nanos() as u64))
                    };
                    created_at + life.saturating_sub(cut)
                });
                // Relaxed: ids only need to be unique.
                let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
                Counters::bump(&inner.stats.created);
                tracing::debug!(id, "created pooled resource");
                inner.maintenance_wake.notify_additional(1);
                Ok(Live {
                    resource,
                    created_at,
                    expires_at,
                    id,
                })
            }
            .instrument(span),
        )
    }

    /// Runs `after_create` on a fresh resource; on failure the resource is destroyed.
    pub(crate) async fn run_after_create(
        self: &Arc<Self>,
        mut floating: Floating<T>,
    ) -> Result<Floating<T>, Error> {
        let Some(hook) = self.config.hooks.after_create.clone() else {
            return Ok(floating);
        };
        let meta = floating.live().metadata(Instant::now(), None);
        let result = {
            let res = &mut floating.live_mut().resource;
            futures_util::FutureExt::catch_unwind(AssertUnwindSafe(hook(res, meta))).await
        };
        let err: BoxError = match result {
            Ok(Ok(())) => return Ok(floating),
            Ok(Err(e)) => e,
            Err(panic) => Box::new(Panicked::new("after_create", panic)),
        };
        tracing::warn!(error = %err, "after_create hook failed; closing the resource");
        floating.destroy(DestroyReason::HookRejected);
        Err(Error::Hook {
            hook: HookKind::AfterCreate,
            source: err,
        })
    }

    /// Prepares an idle resource for hand-out: `test_before_acquire` and `before_acquire`.
    /// `None` means it was destroyed and the caller should try another.
    pub(crate) async fn prepare_idle(
        self: &Arc<Self>,
        mut floating: Floating<T>,
    ) -> Option<Floating<T>> {
        if self.config.test_before_acquire {
            let result = {
                let res = &mut floating.live_mut().resource;
                futures_util::FutureExt::catch_unwind(AssertUnwindSafe(self.manager.check(res)))
                    .await
            };
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(id = floating.live().id, error = %e, "health check failed");
                    floating.destroy(DestroyReason::Broken);
                    return None;
                }
                Err(_) => {
                    tracing::warn!(id = floating.live().id, "Manager::check panicked");
                    floating.destroy(DestroyReason::Broken);
                    return None;
                }
            }
        }
        if let Some(hook) = self.config.hooks.before_acquire.clone() {
            let meta = floating
                .live()
                .metadata(Instant::now(), floating.idle_since);
            let result = {
                let res = &mut floating.live_mut().resource;
                futures_util::FutureExt::catch_unwind(AssertUnwindSafe(hook(res, meta))).await
            };
            match result {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    floating.destroy(DestroyReason::HookRejected);
                    return None;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "before_acquire hook failed; closing the resource");
                    floating.destroy(DestroyReason::HookRejected);
                    return None;
                }
                Err(panic) => {
                    let p = Panicked::new("before_acquire", panic);
                    tracing::warn!(error = %p, "before_acquire hook panicked; closing the resource");
                    floating.destroy(DestroyReason::HookRejected);
                    return None;
                }
            }
        }
        Some(floating)
    }

    /// Whether an idle resource needs async work before hand-out.
    #[inline]
    pub(crate) fn idle_needs_preparing(&self) -> bool {
        self.config.test_before_acquire || self.config.hooks.before_acquire.is_some()
    }

    /// Hands a prepared resource to the user.
    #[inline]
    pub(crate) fn attach(self: &Arc<Self>, floating: Floating<T>) -> PoolConnection<T> {
        Counters::bump(&self.stats.checkouts);
        PoolConnection::new(floating)
    }

    // ===== the acquire slow path =====

    /// Everything after the fast path: waiting, creating, checking, retrying. The caller applies
    /// `acquire_timeout` around it.
    pub(crate) async fn acquire_slow(
        self: &Arc<Self>,
        mut claim: Claim<T>,
    ) -> Result<PoolConnection<T>, Error> {
        let mut wait_started: Option<Instant> = None;
        loop {
            match claim {
                Claim::Closed => return Err(Error::Closed),
                Claim::Idle(floating) => {
                    if let Some(ready) = self.prepare_idle(floating).await {
                        self.note_wait(wait_started);
                        return Ok(self.attach(ready));
                    }
                }
                Claim::Create(guard) => {
                    if let Some(floating) = self.create_racing(guard).await? {
                        self.note_wait(wait_started);
                        return Ok(self.attach(floating));
                    }
                }
                Claim::Wait => {
                    if wait_started.is_none() {
                        wait_started = Some(Instant::now());
                    }
                    claim = self.wait_turn().await;
                    continue;
                }
            }
            claim = self.try_claim(true);
        }
    }

    fn note_wait(&self, started: Option<Instant>) {
        let Some(started) = started else { return };
        let waited = started.elapsed();
        Counters::bump(&self.stats.waited);
        self.stats
            .wait_nanos
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        if let Some(threshold) = self.config.acquire_slow_threshold {
            if waited > threshold {
                tracing::warn!(waited = ?waited, threshold = ?threshold, "slow acquire");
            }
        }
    }

    /// Creates a resource with `guard`'s unit while staying in line as a waiter: if a released
    /// resource is handed to us before the create finishes, we take it, and the create finishes
    /// in the background and lands in the idle set (bug class 13: a waiter stuck in `create`).
    ///
    /// `Ok(None)` means the handed-over resource failed its check: the caller tries again.
    async fn create_racing(
        self: &Arc<Self>,
        guard: CapacityGuard<T>,
    ) -> Result<Option<Floating<T>>, Error> {
        use futures_util::future::{select, Either};

        let mut create = self.create_future();
        let mut place = crate::waiters::Place::enter_as_creator(self);
        let outcome = match place.as_mut() {
            Some(place) => match select(&mut create, place.listener()).await {
                Either::Left((created, _)) => Either::Left(created),
                Either::Right(((), _)) => Either::Right(()),
            },
            None => Either::Left((&mut create).await),
        };
        match outcome {
            Either::Left(created) => {
                // Leave the line; a notification we got meanwhile is passed on.
                drop(place);
                let live = created?; // on error `guard` drops here and returns the unit
                let floating = Floating::new(live, None, guard);
                let floating = self.run_after_create(floating).await?;
                if self.load_state().is_closed() {
                    floating.destroy(DestroyReason::Closed);
                    return Err(Error::Closed);
                }
                Ok(Some(floating))
            }
            Either::Right(()) => {
                // We were notified: we hold a reservation.
                let place = place.expect("notified without a place");
                match place.take_reservation() {
                    crate::waiters::Reservation::Item(floating) => {
                        // Take the released resource; let the create finish in the background.
                        self.finish_create_in_background(create, guard);
                        Ok(self.prepare_idle(floating).await)
                    }
                    crate::waiters::Reservation::Slot(extra) => {
                        // Spare capacity while we already create: pass it on, keep creating.
                        drop(extra);
                        let live = create.await?;
                        let floating = self
                            .run_after_create(Floating::new(live, None, guard))
                            .await?;
                        Ok(Some(floating))
                    }
                    crate::waiters::Reservation::Closed => Err(Error::Closed),
                }
            }
        }
    }

    /// Lets an in-flight create finish on the runtime; its resource joins the idle set.
    fn finish_create_in_background(
        self: &Arc<Self>,
        create: BoxFuture<'static, Result<Live<T>, Error>>,
        guard: CapacityGuard<T>,
    ) {
        let task = self.clone().land_created(create, guard);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(task);
            }
            Err(_) => drop(task), // cancels the create; the guard returns the unit
        }
    }

    /// Finishes a create whose result nobody waits for, and puts the resource in the idle set
    /// (where a waiter may be handed it). On failure the guard returns the unit.
    pub(crate) async fn land_created(
        self: Arc<Self>,
        create: BoxFuture<'static, Result<Live<T>, Error>>,
        guard: CapacityGuard<T>,
    ) {
        let Ok(live) = create.await else { return };
        if let Ok(floating) = self
            .run_after_create(Floating::new(live, None, guard))
            .await
        {
            let (live, _, guard) = floating.into_parts();
            PoolInner::release_idle(live, self.idle_stamp(), guard);
        }
    }
}
