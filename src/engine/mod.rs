//! The engine: the synchronous, loom-checked core of a pool.
//!
//! It knows nothing of resources, managers, hooks, clocks or tokio. It moves *units of capacity*
//! and opaque queued *items* between four places: the packed state word (`state.rs`), the idle
//! queue, the waiter line (`line.rs`) and the reservations handed to waiters (`handoff.rs`). The
//! pool above it implements [`Host`], the one kind of call the engine makes upwards: destroy an
//! item it cannot keep (drained from a closed pool, or retired by a shrink).
//!
//! | file | type | what it does |
//! |---|---|---|
//! | `state.rs` | `StateWord`, `State` | the packed word and every transition on it |
//! | `line.rs` | `Line`, `Place` | the FIFO of parked acquirers, two lock round trips per wait, and the item handed over with a notification (race 9) |
//! | `handoff.rs` | `Handoff` | the line plus item and slot reservations; `hand_off` (race 3) |
//! | `waiter.rs` | `Waiter`, `Reservation` | join the line, register, park, leave (races 2, 4, 5) |
//! | `guard.rs` | `CapacityGuard` | owns one unit; its drop returns it |
//! | `hot.rs` | `HotSlots`, `Handover` | one slot per worker in front of the queue, and its handshake (race 8); the one-value cell a slot and a place in line share |
//! | `core.rs` | `Engine`, `Claim` | claim, release, return a unit, resize, close, drain |
//! | `loom/` | facade | std or loom atomics, mutex, queue and event, one API |
//!
//! # How it works
//!
//! The algorithm is *handoff reservations on one packed state word*:
//!
//! * **Claim, then pop.** An acquirer first takes a count with a CAS (`avail - 1`, or `size + 1` to
//!   create), and only then pops. Every queued item is covered by exactly one claim or
//!   reservation, so a pop after a successful claim always finds an item (unless the pool closed
//!   and a drainer took it).
//! * **Fairness.** A release that sees waiters does not publish its item: it notifies the oldest
//!   waiter and hands the item over in the notification, into the cell of that waiter's place
//!   (or, if the cell is still full, leaves it in the queue unpublished, for the waiter to pop).
//!   Freed capacity is handed over the same way, as a counted slot. Nothing owed to a waiter is
//!   ever published or freed, so a fresh acquire, which claims only what is published or room
//!   below `max`, never overtakes a parked waiter.
//! * **Release is synchronous**: push, then one CAS to publish when nobody waits. No lock, no
//!   allocation, no spawn.
//! * **Hot slots** (`hot.rs`): while nobody waits, a release parks its item, with its unit and pool
//!   reference, in its worker's slot, and the next acquire on that worker takes it back, without
//!   touching the word, the queue or the reference count. A waiter's registration (and close, and
//!   a shrink) flushes the slots into the queue through the release path (race 8), so nothing
//!   owed to a waiter stays parked. `hot.rs` is the crate's one module with `unsafe` code: the
//!   slot's cell, which the line's hand-over cell reuses.
//! * **Close** sets the closed bit and zeroes `avail` with one RMW. From then on every queued item
//!   and every slot reservation belongs to whoever drains it. Anybody who deposits something
//!   performs an RMW on the state word afterwards and drains if it sees the bit: the two RMWs are
//!   totally ordered, so either the depositor sees `closed`, or the closer's drain sees the
//!   deposit. Nothing is ever stranded in a closed pool.
//!
//! DESIGN.md draws the module graph (§1), numbers the races R1–R9 this handles (§7), argues
//! every ordering (§10) and lists the loom models in `loom-tests/` that check them (§13).

mod core;
mod guard;
mod handoff;
#[allow(unsafe_code)] // The crate's one unsafe module: see its docs.
mod hot;
mod line;
pub(crate) mod loom;
mod state;
mod waiter;

pub(crate) use self::core::{Claim, Engine};
pub(crate) use self::guard::CapacityGuard;
pub(crate) use self::hot::{HotSlots, TALLIES};
pub(crate) use self::state::{State, MAX_SIZE, MAX_WAITERS};
pub(crate) use self::waiter::{CreatorJoined, Joined, Reservation, Waiter};

use self::loom::Arc;

/// What the engine needs from the pool that embeds it.
pub(crate) trait Host: Send + Sync + Sized + 'static {
    /// What the idle queue holds.
    type Item: Send + 'static;

    /// The pool's engine.
    fn engine(&self) -> &Engine<Self::Item>;

    /// The pool's per-worker hot slots, if it has any.
    #[inline]
    fn hot(&self) -> Option<&HotSlots<Self>> {
        None
    }

    /// Counts, where the host counts threads without a hot slot, a release that was to add one
    /// to tally `tally` of this worker's slot but did not park ([`Engine::release`]).
    #[inline]
    fn tally_unparked(&self, tally: usize) {
        let _ = tally;
    }

    /// Destroys an item drained from a closed pool. `unit` holds the item's unit of capacity
    /// and must be dropped once the teardown is finished.
    fn destroy_drained(self: &Arc<Self>, item: Self::Item, unit: CapacityGuard<Self>);

    /// Destroys an item retired because `size` was above a lowered `max`. Its unit was already
    /// freed (retiring and freeing are one CAS, so two retirements never both act on one excess
    /// unit): the teardown holds no capacity.
    fn retire(self: &Arc<Self>, item: Self::Item);
}
