//! [`Lease`]: a resource out of the idle set, with the unit of capacity it holds.

use crate::shared::{Shared, Unit};
use crate::stats::DestroyReason;
use crate::teardown;
use crate::tracked::Tracked;

/// A resource between the idle set and the user (being checked, run through a hook, checked out,
/// or returning), with its unit of capacity. Dropping a lease that still holds its resource (an
/// error, a panic or a cancelled future mid-check) destroys it and returns the unit.
pub(crate) struct Lease<T: Send + 'static> {
    /// `None` only after `take`, `into_parts` or `drop` moved it out.
    parts: Option<(Tracked<T>, Unit<T>)>,
}

impl<T: Send + 'static> Lease<T> {
    #[inline]
    pub(crate) fn new(tracked: Tracked<T>, unit: Unit<T>) -> Self {
        Lease {
            parts: Some((tracked, unit)),
        }
    }

    #[inline]
    fn parts(&self) -> &(Tracked<T>, Unit<T>) {
        self.parts
            .as_ref()
            .expect("lease used after it was consumed")
    }

    #[inline]
    pub(crate) fn tracked(&self) -> &Tracked<T> {
        &self.parts().0
    }

    #[inline]
    pub(crate) fn tracked_mut(&mut self) -> &mut Tracked<T> {
        &mut self
            .parts
            .as_mut()
            .expect("lease used after it was consumed")
            .0
    }

    /// The pool and the resource record, borrowed together (to call the manager on the
    /// resource without cloning the pool reference).
    #[inline]
    pub(crate) fn parts_mut(&mut self) -> (&Shared<T>, &mut Tracked<T>) {
        let (tracked, unit) = self
            .parts
            .as_mut()
            .expect("lease used after it was consumed");
        (unit.host(), tracked)
    }

    /// Moves the contents out into a new lease, leaving this one empty (its drop then does
    /// nothing). `None` if it was already taken.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<Lease<T>> {
        self.parts.take().map(|parts| Lease { parts: Some(parts) })
    }

    /// Splits into the resource and its unit, destroying nothing. The emptied lease is not
    /// dropped: its drop would only find it empty, and LLVM keeps that drop an out-of-line call.
    #[inline]
    pub(crate) fn into_parts(self) -> (Tracked<T>, Unit<T>) {
        std::mem::ManuallyDrop::new(self)
            .parts
            .take()
            .expect("lease consumed twice")
    }

    /// Destroys the resource for `reason`; its unit returns once the teardown is finished.
    pub(crate) fn destroy(self, reason: DestroyReason) {
        let (tracked, unit) = self.into_parts();
        teardown::destroy(tracked, unit, reason);
    }
}

impl<T: Send + 'static> Lease<T> {
    /// The drop of a lease that still holds its resource: destroy it.
    #[cold]
    fn destroy_cancelled(&mut self) {
        if let Some((tracked, unit)) = self.parts.take() {
            teardown::destroy(tracked, unit, DestroyReason::Cancelled);
        }
    }
}

impl<T: Send + 'static> Drop for Lease<T> {
    // Inline and only a check: on the hot path every lease is dropped empty (its contents moved
    // on), and moving the contents out just to find `None` measured ~90 instructions per cycle.
    #[inline]
    fn drop(&mut self) {
        if self.parts.is_some() {
            self.destroy_cancelled();
        }
    }
}
