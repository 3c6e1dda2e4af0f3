//! The capacity guard and the typestates of a resource between the queue and the user.
//!
//! One [`CapacityGuard`] owns exactly one unit of the pool's capacity (one count of `size` in the
//! state word). It is created only by a successful grow CAS or by adopting a unit that already
//! exists (a popped idle item, a capacity reservation), and its `Drop` gives the unit back through
//! `PoolInner::return_capacity`, which hands it to the oldest waiter or frees it, and wakes `close()`
//! once the last unit of a closed pool is gone. So success, error, timeout, panic, a cancelled
//! future and close all return the unit exactly once.
//!
//! Every state a resource passes through outside the idle queue and outside the user's hands is a
//! value that wraps the guard:
//!
//! | state | type | who owns the unit |
//! |---|---|---|
//! | creating | `CapacityGuard` held by the acquire future (or a maintenance task) | the guard |
//! | checking, running a hook, returning, tearing down | [`Floating`] | its guard |
//! | checked out | [`PoolConnection`](crate::PoolConnection) (wraps a `Floating`) | its guard |
//! | idle | an [`Idle`] item in the queue | the queue (the guard was disarmed when it was pushed) |
//! | reserved for a waiter | an item in the queue, or a count in `slot_reservations` | the notified waiter |

use crate::clock::Stamp;

use crate::hooks::Metadata;
use crate::inner::PoolInner;
use crate::stats::DestroyReason;
use crate::sync::Arc;

/// Owns one unit of capacity. Dropping it returns the unit.
pub(crate) struct CapacityGuard<T: Send + 'static> {
    /// `None` only after [`disarm`](Self::disarm) moved the unit elsewhere.
    pool: Option<Arc<PoolInner<T>>>,
}

impl<T: Send + 'static> CapacityGuard<T> {
    /// Takes ownership of a unit that the caller has already counted in `size`.
    #[inline]
    pub(crate) fn adopt(pool: Arc<PoolInner<T>>) -> Self {
        CapacityGuard { pool: Some(pool) }
    }

    #[inline]
    pub(crate) fn pool(&self) -> &Arc<PoolInner<T>> {
        // Only `disarm` and `drop` take the pool, and both consume the guard.
        self.pool
            .as_ref()
            .expect("capacity guard used after disarm")
    }

    /// Hands the unit to someone else (the idle queue) without returning it, and gives back the
    /// pool reference.
    #[inline]
    pub(crate) fn disarm(mut self) -> Arc<PoolInner<T>> {
        self.pool.take().expect("capacity guard disarmed twice")
    }
}

impl<T: Send + 'static> Drop for CapacityGuard<T> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.return_capacity();
        }
    }
}

/// A live resource and what the pool knows about it.
pub(crate) struct Live<T> {
    pub(crate) resource: T,
    pub(crate) created: Stamp,
    /// When this resource's (jittered) `max_lifetime` runs out; `NONE` if no lifetime is set.
    pub(crate) expires: Stamp,
    /// A pool-unique number, for logs.
    pub(crate) id: u64,
}

/// A resource resting in the idle queue.
pub(crate) struct Idle<T> {
    pub(crate) live: Live<T>,
    /// When it went idle; stamped only when an option or hook needs it.
    pub(crate) idle_since: Stamp,
}

impl<T> Live<T> {
    pub(crate) fn metadata(&self, now: Stamp, idle_since: Stamp) -> Metadata {
        Metadata {
            age: now.since(self.created),
            idle_for: now.since(idle_since),
            id: self.id,
        }
    }

    /// Whether its lifetime has run out at `now`.
    #[inline]
    pub(crate) fn expired(&self, now: Stamp) -> bool {
        self.expires.is_set() && now >= self.expires
    }
}

/// A resource outside the queue and outside the user's hands, with the unit of capacity it holds.
/// Dropping it (an error, a panic or a cancelled future while it was being checked or run through
/// a hook) destroys the resource and returns the unit.
pub(crate) struct Floating<T: Send + 'static> {
    /// `None` only after `into_parts` or `drop` took it.
    parts: Option<(Live<T>, CapacityGuard<T>)>,
    pub(crate) idle_since: Stamp,
}

impl<T: Send + 'static> Floating<T> {
    pub(crate) fn new(live: Live<T>, idle_since: Stamp, guard: CapacityGuard<T>) -> Self {
        Floating {
            parts: Some((live, guard)),
            idle_since,
        }
    }

    #[inline]
    fn parts(&self) -> &(Live<T>, CapacityGuard<T>) {
        self.parts
            .as_ref()
            .expect("floating resource used after it was consumed")
    }

    #[inline]
    pub(crate) fn pool(&self) -> &Arc<PoolInner<T>> {
        self.parts().1.pool()
    }

    #[inline]
    pub(crate) fn live(&self) -> &Live<T> {
        &self.parts().0
    }

    #[inline]
    pub(crate) fn live_mut(&mut self) -> &mut Live<T> {
        &mut self
            .parts
            .as_mut()
            .expect("floating resource used after it was consumed")
            .0
    }

    /// Moves the resource out into a new `Floating`, leaving this one empty (its drop then does
    /// nothing). `None` if it was already taken.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<Floating<T>> {
        self.parts.take().map(|parts| Floating {
            parts: Some(parts),
            idle_since: self.idle_since,
        })
    }

    /// Splits into the resource and its guard, without destroying anything.
    #[inline]
    pub(crate) fn into_parts(mut self) -> (Live<T>, Stamp, CapacityGuard<T>) {
        let (live, guard) = self.parts.take().expect("floating resource consumed twice");
        (live, self.idle_since, guard)
    }

    /// Destroys the resource for `reason` and returns its unit of capacity (after the manager's
    /// teardown completes, if that is asynchronous).
    pub(crate) fn destroy(self, reason: DestroyReason) {
        let (live, _, guard) = self.into_parts();
        PoolInner::destroy(live, guard, reason);
    }
}

impl<T: Send + 'static> Drop for Floating<T> {
    fn drop(&mut self) {
        if let Some((live, guard)) = self.parts.take() {
            PoolInner::destroy(live, guard, DestroyReason::Cancelled);
        }
    }
}
