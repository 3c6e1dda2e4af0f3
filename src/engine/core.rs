//! [`Engine`]: the state word, the idle queue and the handoff, and the synchronous paths that move
//! capacity between them: claim, release, return a unit, close and drain.

use super::guard::CapacityGuard;
use super::handoff::{Handed, Handoff};
use super::hot::HotSlots;
use super::loom::{Arc, Mutex, Queue};
use super::state::{Claimed, Free, Publish, State, StateWord};
use super::Host;

/// What a fast-path claim produced.
pub(crate) enum Claim<H: Host> {
    /// An idle item, popped under a claim, with its unit.
    Idle(H::Item, CapacityGuard<H>),
    /// An idle item from this worker's own hot slot, with its unit, counted in the slot's tally
    /// that [`Engine::claim_tallying`] was given (the host takes the count back if it does not
    /// hand the item out after all). Only `claim_tallying` makes it; it is a variant here rather
    /// than a separate enum wrapping `Claim`, which measured 1.4 ns slower per hot cycle
    /// (`benches/RESULTS.md`, "Counts on the slot's line").
    Tallied(H::Item, CapacityGuard<H>),
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
    handoff: Handoff<I>,
    /// Idle items, plus items reserved for notified waiters. Its capacity is the ceiling on
    /// `max`, since `queued items <= size <= ceiling` always.
    queue: Queue<I>,
    /// Held through each [`resize`](Self::resize): one resize at a time, so a raise opens its
    /// room to arrivals only after its own hand-off, and never over a later resize's bound.
    /// Resizes are rare and never on a hot path.
    resizing: Mutex<()>,
}

impl<I: Send + 'static> Engine<I> {
    /// An empty engine bounded by `max` units, which [`resize`](Self::resize) may later move
    /// anywhere in `1 ..= ceiling` (`max <= ceiling <= MAX_SIZE`, checked by the builder).
    pub(crate) fn new(max: usize, ceiling: usize) -> Self {
        debug_assert!(0 < max && max <= ceiling);
        Engine {
            state: StateWord::new(max),
            handoff: Handoff::new(),
            queue: Queue::new(ceiling),
            resizing: Mutex::new(()),
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
        self.state.max()
    }

    /// The largest bound [`resize`](Self::resize) accepts.
    pub(crate) fn ceiling(&self) -> usize {
        self.queue.capacity()
    }

    #[inline]
    pub(super) fn state_word(&self) -> &StateWord {
        &self.state
    }

    #[inline]
    pub(super) fn handoff(&self) -> &Handoff<I> {
        &self.handoff
    }

    // ===== claiming =====

    /// The fast path: claim an idle item, or (with `create`) room to create one. Fair without
    /// looking at waiters, because nothing owed to a waiter is ever published or freed
    /// (`StateWord::claim`). Without `create` (for `try_acquire`) it never grows. With hot slots
    /// it first takes from this worker's slot, and before growing or giving up it looks in the
    /// other workers' slots (`hot.rs`).
    ///
    /// The look in this worker's slot is inlined into the caller (so the claimed item stays in
    /// registers instead of a round trip through a returned `Claim` in memory); the rest is not.
    #[inline(always)]
    pub(crate) fn claim<H: Host<Item = I>>(host: &Arc<H>, create: bool) -> Claim<H> {
        if let Some(hot) = host.hot() {
            if let Some((item, unit)) = hot.take_own(None) {
                return Claim::Idle(item, unit);
            }
        }
        Self::claim_beyond_own(host, create)
    }

    /// [`claim`](Self::claim) for a hand-out that the host counts: an item from this worker's
    /// own slot adds one to the slot's tally `tally` and comes back as [`Claim::Tallied`] (the
    /// host counts the others itself). The count then costs a load and a store on the line the
    /// take just wrote.
    #[inline]
    pub(crate) fn claim_tallying<H: Host<Item = I>>(
        host: &Arc<H>,
        create: bool,
        tally: usize,
    ) -> Claim<H> {
        if let Some(hot) = host.hot() {
            if let Some((item, unit)) = hot.take_own(Some(tally)) {
                return Claim::Tallied(item, unit);
            }
        }
        Self::claim_beyond_own(host, create)
    }

    /// [`claim`](Self::claim) after this worker's slot came up empty.
    #[inline(never)]
    fn claim_beyond_own<H: Host<Item = I>>(host: &Arc<H>, create: bool) -> Claim<H> {
        let Some(hot) = host.hot() else {
            return Self::claim_shared(host, create);
        };
        // Nothing published, nobody waiting, and we would create (or give up): a resource parked
        // on another worker beats a new one. (With the pool full we would register instead, and
        // registering flushes the slots to the line; a registration that `max_waiters` refuses
        // looks in the slots itself, `Waiter::join`.) Looking here on a full pool as well cost
        // the wait cycle 49 instructions (4%), for nothing the registration does not do.
        let engine = host.engine();
        let s = engine.state.peek();
        if s.avail() == 0 && (!create || s.size() < engine.max()) {
            if let Some((item, unit)) = hot.take_any(s) {
                return Claim::Idle(item, unit);
            }
        }
        Self::claim_shared(host, create)
    }

    /// The claim on the state word alone.
    #[inline]
    fn claim_shared<H: Host<Item = I>>(host: &Arc<H>, create: bool) -> Claim<H> {
        let engine = host.engine();
        match engine.state.claim(create) {
            Claimed::Item => match Self::pop_claimed(host) {
                Some((item, unit)) => Claim::Idle(item, unit),
                None => Claim::Closed,
            },
            Claimed::Unit => Claim::Create(CapacityGuard::adopt(host.clone())),
            Claimed::Nothing => Claim::Wait,
            Claimed::Closed => Claim::Closed,
        }
    }

    /// Claims one available idle item for maintenance and eviction, which put it straight back
    /// or destroy it (its unit then goes to a waiter, if any): the fast path without growing.
    pub(crate) fn claim_idle_internal<H: Host<Item = I>>(
        host: &Arc<H>,
    ) -> Option<(I, CapacityGuard<H>)> {
        match Self::claim(host, false) {
            Claim::Idle(item, unit) | Claim::Tallied(item, unit) => Some((item, unit)),
            _ => None,
        }
    }

    /// Grows by one unit while `size < below` and `size` is below the arrivals' bound (`max`,
    /// except during a raise), never taking an item (warm-up to a minimum).
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

    /// Returns an item to the idle set with the unit `guard` owned: into this worker's hot slot
    /// while nobody waits (`hot.rs`), else pushed and published, or handed to the oldest waiter.
    /// Synchronous and allocation-free; it waits for no lock. With `tally`, a release that parks
    /// adds one to the slot's tally `tally`, and one that does not has the host count it
    /// ([`Host::tally_unparked`]).
    #[inline]
    pub(crate) fn release<H: Host<Item = I>>(
        guard: CapacityGuard<H>,
        item: I,
        tally: Option<usize>,
    ) {
        // The unit and its pool reference go into the slot with the item.
        if let Err((item, guard)) = HotSlots::park(item, guard, tally) {
            Self::release_unparked(guard, item, tally);
        }
    }

    /// [`release`](Self::release) of an item its slot did not take. Out of line, so that the
    /// park is the only code on the release's path: a call inside it would make every release
    /// save and restore registers (`benches/RESULTS.md`, "The release without a call on its
    /// path").
    #[inline(never)]
    fn release_unparked<H: Host<Item = I>>(guard: CapacityGuard<H>, item: I, tally: Option<usize>) {
        if let Some(i) = tally {
            guard.host().tally_unparked(i);
        }
        Self::release_to_queue(guard, item);
    }

    /// [`release`](Self::release) past the hot slot: hand the item to the oldest waiter in the
    /// notification if anyone waits, else push, then publish (or hand the queued item off, if a
    /// waiter registered meanwhile). Lock-free when nobody waits.
    #[inline]
    pub(super) fn release_to_queue<H: Host<Item = I>>(guard: CapacityGuard<H>, item: I) {
        // The unit moves from the guard into the queue.
        let host = guard.disarm();
        let engine = host.engine();
        // Somebody waits, the pool is open and within its bound: what `publish` below would
        // answer `ForWaiter` to, from the same look. Hand the item to the oldest waiter in the
        // notification instead of through the queue.
        let s = engine.state.peek();
        if s.waiters() > 0 && !s.is_closed() && s.size() <= engine.max() {
            let mut overflow = None;
            let handed = engine.handoff.hand_off_item(&engine.state, item, |item| {
                // Under the line's lock (the waiter's cell was still full): a push, nothing that
                // could take the lock again.
                overflow = engine.queue.push(item).err();
            });
            if let Some(item) = overflow {
                Self::queue_full(&host, item);
            }
            return match handed {
                Ok(Handed::Done) => {}
                Ok(Handed::Closed) => Self::drain(&host),
                // Nobody left to notify: queue it as a reservation and hand that off, which
                // publishes it (race 3).
                Err(item) => Self::pass_on(&host, item),
            };
        }
        if let Err(item) = engine.queue.push(item) {
            return Self::queue_full(&host, item);
        }
        match engine.state.publish() {
            Publish::Published => {}
            // A shrink raced us: retire idle items until the bound holds.
            Publish::OverMax => Self::trim(&host),
            // Leave the item in the queue, unpublished, as a reservation.
            Publish::ForWaiter => Self::hand_off(&host),
            // Our push is covered by our unit: pop one item (ours or an older reserved one, whose
            // waiter then pops ours) and retire it with that unit.
            Publish::Retire => {
                if let Some((item, unit)) = Self::pop_claimed(&host) {
                    Self::retire(item, unit);
                }
            }
            // The closer may have drained before our push: drain it ourselves.
            Publish::Closed => Self::drain(&host),
        }
    }

    /// Passes a reservation on to the oldest unnotified waiter, or publishes it. `item`: the
    /// reservation is an item outside the queue (handed over in a notification to a waiter that
    /// left without taking it, or that nobody was left to take), queued first, unpublished.
    pub(super) fn pass_on<H: Host<Item = I>>(host: &Arc<H>, item: Option<I>) {
        if let Some(item) = item {
            if let Err(item) = host.engine().queue.push(item) {
                // Its fresh guard's drop gives the unit back (to a waiter, if any).
                return Self::queue_full(host, item);
            }
        }
        Self::hand_off(host);
    }

    /// The queue refused an item. Impossible while `queued items <= size <= max`; if it ever
    /// happens, do not lose the unit: destroy the item through a fresh guard.
    #[cold]
    fn queue_full<H: Host<Item = I>>(host: &Arc<H>, item: I) {
        debug_assert!(false, "idle queue full");
        let guard = CapacityGuard::adopt(host.clone());
        H::destroy_drained(host, item, guard);
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
        if engine.handoff.hand_off(&engine.state) == Handed::Closed {
            Self::drain(host);
        }
    }

    // ===== resizing =====

    /// Moves the bound on `size` to `max` (`1 ..= ceiling`, checked by the caller) and returns
    /// the old bound. Raising it hands the new room to counted waiters at once (each gets a slot
    /// and creates). Lowering it retires idle items until `size <= max` or nothing idle is left;
    /// resources in use are retired as they come back (`free` and `publish` see the bound), and
    /// waiters wait until `size` is below the new bound. Resizes run one at a time: two at
    /// once could otherwise open a raise's room to arrivals before the other had served the
    /// waiters it counted, or leave the arrivals' bound below `max` for good.
    pub(crate) fn resize<H: Host<Item = I>>(host: &Arc<H>, max: usize) -> usize {
        let engine = host.engine();
        let _one_at_a_time = engine.resizing.lock();
        let (old, s) = engine.state.set_max(max);
        if max < old {
            // Parked resources above the new bound must reach `trim`, or be retired on return.
            Self::flush_hot(host);
            Self::trim(host);
        } else if max > old && !s.is_closed() {
            // Waiters that registered before our RMW; later ones see the new bound (race 7).
            // Counted waiters include notified ones: a reservation nobody takes is published.
            // Arrivals meanwhile still grow below the old bound (they register instead), so the
            // room reaches the waiters first.
            for _ in 0..(max - old).min(s.waiters()) {
                if !Self::grow_for_line(host) {
                    break;
                }
            }
        }
        if max > old {
            engine.state.open_to_arrivals(max);
        }
        old
    }

    /// Claims one unit (or an item published beside waiters) and hands it to the oldest
    /// unnotified waiter: a waiter that registered while a raised bound left room. `false` if
    /// there was nothing to claim.
    pub(super) fn grow_for_line<H: Host<Item = I>>(host: &Arc<H>) -> bool {
        let engine = host.engine();
        match engine.handoff.serve_one(&engine.state) {
            None => false,
            Some(Handed::Done) => true,
            Some(Handed::Closed) => {
                Self::drain(host);
                false
            }
        }
    }

    /// Retires published idle items while `size` is above `max`.
    fn trim<H: Host<Item = I>>(host: &Arc<H>) {
        let engine = host.engine();
        while engine.state.load().size() > engine.max() {
            let Claimed::Item = engine.state.claim(false) else {
                return;
            };
            let Some((item, unit)) = Self::pop_claimed(host) else {
                return; // closed: a drainer took it
            };
            if !Self::retire(item, unit) {
                return;
            }
        }
    }

    /// Retires `item` if `size` is still above `max`: frees its unit with a CAS that checks the
    /// bound (so two racing retirements never both act on one excess unit) and destroys the item
    /// without capacity. Otherwise someone else retired meanwhile: the item goes back as a
    /// release. Returns whether it retired. (That release may trim again; each such nesting
    /// needs `size` to have fallen or `max` to have moved since the level above, so it ends.)
    fn retire<H: Host<Item = I>>(item: I, unit: CapacityGuard<H>) -> bool {
        if unit.host().engine().state.free_over_max() {
            let host = unit.disarm();
            H::retire(&host, item);
            true
        } else {
            Self::release_to_queue(unit, item);
            false
        }
    }

    // ===== hot slots =====

    /// Moves every resource parked in a hot slot into the queue, through the release path (which
    /// hands it to the oldest waiter, drains it from a closed pool or retires it above `max`), so
    /// that no later park slips past: the caller changed the state word first (a waiter's
    /// registration, close, a shrink). See `hot.rs`.
    pub(crate) fn flush_hot<H: Host<Item = I>>(host: &Arc<H>) {
        if let Some(hot) = host.hot() {
            hot.flush(|(item, unit)| Self::release_to_queue(unit, item));
        }
    }

    /// Moves resources parked in hot slots into the queue, so that maintenance and `retain` see
    /// them. Not a barrier: a resource parked meanwhile is seen next time.
    pub(crate) fn sweep_hot<H: Host<Item = I>>(host: &Arc<H>) {
        if let Some(hot) = host.hot() {
            hot.sweep(|(item, unit)| Self::release_to_queue(unit, item));
        }
    }

    /// Idle resources: published ones plus those parked in hot slots (a snapshot).
    pub(crate) fn idle<H: Host<Item = I>>(host: &H) -> usize {
        host.engine().state().avail() + host.hot().map_or(0, HotSlots::occupied)
    }

    // ===== closing =====

    /// Marks the pool closed, wakes every waiter and drains the idle set. Returns the state
    /// before for the call that closed it, `None` for later calls.
    pub(crate) fn close<H: Host<Item = I>>(host: &Arc<H>) -> Option<State> {
        let engine = host.engine();
        let (first, before) = engine.state.close();
        engine.handoff.wake_all();
        // After the closed bit: a release that parks later is refused (race 8).
        Self::flush_hot(host);
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
        // Items handed to waiters that have not taken them (they find their cells empty and the
        // pool closed).
        engine.handoff.line().take_all_handed(|item| {
            H::destroy_drained(host, item, CapacityGuard::adopt(host.clone()))
        });
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
