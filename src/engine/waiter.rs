//! [`Waiter`]: an acquirer with a place in line, counted in the state word's `waiters`.
//!
//! A waiter takes its place in the line (`line.rs`) *before* it registers, so its FIFO position
//! is fixed by arrival. It then loops on the state word: claim `avail`, else grow, else register
//! with a CAS on the exact word it inspected (race 2), and park. Once its place is notified it
//! owns one [`Reservation`], which it takes synchronously, so a cancellation cannot land between
//! the wake-up and the take.
//!
//! Leaving early is always safe (races 4 and 5 in DESIGN.md): dropping a `Waiter` un-registers,
//! discards its place, and if the place had been notified, passes the reservation on with
//! `hand_off`. The line itself never forwards a notification on drop.

use std::task::Waker;

use super::core::Engine;
use super::guard::CapacityGuard;
use super::line::Place;
use super::loom::Arc;
use super::state::{CreatorTurn, Turn};
use super::Host;

/// What a notified waiter was handed.
pub(crate) enum Reservation<H: Host> {
    /// A queued item, with its unit.
    Item(H::Item, CapacityGuard<H>),
    /// A unit of capacity to create with.
    Slot(CapacityGuard<H>),
    /// The pool closed; whatever was reserved is drained by the closer.
    Closed,
}

/// What joining the line came to.
pub(crate) enum Joined<H: Host> {
    /// An item was published meanwhile: claimed and popped, no wait.
    Item(H::Item, CapacityGuard<H>),
    /// Capacity was freed meanwhile: a unit to create with, no wait.
    Unit(CapacityGuard<H>),
    /// Registered: the [`Waiter`] is in the slot [`Waiter::join`] was given; await its place.
    Waiting,
    /// The waiter count is full: yield and try again.
    Saturated,
    /// `waiter_limit` waiters are counted already.
    Full,
    /// The pool is closed.
    Closed,
}

/// What a creator got when it joined the line.
pub(crate) enum CreatorJoined<'a, H: Host> {
    /// In line while it creates with its unit: a release may hand it a resource first.
    Waiting(Waiter<'a, H>, CapacityGuard<H>),
    /// Too many waiters to count: it creates without racing releases.
    Saturated(CapacityGuard<H>),
    /// An item was published before it got in line: it took the item, and its unit was freed.
    Item(H::Item, CapacityGuard<H>),
    /// The pool is closed (the unit was given back).
    Closed,
}

/// A registered acquirer and its place in line. Dropping it leaves the line and passes on any
/// notification it holds, which is what makes cancellation at the await point safe.
pub(crate) struct Waiter<'a, H: Host> {
    host: &'a Arc<H>,
    /// `None` once the place completed (it is then unlinked) or was discarded.
    place: Option<Place<'a, H::Item>>,
    /// Whether this task is counted in `waiters`.
    registered: bool,
}

impl<'a, H: Host> Waiter<'a, H> {
    /// A creator's place: at the back, its waker registered when it first polls.
    fn new(host: &'a Arc<H>) -> Self {
        Waiter {
            host,
            place: Some(host.engine().handoff().line().listen(None)),
            registered: false,
        }
    }

    /// Takes a place in line (at the front with `front`: a served waiter whose resource turned
    /// out dead keeps its turn), then claims, grows or registers, unless `waiter_limit` waiters
    /// are counted already. The calling task's waker is registered with the place in the same
    /// lock round trip, so that parking in this task takes no further lock. Resolves at its
    /// first poll.
    ///
    /// A waiter that stays in line is left in `slot` (which should be empty) rather than
    /// returned: the caller keeps `slot` in its own state across the wait, so the waiter (72
    /// bytes) is written where it stays instead of being copied out of a returned value, which
    /// was a measured stall on every wait (`benches/RESULTS.md`).
    pub(crate) fn join<'s>(
        host: &'a Arc<H>,
        front: bool,
        waiter_limit: usize,
        slot: &'s mut Option<Waiter<'a, H>>,
    ) -> impl std::future::Future<Output = Joined<H>> + use<'a, 's, H> {
        std::future::poll_fn(move |cx| {
            std::task::Poll::Ready(Self::join_registered(
                host,
                front,
                waiter_limit,
                cx.waker(),
                slot,
            ))
        })
    }

    /// [`join`](Self::join) with `waker` given.
    #[inline]
    fn join_registered(
        host: &'a Arc<H>,
        front: bool,
        waiter_limit: usize,
        waker: &Waker,
        slot: &mut Option<Waiter<'a, H>>,
    ) -> Joined<H> {
        debug_assert!(slot.is_none(), "joined with a waiter already in the slot");
        // Built where it stays: the line writes the place into the waiter in the slot.
        let waiter = slot.insert(Waiter {
            host,
            place: None,
            registered: false,
        });
        let engine = host.engine();
        let line = engine.handoff().line();
        line.listen_into(front, Some(waker), &mut waiter.place);
        let turn = engine.state_word().claim_or_register(waiter_limit);
        match turn {
            Turn::Registered => {
                waiter.registered = true;
                // Race 8: resources parked in hot slots come to the line.
                Engine::flush_hot(host);
                Joined::Waiting
            }
            Turn::RegisteredWithRoom => {
                // Race 7: a resize raised the bound after we looked; make sure its room reaches
                // the line (most likely us, if we are the oldest).
                waiter.registered = true;
                Engine::flush_hot(host);
                Engine::grow_for_line(host);
                Joined::Waiting
            }
            // Race 4: leaving without parking (emptying the slot drops the waiter) passes on a
            // notification we may already hold.
            Turn::Item => {
                *slot = None;
                match Engine::pop_claimed(host) {
                    Some((item, unit)) => Joined::Item(item, unit),
                    None => Joined::Closed,
                }
            }
            Turn::Unit => {
                *slot = None;
                Joined::Unit(CapacityGuard::adopt(host.clone()))
            }
            Turn::Saturated => {
                *slot = None;
                Joined::Saturated
            }
            Turn::Full => {
                *slot = None;
                // A refused registration flushes nothing, so a resource parked on another worker
                // while nobody waits would stay there while we fail (`max_waiters(0)` on a full
                // pool): take it. Nobody waits, so nobody is overtaken.
                if let Some(hot) = host.hot() {
                    if let Some((item, unit)) = hot.take_any(engine.state_word().peek()) {
                        return Joined::Item(item, unit);
                    }
                }
                Joined::Full
            }
            Turn::Closed => {
                *slot = None;
                Joined::Closed
            }
        }
    }

    /// Joins the line while creating with `unit`: counted as a waiter at once, so a release
    /// hands its resource to us if we are the oldest.
    ///
    /// A resource parked in a worker's hot slot beats a new one, as a published one does
    /// (`SwappedForItem`): while nobody waits we take one from the slots before registering, and
    /// once registered we flush the slots like any waiter (race R8), so a park that raced the
    /// registration reaches the line instead of staying parked while we create.
    pub(crate) fn join_as_creator(
        host: &'a Arc<H>,
        unit: CapacityGuard<H>,
    ) -> CreatorJoined<'a, H> {
        let engine = host.engine();
        if let Some(hot) = host.hot() {
            let s = engine.state_word().peek();
            if s.avail() == 0 {
                if let Some((item, parked)) = hot.take_any(s) {
                    drop(unit); // ours goes back: the parked resource has a unit of its own
                    return CreatorJoined::Item(item, parked);
                }
            }
        }
        let mut waiter = Waiter::new(host);
        match engine.state_word().register_creator() {
            CreatorTurn::Registered => {
                waiter.registered = true;
                Engine::flush_hot(host);
                CreatorJoined::Waiting(waiter, unit)
            }
            CreatorTurn::SwappedForItem => {
                // The CAS freed our unit itself: forget the guard without returning it.
                drop(unit.disarm());
                drop(waiter);
                match Engine::pop_claimed(host) {
                    Some((item, unit)) => CreatorJoined::Item(item, unit),
                    None => CreatorJoined::Closed,
                }
            }
            CreatorTurn::Saturated => CreatorJoined::Saturated(unit),
            CreatorTurn::Closed => CreatorJoined::Closed, // `waiter` and `unit` drop: given back
        }
    }

    /// The place in line, a future that completes once notified. Panics if it already completed.
    pub(crate) fn notified(&mut self) -> &mut Place<'a, H::Item> {
        self.place.as_mut().expect("place already completed")
    }

    /// Parks until notified, then takes the reservation. Cancel-safe: dropped while parked, the
    /// waiter leaves the line (race 5).
    pub(crate) async fn wait(mut self) -> Reservation<H> {
        self.notified().await;
        self.take_reservation()
    }

    /// Called once the place completed: leave the line and take what we were handed. Works in
    /// place, leaving the waiter empty (its drop then does nothing): moving the waiter (72 bytes)
    /// out of the caller's state machine to consume it was a measured stall on every wait.
    pub(crate) fn take_reservation(&mut self) -> Reservation<H> {
        // A completed place is already unlinked; nothing to discard. With the place gone and the
        // registration taken over here, `Drop` has nothing left to do.
        let host = self.host;
        let registered = std::mem::replace(&mut self.registered, false);
        // An item handed over in the notification (reserved for us, so ours even if the pool
        // closed since: the caller destroys it then).
        let handed = self.place.as_ref().and_then(Place::take_handed);
        // Dropped where it lies (a completed place's drop does nothing), not moved out.
        self.place = None;
        let engine = host.engine();
        let before = if registered {
            engine.state_word().unregister()
        } else {
            engine.state()
        };
        if let Some(item) = handed {
            return Reservation::Item(item, CapacityGuard::adopt(host.clone()));
        }
        if before.is_closed() {
            return Reservation::Closed;
        }
        if engine.handoff().take_slot() {
            return Reservation::Slot(CapacityGuard::adopt(host.clone()));
        }
        match Engine::pop_claimed(host) {
            Some((item, unit)) => Reservation::Item(item, unit),
            None => Reservation::Closed,
        }
    }
}

impl<H: Host> Drop for Waiter<'_, H> {
    /// Inline and only a check: after [`Waiter::take_reservation`], the usual end of a wait,
    /// there is nothing left to do.
    #[inline]
    fn drop(&mut self) {
        if self.registered || self.place.is_some() {
            self.leave();
        }
    }
}

impl<H: Host> Waiter<'_, H> {
    /// A waiter dropped while still in line or counted (cancelled, a creator whose create
    /// finished first, or a join that did not park): un-register and leave.
    #[cold]
    #[inline(never)]
    fn leave(&mut self) {
        if std::mem::replace(&mut self.registered, false) {
            self.host.engine().state_word().unregister();
        }
        if let Some(place) = self.place.take() {
            // `discard` unlinks a still-queued place under the line's lock, or reports that a
            // notifier popped it: that notification was a reservation (or close's wake-all), so
            // pass it on.
            if let Some(handed) = place.discard() {
                Engine::pass_on(self.host, handed);
            }
        }
    }
}
