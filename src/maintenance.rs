//! The maintenance task: reaps expired idle resources and keeps `min_connections` warm.
//!
//! It holds only a `Weak` reference, so it never keeps a pool alive, and it exits when the pool
//! closes (it listens for the close event while it sleeps). While the pool holds no resources and
//! has no minimum to keep, it parks on an event instead of ticking, so an empty pool schedules no
//! timer wake-ups at all.

use futures_util::future::{select, Either};

use crate::create;
use std::sync::atomic::Ordering;

use crate::engine::loom::{Arc, Weak};
use crate::engine::Engine;
use crate::lease::Lease;
use crate::release;
use crate::runtime;
use crate::shared::Shared;
use crate::stats::{Counters, DestroyReason};
use crate::telemetry::Telemetry;

/// Starts the task on the current tokio runtime if the options need one and it is not running
/// (never started, or its runtime shut down). Called when the pool is built and on every
/// `acquire`, so a pool that outlives the runtime it was built in is maintained again by the next
/// runtime that uses it. The common case is one `Relaxed` load.
#[inline]
pub(crate) fn ensure_running<T: Send + 'static>(shared: &Arc<Shared<T>>) {
    // Relaxed: a hint; the CAS below decides who starts it.
    if !shared.config.needs_maintenance || shared.maintenance_running.load(Ordering::Relaxed) {
        return;
    }
    start(shared);
}

#[cold]
fn start<T: Send + 'static>(shared: &Arc<Shared<T>>) {
    if shared.state().is_closed()
        || shared
            .maintenance_running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let running = Running(Arc::downgrade(shared));
    if !runtime::timer_available() || runtime::spawn(run(running)).is_err() {
        // `running` was dropped with the task (or never moved): the flag is false again.
        if !shared.maintenance_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                pool = %shared.config.name,
                "no tokio runtime with a timer driver here: idle_timeout, max_lifetime and \
                 min_connections are not enforced until a runtime with timers uses the pool"
            );
        }
    }
}

/// The running task's hold on the pool; dropping it (the task ended, or its runtime shut down
/// and dropped it) marks maintenance as not running, so the next acquire restarts it.
struct Running<T: Send + 'static>(Weak<Shared<T>>);

impl<T: Send + 'static> Drop for Running<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.maintenance_running.store(false, Ordering::Release);
        }
    }
}

async fn run<T: Send + 'static>(running: Running<T>) {
    loop {
        let Some(shared) = running.0.upgrade() else {
            return;
        };
        let s = shared.state();
        if s.is_closed() {
            return;
        }
        if s.size() == 0 && shared.config.min == 0 {
            // Nothing to look after: park until a resource is created or the pool closes.
            let listener = shared.maintenance_wake.listen();
            let s = shared.state();
            if s.size() == 0 && !s.is_closed() {
                drop(shared);
                listener.await;
            }
            continue;
        }
        Counters::bump(&shared.stats.maintenance_passes);
        reap(&shared);
        top_up(&shared);
        if Telemetry::ENABLED {
            shared.telemetry.gauges(&shared.stats());
        }
        let interval = shared.config.maintenance_interval;
        let closed = shared.closed_event.listen();
        if shared.state().is_closed() {
            return;
        }
        drop(shared);
        let sleep = std::pin::pin!(tokio::time::sleep(interval));
        if let Either::Right(_) = select(sleep, closed).await {
            return;
        }
    }
}

/// Looks at each idle resource once: closes those past `max_lifetime`, and those idle past
/// `idle_timeout` while the pool is above `min_connections`; returns the rest.
pub(crate) fn reap<T: Send + 'static>(shared: &Arc<Shared<T>>) {
    let (idle_timeout, lifetime) = (shared.config.idle_timeout, shared.config.max_lifetime);
    if idle_timeout.is_none() && lifetime.is_none() {
        return;
    }
    let now = shared.clock.now();
    sweep_idle(shared, |lease| {
        // Idle expiry never takes the pool below its minimum. Resources whose asynchronous
        // teardown is still running count in `size` but are not alive: leave them out.
        let tearing_down = shared.stats.tearing_down.load(Ordering::Relaxed);
        let alive = shared.state().size().saturating_sub(tearing_down);
        let tracked = lease.tracked();
        if tracked.expired(now) {
            return Some(DestroyReason::Lifetime);
        }
        let since = tracked.idle_since;
        let idle_expired =
            idle_timeout.is_some_and(|limit| since.is_set() && now.since(since) >= limit);
        (idle_expired && alive > shared.config.min).then_some(DestroyReason::IdleTimeout)
    });
}

/// Claims each idle resource available now, once, and asks `verdict` about it: `Some(reason)`
/// destroys it, `None` puts it back (keeping its idle time). Returns how many were kept and how
/// many destroyed.
pub(crate) fn sweep_idle<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    mut verdict: impl FnMut(&Lease<T>) -> Option<DestroyReason>,
) -> (usize, usize) {
    let mut kept: Vec<Lease<T>> = Vec::new();
    let mut removed = 0;
    // Resources parked in workers' hot slots are idle too.
    Engine::sweep_hot(shared);
    for _ in 0..shared.state().avail() {
        let Some((tracked, unit)) = Engine::claim_idle_internal(shared) else {
            break;
        };
        let lease = Lease::new(tracked, unit);
        match verdict(&lease) {
            Some(reason) => {
                lease.destroy(reason);
                removed += 1;
            }
            None => kept.push(lease),
        }
    }
    let retained = kept.len();
    for lease in kept {
        let (tracked, unit) = lease.into_parts();
        let idle_since = tracked.idle_since;
        release::to_idle(tracked, idle_since, unit);
    }
    (retained, removed)
}

/// Starts creates until the resources alive (`size` less the teardowns still holding a unit)
/// reach `min_connections`, within `max_connections` and at most `warmup_concurrency` at a time.
/// A failed create is retried on the next tick, which bounds the retry rate.
fn top_up<T: Send + 'static>(shared: &Arc<Shared<T>>) {
    let (min, cap) = (shared.config.min, shared.config.warmup_concurrency);
    if min == 0 || !runtime::available() {
        return;
    }
    // Relaxed: only maintenance changes this counter, and it is a bound, not a fence.
    while shared.warmups_in_flight.load(Ordering::Relaxed) < cap {
        // Grow below `min` only, not counting teardowns in flight, which hold their units until
        // `destroy` returns (as `reap` leaves them out of what is alive): a replacement for an
        // expired resource need not wait for a slow `destroy` while there is room under `max`.
        // Never take an idle item.
        // Relaxed: a bound for this pass, like the count it sits beside.
        let tearing_down = shared.stats.tearing_down.load(Ordering::Relaxed);
        let Some(unit) = Engine::grow(shared, min.saturating_add(tearing_down)) else {
            return;
        };
        let in_flight = WarmupInFlight::enter(shared);
        let creating = create::start(shared);
        let task_shared = shared.clone();
        // The count goes with the task: down when it ends, or when it is dropped unrun (a
        // runtime shutting down drops its tasks; a failed spawn drops this one). Taken down only
        // at the end of the task's body, it stayed up for good after a shutdown, and `top_up`
        // never warmed the pool again.
        let _ = runtime::spawn(async move {
            let _in_flight = in_flight;
            create::land(task_shared, creating, unit).await;
        });
    }
}

/// Counts one warm-up in `Shared::warmups_in_flight` for as long as it lives.
struct WarmupInFlight<T: Send + 'static>(Arc<Shared<T>>);

impl<T: Send + 'static> WarmupInFlight<T> {
    fn enter(shared: &Arc<Shared<T>>) -> Self {
        // Relaxed: a bound that `top_up` reads, not a fence (as its load).
        shared.warmups_in_flight.fetch_add(1, Ordering::Relaxed);
        WarmupInFlight(shared.clone())
    }
}

impl<T: Send + 'static> Drop for WarmupInFlight<T> {
    fn drop(&mut self) {
        // Relaxed: as in `enter`.
        self.0.warmups_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
