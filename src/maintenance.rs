//! The maintenance task: reaps expired idle resources and keeps `min_connections` warm.
//!
//! It holds only a `Weak` reference, so it never keeps a pool alive, and it exits when the pool
//! closes (it listens for the close event while it sleeps). While the pool holds no resources and
//! has no minimum to keep, it parks on an event instead of ticking, so an empty pool schedules no
//! timer wake-ups at all.

use futures_util::future::{select, Either};

use crate::create;
use crate::engine::loom::{Arc, Ordering, Weak};
use crate::engine::Engine;
use crate::lease::Lease;
use crate::release;
use crate::runtime;
use crate::shared::Shared;
use crate::stats::{Counters, DestroyReason};

/// Spawns the task on the current tokio runtime, if the options need one and a runtime exists.
pub(crate) fn start<T: Send + 'static>(shared: &Arc<Shared<T>>) {
    let c = &shared.config;
    if c.idle_timeout.is_none() && c.max_lifetime.is_none() && c.min == 0 {
        return;
    }
    if runtime::spawn(run(Arc::downgrade(shared))).is_err() {
        tracing::warn!(
            "pool built outside a tokio runtime: idle_timeout, max_lifetime and \
             min_connections are not enforced in the background"
        );
    }
}

async fn run<T: Send + 'static>(pool: Weak<Shared<T>>) {
    loop {
        let Some(shared) = pool.upgrade() else { return };
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
        let tracked = lease.tracked();
        if tracked.expired(now) {
            return Some(DestroyReason::Lifetime);
        }
        let since = tracked.idle_since;
        let idle_expired =
            idle_timeout.is_some_and(|limit| since.is_set() && now.since(since) >= limit);
        // Idle expiry never takes the pool below its minimum.
        (idle_expired && shared.state().size() > shared.config.min)
            .then_some(DestroyReason::IdleTimeout)
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

/// Starts creates until `size` reaches `min_connections`, at most `warmup_concurrency` at a
/// time. A failed create is retried on the next tick, which bounds the retry rate.
fn top_up<T: Send + 'static>(shared: &Arc<Shared<T>>) {
    let (min, cap) = (shared.config.min, shared.config.warmup_concurrency);
    if min == 0 || !runtime::available() {
        return;
    }
    // Relaxed: only maintenance changes this counter, and it is a bound, not a fence.
    while shared.warmups_in_flight.load(Ordering::Relaxed) < cap {
        // Grow below `min` only; never take an idle item.
        let Some(unit) = Engine::grow(shared, min) else {
            return;
        };
        shared.warmups_in_flight.fetch_add(1, Ordering::Relaxed);
        let creating = create::start(shared);
        let task_shared = shared.clone();
        let _ = runtime::spawn(async move {
            create::land(task_shared.clone(), creating, unit).await;
            // Relaxed: see above.
            task_shared
                .warmups_in_flight
                .fetch_sub(1, Ordering::Relaxed);
        });
    }
}
