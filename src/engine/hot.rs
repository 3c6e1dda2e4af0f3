//! [`HotSlots`]: one slot per worker thread in front of the shared idle queue.
//!
//! A release parks its resource, still holding its unit of capacity *and its pool reference*, in
//! its own worker's slot while nobody waits; the next acquire on that worker takes it back. Neither
//! side writes the state word, the queue's head and tail, or the pool's reference count, so an
//! uncontended cycle writes only the worker's own cache line (HikariCP's `ConcurrentBag` has the
//! same shape, with one difference that matters: here nothing barges past a waiter).
//!
//! # The handshake (DESIGN.md §7, race R8)
//!
//! A resource in a slot is counted in `size` but not in `avail`, like one checked out. So while
//! nobody waits, an acquirer that would create (`Engine::claim`), a creator in line about to
//! register, and an acquirer that `max_waiters` turns away first look in the other workers'
//! slots; otherwise an acquirer registers as a waiter exactly as if every parked resource were
//! in use, and every parked resource must then reach the line. Every registration flushes the
//! slots, a waiter's and a creator's. The two sides meet in a
//! store-buffering handshake, with a `SeqCst` fence on each side between its write and its read:
//!
//! * the **releaser** claims its slot (`EMPTY → BUSY`, a plain store: a slot has one owner, the
//!   thread with its worker index, and only the owner moves it out of `EMPTY`), fences, and
//!   re-reads the state word: only
//!   if nobody waits, the pool is open and `size <= max` does it store the resource and publish it
//!   (`BUSY → FULL`); otherwise it frees the slot and releases through the queue, which hands the
//!   resource to the oldest waiter, drains or retires it;
//! * the **flusher** changes the state word first (a waiter's registration CAS, `close` setting
//!   the closed bit, a shrink lowering `max` then its RMW on the word), fences, and looks at every
//!   slot: it takes a `FULL` one (`FULL → BUSY → EMPTY`) into the queue the same way, and marks a
//!   `BUSY` one `FLUSH`.
//!
//! With the fences, at least one side sees the other's write: the releaser sees the state change
//! (and keeps its resource out of the slot), or the flusher sees the slot claimed. If it is claimed
//! by a put still deciding, the flusher cannot know which way the put's re-check went, so it marks
//! the slot and moves on: the put's publishing CAS (`BUSY → FULL`) then fails, and the releaser
//! releases through the queue itself. Nobody ever waits for anybody. Every move out of `FULL`, and
//! a flusher's mark of a `BUSY` slot, is a CAS, so each parked resource is taken exactly once; the
//! plain stores are the owner's claim and the `EMPTY` that ends a take, a flush or a refused put. A releaser that sees a waiter
//! *before* it claims (its first, fence-free look) leaves its slot alone, so under contention the
//! slots stay empty and the wait path costs one fence and one load per slot per registration.
//!
//! # Liveness of the pool's memory, and the `unsafe` here
//!
//! This is the crate's one module with `unsafe` code: the slot's value cell, and the release that
//! parks. Both exist to keep the uncontended cycle free of writes other workers make: the slot
//! stores the resource's unit *with its pool reference*, so neither side of a hot cycle touches
//! the pool's reference count (one cache line every worker would write on every checkout), and a
//! slot is a state word and a cell rather than a lock (two locked instructions on the release side
//! and one on the acquire side, not a lock and an unlock each).
//! `benches/RESULTS.md` has the measurement that decided it.
//!
//! A parked reference keeps the pool alive while resources sit in slots; that would be a cycle
//! (pool → slot → pool) if nothing broke it. The last `Pool` handle's drop closes the pool, and
//! close flushes every slot, so the cycle ends with the pool. The other side of the same fact: once
//! a releaser has published its resource (`BUSY → FULL`), the pool may be freed at any moment (a
//! flush by the last handle's close can take the resource and drop the last reference), so the
//! release decides everything before that CAS and touches nothing of the pool after it. `park`
//! works on raw pointers for that reason: a reference held across the CAS would claim the memory
//! stays valid until the function returns.
//!
//! The same state word and cell, without the padding, the owner's claim and the handshake, is
//! the waiter line's hand-over cell ([`Handover`]): a release offers its item to the place it
//! notifies, and the waiter takes it. There every move is a CAS (or made by whoever holds
//! `BUSY`), so its API is safe, and the release keeps its own pool reference until it returns.
//!
//! Loom checks the protocol: every access to the cell goes through loom's `UnsafeCell`, so loom
//! reports two threads touching one value at once, and the models in `loom-tests/hot.rs` race
//! puts, takes and flushes; those in `loom-tests/wakeup.rs` and `close.rs` race offers and takes
//! (DESIGN.md §13).

use super::guard::CapacityGuard;
use super::loom::{
    fence, worker_index, worker_index_if_claimed, AtomicU64, AtomicUsize, Ordering, UnsafeCell,
};
use super::state::{State, StateWord};
use super::Host;

/// What a slot holds: an idle item and the unit it keeps (with its pool reference).
pub(super) type Parked<H> = (<H as Host>::Item, CapacityGuard<H>);

/// The slot holds nothing.
const EMPTY: usize = 0;
/// A put or a take owns the cell.
const BUSY: usize = 1;
/// The cell holds a value.
const FULL: usize = 2;
/// A put owns the cell, and a flusher saw it: the put must not publish.
const FLUSH: usize = 3;

/// A state word and a one-value cell: a worker's [`Slot`], and the hand-over cell of each place
/// in the waiter line ([`Handover`]).
pub(super) struct Handover<T> {
    /// `EMPTY`, `BUSY`, `FULL` or (in a slot) `FLUSH`; whoever moves it to `BUSY` (or a put whose
    /// `BUSY` was marked `FLUSH`) owns `value` until it moves it on.
    state: AtomicUsize,
    /// `Some` exactly while `state` is `FULL` (and transiently inside a put, offer or take).
    value: UnsafeCell<Option<T>>,
}

// SAFETY: `value` is only accessed by the thread that owns the state (it moved `state` to `BUSY`,
// by its CAS or, for a slot's owner, by its claim store, and has not yet moved it on), so sharing
// a `Handover` between threads shares no concurrent access to the `T` inside; moving a `T` in
// from one thread and out on another needs `T: Send`.
unsafe impl<T: Send> Sync for Handover<T> {}

/// How many tallies each slot carries: counters for the host's statistics (a take or a park
/// that the host counts adds one to the tally it names; [`HotSlots::tally_sum`] reads them).
pub(crate) const TALLIES: usize = 2;

/// One worker's slot: a state word and a cell, on a cache line of their own, with the host's
/// tallies for that worker.
#[repr(align(128))]
struct Slot<T> {
    cell: Handover<T>,
    /// Counters only the slot's owner writes: a take or a park asked to tally adds one to the
    /// tally it names (`Engine::claim_tallying`, `Engine::release`). Here because this is the
    /// one line the worker already writes on a hot cycle, and its address is already in hand.
    tallies: [AtomicU64; TALLIES],
}

impl<T> Handover<T> {
    pub(super) fn new() -> Self {
        Handover {
            state: AtomicUsize::new(EMPTY),
            value: UnsafeCell::new(None),
        }
    }

    /// The line's hand-over: moves `value` into an empty cell (`EMPTY → BUSY → FULL`), or hands
    /// it back if the cell is not empty (a waiter of an earlier turn at the same place has not
    /// taken its value yet). Every move is a CAS or made by the owner of `BUSY`, so any number
    /// of threads may offer and take at once.
    // With `event-listener-waiters` the line is event-listener's, and nothing offers or takes.
    #[cfg_attr(feature = "event-listener-waiters", allow(dead_code))]
    #[inline]
    pub(super) fn offer(&self, value: T) -> Result<(), T> {
        // Acquire: the last taker's read of the cell happens before our write.
        if self
            .state
            .compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: our CAS moved the state from EMPTY to BUSY: we own the cell until the store
        // below.
        self.value.with_mut(|cell| unsafe { *cell = Some(value) });
        // Release: publishes the cell's value to the taker's Acquire CAS.
        self.state.store(FULL, Ordering::Release);
        Ok(())
    }

    /// The line's take: the value if the cell is `FULL` (a `BUSY` one counts as empty).
    ///
    /// Acquire on the look, `AcqRel` on the CAS and Acquire on its failure, where a worker's slot
    /// needs only `Relaxed`, `Acquire` and `Relaxed`: a waiter that finds its cell empty (or
    /// being taken) pops the queue next, and must see what was pushed before the notification
    /// of whoever emptied it (a waiter of a later turn at the same place may take our value, and
    /// then ours is the item it would have found queued; race 9). Reading our `BUSY` or the
    /// `EMPTY` after it with Acquire orders that waiter after everything we saw before taking.
    #[cfg_attr(feature = "event-listener-waiters", allow(dead_code))]
    #[inline]
    pub(super) fn take(&self) -> Option<T> {
        self.take_with(Ordering::Acquire, Ordering::AcqRel, Ordering::Acquire)
    }

    /// Takes the value if the cell is `FULL`, with the orderings of the look before the CAS and
    /// of the CAS itself (see [`take`](Self::take) and `Slot::take`).
    #[inline]
    fn take_with(&self, look: Ordering, success: Ordering, failure: Ordering) -> Option<T> {
        // The look only spares the CAS on an empty cell; the CAS decides.
        if self.state.load(look) != FULL {
            return None;
        }
        // Acquire (in `success`): pairs with the put's or offer's Release, so its write of the
        // cell happens before our read.
        self.state
            .compare_exchange(FULL, BUSY, success, failure)
            .ok()?;
        // SAFETY: our CAS moved the state from FULL to BUSY, so we own the cell until our store
        // below, and the putter's write is visible (acquire above).
        let value = self.value.with_mut(|cell| unsafe { (*cell).take() });
        debug_assert!(value.is_some(), "a full slot holds a value");
        // Release: our read of the cell happens before the next put's write. A flusher may have
        // marked our BUSY as FLUSH meanwhile; overwriting the mark is right, since the value is
        // going to an acquirer, not staying parked.
        self.state.store(EMPTY, Ordering::Release);
        value
    }
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot {
            cell: Handover::new(),
            tallies: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Takes the value if the slot is `FULL` (a `BUSY` one counts as empty). Relaxed look and
    /// failure: an acquirer that finds its slot empty goes on to claim on the state word, which
    /// orders what it needs; Acquire on success pairs with the put's publishing CAS.
    #[inline]
    fn take(&self) -> Option<T> {
        self.cell
            .take_with(Ordering::Relaxed, Ordering::Acquire, Ordering::Relaxed)
    }

    /// The flusher's look at one slot, after its state change and fence: takes a `FULL` slot's
    /// value, marks a `BUSY` one so that a put under way does not publish. Never waits.
    fn flush(&self) -> Option<T> {
        // Relaxed: ordered after the caller's fence; each CAS below re-reads.
        let mut state = self.cell.state.load(Ordering::Relaxed);
        loop {
            let next = match state {
                FULL => BUSY,
                BUSY => FLUSH,
                _ => return None, // EMPTY, or already marked
            };
            // Acquire (when taking): pairs with the put's release CAS.
            match self.cell.state.compare_exchange(
                state,
                next,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) if state == BUSY => return None,
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        // SAFETY: our CAS moved the state from FULL to BUSY: we own the cell (as in `take`).
        let value = self.cell.value.with_mut(|cell| unsafe { (*cell).take() });
        // Release: as in `take`.
        self.cell.state.store(EMPTY, Ordering::Release);
        value
    }

    /// Adds `n` (wrapping) to tally `i` (none past [`TALLIES`]: it runs while the slot is
    /// `BUSY`, where a panic would strand the slot). Only the slot's owner calls it.
    #[inline]
    fn tally(&self, i: usize, n: u64) {
        let Some(tally) = self.tallies.get(i) else {
            return;
        };
        // Only this thread writes its slot's tallies while it owns the worker index (the next
        // owner of the index acquires our last store when it claims it), so a load and a store
        // lose nothing and need no locked instruction. Relaxed: readers only sum them.
        tally.store(
            tally.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Whether the slot holds (or is being given) a value: a snapshot, for statistics.
    fn is_full(&self) -> bool {
        // Relaxed: a snapshot.
        self.cell.state.load(Ordering::Relaxed) == FULL
    }
}

impl<T> Slot<T> {
    /// Parks `value` in the slot at `this` if the slot is empty and, after the handshake's fence,
    /// the state word at `pool_state` still allows it ([`may_park`]); otherwise hands it back.
    /// A park adds one to tally `tally`, if given (before it publishes: after, it may not touch
    /// the slot).
    /// Raw pointers, not references: a reference argument would assert that the memory stays
    /// valid until the call returns, and it may not (below).
    ///
    /// # Safety
    ///
    /// `this` must point to a live slot at the call, and the memory must stay live for as long
    /// as the caller owns `value`: the caller's `value` is what keeps the slot's pool alive.
    /// After the successful publishing CAS the slot is not touched again, because whoever takes
    /// the value may free the pool at once.
    #[inline]
    unsafe fn put(
        this: *const Self,
        value: T,
        pool_state: *const StateWord,
        tally: Option<usize>,
    ) -> Result<(), T> {
        // SAFETY: live while we own `value` (the caller's contract); we own it until the CAS
        // that publishes it succeeds, and the reference is not used after that CAS.
        let state = unsafe { &(*this).cell.state };
        // Acquire: the last taker's read of the cell happens before our write.
        if state.load(Ordering::Acquire) != EMPTY {
            return Err(value);
        }
        // A store, not a CAS: only the slot's owner (the one thread with this worker index)
        // moves it out of EMPTY; takes and flushes start from FULL or BUSY. Relaxed: the fence
        // below orders it before our re-check.
        state.store(BUSY, Ordering::Relaxed);
        // SeqCst: the releaser's side of the handshake: our claim of the slot, then the re-check
        // (module docs).
        fence(Ordering::SeqCst);
        // SAFETY: the pool, which holds the state word, is live while we own `value`.
        if !may_park(unsafe { &*pool_state }) {
            // Release: nothing was written; a flusher's FLUSH mark is cleared with the claim.
            state.store(EMPTY, Ordering::Release);
            return Err(value);
        }
        // SAFETY: our claim store moved the state from EMPTY to BUSY (only we move this slot out
        // of EMPTY): we own the cell, and the slot is live (we still own `value`). The cell is
        // `None` in EMPTY (every take and flush leaves it so), so writing without dropping the
        // old value loses nothing, and keeps a drop call (never made) off the release's path.
        unsafe { &(*this).cell.value }.with_mut(|cell| unsafe { cell.write(Some(value)) });
        // SAFETY: the slot is live (we still own `value`), and we are its owner.
        let slot = unsafe { &*this };
        if let Some(i) = tally {
            slot.tally(i, 1);
        }
        // Release: publishes the cell's value to the next taker. Fails only if a flusher marked
        // the slot FLUSH: then the value must not stay parked. (The CAS's own `&self` outlives the
        // moment another thread may free the slot, exactly as in `Arc`'s drop: sound for atomics.)
        match state.compare_exchange(BUSY, FULL, Ordering::Release, Ordering::Relaxed) {
            // From here on the slot and its pool may be gone: touch nothing.
            Ok(_) => Ok(()),
            Err(_) => {
                // Not parked after all: take the tally back.
                if let Some(i) = tally {
                    slot.tally(i, u64::MAX);
                }
                // SAFETY: a FLUSH mark leaves the cell ours (nobody takes from a marked slot),
                // and the slot is live: the value inside keeps the pool alive.
                let value = unsafe { &(*this).cell.value }
                    .with_mut(|cell| unsafe { (*cell).take() })
                    .expect("our value is still in the slot");
                // Release: as in `take`.
                state.store(EMPTY, Ordering::Release);
                Err(value)
            }
        }
    }
}

/// The hot slots of one engine: a power-of-two number of slots, indexed by the thread's worker
/// index. Zero slots turn the feature off (keyed pools, and `PoolOptions::worker_slots(0)`).
pub(crate) struct HotSlots<H: Host> {
    /// `slots.len() - 1`; the slots' count is a power of two (or zero).
    mask: usize,
    slots: Box<[Slot<Parked<H>>]>,
}

/// Whether a released resource may stay out of the queue: nobody waits, the pool is open and
/// within its bound.
#[inline]
fn may_park(state: &StateWord) -> bool {
    let s = state.peek();
    s.waiters() == 0 && !s.is_closed() && s.size() <= state.max()
}

impl<H: Host> HotSlots<H> {
    /// `n` slots, rounded up to a power of two; none for `n == 0` (no allocation then).
    pub(crate) fn new(n: usize) -> Self {
        let n = if n == 0 { 0 } else { n.next_power_of_two() };
        HotSlots {
            mask: n.wrapping_sub(1),
            slots: (0..n).map(|_| Slot::new()).collect(),
        }
    }

    /// Whether there are any slots.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        !self.slots.is_empty()
    }

    /// This thread's slot: the one at its worker index. A thread whose index is past the last
    /// slot has none (it releases through the queue): a slot has exactly one owner, which is what
    /// lets a put claim it with a plain store.
    #[inline]
    fn own(&self) -> Option<&Slot<Parked<H>>> {
        worker_index().and_then(|i| self.slots.get(i))
    }

    /// [`own`](Self::own) for a release: only if this thread has claimed its worker index
    /// already. Claiming is a call, and a call anywhere on the release's path makes it save
    /// registers on every release (measured: `benches/RESULTS.md`, "The release without a call
    /// on its path"). A thread's first release before any acquire goes through the queue, and
    /// counting that return claims the index.
    #[inline]
    fn own_if_claimed(&self) -> Option<&Slot<Parked<H>>> {
        worker_index_if_claimed().and_then(|i| self.slots.get(i))
    }

    /// Parks an item and its unit in this thread's slot of `unit`'s pool, if that pool has hot
    /// slots, nobody waits, and the pool is open and within its bound (before and after the
    /// handshake's fence); otherwise (or if the slot is occupied or busy) hands them back. A
    /// park adds one to the slot's tally `tally`, if given.
    #[inline]
    pub(super) fn park(
        item: H::Item,
        unit: CapacityGuard<H>,
        tally: Option<usize>,
    ) -> Result<(), Parked<H>> {
        let (slot, state): (*const Slot<Parked<H>>, *const StateWord) = {
            // A borrow of the pool through `unit`, ended before `unit` moves.
            let host = &**unit.host();
            let Some(hot) = host.hot() else {
                return Err((item, unit));
            };
            let state = host.engine().state_word();
            // The first look needs no fence: it only spares the slot when a waiter is visible.
            if !may_park(state) {
                return Err((item, unit));
            }
            let Some(slot) = hot.own_if_claimed() else {
                return Err((item, unit));
            };
            (slot, state)
        };
        // SAFETY: both pointers point into the pool `unit` holds a reference to, so they stay
        // valid while we own `unit`; `Slot::put` gives it up only in its publishing CAS and then
        // touches neither.
        unsafe { Slot::put(slot, (item, unit), state, tally) }
    }

    /// Takes what this thread's slot holds, adding one to the slot's tally `tally` if given.
    #[inline]
    pub(super) fn take_own(&self, tally: Option<usize>) -> Option<Parked<H>> {
        let slot = self.own()?;
        let parked = slot.take()?;
        if let Some(i) = tally {
            slot.tally(i, 1);
        }
        Some(parked)
    }

    /// Takes from another thread's slot (the caller already looked in its own), starting after
    /// its own, but only if nobody waits in `s`, the state word as the caller last read it: a
    /// resource parked on another worker may be taken ahead of the line only when there is no
    /// line (while anyone waits, the slots are flushed to it; DESIGN.md §8).
    // Out of line: its callers (a claim, a join) are on the wait path, and inlined it cost the
    // wait cycle 5 instructions more (callgrind, `benches/perf-guard.sh`).
    #[inline(never)]
    pub(super) fn take_any(&self, s: State) -> Option<Parked<H>> {
        if s.waiters() > 0 {
            return None;
        }
        // A thread without a slot of its own looks at all of them.
        let (own, first) = match worker_index() {
            Some(i) if i < self.slots.len() => (i, 1),
            _ => (0, 0),
        };
        (first..self.slots.len()).find_map(|k| self.slots[(own + k) & self.mask].take())
    }

    /// The flusher's side of the handshake: the caller changed the state word; fence, then take
    /// from every full slot (and mark every busy one) and call `each` on what it held.
    pub(super) fn flush(&self, mut each: impl FnMut(Parked<H>)) {
        // SeqCst: pairs with the fence in each put (store buffering, module docs).
        fence(Ordering::SeqCst);
        for slot in self.slots.iter() {
            if let Some(parked) = slot.flush() {
                each(parked);
            }
        }
    }

    /// Takes from every full slot, without the handshake (maintenance: a resource parked a
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

    /// Tally `i` summed over the slots (a snapshot; wrapping, like the counts it adds to).
    pub(crate) fn tally_sum(&self, i: usize) -> u64 {
        self.slots.iter().fold(0u64, |sum, slot| {
            // Relaxed: a snapshot for statistics.
            sum.wrapping_add(slot.tallies[i].load(Ordering::Relaxed))
        })
    }
}
