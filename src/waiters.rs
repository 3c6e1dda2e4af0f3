//! Fairness: the waiter line, handoff reservations and cancellation.
//!
//! # Implementation details
//!
//! A waiter's place in line is its node in the waiter line (`waitlist.rs`), inserted *before* it
//! registers, so its FIFO position is fixed by arrival. It then loops on the state word: claim `avail`, else grow,
//! else register (`waiters + 1`) with a CAS on the exact word it inspected, and park.
//!
//! A release that sees `waiters > 0` does not publish its item. It leaves it in the queue and calls
//! [`hand_off`](PoolInner::hand_off), which notifies the oldest listener that is not notified yet:
//! that waiter now owns one queued item (an *item reservation*). Returned capacity is handed over
//! the same way as a *slot reservation* (`slot_reservations + 1`, then `hand_off`), so a fresh
//! arrival can never create into capacity that a waiter was promised. Reservations are
//! interchangeable: a woken waiter takes a slot if one is counted and pops an item otherwise, and
//! the totals always match the number of notified, unserved waiters.
//!
//! The races this handles (numbered as in `shared/notes/fairness.md`):
//!
//! 1. *Check-then-pop*: nobody pops without first holding a claim or a reservation.
//! 2. *Release vs. registering waiter*: the registration CAS and the publishing CAS are on the same
//!    word, so one of them sees the other: the release hands off to the already-inserted listener,
//!    or the waiter sees `avail > 0`.
//! 3. *`notify` finds nobody*: every counted waiter is already notified or leaving. `hand_off`
//!    publishes the excess reservation, then compares the registration counter with the value it
//!    read before the notify. If a waiter registered in between, it may sleep beside the published
//!    unit, so `hand_off` takes a unit back and notifies again. Each retry needs a new
//!    registration, so the loop ends.
//! 4. *Notified before counted*: a listener can be notified from the moment it is inserted. A
//!    waiter that leaves its registration loop without parking discards its listener, and if the
//!    listener had been notified, passes the reservation on with `hand_off`.
//! 5. *Cancellation*: a cancelled waiter un-registers, discards its listener, and passes a
//!    notification it had on with `hand_off`. event-listener's own forward-on-drop is not used: it
//!    only re-notifies an *unnotified* listener and loses the reservation when none is left (and
//!    the crate's own line does not forward at all).
//! 6. Notified waiters stay counted in `waiters` until they run, so an arrival during a handoff
//!    takes the slow path.

use crate::guard::{CapacityGuard, Floating};
use crate::inner::{Claim, PoolInner, Step};
use crate::state::{State, AVAIL, MAX_WAITERS, SIZE, WAITER};
use crate::sync::{Arc, Ordering};
use crate::waitlist::WaitListener;
use tokio::time::Instant;

/// What a notified waiter was handed.
pub(crate) enum Reservation<T: Send + 'static> {
    /// A queued resource.
    Item(Floating<T>),
    /// A unit of capacity to create with.
    Slot(CapacityGuard<T>),
    /// The pool closed; whatever was reserved is drained by the closer.
    Closed,
}

/// How a creator entered the line.
pub(crate) enum CreatorEntry<'a, T: Send + 'static> {
    /// In line, still holding its unit to create with.
    Registered(Place<'a, T>, CapacityGuard<T>),
    /// Too many waiters to count: create without racing releases.
    Saturated(CapacityGuard<T>),
    /// Took an idle resource instead (the unit was given back).
    Item(Claim<T>),
    /// The pool is closed (the unit was given back).
    Closed,
}

/// A task's place in the waiter line. Dropping it leaves the line and passes on any notification
/// it holds, which is what makes cancellation at the await point safe.
pub(crate) struct Place<'a, T: Send + 'static> {
    pool: &'a Arc<PoolInner<T>>,
    /// `None` once the listener completed (it is then unlinked) or was discarded.
    listener: Option<WaitListener<'a>>,
    /// Whether this task is counted in `waiters`.
    registered: bool,
}

impl<'a, T: Send + 'static> Place<'a, T> {
    fn new(pool: &'a Arc<PoolInner<T>>, front: bool) -> Self {
        let listener = if front {
            pool.waiters.listen_front()
        } else {
            pool.waiters.listen()
        };
        Place {
            pool,
            listener: Some(listener),
            registered: false,
        }
    }

    /// Enters the line while creating (see `PoolInner::create_racing`), holding `guard`'s unit:
    /// counted as a waiter at once, so a release hands its resource to us if we are the oldest.
    ///
    /// If a resource was published (and nobody waits) between our grow and now, we take it
    /// instead and give the unit back in the same CAS: creating would waste a connect and leave a
    /// "waiter" beside an idle resource.
    pub(crate) fn enter_as_creator(
        pool: &'a Arc<PoolInner<T>>,
        guard: CapacityGuard<T>,
    ) -> CreatorEntry<'a, T> {
        let mut place = Place::new(pool, false);
        // AcqRel: publishes our listener insertion to a `hand_off` that reads the counter.
        pool.registrations.fetch_add(1, Ordering::AcqRel);
        let mut s = State(pool.state.load(Ordering::Relaxed));
        loop {
            if s.is_closed() {
                return CreatorEntry::Closed; // `place` and `guard` drop: all given back
            }
            if s.waiters() == 0 && s.avail() > 0 {
                // Claim the item and free our unit in one step. AcqRel: as for any claim.
                if pool.cas(&mut s, |s| s.0 - AVAIL - SIZE) {
                    // The unit was freed by the CAS itself; forget the guard without returning it.
                    drop(guard.disarm());
                    drop(place);
                    return CreatorEntry::Item(pool.pop_claimed());
                }
                continue;
            }
            if s.waiters() >= MAX_WAITERS {
                return CreatorEntry::Saturated(guard);
            }
            // AcqRel: orders the listener insertion before any release that sees us counted.
            if pool.cas(&mut s, |s| s.0 + WAITER) {
                place.registered = true;
                return CreatorEntry::Registered(place, guard);
            }
        }
    }

    /// The listener to await. Panics if it already completed.
    pub(crate) fn listener(&mut self) -> &mut WaitListener<'a> {
        self.listener.as_mut().expect("listener already completed")
    }

    /// Called once the listener completed: leave the line and take what we were handed.
    pub(crate) fn take_reservation(mut self) -> Reservation<T> {
        // Completed listeners are already unlinked; nothing to discard.
        self.listener = None;
        let pool = self.pool;
        let before = if std::mem::replace(&mut self.registered, false) {
            // AcqRel: release our departure to later state readers. (What the notifier did
            // before notifying is already ours through the node's Release/Acquire flag.)
            let before = State(pool.state.fetch_sub(WAITER, Ordering::AcqRel));
            debug_assert!(before.waiters() > 0, "waiter count underflow");
            before
        } else {
            pool.load_state()
        };
        if before.is_closed() {
            return Reservation::Closed;
        }
        if pool.take_slot_reservation() {
            return Reservation::Slot(CapacityGuard::adopt(pool.clone()));
        }
        match pool.pop_claimed() {
            Claim::Idle(floating) => Reservation::Item(floating),
            _ => Reservation::Closed,
        }
    }
}

impl<T: Send + 'static> Drop for Place<'_, T> {
    fn drop(&mut self) {
        if self.registered {
            // AcqRel: a release that no longer sees us counted publishes instead of notifying.
            self.pool.state.fetch_sub(WAITER, Ordering::AcqRel);
        }
        if let Some(listener) = self.listener.take() {
            // `discard` unlinks a still-queued node under the line's lock, or reports that a
            // notifier popped it: that notification was a reservation (or close's wake-all), so
            // pass it on.
            if listener.discard() {
                self.pool.hand_off();
            }
        }
    }
}

impl<T: Send + 'static> Reservation<T> {
    fn into_claim(self) -> Claim<T> {
        match self {
            Reservation::Item(floating) => Claim::Idle(floating),
            Reservation::Slot(guard) => Claim::Create(guard),
            Reservation::Closed => Claim::Closed,
        }
    }
}

impl<T: Send + 'static> PoolInner<T> {
    /// Waits for this task's turn: insert a listener, then claim, grow or register and park.
    /// Cancel-safe at its only await point.
    ///
    /// `parked_at` is set to the time this task parked, if it does (and was not set before): it
    /// is the only clock read on this path, and only tasks that really wait pay it. `front`
    /// rejoins at the head of the line (a served waiter whose resource turned out dead).
    pub(crate) async fn wait_turn(
        self: &Arc<Self>,
        parked_at: &mut Option<Instant>,
        front: bool,
    ) -> Claim<T> {
        let mut place = Place::new(self, front);
        // Relaxed: a hint; every decision below is confirmed by a CAS.
        let mut s = State(self.state.load(Ordering::Relaxed));
        loop {
            if s.is_closed() {
                return Claim::Closed;
            }
            if s.avail() > 0 {
                // AcqRel: acquire the push behind this published item.
                if self.cas(&mut s, |s| s.0 - AVAIL) {
                    drop(place); // race 4: pass on a notification we may already hold
                    return self.pop_claimed();
                }
            } else if s.size() < self.config.max {
                if self.cas(&mut s, |s| s.0 + SIZE) {
                    drop(place);
                    return Claim::Create(CapacityGuard::adopt(self.clone()));
                }
            } else if s.waiters() >= MAX_WAITERS {
                drop(place);
                tokio::task::yield_now().await;
                return Claim::Wait;
            } else {
                // Count the registration *before* the CAS (race 3). AcqRel: a `hand_off` that
                // reads this increment also sees our listener, inserted above.
                self.registrations.fetch_add(1, Ordering::AcqRel);
                // Register on the exact word we inspected (race 2). AcqRel: a release that sees
                // us counted notifies a list that already holds our listener.
                if self.cas(&mut s, |s| s.0 + WAITER) {
                    place.registered = true;
                    break;
                }
            }
        }
        // The only await point. Cancelled here, `place`'s drop leaves the line (race 5).
        parked_at.get_or_insert_with(Instant::now);
        place.listener().await;
        // From here on everything is synchronous, so a cancellation cannot split the wake-up
        // from taking the reservation.
        place.take_reservation().into_claim()
    }

    /// Hands a just-deposited reservation (a queued item or a slot) to the oldest unnotified
    /// waiter, or publishes it if there is none.
    pub(crate) fn hand_off(self: &Arc<Self>) {
        loop {
            // Acquire: pairs with the AcqRel increment of a registering waiter; if we read it,
            // that waiter's listener was inserted before, so the notify below can see it.
            let seen = self.registrations.load(Ordering::Acquire);
            // notify takes the line's lock, pops the oldest node, then flags and wakes it.
            if self.waiters.notify_additional(1) == 1 {
                // A notified listener owns the reservation now. An RMW on the state word orders
                // our deposit against a concurrent close (see inner.rs): if the pool closed, the
                // closer may have drained already, so drain ourselves.
                let s = State(self.state.fetch_add(0, Ordering::AcqRel));
                if s.is_closed() {
                    self.drain_closed();
                }
                return;
            }
            // Nobody to notify: every counted waiter is already notified or leaving.
            let s = self.publish_excess();
            if s.is_closed() {
                self.drain_closed();
                return;
            }
            // Acquire: see above.
            if self.registrations.load(Ordering::Acquire) == seen {
                return;
            }
            // Race 3: a waiter registered between our notify and our publish and may be asleep
            // beside the published unit. Take one back, if it is still there, and notify again.
            if !self.retake() {
                return;
            }
        }
    }

    /// Publishes one reservation that no waiter will take: frees a slot if one is counted,
    /// otherwise makes one queued item claimable. Returns the state before.
    fn publish_excess(self: &Arc<Self>) -> State {
        if self.take_slot_reservation() {
            // AcqRel: like every capacity return.
            let before = State(self.state.fetch_sub(SIZE, Ordering::AcqRel));
            self.after_size_decrement(before);
            return before;
        }
        // Relaxed: a hint for the CAS.
        let mut s = State(self.state.load(Ordering::Relaxed));
        loop {
            if s.is_closed() {
                return s;
            }
            // AcqRel: release the queued item to whoever claims it.
            if self.cas(&mut s, |s| s.0 + AVAIL) {
                return s;
            }
        }
    }

    /// Turns one published unit back into a reservation: claims an available item, or grows by
    /// one and counts a slot. `false` if someone already took it (or the pool closed).
    fn retake(self: &Arc<Self>) -> bool {
        match self.claim_step(true, self.config.max, |_| false) {
            // The claimed item stays queued: it is an item reservation again.
            Step::Item => true,
            Step::Unit => {
                // AcqRel: ordered before the notify that hands it over.
                self.slot_reservations.fetch_add(1, Ordering::AcqRel);
                true
            }
            Step::Neither | Step::Closed => false,
        }
    }

    /// Takes one slot reservation if any is counted.
    pub(crate) fn take_slot_reservation(&self) -> bool {
        // Acquire, not Relaxed: when this reads 0 the caller pops an item instead, and that pop
        // must see the push of any item whose slot another waiter took first (review finding).
        let mut n = self.slot_reservations.load(Ordering::Acquire);
        while n > 0 {
            // AcqRel: acquire the depositor's increment (and what preceded it).
            match self.slot_reservations.compare_exchange_weak(
                n,
                n - 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => n = actual,
            }
        }
        false
    }
}
