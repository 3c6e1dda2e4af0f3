//! Handoff: the waiter line and the reservations handed to the waiters in it.
//!
//! A release that sees `waiters > 0` does not publish its item. It leaves it in the queue and calls
//! [`Handoff::hand_off`], which notifies the oldest place in line that is not notified yet: that
//! waiter now owns one queued item (an *item reservation*). Returned capacity is handed over the
//! same way as a *slot reservation* (`slots + 1`, then `hand_off`), so a fresh arrival can never
//! create into capacity that a waiter was promised. Reservations are interchangeable: a woken
//! waiter takes a slot if one is counted and pops an item otherwise, and the totals always match
//! the number of notified, unserved waiters.
//!
//! The numbered races (DESIGN.md §7) that this type handles: race 3 (a notify that finds
//! nobody, then a waiter registers before the publish) with the `registrations` counter and
//! [`retake`](Handoff::retake); races 4 and 5 (a notified waiter that leaves) by the waiter calling
//! `hand_off` again (`waiter.rs`).

use crossbeam_utils::CachePadded;

use super::line::Line;
use super::loom::{AtomicUsize, Ordering};
use super::state::{Claimed, State, StateWord};

/// What [`Handoff::hand_off`] did with a deposited reservation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Handed {
    /// The oldest unnotified waiter owns it now, or it was published because nobody was left to
    /// take it.
    Done,
    /// The pool is closed: the caller drains, since the closer may have drained before the
    /// deposit.
    Closed,
}

/// The line of parked acquirers and the reservations handed to them.
pub(crate) struct Handoff {
    /// Parked acquirers, oldest first.
    line: Line,
    /// Count of waiter registrations. `hand_off` compares it before a notify that found nobody
    /// and after the publish that followed, to detect a waiter that registered in between
    /// (race 3).
    registrations: CachePadded<AtomicUsize>,
    /// Units of capacity handed to notified waiters (they create with them) and not yet taken.
    slots: AtomicUsize,
}

impl Handoff {
    pub(crate) fn new() -> Self {
        Handoff {
            line: Line::new(),
            registrations: CachePadded::new(AtomicUsize::new(0)),
            slots: AtomicUsize::new(0),
        }
    }

    /// The line, for a waiter to take its place in.
    #[inline]
    pub(crate) fn line(&self) -> &Line {
        &self.line
    }

    /// Counts a registration, before the CAS that registers (race 3). AcqRel: a `hand_off` that
    /// reads this increment also sees the place in line inserted before it.
    #[inline]
    pub(crate) fn count_registration(&self) {
        self.registrations.fetch_add(1, Ordering::AcqRel);
    }

    /// Deposits one slot reservation (a unit of capacity for a waiter). AcqRel: ordered before
    /// the notify and the state RMW that follow it.
    #[inline]
    pub(crate) fn deposit_slot(&self) {
        self.slots.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes one slot reservation if any is counted.
    pub(crate) fn take_slot(&self) -> bool {
        // Acquire, not Relaxed: when this reads 0 the caller pops an item instead, and that pop
        // must see the push of any item whose slot another waiter took first.
        let mut n = self.slots.load(Ordering::Acquire);
        while n > 0 {
            // AcqRel: acquire the depositor's increment (and what preceded it). The failure
            // ordering is Acquire too: the value read decides whether the caller pops.
            match self
                .slots
                .compare_exchange_weak(n, n - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => n = actual,
            }
        }
        false
    }

    /// Takes every slot reservation (a closed pool frees them). AcqRel: pairs with the
    /// depositors' increments.
    pub(crate) fn take_all_slots(&self) -> usize {
        self.slots.swap(0, Ordering::AcqRel)
    }

    /// Hands a just-deposited reservation (a queued item or a slot) to the oldest unnotified
    /// waiter, or publishes it if there is none.
    pub(crate) fn hand_off(&self, state: &StateWord) -> Handed {
        loop {
            // Acquire: pairs with the AcqRel increment of a registering waiter; if we read it,
            // that waiter's place was inserted before, so the notify below can see it.
            let seen = self.registrations.load(Ordering::Acquire);
            // notify takes the line's lock, pops the oldest place, then flags and wakes it.
            if self.line.notify_additional(1) == 1 {
                // The notified waiter owns the reservation now. If the pool closed, the closer
                // may have drained before our deposit: the caller drains.
                return match state.sync_with_close().is_closed() {
                    true => Handed::Closed,
                    false => Handed::Done,
                };
            }
            // Nobody to notify: every counted waiter is already notified or leaving.
            if self.publish_excess(state).is_closed() {
                return Handed::Closed;
            }
            // Acquire: see above.
            if self.registrations.load(Ordering::Acquire) == seen {
                return Handed::Done;
            }
            // Race 3: a waiter registered between our notify and our publish and may be asleep
            // beside the published unit. Take one back, if it is still there, and notify again.
            // Each retry needs a new registration, so the loop ends.
            if !self.retake(state) {
                return Handed::Done;
            }
        }
    }

    /// Publishes one reservation that no waiter will take: frees a slot if one is counted,
    /// otherwise makes one queued item claimable. Returns the state before.
    fn publish_excess(&self, state: &StateWord) -> State {
        if self.take_slot() {
            state.free_excess()
        } else {
            state.publish_excess()
        }
    }

    /// Turns one published unit back into a reservation: claims an available item (which stays
    /// queued, reserved again), or grows by one and counts a slot. `false` if someone already
    /// took it (or the pool closed).
    fn retake(&self, state: &StateWord) -> bool {
        match state.claim(true) {
            Claimed::Item => true,
            Claimed::Unit => {
                self.deposit_slot();
                true
            }
            Claimed::Nothing | Claimed::Closed => false,
        }
    }

    /// Claims one published unit as a reservation, as `retake` does, and hands it off. `None` if
    /// there was nothing to claim (a resize's room was taken by someone else, or the pool closed).
    pub(crate) fn serve_one(&self, state: &StateWord) -> Option<Handed> {
        self.retake(state).then(|| self.hand_off(state))
    }

    /// Wakes every waiter (close).
    pub(crate) fn wake_all(&self) {
        self.line.notify_all();
    }
}
