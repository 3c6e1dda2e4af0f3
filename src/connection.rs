//! [`PoolConnection`]: a checked-out resource, returned to the pool when dropped.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::Stamp;

use crate::guard::{CapacityGuard, Floating, Live};
use crate::inner::PoolInner;
use crate::stats::{Counters, DestroyReason};
use crate::unwind::{guarded, guarded_sync, Outcome};

/// A resource checked out of a [`Pool`](crate::Pool). Derefs to the resource.
///
/// Dropping it returns the resource synchronously: no task is spawned, nothing is awaited or
/// allocated, and it works outside any runtime. A resource that
/// [`Manager::is_reusable`](crate::Manager::is_reusable) rejects, or that outlived its
/// `max_lifetime`, is destroyed instead, and its capacity goes to the oldest waiter.
pub struct PoolConnection<T: Send + 'static> {
    /// Empty only after `detach`, `close` or `drop` took the resource out.
    floating: Floating<T>,
}

impl<T: Send + 'static> PoolConnection<T> {
    #[inline]
    pub(crate) fn new(floating: Floating<T>) -> Self {
        PoolConnection { floating }
    }

    #[inline]
    fn floating(&self) -> &Floating<T> {
        &self.floating
    }

    /// Takes the resource out of the pool for good. Its unit of capacity is freed at once (a
    /// waiter may create a replacement); the pool forgets the resource.
    pub fn detach(mut self) -> T {
        let (live, guard) = self.take_out();
        Counters::bump(&guard.pool().stats.detached);
        drop(guard);
        live.resource
    }

    /// Destroys the resource now, awaiting [`Manager::destroy`](crate::Manager::destroy) (within
    /// `release_timeout`), then frees its unit of capacity.
    pub async fn close(mut self) {
        let (live, guard) = self.take_out();
        let pool = guard.pool();
        let teardown = pool.start_teardown(live, DestroyReason::ClosedByUser);
        match guarded(pool.config.release_timeout, || teardown).await {
            Outcome::Done(()) => {}
            Outcome::Panicked(_) => tracing::warn!("Manager::destroy panicked"),
            Outcome::TimedOut(_) => tracing::warn!("Manager::destroy timed out"),
        }
        drop(guard);
    }

    /// Destroys the resource now without awaiting: like dropping a connection that
    /// [`Manager::is_reusable`](crate::Manager::is_reusable) rejects, but decided by the caller
    /// (a protocol error, a poisoned session). An asynchronous `Manager::destroy` finishes in a
    /// task that holds the unit of capacity until it is done.
    pub fn discard(mut self) {
        let (live, guard) = self.take_out();
        PoolInner::destroy(live, guard, DestroyReason::ClosedByUser);
    }

    /// Takes the resource and its unit of capacity out of the handle (once; the handle's drop
    /// then does nothing), counting the return.
    fn take_out(&mut self) -> (Live<T>, CapacityGuard<T>) {
        let floating = self.floating.take().expect("connection already given back");
        let (live, _, guard) = floating.into_parts();
        guard.pool().stats.returns.bump();
        (live, guard)
    }

    /// Time since the resource was created.
    pub fn age(&self) -> Duration {
        let f = self.floating();
        f.pool().clock.now().since(f.live().created)
    }

    /// When the resource was created.
    pub fn created_at(&self) -> Instant {
        let f = self.floating();
        f.pool().clock.instant(f.live().created)
    }

    /// A number unique within the pool, in creation order.
    pub fn id(&self) -> u64 {
        self.floating().live().id
    }

    /// The hook metadata for this resource now.
    pub fn metadata(&self) -> crate::Metadata {
        let f = self.floating();
        f.live().metadata(f.pool().clock.now(), Stamp::NONE)
    }
}

/// The release path.
fn release<T: Send + 'static>(floating: Floating<T>) {
    let (mut live, _, guard) = floating.into_parts();
    let pool = guard.pool();
    pool.stats.returns.bump();
    // A panic in user code inside Drop must not abort or leak: treat it as "not reusable".
    let reusable = guarded_sync(|| pool.manager.is_reusable(&mut live.resource)).unwrap_or(false);
    if !reusable {
        return PoolInner::destroy(live, guard, DestroyReason::Broken);
    }
    // The only clock read on the release path, and only when an option or hook needs it.
    let idle_since = if pool.config.release_needs_clock {
        let now = pool.clock.now();
        if live.expired(now) {
            return PoolInner::destroy(live, guard, DestroyReason::Lifetime);
        }
        now
    } else {
        Stamp::NONE
    };
    if pool.config.hooks.after_release.is_some() {
        return run_after_release(live, idle_since, guard);
    }
    PoolInner::release_idle(live, idle_since, guard);
}

/// `after_release` is async, so it runs in a task that owns the resource and its unit of
/// capacity. If the task never runs, dropping it still returns the unit.
fn run_after_release<T: Send + 'static>(
    mut live: Live<T>,
    idle_since: Stamp,
    guard: CapacityGuard<T>,
) {
    if guard.pool().load_state().is_closed() {
        return PoolInner::destroy(live, guard, DestroyReason::Closed);
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("after_release hook needs a tokio runtime; closing the resource");
        return PoolInner::destroy(live, guard, DestroyReason::HookRejected);
    };
    let pool = guard.pool().clone();
    handle.spawn(async move {
        let hook = pool
            .config
            .hooks
            .after_release
            .clone()
            .expect("checked by caller");
        let meta = live.metadata(pool.clock.now(), Stamp::NONE);
        // Bounded by `release_timeout`: a hook stuck on a dead connection must not pin the
        // unit of capacity for good (sqlx#4349).
        let limit = pool.config.release_timeout;
        let verdict = guarded(limit, || hook(&mut live.resource, meta)).await;
        let failure = match verdict {
            Outcome::Done(Ok(true)) => return PoolInner::release_idle(live, idle_since, guard),
            Outcome::Done(Ok(false)) => None,
            Outcome::Done(Err(e)) => Some(e.to_string()),
            Outcome::Panicked(_) => Some("panicked".to_string()),
            Outcome::TimedOut(limit) => Some(format!("timed out after {limit:?}")),
        };
        if let Some(failure) = failure {
            tracing::warn!(error = %failure, "after_release hook failed; closing the resource");
        }
        PoolInner::destroy(live, guard, DestroyReason::HookRejected);
    });
}

impl<T: Send + 'static> Drop for PoolConnection<T> {
    #[inline]
    fn drop(&mut self) {
        // Not through `try_take_out`: passing the whole `Floating` down and splitting it there
        // measured ~5 ns per S1 cycle cheaper than returning the parts in an `Option`.
        if let Some(floating) = self.floating.take() {
            release(floating);
        }
    }
}

impl<T: Send + 'static> Deref for PoolConnection<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.floating().live().resource
    }
}

impl<T: Send + 'static> DerefMut for PoolConnection<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.floating.live_mut().resource
    }
}

impl<T: Send + std::fmt::Debug + 'static> std::fmt::Debug for PoolConnection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolConnection")
            .field("id", &self.id())
            .field("resource", &**self)
            .finish()
    }
}
