//! [`PoolConnection`]: a checked-out resource, returned to the pool when dropped.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use tokio::time::Instant;

use crate::callback::{guarded, Outcome};
use crate::lease::Lease;
use crate::release::release;
use crate::shared::Unit;
use crate::stats::{Counters, DestroyReason};
use crate::teardown;
use crate::tracked::Tracked;

/// A resource checked out of a [`Pool`](crate::Pool). Derefs to the resource.
///
/// Dropping it returns the resource synchronously: no task is spawned, nothing is awaited or
/// allocated, and it works outside any runtime. A resource that
/// [`Manager::is_reusable`](crate::Manager::is_reusable) rejects, or that outlived its
/// `max_lifetime`, is destroyed instead, and its capacity goes to the oldest waiter.
pub struct PoolConnection<T: Send + 'static> {
    /// Empty only after `detach`, `close` or `drop` took the resource out. Never dropped as a
    /// field: this type's `drop` always empties it first (giving the resource back), and the
    /// empty lease's own drop, an out-of-line call that would only find it empty, is skipped.
    lease: std::mem::ManuallyDrop<Lease<T>>,
}

impl<T: Send + 'static> PoolConnection<T> {
    #[inline]
    pub(crate) fn new(lease: Lease<T>) -> Self {
        PoolConnection {
            lease: std::mem::ManuallyDrop::new(lease),
        }
    }

    /// Takes the resource out of the pool for good. Its unit of capacity is freed at once (a
    /// waiter may create a replacement); the pool forgets the resource.
    pub fn detach(mut self) -> T {
        let (tracked, unit) = self.take_out();
        Counters::bump(&unit.host().stats.detached);
        drop(unit);
        tracked.resource
    }

    /// Destroys the resource now, awaiting [`Manager::destroy`](crate::Manager::destroy) (within
    /// `release_timeout`), then frees its unit of capacity.
    pub async fn close(mut self) {
        let (tracked, unit) = self.take_out();
        let shared = unit.host();
        let teardown = teardown::start(shared, tracked, DestroyReason::ClosedByUser);
        match guarded(shared.armable(shared.config.release_timeout), || teardown).await {
            Outcome::Done(()) => {}
            Outcome::Panicked(_) => tracing::warn!("Manager::destroy panicked"),
            Outcome::TimedOut(_) => tracing::warn!("Manager::destroy timed out"),
        }
        drop(unit);
    }

    /// Destroys the resource now without awaiting: like dropping a connection that
    /// [`Manager::is_reusable`](crate::Manager::is_reusable) rejects, but decided by the caller
    /// (a protocol error, a poisoned session). An asynchronous `Manager::destroy` finishes in a
    /// task that holds the unit of capacity until it is done.
    pub fn discard(self) {
        self.discard_as(DestroyReason::ClosedByUser);
    }

    /// [`discard`](Self::discard), recorded under `reason` (the keyed pool gives a resource up
    /// for a needier key as an eviction).
    pub(crate) fn discard_as(mut self, reason: DestroyReason) {
        let (tracked, unit) = self.take_out();
        teardown::destroy(tracked, unit, reason);
    }

    /// Takes the resource and its unit of capacity out of the handle (once; the handle's drop
    /// then does nothing), counting the return.
    fn take_out(&mut self) -> (Tracked<T>, Unit<T>) {
        let lease = self.lease.take().expect("connection already given back");
        let (tracked, unit) = lease.into_parts();
        unit.host().stats.returns.bump();
        (tracked, unit)
    }

    /// Time since the resource was created.
    pub fn age(&self) -> Duration {
        let shared = self.lease.shared();
        shared.clock.now().since(self.lease.tracked().created)
    }

    /// When the resource was created.
    pub fn created_at(&self) -> Instant {
        let shared = self.lease.shared();
        shared.clock.instant(self.lease.tracked().created)
    }

    /// A number unique within the pool, in creation order.
    pub fn id(&self) -> u64 {
        self.lease.tracked().id
    }

    /// The hook metadata for this resource now.
    pub fn metadata(&self) -> crate::Metadata {
        self.lease
            .tracked()
            .metadata(self.lease.shared().clock.now())
    }
}

impl<T: Send + 'static> Drop for PoolConnection<T> {
    #[inline]
    fn drop(&mut self) {
        // The whole lease is passed down and split there: that measured ~5 ns per S1 cycle
        // cheaper than taking the parts out here in an `Option`.
        if let Some(lease) = self.lease.take() {
            release(lease);
        }
    }
}

impl<T: Send + 'static> Deref for PoolConnection<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.lease.tracked().resource
    }
}

impl<T: Send + 'static> DerefMut for PoolConnection<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.lease.tracked_mut().resource
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
