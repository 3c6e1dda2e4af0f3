//! Handoff: the waiter line and the reservations handed to the waiters in it.
//!
//! A release that sees `waiters > 0` does not publish its item. It hands it to the oldest place
//! in line that is not notified yet, in the notification ([`Handoff::hand_off_item`]): the item
//! goes into the place's cell, and that waiter now owns it (an *item reservation*). Where the
//! cell is still full (race 9), or where the item went into the queue first (a release that saw
//! nobody waiting, then lost its publishing CAS to a registration), the item stays in the queue
//! unpublished and [`Handoff::hand_off`] notifies the waiter, which pops one. Returned capacity
//! is handed over the same way as a *slot reservation* (`slots + 1`, then `hand_off`), so a fresh
//! arrival can never create into capacity that a waiter was promised. Reservations are
//! interchangeable: a woken waiter takes the item in its cell if there is one, else a slot if
//! one is counted, else pops an item, and the totals always match the number of notified,
//! unserved waiters.
//!
//! The numbered races (DESIGN.md §7) that this type handles: race 3 (a notify that finds
//! nobody, then a waiter registers before the publish) with the line's count of inserted places
//! and [`retake`](Handoff::retake); races 4 and 5 (a notified waiter that leaves) by the waiter
//! queueing what its cell held and calling `hand_off` again (`waiter.rs`); race 9 (a full cell)
//! in the line.

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
pub(crate) struct Handoff<P> {
    /// Parked acquirers, oldest first. It also counts the places ever inserted, which
    /// `hand_off` compares at a notify that found nobody and after the publish that followed, to
    /// detect a waiter that registered in between (race 3).
    line: Line<P>,
    /// Units of capacity handed to notified waiters (they create with them) and not yet taken.
    slots: AtomicUsize,
}

impl<P> Handoff<P> {
    pub(crate) fn new() -> Self {
        Handoff {
            line: Line::new(),
            slots: AtomicUsize::new(0),
        }
    }

    /// The line, for a waiter to take its place in.
    #[inline]
    pub(crate) fn line(&self) -> &Line<P> {
        &self.line
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

    /// Hands a released item (its unit moves with it) straight to the oldest unnotified waiter,
    /// in the notification: no queue push and pop. If that waiter's cell is still full (a waiter
    /// notified earlier at the same place has not run yet), the item goes to `queue` instead,
    /// before the waiter is flagged, as an ordinary item reservation. `Err` if nobody is left to
    /// notify, with the item unless it was queued: the caller queues it and runs
    /// [`hand_off`](Self::hand_off), which publishes it (race 3).
    #[inline]
    pub(crate) fn hand_off_item(
        &self,
        state: &StateWord,
        item: P,
        queue: impl FnOnce(P),
    ) -> Result<Handed, Option<P>> {
        match self.line.notify_one_with(Some(item), queue) {
            // As in `hand_off`: if the pool closed, the closer may have drained before our
            // deposit.
            Ok(()) => Ok(match Self::closed_after_deposit(state) {
                true => Handed::Closed,
                false => Handed::Done,
            }),
            Err((item, _)) => Err(item),
        }
    }

    /// Hands a just-deposited reservation (a queued item or a slot) to the oldest unnotified
    /// waiter, or publishes it if there is none.
    pub(crate) fn hand_off(&self, state: &StateWord) -> Handed {
        loop {
            // notify takes the line's lock, pops the oldest place, flags it and takes its waker,
            // and wakes it after unlocking; finding nobody, it reports the count of places
            // inserted so far (under the lock: any later place counts more).
            let seen = match self.line.notify_one() {
                Ok(()) => {
                    // The notified waiter owns the reservation now. If the pool closed, the
                    // closer may have drained before our deposit: the caller drains.
                    return match Self::closed_after_deposit(state) {
                        true => Handed::Closed,
                        false => Handed::Done,
                    };
                }
                Err(seen) => seen,
            };
            // Nobody to notify: every counted waiter is already notified or leaving.
            if self.publish_excess(state).is_closed() {
                return Handed::Closed;
            }
            // A waiter whose registration CAS came before our publishing RMW inserted its place
            // (and counted it) before that CAS, and our RMW acquired the CAS: we see its count.
            if self.line.registrations() == seen {
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

    /// Whether the pool closed, seen by a depositor that just notified a waiter (the close
    /// protocol's depositor rule, DESIGN.md §9). Close sets the closed bit and then notifies
    /// every place under the line's lock; our notify took the same lock. If ours came after
    /// close's, the closed bit happened before it and any later load sees it; if ours came first,
    /// our deposit happened before close's notify, and so before close's drain, which takes it.
    /// So a load suffices where the line's notify always locks; over event-listener, which may
    /// not, it is an RMW on the word (totally ordered with close's).
    #[inline]
    fn closed_after_deposit(state: &StateWord) -> bool {
        if Line::<P>::NOTIFY_LOCKS {
            state.load().is_closed()
        } else {
            state.sync_with_close().is_closed()
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
        match state.claim_for_line() {
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
