//! The waiter line: a FIFO of parked acquirers with exactly the notification semantics the
//! engine needs, in two lock round trips per wait.
//!
//! event-listener takes its internal mutex four times per wait (insert on `listen`, waker
//! registration on the first poll, `notify`, and removal on the wake-up poll), and profiles of the
//! oversubscribed benchmarks showed that mutex, contended between the two workers, as the largest
//! single cost. This list takes its lock twice per wait:
//!
//! * `listen` links a slot at the back and counts the place in `registrations` (lock 1). Slots
//!   live in a slab and are reused, each with its node (a flag and an `AtomicWaker`, registered
//!   without the lock), so waiting allocates nothing in steady state, and leaving from anywhere in
//!   the line is O(1): a doubly linked list threaded through the slab, with a generation number
//!   per slot.
//! * `notify_one` unlinks the oldest place, marks it notified (`Release`) and takes its waker
//!   under the lock (lock 2), then wakes it after unlocking. A popped node *is* a notified one, so
//!   the waking task never takes the lock: it sees `notified` (`Acquire`) and completes.
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
//! The same code runs under loom (on the facade's loom `Mutex`, atomics and `AtomicWaker`),
//! so the loom models check this list itself, not a stand-in. The `event-listener-waiters` cargo
//! feature switches the line back to event-listener, for comparison.

#[cfg(not(feature = "event-listener-waiters"))]
mod native {
    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    use crate::engine::loom::{AtomicBool, AtomicUsize, AtomicWaker, Mutex, Ordering};

    /// One parked task's flag and waker. Shared between the slot that holds it and the [`Place`]
    /// that waits on it; reused by later places once the slot is the only holder.
    struct Node {
        /// Set (after the slot was unlinked) by the notifier.
        notified: AtomicBool,
        waker: AtomicWaker,
    }

    /// No slot: the end of the list, or "not linked".
    const NIL: u32 = u32::MAX;

    /// One entry of the slab.
    struct Slot {
        node: Arc<Node>,
        /// Bumped every time the slot is handed to a new place, so a place whose slot was freed
        /// (it was notified) and reused by another cannot mistake it for its own.
        generation: u32,
        /// Whether the slot is in the list (not yet notified, not discarded).
        linked: bool,
        prev: u32,
        next: u32,
    }

    /// The list of unnotified places, oldest first: a doubly linked list threaded through a slab,
    /// so joining, leaving from anywhere and notifying are O(1), and a slot (with its node) is
    /// reused by later waiters, so waiting allocates nothing once the slab has grown to the
    /// largest number of waiters seen at once.
    #[derive(Default)]
    struct List {
        slots: Vec<Slot>,
        /// Slots not in use, oldest freed first: the slot a notifier just freed is reused last,
        /// when its notified place has usually run and let go of the node (`take_slot`).
        free: VecDeque<u32>,
        head: u32,
        tail: u32,
    }

    impl List {
        /// A slot for a new place: a free one whose node no notified place still holds, or a new
        /// one.
        fn take_slot(&mut self) -> u32 {
            // The oldest free slots first. A slot whose node a notified place still holds (it has
            // not run since it was notified) goes to the back of the free list, to be looked at
            // again later; after two such, the slab grows by a slot instead. So the slab settles
            // at the most places that were in line or notified-but-not-run at once, and in steady
            // state no wait allocates. (Replacing the held node, as a first version did, cost an
            // allocation per wait whenever waiters overlapped: most waits in S3 and S4.)
            for _ in 0..2 {
                let Some(i) = self.free.pop_front() else {
                    break;
                };
                let slot = &mut self.slots[i as usize];
                if Arc::strong_count(&slot.node) != 1 {
                    self.free.push_back(i);
                    continue;
                }
                slot.generation = slot.generation.wrapping_add(1);
                // Only this slot holds the node, and only under the lock can it be cloned, so
                // nobody reads the flag any more; it was set under this lock, so the reset is
                // ordered after it. The fence pairs with the `Release` decrement of the last
                // other holder's `Arc` drop (as `Arc::drop` itself does), so that holder's reads
                // of the flag come before the reset.
                std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                // Relaxed: published to the new place by the lock.
                slot.node.notified.store(false, Ordering::Relaxed);
                return i;
            }
            self.slots.push(Slot {
                node: Arc::new(Node::new()),
                generation: 0,
                linked: false,
                prev: NIL,
                next: NIL,
            });
            (self.slots.len() - 1) as u32
        }

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

        /// Takes slot `i` out of the list and frees it.
        fn unlink(&mut self, i: u32) {
            let slot = &mut self.slots[i as usize];
            let (prev, next) = (slot.prev, slot.next);
            (slot.linked, slot.prev, slot.next) = (false, NIL, NIL);
            match prev {
                NIL => self.head = next,
                p => self.slots[p as usize].next = next,
            }
            match next {
                NIL => self.tail = prev,
                n => self.slots[n as usize].prev = prev,
            }
            self.free.push_back(i);
        }

        /// Unlinks the oldest place, flags it notified and takes its waker, under the lock; the
        /// caller wakes it after unlocking (`Err(())`: the line is empty). Flagging under the lock
        /// orders the flag before any later reuse of the node (which resets it under the same
        /// lock); taking the waker here, not cloning the node's `Arc` to wake it later, saves two
        /// reference-count RMWs per wait. The flag comes before the take, as in
        /// `AtomicWaker::wake`: a place that registers after the take sees the flag.
        fn pop_front(&mut self) -> Result<Option<Waker>, ()> {
            let i = self.head;
            if i == NIL {
                return Err(());
            }
            self.unlink(i);
            let node = &self.slots[i as usize].node;
            // Release: what the notifier did before (the pushed item, the counted slot) is visible
            // to the task that sees the flag.
            node.notified.store(true, Ordering::Release);
            Ok(node.waker.take())
        }
    }

    impl Node {
        fn new() -> Self {
            Node {
                notified: AtomicBool::new(false),
                waker: AtomicWaker::new(),
            }
        }
    }

    /// The line of parked tasks.
    pub(crate) struct Line {
        list: Mutex<List>,
        /// Places ever inserted (race R3). Written only under the lock, so a load and a store
        /// suffice; read under the lock by `notify_one`, and without it by `registrations`.
        registrations: AtomicUsize,
    }

    impl Line {
        pub(crate) fn new() -> Self {
            Line {
                list: Mutex::new(List {
                    head: NIL,
                    tail: NIL,
                    ..List::default()
                }),
                registrations: AtomicUsize::new(0),
            }
        }

        /// Places ever inserted. Relaxed: a caller that must see a given insert is ordered after
        /// it by the lock or by an RMW on the state word that acquired the inserter's later
        /// registration CAS (race R3 in `Handoff::hand_off`).
        #[inline]
        pub(crate) fn registrations(&self) -> usize {
            self.registrations.load(Ordering::Relaxed)
        }

        /// Joins the back of the line; the place can be notified from now on.
        pub(crate) fn listen(&self) -> Place<'_> {
            self.join(false)
        }

        /// Joins the *front* of the line: for a waiter that was served but must wait again (its
        /// resource failed a check and its unit went to teardown), so it keeps its place.
        pub(crate) fn listen_front(&self) -> Place<'_> {
            self.join(true)
        }

        fn join(&self, front: bool) -> Place<'_> {
            let mut list = self.list.lock();
            // Relaxed: only written under this lock (see the field).
            let n = self.registrations.load(Ordering::Relaxed);
            self.registrations
                .store(n.wrapping_add(1), Ordering::Relaxed);
            let i = list.take_slot();
            if front {
                list.link_front(i);
            } else {
                list.link_back(i);
            }
            let slot = &list.slots[i as usize];
            let joined = Joined {
                slot: i,
                generation: slot.generation,
                node: slot.node.clone(),
            };
            drop(list);
            Place {
                line: self,
                joined: Some(joined),
            }
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
            let mut list = self.list.lock();
            match list.pop_front() {
                Ok(waker) => {
                    drop(list);
                    // The popped place's waker; none if it has not been polled yet (it sees the
                    // flag when it is).
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    Ok(())
                }
                // Relaxed: read under the lock that every write holds.
                Err(()) => Err(self.registrations.load(Ordering::Relaxed)),
            }
        }

        /// Whether every notify takes the line's lock (see `notify_one`).
        pub(crate) const NOTIFY_LOCKS: bool = true;

        /// Notifies every place (close): collects the wakers under the lock, wakes them after.
        pub(crate) fn notify_all(&self) -> usize {
            let woken: Vec<Option<Waker>> = {
                let mut list = self.list.lock();
                std::iter::from_fn(|| list.pop_front().ok()).collect()
            };
            let n = woken.len();
            woken.into_iter().flatten().for_each(Waker::wake);
            n
        }

        /// Leaves the line if `joined` is still linked; `true` if a notifier unlinked it first.
        fn leave(&self, joined: &Joined) -> bool {
            let mut list = self.list.lock();
            let slot = &list.slots[joined.slot as usize];
            if slot.linked && slot.generation == joined.generation {
                list.unlink(joined.slot);
                false
            } else {
                // Unlinked by a notifier (the slot may already serve another place): notified.
                true
            }
        }
    }

    /// Which slot a place holds, in which generation, and its node.
    struct Joined {
        slot: u32,
        generation: u32,
        node: Arc<Node>,
    }

    /// A place in the [`Line`]: a future that completes once notified.
    pub(crate) struct Place<'a> {
        line: &'a Line,
        /// `None` once completed or discarded.
        joined: Option<Joined>,
    }

    impl Place<'_> {
        /// Leaves the line, and says whether a notification was held (and not yet consumed by
        /// completing). The caller passes a held notification on. O(1).
        pub(crate) fn discard(mut self) -> bool {
            match self.joined.take() {
                Some(joined) => self.line.leave(&joined),
                None => false,
            }
        }
    }

    impl Future for Place<'_> {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let node = &self
                .joined
                .as_ref()
                .expect("place polled after completion")
                .node;
            // Acquire: pairs with the notifier's Release store.
            if node.notified.load(Ordering::Acquire) {
                self.joined = None;
                return Poll::Ready(());
            }
            node.waker.register(cx.waker());
            // Re-check after registering: a notifier that stored the flag before our registration
            // may have found no waker to wake.
            if node.notified.load(Ordering::Acquire) {
                self.joined = None;
                return Poll::Ready(());
            }
            Poll::Pending
        }
    }

    impl Drop for Place<'_> {
        fn drop(&mut self) {
            // Leave the line if still linked; a held notification is dropped (see module docs).
            if let Some(joined) = self.joined.take() {
                self.line.leave(&joined);
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
    use std::task::{Context, Poll};

    use crate::engine::loom::{AtomicUsize, Event, EventListener, Ordering};

    pub(crate) struct Line(Event, AtomicUsize);

    impl Line {
        pub(crate) fn new() -> Self {
            Line(Event::new(), AtomicUsize::new(0))
        }

        /// event-listener may notify without a lock: `hand_off` keeps its RMW for close.
        pub(crate) const NOTIFY_LOCKS: bool = false;

        pub(crate) fn listen(&self) -> Place<'_> {
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

        /// event-listener cannot insert at the front: the waiter rejoins at the back.
        pub(crate) fn listen_front(&self) -> Place<'_> {
            self.listen()
        }

        fn notify_additional(&self, n: usize) -> usize {
            self.0.notify_additional(n)
        }

        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all()
        }
    }

    pub(crate) struct Place<'a>(EventListener, PhantomData<&'a ()>);

    impl Place<'_> {
        pub(crate) fn discard(self) -> bool {
            self.0.discard()
        }
    }

    impl Future for Place<'_> {
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
        let list = Line::new();
        let mut a = list.listen();
        let mut b = list.listen();
        let c = list.listen();
        assert!((&mut a).now_or_never().is_none());
        assert!(list.notify_one().is_ok());
        assert!((&mut b).now_or_never().is_none(), "b is not the oldest");
        assert!((&mut a).now_or_never().is_some());
        assert!(list.notify_one().is_ok()); // b
        assert!(b.discard(), "b held a notification");
        assert!(!c.discard(), "c was never notified");
        assert!(list.notify_one().is_err(), "nobody left");
    }

    #[test]
    fn leaving_from_the_middle_keeps_the_order_and_a_reused_slot_is_not_mistaken() {
        let list = Line::new();
        let a = list.listen();
        let b = list.listen();
        let mut c = list.listen();
        assert!(!b.discard(), "b leaves from the middle, unnotified");
        assert!(list.notify_one().is_ok()); // a, the oldest
                                            // a's slot is free again; d takes it (a newer generation of the same slot).
        let mut d = list.listen();
        assert!(
            a.discard(),
            "a was notified, although its slot now serves d"
        );
        let mut front = list.listen_front();
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

    #[test]
    fn a_notify_that_finds_nobody_reports_the_places_inserted_so_far() {
        let list = Line::new();
        assert_eq!(list.notify_one(), Err(0));
        let a = list.listen();
        let b = list.listen_front();
        assert_eq!(
            list.registrations(),
            2,
            "every insert counts, at either end"
        );
        assert!(!a.discard());
        assert!(!b.discard());
        assert_eq!(
            list.notify_one(),
            Err(2),
            "leaving does not uncount: a later insert must still change the count"
        );
        let _c = list.listen();
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
        let list = Line::new();
        let mut a = Box::pin(list.listen());
        let mut b = Box::pin(list.listen());
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
        let mut c = Box::pin(list.listen());
        assert!(list.notify_one().is_ok()); // b
        assert!(list.notify_one().is_ok()); // c, never polled
        assert_eq!(wb.0.load(Ordering::Relaxed), 1);
        assert!(c
            .as_mut()
            .poll(&mut Context::from_waker(&waker_a))
            .is_ready());
        assert_eq!(wa.0.load(Ordering::Relaxed), 1, "c's poll woke nobody");
        drop(b);
    }
}
