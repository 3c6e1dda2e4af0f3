//! The capacity guard: one value owns one unit of the pool's capacity.
//!
//! A [`CapacityGuard`] is created only by the engine: by a successful grow, or by adopting a unit
//! that already exists (a popped idle item, a slot reservation). Its `Drop` gives the unit back
//! through the engine, which hands it to the oldest waiter or frees it, and wakes `close()` once
//! the last unit of a closed pool is gone. So success, error, timeout, panic, a cancelled future
//! and close all return the unit exactly once (DESIGN.md §4 follows a unit through every state).
//!
//! | where a unit is | who owns it |
//! |---|---|
//! | a create in flight | a guard held by the acquire future (or a background task) |
//! | a resource being checked, run through a hook, returned or torn down | its guard |
//! | a checked-out resource | the guard inside its `PoolConnection` |
//! | an idle resource | the queue (the guard was disarmed when it was pushed) |
//! | reserved for a notified waiter | an item in the queue, or a count in the slot reservations |

use super::core::Engine;
use super::loom::Arc;
use super::Host;

/// Owns one unit of capacity of `H`'s engine. Dropping it returns the unit.
pub(crate) struct CapacityGuard<H: Host> {
    /// `None` only after [`disarm`](Self::disarm) moved the unit into the queue.
    host: Option<Arc<H>>,
}

impl<H: Host> CapacityGuard<H> {
    /// Takes ownership of a unit that is already counted in `size`.
    #[inline]
    pub(super) fn adopt(host: Arc<H>) -> Self {
        CapacityGuard { host: Some(host) }
    }

    /// The pool this unit belongs to.
    #[inline]
    pub(crate) fn host(&self) -> &Arc<H> {
        // Only `disarm` and `drop` take it, and both consume the guard.
        self.host
            .as_ref()
            .expect("capacity guard used after disarm")
    }

    /// Hands the unit to the queue without returning it, and gives back the pool reference.
    #[inline]
    pub(super) fn disarm(mut self) -> Arc<H> {
        self.host.take().expect("capacity guard disarmed twice")
    }
}

impl<H: Host> Drop for CapacityGuard<H> {
    fn drop(&mut self) {
        if let Some(host) = self.host.take() {
            Engine::return_unit(&host);
        }
    }
}
