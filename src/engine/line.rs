//! The waiter line: a FIFO of parked acquirers with exactly the notification semantics the
//! engine needs, in two lock round trips per wait.
//!
//! event-listener takes its internal mutex four times per wait (insert on `listen`, waker
//! registration on the first poll, `notify`, and removal on the wake-up poll), and profiles of the
//! oversubscribed benchmarks showed that mutex, contended between the two workers, as the largest
//! single cost. This list takes its lock twice per wait:
//!
//! * `listen` links a slot at the back, counts the place in `registrations` and stores the
//!   joining task's waker in the slot (lock 1). Slots live in a slab and are reused, so waiting
//!   allocates nothing in steady state, and leaving from anywhere in the line is O(1): a doubly
//!   linked list threaded through the slab, with a generation number per slot. Beside each slot,
//!   at an address that never moves, is its node: the generation last notified there, which the
//!   place reads without the lock and without a reference count.
//! * `notify_one` unlinks the oldest place, stores its generation in the node (`Release`) and
//!   takes its waker under the lock (lock 2), then wakes it after unlocking. The waking task never
//!   takes the lock: it sees its generation (`Acquire`) and completes. A place polled with a waker
//!   other than the one it registered (or joined without one) registers it under the lock.
//! * `notify_one_with` does the same and hands the place a value (the released item) in its
//!   node's cell (`hot::Handover`, offered and taken by CAS), so neither side touches the idle
//!   queue. A slot is reused as soon as its place is notified, so the cell may still hold the
//!   value of an earlier turn at the same place whose waiter has not run yet (race 9): the offer
//!   is refused, and the notifier passes the value to the caller's `refused` (a queue push)
//!   before it stores the flag. Values are interchangeable reservations, so whichever place of
//!   the slot looks first takes the value in the cell, and the other finds its reservation in the
//!   queue.
//! * `discard` (cancellation) takes the lock to unlink the slot if it is still linked in the same
//!   generation; otherwise a notifier unlinked it, so `discard` reports the notification, which
//!   the caller passes on (race R5).
//!
//! Semantics match what the engine relies on from event-listener 5: `listen` registers at once;
//! `notify_one` notifies the oldest listener that is not notified yet; `discard` says whether a
//! notification was held. Unlike event-listener, dropping a listener without `discard` does not
//! pass a notification on; the engine always discards.
//!
//! `registrations` counts every place ever inserted; `notify_one` reports the count it saw under
//! its lock when it found nobody, which is what `Handoff::hand_off` compares against after
//! publishing (race R3). Counting under the lock the insert takes anyway replaces a locked RMW
//! per wait with a plain store.
//!
//! The same code runs under loom (on the facade's loom `Mutex` and atomics), so the loom models check this list itself, not a stand-in. The `event-listener-waiters` cargo
//! feature switches the line back to event-listener, for comparison.

#[cfg(not(feature = "event-listener-waiters"))]
mod native {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::OnceLock;
    use std::task::{Context, Poll, RawWakerVTable, Waker};

    use crate::engine::hot::Handover;
    use crate::engine::loom::{AtomicU64, AtomicUsize, Mutex, Ordering};

    /// No slot: the end of the list, or "not linked".
    const NIL: u32 = u32::MAX;

    /// Nodes in the first chunk; chunk `k` holds `FIRST_CHUNK << k`.
    const FIRST_CHUNK: usize = 4;
    /// Chunks enough for every slot index below `NIL`.
    const CHUNKS: usize = 31;

    /// A place's flag, readable without the lock: the generation of the last place notified in
    /// this slot. A place of generation `g` is notified once it reads `>= g` (the slot is reused,
    /// with a higher generation, only after the place was unlinked, and only a notifier unlinks a
    /// place other than by its own discard).
    struct Node<P> {
        notified: AtomicU64,
        /// The value a notifier handed over with the notification (a released item), for the
        /// place to take. Offered and taken by CAS: a place notified earlier in the same slot
        /// may still take from it after the slot was reused (values are interchangeable, each
        /// is taken once), and an offer to a cell still full is refused.
        handed: Handover<P>,
    }

    /// The nodes, one per slot, at addresses that never move: chunks of doubling size, each
    /// allocated once (under the line's lock, when the slab first reaches it) and kept until the
    /// line drops. A place borrows its node for the line's lifetime, so reading its flag needs
    /// no lock and no reference count, and a slot can be reused the moment it is unlinked:
    /// a notified place that has not run yet still finds its generation (or a later one) there.
    struct Nodes<P> {
        chunks: [OnceLock<Box<[Node<P>]>>; CHUNKS],
    }

    impl<P> Nodes<P> {
        fn new() -> Self {
            Nodes {
                chunks: std::array::from_fn(|_| OnceLock::new()),
            }
        }

        /// The chunk and offset of slot `i`: chunk `k` holds slots
        /// `FIRST_CHUNK * (2^k - 1) .. FIRST_CHUNK * (2^(k+1) - 1)`.
        #[inline]
        fn locate(i: u32) -> (usize, usize) {
            let n = i as usize / FIRST_CHUNK + 1;
            let k = (usize::BITS - 1 - n.leading_zeros()) as usize;
            (k, i as usize - FIRST_CHUNK * ((1 << k) - 1))
        }

        /// Slot `i`'s node; its chunk exists once the slot does (`List::take_slot`).
        #[inline]
        fn get(&self, i: u32) -> &Node<P> {
            let (k, offset) = Self::locate(i);
            &self.chunks[k].get().expect("a slot's node chunk exists")[offset]
        }

        /// Makes sure slot `i`'s chunk exists (under the lock, as the slab grows).
        fn ensure(&self, i: u32) {
            let (k, _) = Self::locate(i);
            self.chunks[k].get_or_init(|| {
                (0..FIRST_CHUNK << k)
                    .map(|_| Node {
                        notified: AtomicU64::new(0),
                        handed: Handover::new(),
                    })
                    .collect()
            });
        }
    }

    /// One entry of the slab, under the lock: a cache line of its own (40 bytes of fields), so a
    /// notifier on another worker pulls one line per place, not two where an entry straddled.
    #[repr(align(64))]
    struct Slot {
        /// The waker of the place in the slot, taken by the notifier.
        waker: Option<Waker>,
        /// Bumped every time the slot is handed to a new place (from 1), so a place whose slot
        /// was freed (it was notified) and reused by another cannot mistake it for its own.
        generation: u64,
        /// Whether the slot is in the list (not yet notified, not discarded).
        linked: bool,
        /// The place before, for a linked slot other than the head (the head's is not kept up
        /// to date: notifying the head does not write the next slot's line).
        prev: u32,
        /// The place after, for a linked slot; the next free slot, for a free one.
        next: u32,
    }

    /// The list of unnotified places, oldest first: a doubly linked list threaded through a slab,
    /// so joining, leaving from anywhere and notifying are O(1), and a slot is reused by later
    /// waiters, so waiting allocates nothing once the slab has grown to the largest number of
    /// waiters seen at once.
    struct List {
        slots: Vec<Slot>,
        /// The first slot not in use, most recently freed first (its line is the warmest); the
        /// free slots are chained through `next`, so freeing and reusing one touches only its
        /// own line.
        free: u32,
        head: u32,
        tail: u32,
    }

    impl List {
        /// A slot for a new place, in a new generation: a free one, or a new one.
        #[inline]
        fn take_slot<P>(&mut self, nodes: &Nodes<P>) -> u32 {
            if self.free != NIL {
                let i = self.free;
                let slot = &mut self.slots[i as usize];
                self.free = slot.next;
                slot.generation += 1;
                return i;
            }
            let i = self.slots.len() as u32;
            assert!(i < NIL, "too many places in line");
            nodes.ensure(i);
            self.slots.push(Slot {
                waker: None,
                generation: 1,
                linked: false,
                prev: NIL,
                next: NIL,
            });
            i
        }

        #[inline]
        fn link_back(&mut self, i: u32) {
            let tail = self.tail;
            let slot = &mut self.slots[i as usize];
            (slot.linked, slot.prev, slot.next) = (true, tail, NIL);
            match tail {
                NIL => self.head = i,
                t => self.slots[t as usize].next = i,
            }
            self.tail = i;
        }

        fn link_front(&mut self, i: u32) {
            let head = self.head;
            let slot = &mut self.slots[i as usize];
            (slot.linked, slot.prev, slot.next) = (true, NIL, head);
            match head {
                NIL => self.tail = i,
                h => self.slots[h as usize].prev = i,
            }
            self.head = i;
        }

        /// Takes slot `i` out of the list and frees it; returns its waker. Unlinking the head
        /// writes only its own line and the list's: the new head's `prev` is left stale.
        #[inline]
        fn unlink(&mut self, i: u32) -> Option<Waker> {
            let (head, tail, free) = (self.head, self.tail, self.free);
            let slot = &mut self.slots[i as usize];
            let (prev, next) = (slot.prev, slot.next);
            (slot.linked, slot.prev, slot.next) = (false, NIL, free);
            let waker = slot.waker.take();
            self.free = i;
            match (i == head, i == tail) {
                (true, true) => (self.head, self.tail) = (NIL, NIL),
                (true, false) => self.head = next,
                (false, true) => {
                    self.tail = prev;
                    self.slots[prev as usize].next = NIL;
                }
                (false, false) => {
                    self.slots[prev as usize].next = next;
                    self.slots[next as usize].prev = prev;
                }
            }
            waker
        }

        /// Unlinks the oldest place, hands it `item` (if any), flags it notified and takes its
        /// waker, under the lock; the caller wakes it after unlocking (`Err`: the line is empty,
        /// and `item` comes back). The waker lives under the lock, so neither side touches an
        /// atomic for it. An item the place's cell refuses goes to `refused` (the queue) before
        /// the flag, so the place finds its reservation one way or the other.
        #[inline]
        fn pop_front<P>(
            &mut self,
            nodes: &Nodes<P>,
            item: Option<P>,
            refused: impl FnOnce(P),
        ) -> Result<Option<Waker>, Option<P>> {
            let i = self.head;
            if i == NIL {
                return Err(item);
            }
            let generation = self.slots[i as usize].generation;
            let waker = self.unlink(i);
            let node = nodes.get(i);
            if let Some(item) = item {
                if let Err(item) = node.handed.offer(item) {
                    refused(item);
                }
            }
            // Release: what the notifier did before (the item handed over or pushed, the counted
            // slot) is visible to the task that sees the flag.
            node.notified.store(generation, Ordering::Release);
            Ok(waker)
        }
    }

    /// The line of parked tasks.
    pub(crate) struct Line<P> {
        list: Mutex<List>,
        nodes: Nodes<P>,
        /// Places ever inserted (race R3). Written only under the lock, so a load and a store
        /// suffice; read under the lock by `notify_one`, and without it by `registrations`.
        registrations: AtomicUsize,
    }

    impl<P> Line<P> {
        pub(crate) fn new() -> Self {
            Line {
                list: Mutex::new(List {
                    slots: Vec::new(),
                    free: NIL,
                    head: NIL,
                    tail: NIL,
                }),
                nodes: Nodes::new(),
                registrations: AtomicUsize::new(0),
            }
        }

        /// Whether every notify takes the line's lock (see `notify_one`).
        pub(crate) const NOTIFY_LOCKS: bool = true;

        /// Places ever inserted. Relaxed: a caller that must see a given insert is ordered after
        /// it by the lock or by an RMW on the state word that acquired the inserter's later
        /// registration CAS (race R3 in `Handoff::hand_off`).
        #[inline]
        pub(crate) fn registrations(&self) -> usize {
            self.registrations.load(Ordering::Relaxed)
        }

        /// Joins the back of the line; the place can be notified from now on. With `waker`, the
        /// place is registered at once (in the same lock round trip), so its first poll in the
        /// task that joined takes no lock.
        pub(crate) fn listen(&self, waker: Option<&Waker>) -> Place<'_, P> {
            let mut place = None;
            self.listen_into(false, waker, &mut place);
            place.expect("joined")
        }

        /// Joins the *front* of the line: for a waiter that was served but must wait again (its
        /// resource failed a check and its unit went to teardown), so it keeps its place.
        #[cfg(test)]
        pub(crate) fn listen_front(&self, waker: Option<&Waker>) -> Place<'_, P> {
            let mut place = None;
            self.listen_into(true, waker, &mut place);
            place.expect("joined")
        }

        /// Joins the back of the line (the front with `front`), writing the place into `out`
        /// (which should be empty) where the caller keeps it. A place returned by value (56
        /// bytes, written in pieces by this out-of-line call) was copied whole into the waiter
        /// right after, a store-forwarding stall on every wait (`benches/RESULTS.md`).
        #[inline]
        pub(crate) fn listen_into<'a>(
            &'a self,
            front: bool,
            waker: Option<&Waker>,
            out: &mut Option<Place<'a, P>>,
        ) {
            let mut list = self.list.lock();
            // Relaxed: only written under this lock (see the field).
            let n = self.registrations.load(Ordering::Relaxed);
            self.registrations
                .store(n.wrapping_add(1), Ordering::Relaxed);
            let i = list.take_slot(&self.nodes);
            if front {
                list.link_front(i);
            } else {
                list.link_back(i);
            }
            let slot = &mut list.slots[i as usize];
            slot.waker = waker.cloned();
            let generation = slot.generation;
            drop(list);
            *out = Some(Place {
                line: self,
                slot: i,
                generation,
                node: self.nodes.get(i),
                registered: waker.map(WakerId::of),
                done: false,
            });
        }

        /// Notifies the oldest place that is not notified yet, and wakes it after unlocking.
        /// `Err(registrations)` if there is none, with the count of places inserted as seen under
        /// the lock (race R3).
        ///
        /// Every call takes the lock, and so does `notify_all`: a caller that notified after
        /// `close` set the closed bit and notified everyone (under this lock) sees the closed bit
        /// in any later load, which is what lets `hand_off` skip an RMW on the state word.
        #[inline]
        pub(crate) fn notify_one(&self) -> Result<(), usize> {
            self.notify_one_with(None, drop).map_err(|(_, seen)| seen)
        }

        /// [`notify_one`](Self::notify_one), handing `item` to the place notified (or, if its
        /// cell is still full, to `refused`, under the lock, before the place is flagged). `Err`
        /// gives `item` back.
        #[inline]
        pub(crate) fn notify_one_with(
            &self,
            item: Option<P>,
            refused: impl FnOnce(P),
        ) -> Result<(), (Option<P>, usize)> {
            let mut list = self.list.lock();
            match list.pop_front(&self.nodes, item, refused) {
                Ok(waker) => {
                    drop(list);
                    // None if the place was never polled (it sees the flag when it is).
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    Ok(())
                }
                // Relaxed: read under the lock that every write holds.
                Err(item) => Err((item, self.registrations.load(Ordering::Relaxed))),
            }
        }

        /// Notifies every place (close): collects the wakers under the lock, wakes them after.
        pub(crate) fn notify_all(&self) -> usize {
            let woken: Vec<Option<Waker>> = {
                let mut list = self.list.lock();
                std::iter::from_fn(|| list.pop_front(&self.nodes, None, drop).ok()).collect()
            };
            let n = woken.len();
            woken.into_iter().flatten().for_each(Waker::wake);
            n
        }

        /// Takes every value handed over and not taken yet (close: the places' owners find
        /// their cells empty and the pool closed).
        pub(crate) fn take_all_handed(&self, mut each: impl FnMut(P)) {
            for chunk in self.nodes.chunks.iter().map_while(OnceLock::get) {
                chunk
                    .iter()
                    .filter_map(|node| node.handed.take())
                    .for_each(&mut each);
            }
        }

        /// Leaves the line if the place is still linked; `true` if a notifier unlinked it first.
        fn leave(&self, slot: u32, generation: u64) -> bool {
            let mut list = self.list.lock();
            let s = &list.slots[slot as usize];
            if s.linked && s.generation == generation {
                let waker = list.unlink(slot);
                drop(list);
                drop(waker);
                false
            } else {
                // Unlinked by a notifier (the slot may already serve another place): notified.
                true
            }
        }

        /// Replaces a linked place's waker (a poll with a waker other than the registered one);
        /// `false` if a notifier unlinked it first.
        fn register(&self, slot: u32, generation: u64, waker: &Waker) -> bool {
            let mut list = self.list.lock();
            let s = &mut list.slots[slot as usize];
            if !(s.linked && s.generation == generation) {
                return false;
            }
            let old = s.waker.replace(waker.clone());
            drop(list);
            drop(old);
            true
        }
    }

    /// Which waker a place registered: its data and vtable pointers, compared as
    /// `Waker::will_wake` does, without holding a clone.
    #[derive(Clone, Copy, PartialEq, Eq)]
    struct WakerId(usize, usize);

    impl WakerId {
        fn of(waker: &Waker) -> Self {
            let vtable: *const RawWakerVTable = waker.vtable();
            WakerId(waker.data() as usize, vtable as usize)
        }
    }

    /// A place in the [`Line`]: a future that completes once notified.
    pub(crate) struct Place<'a, P> {
        line: &'a Line<P>,
        slot: u32,
        generation: u64,
        node: &'a Node<P>,
        /// The waker last registered in the slot, if any.
        registered: Option<WakerId>,
        /// Completed or discarded.
        done: bool,
    }

    impl<P> Place<'_, P> {
        /// Leaves the line, and says whether a notification was held (and not yet consumed by
        /// completing): `Some`, with the value handed over with it if one was left in the cell.
        /// The caller passes a held notification on. O(1).
        pub(crate) fn discard(mut self) -> Option<Option<P>> {
            if std::mem::replace(&mut self.done, true) {
                return None;
            }
            self.line
                .leave(self.slot, self.generation)
                .then(|| self.take_handed())
        }

        /// For a place that was notified: the value handed over with a notification at this
        /// place, if one is in the cell (it may be one handed to an earlier or later place in
        /// the same slot: they are interchangeable).
        #[inline]
        pub(crate) fn take_handed(&self) -> Option<P> {
            self.node.handed.take()
        }

        /// Whether a notifier flagged this place. Acquire: pairs with the notifier's Release
        /// store.
        #[inline]
        fn notified(&self) -> bool {
            self.node.notified.load(Ordering::Acquire) >= self.generation
        }
    }

    impl<P> Future for Place<'_, P> {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            assert!(!self.done, "place polled after completion");
            if self.notified() {
                self.done = true;
                return Poll::Ready(());
            }
            let id = WakerId::of(cx.waker());
            if self.registered == Some(id) {
                // The notifier wakes the registered waker after it stores the flag.
                return Poll::Pending;
            }
            // A first poll of a place joined without a waker, or a poll from another task:
            // register under the lock, unless a notifier unlinked the place meanwhile (then the
            // flag, stored under that lock, is visible).
            if self.line.register(self.slot, self.generation, cx.waker()) {
                self.registered = Some(id);
                return Poll::Pending;
            }
            debug_assert!(self.notified(), "an unlinked place was notified");
            self.done = true;
            Poll::Ready(())
        }
    }

    impl<P> Drop for Place<'_, P> {
        fn drop(&mut self) {
            // Leave the line if still linked; a held notification is dropped (see module docs).
            if !self.done {
                self.line.leave(self.slot, self.generation);
            }
        }
    }
}

/// The `event-listener-waiters` backend: event-listener 5 (through the loom facade), kept for
/// comparison.
#[cfg(feature = "event-listener-waiters")]
mod el {
    use std::future::Future;
    use std::marker::PhantomData;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use crate::engine::loom::{AtomicUsize, Event, EventListener, Ordering};

    pub(crate) struct Line<P>(Event, AtomicUsize, PhantomData<fn(P) -> P>);

    impl<P> Line<P> {
        pub(crate) fn new() -> Self {
            Line(Event::new(), AtomicUsize::new(0), PhantomData)
        }

        /// event-listener may notify without a lock: `hand_off` keeps its RMW for close.
        pub(crate) const NOTIFY_LOCKS: bool = false;

        /// event-listener registers the waker on the first poll.
        pub(crate) fn listen(&self, _waker: Option<&Waker>) -> Place<'_, P> {
            let place = Place(self.0.listen(), PhantomData);
            // AcqRel: a `notify_one` that reads this increment also sees the place inserted
            // before it.
            self.1.fetch_add(1, Ordering::AcqRel);
            place
        }

        pub(crate) fn registrations(&self) -> usize {
            // Acquire: pairs with the increment in `listen`.
            self.1.load(Ordering::Acquire)
        }

        /// Notifies one more listener; `Err` with the count of places read *before* the notify.
        pub(crate) fn notify_one(&self) -> Result<(), usize> {
            let seen = self.registrations();
            match self.notify_additional(1) {
                1 => Ok(()),
                _ => Err(seen),
            }
        }

        /// This line has no cells: an item is given back, for the caller to queue and hand off.
        pub(crate) fn notify_one_with(
            &self,
            item: Option<P>,
            _refused: impl FnOnce(P),
        ) -> Result<(), (Option<P>, usize)> {
            match item {
                Some(item) => Err((Some(item), self.registrations())),
                None => self.notify_one().map_err(|seen| (None, seen)),
            }
        }

        /// No cells, nothing handed over.
        pub(crate) fn take_all_handed(&self, _each: impl FnMut(P)) {}

        /// event-listener cannot insert at the front: the waiter rejoins at the back.
        #[cfg(test)]
        pub(crate) fn listen_front(&self, waker: Option<&Waker>) -> Place<'_, P> {
            self.listen(waker)
        }

        /// [`listen`](Self::listen) (at the back, even with `front`), into `out`.
        pub(crate) fn listen_into<'a>(
            &'a self,
            _front: bool,
            waker: Option<&Waker>,
            out: &mut Option<Place<'a, P>>,
        ) {
            *out = Some(self.listen(waker));
        }

        fn notify_additional(&self, n: usize) -> usize {
            self.0.notify_additional(n)
        }

        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all()
        }
    }

    pub(crate) struct Place<'a, P>(EventListener, PhantomData<&'a Line<P>>);

    impl<P> Place<'_, P> {
        pub(crate) fn discard(self) -> Option<Option<P>> {
            self.0.discard().then_some(None)
        }

        pub(crate) fn take_handed(&self) -> Option<P> {
            None
        }
    }

    impl<P> Future for Place<'_, P> {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            Pin::new(&mut self.0).poll(cx)
        }
    }
}

#[cfg(feature = "event-listener-waiters")]
pub(crate) use el::{Line, Place};
#[cfg(not(feature = "event-listener-waiters"))]
pub(crate) use native::{Line, Place};

#[cfg(all(test, not(shadowcat_loom)))]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn notifies_oldest_first_and_discard_reports_a_held_notification() {
        let list = Line::<u32>::new();
        let mut a = list.listen(None);
        let mut b = list.listen(None);
        let c = list.listen(None);
        assert!((&mut a).now_or_never().is_none());
        assert!(list.notify_one().is_ok());
        assert!((&mut b).now_or_never().is_none(), "b is not the oldest");
        assert!((&mut a).now_or_never().is_some());
        assert!(list.notify_one().is_ok()); // b
        assert!(b.discard().is_some(), "b held a notification");
        assert!(c.discard().is_none(), "c was never notified");
        assert!(list.notify_one().is_err(), "nobody left");
    }

    // The event-listener backend cannot insert at the front (`listen_front` rejoins at the
    // back), which the end of this test checks, and it has no slots to reuse.
    #[cfg(not(feature = "event-listener-waiters"))]
    #[test]
    fn leaving_from_the_middle_keeps_the_order_and_a_reused_slot_is_not_mistaken() {
        let list = Line::<u32>::new();
        let a = list.listen(None);
        let b = list.listen(None);
        let mut c = list.listen(None);
        assert!(
            b.discard().is_none(),
            "b leaves from the middle, unnotified"
        );
        assert!(list.notify_one().is_ok()); // a, the oldest
                                            // a's slot is free again; d takes it (a newer generation of the same slot).
        let mut d = list.listen(None);
        assert!(
            a.discard().is_some(),
            "a was notified, although its slot now serves d"
        );
        let mut front = list.listen_front(None);
        assert!(list.notify_one().is_ok());
        assert!(
            (&mut front).now_or_never().is_some(),
            "listen_front is served first"
        );
        assert!(list.notify_one().is_ok());
        assert!(
            (&mut c).now_or_never().is_some(),
            "then c, in arrival order"
        );
        assert!((&mut d).now_or_never().is_none());
        assert!(list.notify_one().is_ok());
        assert!((&mut d).now_or_never().is_some());
    }

    // The event-listener backend has no cells: it gives every item back.
    #[cfg(not(feature = "event-listener-waiters"))]
    #[test]
    fn an_item_handed_over_is_taken_once_and_a_full_cell_refuses_the_next() {
        let list = Line::<u32>::new();
        let mut a = list.listen(None);
        assert!(list
            .notify_one_with(Some(1), |_| panic!("a's cell is empty"))
            .is_ok());
        assert!((&mut a).now_or_never().is_some());
        // a has not taken its item yet; its slot is free again, and b gets it.
        let mut b = list.listen(None);
        let mut refused = None;
        assert!(list
            .notify_one_with(Some(2), |item| refused = Some(item))
            .is_ok());
        assert_eq!(
            refused,
            Some(2),
            "the cell still holds 1: 2 goes to the queue"
        );
        assert!((&mut b).now_or_never().is_some());
        // Interchangeable: whichever place of the slot looks first takes the one item.
        assert_eq!(b.take_handed(), Some(1));
        assert_eq!(a.take_handed(), None, "each item is taken once");
        assert_eq!(
            list.notify_one_with(Some(3), |_| unreachable!()),
            Err((Some(3), 2)),
            "nobody in line: the item comes back"
        );
        // Close drains what no place took.
        let c = list.listen(None);
        assert!(list.notify_one_with(Some(4), |_| unreachable!()).is_ok());
        let mut left = Vec::new();
        list.take_all_handed(|item| left.push(item));
        assert_eq!(left, [4]);
        assert_eq!(
            c.discard(),
            Some(None),
            "c was notified; its item was drained"
        );
    }

    #[test]
    fn a_notify_that_finds_nobody_reports_the_places_inserted_so_far() {
        let list = Line::<u32>::new();
        assert_eq!(list.notify_one(), Err(0));
        let a = list.listen(None);
        let b = list.listen_front(None);
        assert_eq!(
            list.registrations(),
            2,
            "every insert counts, at either end"
        );
        assert!(a.discard().is_none());
        assert!(b.discard().is_none());
        assert_eq!(
            list.notify_one(),
            Err(2),
            "leaving does not uncount: a later insert must still change the count"
        );
        let _c = list.listen(None);
        assert_eq!(list.registrations(), 3);
    }

    #[test]
    fn the_popped_place_is_woken_with_its_own_waker() {
        use std::future::Future;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use std::task::{Context, Wake, Waker};

        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let (wa, wb) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let list = Line::<u32>::new();
        let mut a = Box::pin(list.listen(None));
        let mut b = Box::pin(list.listen(None));
        let waker_a = Waker::from(wa.clone());
        let waker_b = Waker::from(wb.clone());
        assert!(a
            .as_mut()
            .poll(&mut Context::from_waker(&waker_a))
            .is_pending());
        assert!(b
            .as_mut()
            .poll(&mut Context::from_waker(&waker_b))
            .is_pending());
        assert!(list.notify_one().is_ok());
        assert_eq!(
            (wa.0.load(Ordering::Relaxed), wb.0.load(Ordering::Relaxed)),
            (1, 0),
            "only the oldest place's task is woken"
        );
        assert!(a
            .as_mut()
            .poll(&mut Context::from_waker(&waker_a))
            .is_ready());
        // A place notified before it was ever polled has no waker to wake; it sees its flag.
        let mut c = Box::pin(list.listen(None));
        assert!(list.notify_one().is_ok()); // b
        assert!(list.notify_one().is_ok()); // c, never polled
        assert_eq!(wb.0.load(Ordering::Relaxed), 1);
        assert!(c
            .as_mut()
            .poll(&mut Context::from_waker(&waker_a))
            .is_ready());
        assert_eq!(wa.0.load(Ordering::Relaxed), 1, "c's poll woke nobody");
        drop(b);
        // A place polled again from another task wakes that task, not the first.
        let mut d = Box::pin(list.listen(Some(&waker_a)));
        assert!(d
            .as_mut()
            .poll(&mut Context::from_waker(&waker_a))
            .is_pending());
        assert!(d
            .as_mut()
            .poll(&mut Context::from_waker(&waker_b))
            .is_pending());
        assert!(list.notify_one().is_ok());
        assert_eq!(
            (wa.0.load(Ordering::Relaxed), wb.0.load(Ordering::Relaxed)),
            (1, 2),
            "the waker of the latest poll is woken"
        );
        assert!(d
            .as_mut()
            .poll(&mut Context::from_waker(&waker_b))
            .is_ready());
    }

    // The list is a doubly linked list threaded through a slab whose head keeps a stale `prev`
    // and whose free slots are chained through `next`; a model `VecDeque` of the unnotified
    // places checks that every mix of joins at either end, leaves from anywhere and notifies
    // keeps the order and the slots apart.
    #[cfg(not(feature = "event-listener-waiters"))]
    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::VecDeque;

        /// What the property test does to a line.
        #[derive(Clone, Debug)]
        enum Op {
            Listen,
            ListenFront,
            /// The `k`-th live place (modulo their number) leaves.
            Leave(usize),
            Notify,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => Just(Op::Listen),
                1 => Just(Op::ListenFront),
                2 => (0usize..64).prop_map(Op::Leave),
                2 => Just(Op::Notify),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
            #[test]
            fn the_list_matches_a_model_queue(ops in proptest::collection::vec(op(), 1..80)) {
                let list = Line::<u32>::new();
                // Live places by id. Places with an even id are polled after every step (and
                // complete once notified); odd ones only leave, so a notification they hold is
                // reported by `discard`.
                let mut places: Vec<(u32, Place<'_, u32>)> = Vec::new();
                // The unnotified places, in the order they must be served.
                let mut queue: VecDeque<u32> = VecDeque::new();
                let mut notified: Vec<u32> = Vec::new();
                for (id, op) in (0u32..).zip(ops) {
                    match op {
                        Op::Listen => {
                            places.push((id, list.listen(None)));
                            queue.push_back(id);
                        }
                        Op::ListenFront => {
                            places.push((id, list.listen_front(None)));
                            queue.push_front(id);
                        }
                        Op::Leave(k) if !places.is_empty() => {
                            let (who, place) = places.remove(k % places.len());
                            let held = place.discard().is_some();
                            prop_assert_eq!(held, notified.contains(&who), "place {} leaving", who);
                            queue.retain(|&p| p != who);
                        }
                        Op::Leave(_) => {}
                        Op::Notify => match queue.pop_front() {
                            Some(oldest) => {
                                prop_assert!(list.notify_one().is_ok());
                                notified.push(oldest);
                            }
                            None => prop_assert!(list.notify_one().is_err()),
                        },
                    }
                    for (who, place) in places.iter_mut().filter(|(who, _)| who % 2 == 0) {
                        let ready = place.now_or_never().is_some();
                        prop_assert_eq!(ready, notified.contains(who), "place {}", who);
                    }
                    // The even places that completed are done.
                    places.retain(|(who, _)| who % 2 == 1 || !notified.contains(who));
                }
                // Every place still in line is served, oldest first, by as many notifies.
                while let Some(oldest) = queue.pop_front() {
                    prop_assert!(list.notify_one().is_ok());
                    notified.push(oldest);
                }
                prop_assert!(list.notify_one().is_err(), "nobody left");
                for (who, place) in places {
                    prop_assert!(notified.contains(&who));
                    prop_assert!(place.discard().is_some(), "place {} was notified", who);
                }
            }
        }
    }
}
