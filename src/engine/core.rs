//! [`Engine`]: the state word, the idle queue and the handoff, and the synchronous paths that move
//! capacity between them: claim, release, return a unit, close and drain.

use super::guard::CapacityGuard;
use super::handoff::{Handed, Handoff};
use super::loom::{Arc, Queue};
use super::state::{Claimed, Free, Order, Publish, State, StateWord};
use super::Host;

/// What a fast-path claim produced.
pub(crate) enum Claim<H: Host> {
    /// An idle item, popped under a claim, with its unit.
    Idle(H::Item, CapacityGuard<H>),
    /// A unit of capacity to create a resource with.
    Create(CapacityGuard<H>),
    /// Nothing now: the caller must wait its turn.
    Wait,
    /// The pool is closed.
    Closed,
}

/// The synchronous core of one pool. Generic over the queued item `I`; the pool that embeds it
/// implements [`Host`].
pub(crate) struct Engine<I> {
    /// Size, available items, counted waiters, closed.
    state: StateWord,
    /// The waiter line and the reservations handed to it.
    handoff: Handoff,
    /// Idle items, plus items reserved for notified waiters. Capacity `max`.
    queue: Queue<I>,
    /// The bound on `size`.
    max: usize,
}

impl<I: Send + 'static> Engine<I> {
    /// An empty engine with room for `max` units (`1 ..= MAX_SIZE`, checked by the builder).
    pub(crate) fn new(max: usize) -> Self {
        Engine {
            state: StateWord::new(),
            handoff: Handoff::new(),
            queue: Queue::new(max),
            max,
        }
    }

    /// A snapshot of the state word.
    #[inline]
    pub(crate) fn state(&self) -> State {
        self.state.load()
    }

    /// The bound on `size`.
    #[inline]
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    #[inline]
    pub(super) fn state_word(&self) -> &StateWord {
        &self.state
    }

    #[inline]
    pub(super) fn handoff(&self) -> &Handoff {
        &self.handoff
    }

    // ===== claiming =====

    /// The fast path: claim an idle item, or (with `create`) room to create one, fairly: nothing
    /// while anyone is counted as waiting. Without `create` (for `try_acquire`) it never grows.
    #[inline]
    pub(crate) fn claim<H: Host<Item = I>>(host: &Arc<H>, create: bool) -> Claim<H> {
        let engine = host.engine();
        let grow_below = if create { engine.max } else { 0 };
        match engine.state.claim(Order::Fair, grow_below) {
            Claimed::Item => match Self::pop_claimed(host) {
                Some((item, unit)) => Claim::Idle(item, unit),
                None => Claim::Closed,
            },
            Claimed::Unit => Claim::Create(CapacityGuard::adopt(host.clone())),
            Claimed::Nothing => Claim::Wait,
            Claimed::Closed => Claim::Closed,
        }
    }

    /// Claims one available idle item regardless of waiters (maintenance, which puts it straight
    /// back, so it never keeps a waiter from anything).
    pub(crate) fn claim_idle_internal<H: Host<Item = I>>(
        host: &Arc<H>,
    ) -> Option<(I, CapacityGuard<H>)> {
        match host.engine().state.claim(Order::Internal, 0) {
            Claimed::Item => Self::pop_claimed(host),
            _ => None,
        }
    }

    /// Grows by one unit while `size < below`, never taking an item (warm-up to a minimum).
    pub(crate) fn grow<H: Host<Item = I>>(host: &Arc<H>, below: usize) -> Option<CapacityGuard<H>> {
        host.engine()
            .state
            .grow(below)
            .then(|| CapacityGuard::adopt(host.clone()))
    }

    /// Pops the item covered by a claim or reservation we hold. `None` only if the pool closed
    /// and a drainer took it.
    #[inline]
    pub(super) fn pop_claimed<H: Host<Item = I>>(host: &Arc<H>) -> Option<(I, CapacityGuard<H>)> {
        match host.engine().queue.pop() {
            Some(item) => Some((item, CapacityGuard::adopt(host.clone()))),
            None => {
                debug_assert!(
                    host.engine().state().is_closed(),
                    "claimed item missing from queue"
                );
                None
            }
        }
    }

    // ===== releasing =====

    /// Returns an item to the idle set with the unit `guard` owned: push, then publish it, or
    /// hand it to the oldest waiter. Synchronous, lock-free, allocation-free when nobody waits.
    #[inline]
    pub(crate) fn release<H: Host<Item = I>>(guard: CapacityGuard<H>, item: I) {
        // The unit moves from the guard into the queue.
        let host = guard.disarm();
        let engine = host.engine();
        if let Err(item) = engine.queue.push(item) {
            // Impossible while `queued items <= size <= max`; if it ever happens, do not lose
            // the unit: destroy the item through a fresh guard.
            debug_assert!(false, "idle queue full");
            let guard = CapacityGuard::adopt(host.clone());
            return H::destroy_drained(&host, item, guard);
        }
        match engine.state.publish() {
            Publish::Published => {}
            // Leave the item in the queue, unpublished, as a reservation.
            Publish::ForWaiter => Self::hand_off(&host),
            // The closer may have drained before our push: drain it ourselves.
            Publish::Closed => Self::drain(&host),
        }
    }

    /// Gives back one unit of capacity: to the oldest waiter (as a slot reservation) if there is
    /// one, otherwise to the pool. Called by the guard's `Drop`.
    pub(super) fn return_unit<H: Host<Item = I>>(host: &Arc<H>) {
        let engine = host.engine();
        match engine.state.free() {
            Free::Freed => {}
            Free::ForWaiter => {
                // Hand the unit over instead of freeing it, so a fresh arrival cannot take it
                // ahead of the waiter.
                engine.handoff.deposit_slot();
                Self::hand_off(host);
            }
        }
    }

    /// Hands a deposited reservation to the oldest unnotified waiter (or publishes it), and
    /// drains if the pool closed meanwhile.
    pub(super) fn hand_off<H: Host<Item = I>>(host: &Arc<H>) {
        let engine = host.engine();
        if engine.handoff.hand_off(&engine.state, engine.max) == Handed::Closed {
            Self::drain(host);
        }
    }

    // ===== closing =====

    /// Marks the pool closed, wakes every waiter and drains the idle set. Returns the state
    /// before for the call that closed it, `None` for later calls.
    pub(crate) fn close<H: Host<Item = I>>(host: &Arc<H>) -> Option<State> {
        let engine = host.engine();
        let (first, before) = engine.state.close();
        engine.handoff.wake_all();
        Self::drain(host);
        first.then_some(before)
    }

    /// Resolves once the pool is closed and every unit of capacity has been freed.
    pub(crate) async fn drained(&self) {
        self.state.drained().await;
    }

    /// Destroys everything queued and frees every slot reservation of a closed pool. Safe to run
    /// from any number of threads: each item and reservation is taken exactly once.
    fn drain<H: Host<Item = I>>(host: &Arc<H>) {
        let engine = host.engine();
        while let Some(item) = engine.queue.pop() {
            H::destroy_drained(host, item, CapacityGuard::adopt(host.clone()));
        }
        for _ in 0..engine.handoff.take_all_slots() {
            drop(CapacityGuard::adopt(host.clone()));
        }
    }

    /// Closes the engine if it holds no unit and no waiter, atomically with respect to any
    /// claim, grow or registration (one CAS on the state word): an acquire that loses to it sees
    /// `Closed`. No waiter is registered and nothing is queued, so nobody needs a wake-up and
    /// there is nothing to drain. `true` if it closed.
    pub(crate) fn close_if_empty(&self) -> bool {
        self.state.close_if_empty()
    }
}
