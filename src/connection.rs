//! [`PoolConnection`]: a checked-out resource, returned to the pool when dropped.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use tokio::time::Instant;

use crate::callback::{guarded, Outcome};
use crate::engine::loom::Arc;
use crate::release::release;
use crate::shared::{Shared, Unit};
use crate::stats::{Counters, DestroyReason};
use crate::teardown;
use crate::tracked::Tracked;

/// A resource checked out of a [`Pool`](crate::Pool). Derefs to the resource.
///
/// Dropping it returns the resource synchronously: no task is spawned, nothing is awaited or
/// allocated, and it works outside any runtime (an `after_release` hook, if set, runs in a
/// spawned task). A resource that [`Manager::is_reusable`](crate::Manager::is_reusable)
/// rejects, or that outlived its `max_lifetime`, is destroyed instead (its teardown is
/// allocated, and spawned if `Manager::destroy` does not finish at once), and its capacity goes
/// to the oldest waiter.
///
/// Three ways to give one resource up instead of returning it, each freeing its capacity for a
/// waiter:
///
/// ```
/// # use shadowcat_pool::{from_fn, PoolOptions};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = PoolOptions::new()
///     .max_connections(3)
///     .build(from_fn(|| async { Ok::<_, std::io::Error>(String::from("session")) }))
///     .unwrap();
///
/// // A protocol error left the session unusable: destroy it now, without awaiting.
/// pool.acquire().await.unwrap().discard();
/// // Destroy it and wait until `Manager::destroy` has finished (a graceful goodbye).
/// pool.acquire().await.unwrap().close().await;
/// // Keep it, outside the pool (hand the socket to another library); the pool forgets it.
/// let kept: String = pool.acquire().await.unwrap().detach();
///
/// let s = pool.stats();
/// assert_eq!((s.destroyed.closed_by_user, s.detached, s.size), (2, 1, 0));
/// # drop(kept);
/// # }
/// ```
pub struct PoolConnection<T: Send + 'static> {
    /// The resource's box, holding its unit of capacity (`Record::unit`): one pointer, so the
    /// handle moves in one register. Empty only after `detach`, `close` or `drop` took it out.
    /// `ManuallyDrop` because `Drop::drop` always takes it: without it the field's own drop
    /// glue ran after the release, a check that kept a register saved across the release.
    tracked: ManuallyDrop<Option<Tracked<T>>>,
}

impl<T: Send + 'static> PoolConnection<T> {
    /// The handle for `tracked`, checked out with `unit`, which it keeps in the box.
    #[inline(always)]
    pub(crate) fn new(mut tracked: Tracked<T>, unit: Unit<T>) -> Self {
        tracked.unit = Some(unit);
        PoolConnection {
            tracked: ManuallyDrop::new(Some(tracked)),
        }
    }

    /// The record; present until the handle is given up.
    #[inline]
    fn record(&self) -> &Tracked<T> {
        self.tracked
            .as_ref()
            .expect("connection already given back")
    }

    /// The record, mutably; present until the handle is given up.
    #[inline]
    fn record_mut(&mut self) -> &mut Tracked<T> {
        self.tracked
            .as_mut()
            .expect("connection already given back")
    }

    /// The pool this resource belongs to.
    #[inline]
    fn shared(&self) -> &Arc<Shared<T>> {
        self.record()
            .unit
            .as_ref()
            .expect("a checked-out record holds its unit")
            .host()
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
            Outcome::Panicked(_) => {
                tracing::warn!(pool = %shared.config.name, "Manager::destroy panicked")
            }
            Outcome::TimedOut(_) => {
                tracing::warn!(pool = %shared.config.name, "Manager::destroy timed out")
            }
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
        let (tracked, unit) = self.parts().expect("connection already given back");
        unit.host().stats.returns.bump();
        (tracked, unit)
    }

    /// Takes the box and its unit out of the handle, if it still holds them.
    #[inline]
    fn parts(&mut self) -> Option<(Tracked<T>, Unit<T>)> {
        let mut tracked = self.tracked.take()?;
        // `new` puts the unit in, and only this takes it out. Not an `expect`: a panic path
        // here would keep registers saved on every release; in a debug build it still panics.
        let Some(unit) = tracked.unit.take() else {
            debug_assert!(false, "a checked-out record holds its unit");
            return None;
        };
        Some((tracked, unit))
    }

    /// Time since the resource was created.
    pub fn age(&self) -> Duration {
        self.shared().clock.now().since(self.record().created)
    }

    /// When the resource was created.
    pub fn created_at(&self) -> Instant {
        self.shared().clock.instant(self.record().created)
    }

    /// A number unique within the pool, in creation order.
    pub fn id(&self) -> u64 {
        self.record().id
    }

    /// The hook metadata for this resource now.
    pub fn metadata(&self) -> crate::Metadata {
        self.record().metadata(self.shared().clock.now())
    }
}

impl<T: Send + 'static> Drop for PoolConnection<T> {
    #[inline]
    fn drop(&mut self) {
        if let Some((tracked, unit)) = self.parts() {
            release(tracked, unit);
        }
    }
}

impl<T: Send + 'static> Deref for PoolConnection<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.record().resource
    }
}

impl<T: Send + 'static> DerefMut for PoolConnection<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.record_mut().resource
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
