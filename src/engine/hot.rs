//! [`HotSlots`]: one slot per worker thread in front of the shared idle queue.
//!
//! A release parks its resource, still holding its unit of capacity *and its pool reference*, in
//! its own worker's slot while nobody waits; the next acquire on that worker takes it back. Neither
//! side touches the state word, the queue's head and tail, or the pool's reference count, so an
//! uncontended cycle writes only the worker's own cache line (HikariCP's `ConcurrentBag` has the
//! same shape, with one difference that matters: here nothing barges past a waiter).
//!
//! # The handshake (DESIGN.md §7, race R8)
//!
//! A resource in a slot is counted in `size` but not in `avail`, like one checked out. So a task
//! that finds nothing claimable registers as a waiter exactly as if every parked resource were in
//! use, and every parked resource must then reach the line. Three things make sure of it:
//!
//! * an **epoch** counter, bumped by whoever needs the slots emptied *after* it changed the state
//!   word: a waiter after its registration CAS, `close` after setting the closed bit, a shrink
//!   after lowering `max`;
//! * the **flush** that follows each bump *seals* every slot at the new epoch and takes what it
//!   holds into the queue (through the release path, which hands it to the oldest waiter, drains
//!   it, or retires it);
//! * a **release** reads the epoch (acquire), *then* the state word, and parks only if nobody
//!   waits, the pool is open and within `max`, and only into a slot not sealed after the epoch it
//!   read.
//!
//! If the releaser's epoch read sees a bump, it also sees the state change behind it (the bump
//! is a release RMW sequenced after that change), and does not park. If it does not see the bump,
//! the flush's seal comes later than what it read: its put either lands before the seal (and the
//! flush takes it) or after it (and is refused, because the seal is newer than its epoch). The
//! slot's lock orders each put before or after each seal. So no resource stays in a slot while a
//! waiter that flushed is parked, in a closed pool, or above a lowered bound; and each parked
//! resource is taken exactly once.
//!
//! The releaser never touches the pool after its put: the resource, its unit and its pool
//! reference are in the slot, and the pool may be gone a moment later (a flush by the last
//! handle's close). That is why the check comes before the put, and the seal makes it sufficient.
//!
//! An acquirer takes from its own slot before anything else, without looking at waiters. That
//! overtakes nobody who has finished joining: a waiter flushes the slots after registering and
//! before it parks, and any resource put in a slot after that flush is seen by its putter's
//! re-check and goes to the queue. So an acquire served from a slot ahead of a waiter overlapped
//! that waiter's arrival, and at most one such acquire per slot overlaps each arrival. An acquirer
//! that would otherwise create a resource, or a `try_acquire` that finds nothing, looks in the
//! other workers' slots while no one waits, so resources parked on an idle worker are reused
//! instead of new ones created.
//!
//! # Liveness of the pool's memory
//!
//! The pool reference parked with each resource keeps the pool alive while resources sit in
//! slots, which would be a cycle (pool → slot → pool) if nothing broke it. The last `Pool` handle's
//! drop closes the pool, and close flushes every slot: the cycle ends with the pool.

use crossbeam_utils::CachePadded;

use super::guard::CapacityGuard;
use super::loom::{worker_index, AtomicUsize, Ordering, Slot};
use super::state::StateWord;
use super::Host;

/// What a slot holds: an idle item and the unit it keeps (with its pool reference).
pub(super) type Parked<H> = (<H as Host>::Item, CapacityGuard<H>);

/// The hot slots of one engine: a power-of-two number of slots, indexed by the thread's worker
/// index. Zero slots turn the feature off (keyed pools, and `PoolOptions::worker_slots(0)`).
pub(crate) struct HotSlots<H: Host> {
    /// `slots.len() - 1`; the slots' count is a power of two (or zero).
    mask: usize,
    /// The handshake's epoch: bumped before each flush that must not be missed. Read on every
    /// release, written only when a waiter registers or the pool closes or shrinks.
    epoch: CachePadded<AtomicUsize>,
    slots: Box<[Slot<Parked<H>>]>,
}

impl<H: Host> HotSlots<H> {
    /// `n` slots, rounded up to a power of two; none for `n == 0` (no allocation then).
    pub(crate) fn new(n: usize) -> Self {
        let n = if n == 0 { 0 } else { n.next_power_of_two() };
        HotSlots {
            mask: n.wrapping_sub(1),
            epoch: CachePadded::new(AtomicUsize::new(0)),
            slots: (0..n).map(|_| Slot::new()).collect(),
        }
    }

    /// Whether there are any slots.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        !self.slots.is_empty()
    }

    /// This thread's slot (there is one: hosts offer only enabled slots).
    #[inline]
    fn own(&self) -> Option<&Slot<Parked<H>>> {
        worker_index().map(|i| &self.slots[i & self.mask])
    }

    /// Parks `parked` in this thread's slot if nobody waits, the pool is open and within its
    /// bound; otherwise (or if the slot is occupied, busy or sealed since) hands it back.
    #[inline]
    pub(super) fn park(&self, state: &StateWord, parked: Parked<H>) -> Result<(), Parked<H>> {
        // Acquire: a flusher bumps the epoch after its state change (release RMW), so if we see
        // the bump we see the change below and do not park.
        let seen = self.epoch.load(Ordering::Acquire);
        let s = state.peek();
        if s.waiters() > 0 || s.is_closed() || s.size() > state.max() {
            return Err(parked);
        }
        match self.own() {
            Some(slot) => slot.put(parked, seen),
            None => Err(parked),
        }
    }

    /// Takes what this thread's slot holds.
    #[inline]
    pub(super) fn take_own(&self) -> Option<Parked<H>> {
        self.own()?.take()
    }

    /// Takes from any slot, starting with this thread's.
    pub(super) fn take_any(&self) -> Option<Parked<H>> {
        let start = worker_index().unwrap_or(0);
        (0..self.slots.len()).find_map(|k| self.slots[(start + k) & self.mask].take())
    }

    /// Starts a flush that no later park may slip past: bumps the epoch, then seals every slot
    /// at it and calls `each` on what it held. The caller changed the state word first.
    pub(super) fn flush(&self, mut each: impl FnMut(Parked<H>)) {
        // AcqRel: the release half publishes the caller's state change to a releaser that reads
        // this epoch (see `park`).
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        for slot in self.slots.iter() {
            if let Some(parked) = slot.seal(epoch) {
                each(parked);
            }
        }
    }

    /// Takes from every slot that is not busy, without sealing (maintenance: a resource parked a
    /// moment later waits for the next pass).
    pub(super) fn sweep(&self, mut each: impl FnMut(Parked<H>)) {
        for slot in self.slots.iter() {
            if let Some(parked) = slot.take() {
                each(parked);
            }
        }
    }

    /// How many slots hold a resource (a snapshot).
    pub(crate) fn occupied(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_full()).count()
    }
}
