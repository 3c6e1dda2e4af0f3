//! The packed state word: size, idle-available count, counted waiters and the closed bit, and
//! every transition on it. No other file does bit arithmetic on the word or runs a CAS loop on it.
//!
//! All four fields live in one `AtomicU64` so that one compare-and-swap sees and changes them
//! together. That is what closes the classic lost-wakeup window (hazard H3 in DESIGN.md): a task
//! that decides to park after seeing "nothing idle, no room to create" registers with a CAS on the
//! exact word it inspected, so any release, capacity return or close in between makes that CAS
//! fail and the task looks again.
//!
//! ```text
//!  63   62 ............ 42   41 ............ 22   21 ............ 0
//! [closed][    size (20)   ][    avail (20)    ][   waiters (22)  ]
//! ```
//!
//! * `size`: units of capacity in use: resources alive (idle, checked out, being checked or torn
//!   down), creates in flight, and capacity reservations handed to waiters. Never above `max`.
//! * `avail`: idle resources in the queue that anyone may claim. The queue can hold more items
//!   than `avail`: the rest are reserved for notified waiters (`handoff.rs`).
//! * `waiters`: tasks registered as waiting and not yet served or cancelled.
//! * `closed`: set once by close, never cleared.
//!
//! Beside the word sits `max`, the bound on `size`, which `set_max` changes at run time (the word
//! has no room for it). Every read of `max` is `Relaxed`, and what makes a read fresh enough is its
//! place relative to an RMW on the word (see [`StateWord::set_max`]): a resizer stores `max` and
//! then performs an RMW on the word; a release or a registering waiter reads `max` after its own
//! RMW. The two RMWs are totally ordered, so either the resizer's RMW sees the release's publish
//! (or the waiter's registration) and acts on it, or the later RMW acquires the resizer's store
//! and the read after it sees the new bound. A read *before* a CAS (the grow bound) may be stale:
//! a grow racing a shrink can land one unit above the new bound, and that unit is retired when its
//! resource comes back (DESIGN.md §7, race R7).
//!
//! Arrivals grow below a second bound, [`StateWord::arrival_bound`]: `max`, except while a raise
//! hands its room to the waiters counted before it, when it is still the old bound, so that an
//! acquire arriving during the raise registers behind them instead of taking their room.
//!
//! Orderings: every successful transition is `AcqRel`, because each one both consumes and
//! publishes: a claim must acquire the push that a publish released, a publish must release its
//! push, a grow pairs with the free of the unit's previous owner, and close synchronises with every
//! earlier depositor (DESIGN.md §10). A failed CAS is `Relaxed` and only refreshes the
//! snapshot the loop decides from. CASes are weak: each sits in a retry loop.

use super::loom::{wait_until, AtomicU64, AtomicUsize, Event, Ordering};
use crossbeam_utils::CachePadded;

/// Largest `max_connections` the word can count.
pub(crate) const MAX_SIZE: usize = (1 << 20) - 1;
/// Largest number of tasks that can be counted as waiting at once.
pub(crate) const MAX_WAITERS: usize = (1 << 22) - 1;

const WAITERS_SHIFT: u32 = 0;
const AVAIL_SHIFT: u32 = 22;
const SIZE_SHIFT: u32 = 42;

const WAITER: u64 = 1 << WAITERS_SHIFT;
const AVAIL: u64 = 1 << AVAIL_SHIFT;
const SIZE: u64 = 1 << SIZE_SHIFT;
const CLOSED: u64 = 1 << 63;

const WAITERS_MASK: u64 = (MAX_WAITERS as u64) << WAITERS_SHIFT;
const AVAIL_MASK: u64 = (MAX_SIZE as u64) << AVAIL_SHIFT;
const SIZE_MASK: u64 = (MAX_SIZE as u64) << SIZE_SHIFT;

/// A decoded snapshot of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct State(u64);

impl State {
    /// Tasks counted as waiting.
    #[inline]
    pub(crate) fn waiters(self) -> usize {
        ((self.0 & WAITERS_MASK) >> WAITERS_SHIFT) as usize
    }

    /// Idle resources anyone may claim.
    #[inline]
    pub(crate) fn avail(self) -> usize {
        ((self.0 & AVAIL_MASK) >> AVAIL_SHIFT) as usize
    }

    /// Units of capacity in use.
    #[inline]
    pub(crate) fn size(self) -> usize {
        ((self.0 & SIZE_MASK) >> SIZE_SHIFT) as usize
    }

    /// Whether the pool is closed.
    #[inline]
    pub(crate) fn is_closed(self) -> bool {
        self.0 & CLOSED != 0
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("closed", &self.is_closed())
            .field("size", &self.size())
            .field("avail", &self.avail())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// What a claim took.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Claimed {
    /// One `avail` count: the caller pops one item (claim, then pop).
    Item,
    /// One unit of capacity (`size + 1`).
    Unit,
    /// Nothing to take now.
    Nothing,
    /// The pool is closed.
    Closed,
}

/// What an arrival that found nothing did on its way into the line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Turn {
    /// Claimed an item that was published meanwhile.
    Item,
    /// Claimed a unit of capacity that was freed meanwhile.
    Unit,
    /// Counted as a waiter.
    Registered,
    /// Counted as a waiter, but `max` was raised past `size` meanwhile: the caller grows one
    /// unit for the line, so the room a resize made cannot sit unused beside a parked waiter.
    RegisteredWithRoom,
    /// The waiter count is full; the caller retries later.
    Saturated,
    /// The caller's limit on waiters is reached; it gives up.
    Full,
    /// The pool is closed.
    Closed,
}

/// What a creator (an acquire holding a unit it creates with) did on its way into the line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CreatorTurn {
    /// An item was published before it got in line: it claimed the item and freed its unit in the
    /// same CAS.
    SwappedForItem,
    /// Counted as a waiter, still holding its unit.
    Registered,
    /// The waiter count is full: it creates without being counted.
    Saturated,
    /// The pool is closed.
    Closed,
}

/// What publishing a pushed item did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Publish {
    /// `avail + 1`: anyone may claim it.
    Published,
    /// Published, but `size` is above a `max` lowered meanwhile: the caller retires idle items
    /// until the bound holds.
    OverMax,
    /// Somebody waits: the item stays unpublished, and the caller hands it to the oldest waiter.
    ForWaiter,
    /// Somebody waits, but `size` is above a lowered `max`: the item stays unpublished, and the
    /// caller pops one item back and retires it (a waiter is served only within the bound).
    Retire,
    /// The pool is closed: the caller drains.
    Closed,
}

/// What giving back a unit of capacity did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Free {
    /// `size - 1`.
    Freed,
    /// Somebody waits: the unit stays counted, and the caller hands it to the oldest waiter.
    ForWaiter,
}

/// The state word, the bound on `size`, and the event that wakes `close()` when a closed pool's
/// last unit is freed.
pub(crate) struct StateWord {
    /// The packed word, on its own cache line: it is the hot contended word.
    word: CachePadded<AtomicU64>,
    /// The bound on `size` (`1 ..= MAX_SIZE`). Read-mostly: written only by `set_max`, so it
    /// shares no line with the word that every claim writes.
    max: AtomicUsize,
    /// The bound an *arrival* may grow below (an acquire joining, maintenance's warm-up): `max`,
    /// except while a raise is under way, when it stays at the old bound until the resizer has
    /// handed the new room to the waiters counted before it (`open_to_arrivals`), so that no
    /// arrival takes room ahead of them (DESIGN.md §7). Read through
    /// [`arrival_bound`](Self::arrival_bound), never above `max`.
    arrival_max: AtomicUsize,
    /// Notified when the `size` of a closed pool reaches zero.
    drained: Event,
}

impl StateWord {
    pub(crate) fn new(max: usize) -> Self {
        StateWord {
            word: CachePadded::new(AtomicU64::new(0)),
            max: AtomicUsize::new(max),
            arrival_max: AtomicUsize::new(max),
            drained: Event::new(),
        }
    }

    /// The bound on `size`. Relaxed: see the module docs for when a read is fresh.
    #[inline]
    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// The bound an arrival grows below: `max`, or the old bound while a raise is handing its
    /// room to the line. Relaxed, as [`max`](Self::max): an arrival that reads the old bound
    /// registers as a waiter, and a registration checks `max` itself (race 7).
    #[inline]
    pub(crate) fn arrival_bound(&self) -> usize {
        self.arrival_max.load(Ordering::Relaxed).min(self.max())
    }

    /// Sets the bound on `size` to `max` and returns the old bound with the state after the
    /// store. The store is Relaxed and is followed by an AcqRel RMW on the word: its release half
    /// publishes the store to every later RMW on the word, and its acquire half sees every earlier
    /// publish and registration (the module docs give the argument). A lower bound applies to
    /// arrivals at once; a higher one only at [`open_to_arrivals`](Self::open_to_arrivals).
    /// The caller runs one resize at a time (`Engine::resize`).
    pub(crate) fn set_max(&self, max: usize) -> (usize, State) {
        // Relaxed, like `max`: a stale read only makes an arrival register (raise) or grow
        // once above a lowered bound (race 7, as for `max`). Resizes are serialised, so
        // before a raise `arrival_max == max`, and this leaves it at the old bound.
        self.arrival_max.fetch_min(max, Ordering::Relaxed);
        let old = self.max.swap(max, Ordering::Relaxed);
        let s = State(self.word.fetch_add(0, Ordering::AcqRel));
        (old, s)
    }

    /// Ends a raise to `max`: arrivals may now grow below it (the resizer has handed the room
    /// the waiters before it needed). Relaxed: an arrival that still reads the old bound
    /// registers, and sees the room from there (race 7).
    pub(crate) fn open_to_arrivals(&self, max: usize) {
        self.arrival_max.store(max, Ordering::Relaxed);
    }

    /// Resolves once the pool is closed and every unit of capacity has been freed.
    pub(crate) async fn drained(&self) {
        wait_until(&self.drained, || {
            let s = self.load();
            s.is_closed() && s.size() == 0
        })
        .await;
    }

    /// After `size` went down by one from `before`: the last unit of a closed pool wakes
    /// `close()`. notify emits a SeqCst fence first.
    #[inline]
    fn freed(&self, before: State) {
        if before.is_closed() && before.size() == 1 {
            self.drained.notify_all();
        }
    }

    /// A snapshot. Acquire: callers that act on `closed` or on counts re-confirm with a CAS; the
    /// acquire pairs with the release half of the RMW that set the closed bit, so a task that sees
    /// `closed` also sees what the closer did before.
    #[inline]
    pub(crate) fn load(&self) -> State {
        State(self.word.load(Ordering::Acquire))
    }

    /// A snapshot for a decision a fence makes safe (the hot slots' handshake), or a hint.
    /// Relaxed: the fence orders it.
    #[inline]
    pub(crate) fn peek(&self) -> State {
        State(self.word.load(Ordering::Relaxed))
    }

    /// A snapshot that only seeds a CAS loop. Relaxed: the CAS re-reads and decides.
    #[inline]
    fn hint(&self) -> State {
        State(self.word.load(Ordering::Relaxed))
    }

    /// One weak CAS from the snapshot `s` to `new`; on failure `s` becomes the value found.
    /// `AcqRel`/`Relaxed`: see the module docs.
    #[inline]
    fn cas(&self, new: u64, s: &mut State) -> bool {
        match self
            .word
            .compare_exchange_weak(s.0, new, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(actual) => {
                *s = State(actual);
                false
            }
        }
    }

    /// Claims an available item, else (with `grow`) one unit of capacity while `size` is below
    /// the arrivals' bound ([`arrival_bound`](Self::arrival_bound)).
    ///
    /// It does not look at `waiters`, and needs not to for fairness: nothing owed to a waiter is
    /// ever claimable. A release that sees a waiter reserves its item instead of publishing it,
    /// and a unit returned while someone waits is handed over instead of freed, so while an
    /// unnotified waiter is counted `avail == 0` and `size == max` (DESIGN.md §8 gives the
    /// argument and its two transient exceptions). Counted creators, which are not owed
    /// anything, therefore no longer send every arrival down the slow path.
    #[inline]
    pub(crate) fn claim(&self, grow: bool) -> Claimed {
        // A stale bound only lets a grow racing a shrink land above it (module docs).
        let grow_below = if grow { self.arrival_bound() } else { 0 };
        self.claim_loop(true, grow_below)
    }

    /// [`claim`](Self::claim) on the line's behalf (a resize handing its room to waiters, a
    /// hand-off taking back what it published): grows below `max` itself, not the arrivals'
    /// bound, which a raise holds back for exactly these claims.
    #[inline]
    pub(crate) fn claim_for_line(&self) -> Claimed {
        self.claim_loop(true, self.max())
    }

    /// Claims one unit of capacity while `size < below` and `size` is below the arrivals' bound,
    /// never an item (maintenance warm-up).
    pub(crate) fn grow(&self, below: usize) -> bool {
        self.claim_loop(false, below.min(self.arrival_bound())) == Claimed::Unit
    }

    #[inline]
    fn claim_loop(&self, items: bool, grow_below: usize) -> Claimed {
        let mut s = self.hint();
        loop {
            if s.is_closed() {
                return Claimed::Closed;
            }
            if items && s.avail() > 0 {
                // Claim one published item; the caller then pops it.
                if self.cas(s.0 - AVAIL, &mut s) {
                    return Claimed::Item;
                }
            } else if s.size() < grow_below {
                // Grow by one unit; never above the bound, because the CAS checked it.
                if self.cas(s.0 + SIZE, &mut s) {
                    return Claimed::Unit;
                }
            } else {
                return Claimed::Nothing;
            }
        }
    }

    /// The waiter's loop (races 2 and 3 in DESIGN.md): claim `avail`, else grow below the
    /// arrivals' bound, else register (`waiters + 1`) with a CAS on the exact word inspected,
    /// unless `waiter_limit` waiters are counted already (during a raise an arrival may be
    /// refused so while the raise's room is still going to the line). The caller inserted (and
    /// counted) its place in line first, which race 3 relies on.
    #[inline]
    pub(crate) fn claim_or_register(&self, waiter_limit: usize) -> Turn {
        let mut s = self.hint();
        loop {
            if s.is_closed() {
                return Turn::Closed;
            }
            if s.avail() > 0 {
                if self.cas(s.0 - AVAIL, &mut s) {
                    return Turn::Item;
                }
            } else if s.size() < self.arrival_bound() {
                if self.cas(s.0 + SIZE, &mut s) {
                    return Turn::Unit;
                }
            } else if s.waiters() >= MAX_WAITERS {
                return Turn::Saturated;
            } else if s.waiters() >= waiter_limit {
                return Turn::Full;
            } else {
                // Race 2: a release that sees us counted notifies a line that already holds our
                // place; a release that lands first changes the word and this CAS fails.
                if self.cas(s.0 + WAITER, &mut s) {
                    // Race 7: a resize that raised `max` before our CAS is seen here (our RMW
                    // acquired its store); one that comes after sees us counted.
                    if s.size() < self.max() {
                        return Turn::RegisteredWithRoom;
                    }
                    return Turn::Registered;
                }
            }
        }
    }

    /// A creator joins the count of waiters while it creates, so a release hands it a resource if
    /// it is the oldest. If an item was published (and nobody waits) since its grow, it claims the
    /// item and frees its unit in one CAS instead.
    pub(crate) fn register_creator(&self) -> CreatorTurn {
        let mut s = self.hint();
        loop {
            if s.is_closed() {
                return CreatorTurn::Closed;
            }
            if s.waiters() == 0 && s.avail() > 0 {
                if self.cas(s.0 - AVAIL - SIZE, &mut s) {
                    return CreatorTurn::SwappedForItem;
                }
            } else if s.waiters() >= MAX_WAITERS {
                return CreatorTurn::Saturated;
            } else if self.cas(s.0 + WAITER, &mut s) {
                return CreatorTurn::Registered;
            }
        }
    }

    /// A counted waiter leaves (served or cancelled). Returns the state before. AcqRel: a release
    /// that no longer sees it counted publishes instead of handing off.
    #[inline]
    pub(crate) fn unregister(&self) -> State {
        let before = State(self.word.fetch_sub(WAITER, Ordering::AcqRel));
        debug_assert!(before.waiters() > 0, "waiter count underflow");
        before
    }

    /// After pushing an item: `avail + 1` if nobody waits.
    #[inline]
    pub(crate) fn publish(&self) -> Publish {
        let mut s = self.hint();
        loop {
            if s.is_closed() {
                return Publish::Closed;
            }
            if s.waiters() > 0 {
                if s.size() > self.max() {
                    return Publish::Retire;
                }
                return Publish::ForWaiter;
            }
            if self.cas(s.0 + AVAIL, &mut s) {
                // Race 7: a shrink whose RMW came before our CAS is seen here; one that comes
                // after sees our item published and retires it.
                if s.size() > self.max() {
                    return Publish::OverMax;
                }
                return Publish::Published;
            }
        }
    }

    /// Publishes a queued item whether or not anyone waits (a reservation nobody will take).
    /// Returns the state before; a closed pool is left alone.
    pub(crate) fn publish_excess(&self) -> State {
        let mut s = self.hint();
        loop {
            if s.is_closed() || self.cas(s.0 + AVAIL, &mut s) {
                return s;
            }
        }
    }

    /// Gives back one unit of capacity, unless somebody waits for it and `size` is within `max`
    /// (a unit above a lowered bound is retired, not handed on).
    #[inline]
    pub(crate) fn free(&self) -> Free {
        let mut s = self.hint();
        loop {
            if s.waiters() > 0 && !s.is_closed() && s.size() <= self.max() {
                return Free::ForWaiter;
            }
            debug_assert!(s.size() > 0, "size underflow");
            // Fails if a waiter registered meanwhile (it saw size == max); we then hand it over.
            if self.cas(s.0 - SIZE, &mut s) {
                self.freed(s);
                return Free::Freed;
            }
        }
    }

    /// Frees one unit of capacity if `size` is above `max` (a retirement after a shrink);
    /// `false`, changing nothing, if it is within the bound.
    pub(crate) fn free_over_max(&self) -> bool {
        let mut s = self.hint();
        loop {
            if s.size() <= self.max() {
                return false;
            }
            if self.cas(s.0 - SIZE, &mut s) {
                self.freed(s);
                return true;
            }
        }
    }

    /// Gives back one unit of capacity unconditionally (a slot reservation nobody will take).
    /// Returns the state before.
    pub(crate) fn free_excess(&self) -> State {
        let before = State(self.word.fetch_sub(SIZE, Ordering::AcqRel));
        self.freed(before);
        before
    }

    /// An RMW that changes nothing: orders a deposit (a handed-off reservation) against a
    /// concurrent close. Either it reads `closed`, or close's RMW comes later in the word's
    /// modification order and the closer's drain sees the deposit.
    #[inline]
    pub(crate) fn sync_with_close(&self) -> State {
        State(self.word.fetch_add(0, Ordering::AcqRel))
    }

    /// Sets the closed bit and takes `avail` to zero in one RMW: idle items now belong to whoever
    /// drains. Returns whether this call closed it, and the state before.
    pub(crate) fn close(&self) -> (bool, State) {
        let mut s = self.hint();
        loop {
            if s.is_closed() {
                return (false, s);
            }
            if self.cas((s.0 & !AVAIL_MASK) | CLOSED, &mut s) {
                if s.size() == 0 {
                    self.drained.notify_all();
                }
                return (true, s);
            }
        }
    }

    /// Closes the word only if nothing is alive or waiting (`size == 0`, `waiters == 0`), in one
    /// CAS: a keyed pool removes an empty key with it, and an acquire that registers or grows
    /// first makes the CAS fail, so a key in use is never removed under it. `true` if it closed.
    pub(crate) fn close_if_empty(&self) -> bool {
        let mut s = self.hint();
        loop {
            if s.is_closed() || s.size() != 0 || s.waiters() != 0 {
                return false;
            }
            // `cas` is AcqRel, like `close`: the claim or registration it beats sees `closed`.
            if self.cas(s.0 | CLOSED, &mut s) {
                self.drained.notify_all();
                return true;
            }
        }
    }
}

#[cfg(all(test, not(shadowcat_loom)))]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap() {
        let s = State(CLOSED + 3 * SIZE + 2 * AVAIL + 5 * WAITER);
        assert!(s.is_closed());
        assert_eq!((s.size(), s.avail(), s.waiters()), (3, 2, 5));
        let full = State(
            (MAX_SIZE as u64) * SIZE + (MAX_SIZE as u64) * AVAIL + (MAX_WAITERS as u64) * WAITER,
        );
        assert!(!full.is_closed());
        assert_eq!(
            (full.size(), full.avail(), full.waiters()),
            (MAX_SIZE, MAX_SIZE, MAX_WAITERS)
        );
    }

    #[test]
    fn transitions_move_the_right_fields() {
        let w = StateWord::new(2);
        assert_eq!(w.claim(true), Claimed::Unit);
        assert_eq!(w.claim(true), Claimed::Unit);
        assert_eq!(w.claim(true), Claimed::Nothing, "size is at the bound");
        assert_eq!(w.publish(), Publish::Published);
        assert_eq!(w.load().avail(), 1);
        assert_eq!(w.claim_or_register(MAX_WAITERS), Turn::Item);
        assert_eq!(w.claim_or_register(0), Turn::Full);
        assert_eq!(w.claim_or_register(MAX_WAITERS), Turn::Registered);
        assert_eq!(
            w.claim(true),
            Claimed::Nothing,
            "size is at the bound, and nothing is published while a waiter is counted"
        );
        assert_eq!(w.publish(), Publish::ForWaiter);
        assert_eq!(w.free(), Free::ForWaiter);
        assert_eq!(w.unregister().waiters(), 1);
        assert_eq!(w.free(), Free::Freed);
        assert_eq!(w.load().size(), 1);
        assert_eq!(w.publish_excess().avail(), 0);
        let (first, before) = w.close();
        assert!(first && before.avail() == 1);
        assert_eq!(w.load().avail(), 0);
        assert!(!w.close().0, "close is idempotent");
        assert_eq!(w.claim(true), Claimed::Closed);
    }

    #[test]
    fn a_counted_creator_does_not_stop_arrivals() {
        let w = StateWord::new(3);
        assert_eq!(w.claim(true), Claimed::Unit);
        // The unit's holder creates in line: counted, but owed nothing.
        assert_eq!(w.register_creator(), CreatorTurn::Registered);
        assert_eq!(
            w.claim(true),
            Claimed::Unit,
            "the room below max is anyone's"
        );
        assert_eq!(w.claim(true), Claimed::Unit);
        assert_eq!(w.claim(true), Claimed::Nothing);
        // A release now goes to the creator, not to the idle set.
        assert_eq!(w.publish(), Publish::ForWaiter);
        assert_eq!(w.claim(false), Claimed::Nothing);
    }

    #[test]
    fn the_bound_moves() {
        let w = StateWord::new(1);
        assert_eq!(w.claim(true), Claimed::Unit);
        assert_eq!(w.claim_or_register(MAX_WAITERS), Turn::Registered);
        assert_eq!(w.set_max(3), (1, w.load()));
        // Until the raise opens to arrivals, its room is the line's: arrivals register.
        assert!(!w.grow(5), "an arrival grew into a raise's room");
        assert_eq!(w.claim(true), Claimed::Nothing);
        assert_eq!(w.claim_or_register(MAX_WAITERS), Turn::RegisteredWithRoom);
        assert_eq!(
            w.claim_for_line(),
            Claimed::Unit,
            "the line's claim sees the room"
        );
        assert_eq!(w.unregister().waiters(), 2);
        assert_eq!(w.free_excess().size(), 2); // that waiter left: its unit goes back
        w.open_to_arrivals(3);
        assert!(w.grow(5), "grow is bounded by the raised max");
        assert_eq!(w.load().size(), 2);
        assert_eq!(w.unregister().waiters(), 1);
        assert_eq!(w.set_max(1).0, 3);
        assert!(!w.grow(5), "grow is bounded by the lowered max");
        assert_eq!(w.claim_or_register(MAX_WAITERS), Turn::Registered);
        assert_eq!(
            w.free(),
            Free::Freed,
            "a unit above the bound is not handed on"
        );
        assert_eq!(
            w.free(),
            Free::ForWaiter,
            "within the bound a waiter gets it"
        );
        assert_eq!(w.publish(), Publish::ForWaiter);
        assert_eq!(w.unregister().waiters(), 1);
        assert_eq!(w.publish(), Publish::Published);
        assert_eq!(w.set_max(0).1.avail(), 1);
        assert_eq!(w.publish(), Publish::OverMax);
    }
}
