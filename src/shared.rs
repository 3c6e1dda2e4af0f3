//! [`Shared`]: what every `Pool` handle and `PoolConnection` of one pool points to: the engine,
//! plus what the async layer needs around it (manager, options, clock, counters, events).

use std::time::Duration;

use crate::clock::{Clock, Stamp, Ticks};
use crate::config::Config;
use crate::engine::loom::{Arc, AtomicU64, AtomicUsize, Event, Ordering};
use crate::engine::{CapacityGuard, Engine, Host, HotSlots, State};
use crate::manager::{Checks, DynManager, Known};
use crate::runtime;
use crate::stats::{Counters, DestroyReason, Tally};
use crate::teardown;
use crate::telemetry::Telemetry;
use crate::tracked::Tracked;

/// One unit of a pool's capacity.
pub(crate) type Unit<T> = CapacityGuard<Shared<T>>;

/// The state behind a pool.
pub(crate) struct Shared<T: Send + 'static> {
    /// Claims, releases, the waiter line, close.
    engine: Engine<Tracked<T>>,
    /// One slot per worker in front of the engine's queue (`config.worker_slots`; none for a
    /// keyed pool's keys).
    hot: HotSlots<Shared<T>>,
    /// Woken once when the pool closes (`close_event()` waits on it).
    pub(crate) closed_event: Event,
    /// Woken when the maintenance task has something to look at again (a resource appeared, or
    /// the pool closed).
    pub(crate) maintenance_wake: Event,
    /// Live `Pool` handles; the last one to drop closes the pool.
    pub(crate) handles: AtomicUsize,
    /// Creates started by the maintenance task and not finished.
    pub(crate) warmups_in_flight: AtomicUsize,
    /// Whether a maintenance task is running (`maintenance.rs`). A std atomic: maintenance is not
    /// part of the loom models.
    pub(crate) maintenance_running: std::sync::atomic::AtomicBool,
    /// Whether the "time limits are not applied" warning was logged.
    pub(crate) unlimited_warned: std::sync::atomic::AtomicBool,
    /// Whether the "maintenance cannot run here" warning was logged.
    pub(crate) maintenance_warned: std::sync::atomic::AtomicBool,
    /// Source of resource ids.
    next_id: AtomicU64,
    /// The epoch that resource timestamps count from.
    pub(crate) clock: Clock,
    pub(crate) manager: Box<dyn DynManager<T>>,
    /// Whether the manager's `is_open` and `is_reusable` are the defaults, once known: those are
    /// not called ([`Shared::is_open`], [`Shared::is_reusable`]).
    checks: Checks,
    pub(crate) config: Config<T>,
    /// Shared by every per-key pool of a keyed pool (one set of per-thread cells, not one per
    /// key); a pool of its own otherwise.
    pub(crate) stats: std::sync::Arc<Counters>,
    /// The same events, reported through the `metrics` facade (a no-op without the feature).
    pub(crate) telemetry: Telemetry,
}

impl<T: Send + 'static> Shared<T> {
    pub(crate) fn new(config: Config<T>, manager: Box<dyn DynManager<T>>) -> Self {
        let telemetry = Telemetry::new(&config.name);
        Self::with_counters(config, manager, std::sync::Arc::default(), telemetry)
    }

    /// A pool that reports into `stats` and `telemetry`, shared with other pools (the keys of a
    /// keyed pool).
    pub(crate) fn with_counters(
        config: Config<T>,
        manager: Box<dyn DynManager<T>>,
        stats: std::sync::Arc<Counters>,
        telemetry: Telemetry,
    ) -> Self {
        // Parked acquires are timed with it: calibrated here, not on the first wait.
        Ticks::calibrate();
        Shared {
            engine: Engine::new(config.max, config.ceiling),
            hot: HotSlots::new(config.worker_slots),
            closed_event: Event::new(),
            maintenance_wake: Event::new(),
            handles: AtomicUsize::new(1),
            warmups_in_flight: AtomicUsize::new(0),
            maintenance_running: std::sync::atomic::AtomicBool::new(false),
            maintenance_warned: std::sync::atomic::AtomicBool::new(false),
            unlimited_warned: std::sync::atomic::AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            clock: Clock::new(),
            manager,
            checks: Checks::new(),
            telemetry,
            config,
            stats,
        }
    }

    /// `Manager::is_open` on `resource` (`false` if it panicked); not called once it is known to
    /// be the default, which says `true`.
    #[inline]
    pub(crate) fn is_open(&self, resource: &mut T) -> bool {
        match self.checks.open() {
            Known::Default => true,
            Known::Overridden => self.manager.is_open(resource, None),
            Known::Unknown => self.manager.is_open(resource, Some(&self.checks)),
        }
    }

    /// `Manager::is_reusable` on `resource` (`false` if it panicked); not called once it is known
    /// to be the default, which says `true`.
    #[inline]
    pub(crate) fn is_reusable(&self, resource: &mut T) -> bool {
        match self.checks.reusable() {
            Known::Default => true,
            Known::Overridden => self.manager.is_reusable(resource, None),
            Known::Unknown => self.manager.is_reusable(resource, Some(&self.checks)),
        }
    }

    /// Takes back a count that a [`Claim::Tallied`](crate::engine::Claim::Tallied) made in a
    /// hot slot, for a resource that was not handed out after all (it failed `is_open`, or
    /// goes to the slow path): minus one in the per-thread cells, which the snapshot adds to
    /// the slots' tallies.
    pub(crate) fn untally(&self, tally: Tally) {
        self.stats.per_thread(tally).add_each([u64::MAX]); // wrapping: minus one
    }

    /// A snapshot of the state word.
    #[inline]
    pub(crate) fn state(&self) -> State {
        self.engine.state()
    }

    /// Idle resources: published, or parked in a worker's hot slot.
    #[inline]
    pub(crate) fn idle(&self) -> usize {
        Engine::idle(self)
    }

    /// A snapshot of gauges and counters, idle counting resources parked in hot slots.
    pub(crate) fn stats(&self) -> crate::PoolStats {
        let in_slots = Tally::ALL.map(|t| self.hot.tally_sum(t as usize));
        let mut stats = self.stats.snapshot(self.state(), self.max(), in_slots);
        stats.idle = self.idle();
        stats
    }

    /// The bound on `size` now in force.
    #[inline]
    pub(crate) fn max(&self) -> usize {
        self.engine.max()
    }

    /// A fresh id for a new resource.
    pub(crate) fn next_id(&self) -> u64 {
        // Relaxed: ids only need to be unique.
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a release has nothing to check: no clock to read (`idle_timeout`, `max_lifetime`
    /// or a hook that needs idle times), no `after_release` hook, and a manager that keeps the
    /// default `is_reusable` (`manager::Checks`).
    #[inline]
    pub(crate) fn releases_plainly(&self) -> bool {
        !self.config.release_needs_clock
            && self.config.hooks.after_release.is_none()
            && self.checks.reusable() == Known::Default
    }

    /// The time a resource going idle now is stamped with: read from the clock only when an
    /// option or hook needs it.
    #[inline]
    pub(crate) fn idle_stamp(&self) -> Stamp {
        if self.config.release_needs_clock {
            self.clock.now()
        } else {
            Stamp::NONE
        }
    }

    /// `limit`, if a timer can be armed here; otherwise no limit (no tokio runtime, or one
    /// without a timer driver): the operation runs unbounded, and the first time this happens the
    /// pool logs a warning. This is the pool's one rule for limits without a timer.
    #[inline]
    pub(crate) fn armable(&self, limit: Option<Duration>) -> Option<Duration> {
        // No limit (the usual case where every acquire passes by) needs no runtime lookup.
        limit.and_then(|limit| self.armable_limit(limit))
    }

    /// [`armable`](Self::armable) for a limit that is set.
    fn armable_limit(&self, limit: Duration) -> Option<Duration> {
        if runtime::timer_available() {
            return Some(limit);
        }
        // Relaxed: only decides whether to log.
        if !self
            .unlimited_warned
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                pool = %self.config.name,
                "no tokio runtime with a timer driver (enable_time) here: time limits \
                 (acquire_timeout, create_timeout, release_timeout) are not applied"
            );
        }
        None
    }

    /// Closes the pool: wakes every waiter, destroys idle resources, and wakes `close_event()` and
    /// the maintenance task. Returns `true` for the call that closed it.
    pub(crate) fn close(self: &Arc<Self>) -> bool {
        let Some(before) = Engine::close(self) else {
            return false;
        };
        tracing::info!(
            pool = %self.config.name,
            size = before.size(),
            waiting = before.waiters(),
            "pool closing"
        );
        self.closed_event.notify_all();
        self.maintenance_wake.notify_all();
        true
    }
}

impl<T: Send + 'static> Host for Shared<T> {
    type Item = Tracked<T>;

    #[inline]
    fn engine(&self) -> &Engine<Tracked<T>> {
        &self.engine
    }

    #[inline]
    fn hot(&self) -> Option<&HotSlots<Self>> {
        self.hot.enabled().then_some(&self.hot)
    }

    #[inline]
    fn tally_unparked(&self, tally: usize) {
        self.stats.per_thread(Tally::ALL[tally]).bump();
    }

    fn destroy_drained(self: &Arc<Self>, item: Tracked<T>, unit: Unit<T>) {
        teardown::destroy(item, unit, DestroyReason::Closed);
    }

    fn retire(self: &Arc<Self>, item: Tracked<T>) {
        teardown::destroy_retired(self, item);
    }
}
