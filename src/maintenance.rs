//! The maintenance task: reaps expired idle resources and keeps `min_connections` warm.
//!
//! It holds only a `Weak` reference, so it never keeps a pool alive, and it exits when the pool
//! closes (it listens for the close event while it sleeps). While the pool holds no resources and
//! has no minimum to keep, it parks on an event instead of ticking, so an empty pool schedules no
//! timer wake-ups at all (hyper#4100).

use futures_util::future::{select, Either};

use crate::guard::Floating;
use crate::inner::{Claim, PoolInner, Step};
use crate::stats::DestroyReason;
use crate::sync::{Arc, Ordering, Weak};

/// Spawns the task on the current tokio runtime, if the options need one and a runtime exists.
pub(crate) fn start<T: Send + 'static>(inner: &Arc<PoolInner<T>>) {
    let c = &inner.config;
    if c.idle_timeout.is_none() && c.max_lifetime.is_none() && c.min == 0 {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(run(Arc::downgrade(inner)));
        }
        Err(_) => tracing::warn!(
            "pool built outside a tokio runtime: idle_timeout, max_lifetime and \
             min_connections are not enforced in the background"
        ),
    }
}

async fn run<T: Send + 'static>(pool: Weak<PoolInner<T>>) {
    loop {
        let Some(inner) = pool.upgrade() else { return };
        let s = inner.load_state();
        if s.is_closed() {
            return;
        }
        if s.size() == 0 && inner.config.min == 0 {
            // Nothing to look after: park until a resource is created or the pool closes.
            let listener = inner.maintenance_wake.listen();
            let s = inner.load_state();
            if s.size() == 0 && !s.is_closed() {
                drop(inner);
                listener.await;
            }
            continue;
        }
        crate::stats::Counters::bump(&inner.stats.maintenance_passes);
        inner.reap();
        inner.top_up();
        let interval = inner.config.maintenance_interval;
        let closed = inner.closed_event.listen();
        if inner.load_state().is_closed() {
            return;
        }
        drop(inner);
        let sleep = std::pin::pin!(tokio::time::sleep(interval));
        if let Either::Right(_) = select(sleep, closed).await {
            return;
        }
    }
}

impl<T: Send + 'static> PoolInner<T> {
    /// Looks at each idle resource once: closes those past `max_lifetime`, and those idle past
    /// `idle_timeout` while the pool is above `min_connections`; returns the rest.
    pub(crate) fn reap(self: &Arc<Self>) {
        let (idle_timeout, lifetime) = (self.config.idle_timeout, self.config.max_lifetime);
        if idle_timeout.is_none() && lifetime.is_none() {
            return;
        }
        let now = self.clock.now();
        self.sweep_idle(|pool, floating| {
            if floating.live().expired(now) {
                return Some(DestroyReason::Lifetime);
            }
            let since = floating.idle_since;
            let idle_expired =
                idle_timeout.is_some_and(|limit| since.is_set() && now.since(since) >= limit);
            // Idle expiry never takes the pool below its minimum.
            (idle_expired && pool.load_state().size() > pool.config.min)
                .then_some(DestroyReason::IdleTimeout)
        });
    }

    /// Claims each idle resource available now, once, and asks `verdict` about it: `Some(reason)`
    /// destroys it, `None` puts it back. Returns how many were kept and how many destroyed.
    pub(crate) fn sweep_idle(
        self: &Arc<Self>,
        mut verdict: impl FnMut(&Arc<Self>, &Floating<T>) -> Option<DestroyReason>,
    ) -> (usize, usize) {
        let mut kept: Vec<Floating<T>> = Vec::new();
        let mut removed = 0;
        let mut budget = self.load_state().avail();
        while budget > 0 {
            budget -= 1;
            let Some(floating) = self.claim_idle_for_maintenance() else {
                break;
            };
            match verdict(self, &floating) {
                Some(reason) => {
                    floating.destroy(reason);
                    removed += 1;
                }
                None => kept.push(floating),
            }
        }
        let retained = kept.len();
        for floating in kept {
            let (live, idle_since, guard) = floating.into_parts();
            PoolInner::release_idle(live, idle_since, guard);
        }
        (retained, removed)
    }

    /// Claims one available idle item regardless of waiters (the reaper puts it straight back,
    /// so it never keeps a waiter from anything).
    fn claim_idle_for_maintenance(self: &Arc<Self>) -> Option<Floating<T>> {
        match self.claim_step(true, 0, |_| false) {
            Step::Item => match self.pop_claimed() {
                Claim::Idle(floating) => Some(floating),
                _ => None,
            },
            _ => None,
        }
    }

    /// Starts creates until `size` reaches `min_connections`, at most `warmup_concurrency` at a
    /// time. A failed create is retried on the next tick, which bounds the retry rate.
    pub(crate) fn top_up(self: &Arc<Self>) {
        let (min, cap) = (self.config.min, self.config.warmup_concurrency);
        if min == 0 {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        loop {
            // Relaxed: only maintenance changes this counter, and it is a bound, not a fence.
            if self.warmups_in_flight.load(Ordering::Relaxed) >= cap {
                return;
            }
            // Grow below `min` only; never take an idle item.
            if !matches!(self.claim_step(false, min, |_| false), Step::Unit) {
                return;
            }
            let guard = crate::guard::CapacityGuard::adopt(self.clone());
            self.warmups_in_flight.fetch_add(1, Ordering::Relaxed);
            let inner = self.clone();
            handle.spawn(async move {
                let create = inner.create_future();
                inner.clone().land_created(create, guard).await;
                // Relaxed: see above.
                inner.warmups_in_flight.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
}
