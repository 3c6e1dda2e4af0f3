//! The waiter line: a FIFO of parked acquirers with exactly the notification semantics the
//! engine needs, in two lock round trips per wait.
//!
//! event-listener takes its internal mutex four times per wait (insert on `listen`, waker
//! registration on the first poll, `notify`, and removal on the wake-up poll), and profiles of the
//! oversubscribed benchmarks showed that mutex, contended between the two workers, as the largest
//! single cost. This list takes its lock twice per wait:
//!
//! * `listen` links a slot at the back (lock 1). Slots live in a slab and are reused, each with
//!   its node (a flag and an `AtomicWaker`, registered without the lock), so waiting allocates
//!   nothing in steady state, and leaving from anywhere in the line is O(1): a doubly linked
//!   list threaded through the slab, with a generation number per slot.
//! * `notify_additional(n)` unlinks the `n` oldest places and marks each notified (`Release`)
//!   under the lock (lock 2), then wakes them after unlocking. A popped node *is* a notified one, so the waking task
//!   never takes the lock: it sees `notified` (`Acquire`) and completes.
//! * `discard` (cancellation) takes the lock to unlink the slot if it is still linked in the same
//!   generation; otherwise a notifier unlinked it, so `discard` reports the notification, which
//!   the caller passes on (race R5).
//!
//! Semantics match what the engine relies on from event-listener 5: `listen` registers at once;
//! `notify_additional` notifies listeners that are not notified yet, oldest first, and says how
//! many; `discard` says whether a notification was held. Unlike event-listener, dropping a
//! listener without `discard` does not pass a notification on; the engine always discards.
//!
//! The same code runs under loom (on the facade's loom `Mutex`, `AtomicBool` and `AtomicWaker`),
//! so the loom models check this list itself, not a stand-in. The `event-listener-waiters` cargo
//! feature switches the line back to event-listener, for comparison.

#[cfg(not(feature = "event-listener-waiters"))]
mod native {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use crate::engine::loom::{AtomicBool, AtomicWaker, Mutex, Ordering};

    /// One parked task's flag and waker. Shared between the slot that holds it and the [`Place`]
    /// that waits on it; reused by later places once the slot is the only holder.
    struct Node {
        /// Set (after the slot was unlinked) by the notifier.
        notified: AtomicBool,
        waker: AtomicWaker,
    }

    /// Wakes the task of a node that was unlinked and flagged under the lock (`List::pop_front`);
    /// called after unlocking. The node may already serve a later place (its slot was reused):
    /// then this wake is spurious, which a future tolerates (it re-checks its flag and
    /// re-registers).
    fn wake(node: &Node) {
        node.waker.wake();
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
        /// Slots not in use.
        free: Vec<u32>,
        head: u32,
        tail: u32,
    }

    impl List {
        /// A slot for a new place: a free one (with its node, if no finished place still holds
        /// that node), or a new one.
        fn take_slot(&mut self) -> u32 {
            match self.free.pop() {
                Some(i) => {
                    let slot = &mut self.slots[i as usize];
                    slot.generation = slot.generation.wrapping_add(1);
                    if Arc::strong_count(&slot.node) == 1 {
                        // Only this slot holds it, and only under the lock can it be cloned, so
                        // nobody reads the flag any more; it was set under this lock, so the
                        // reset is ordered after it. The fence pairs with the `Release` decrement
                        // of the last other holder's `Arc` drop (as `Arc::drop` itself does), so
                        // that holder's reads of the flag come before the reset.
                        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                        // Relaxed: published to the new place by the lock.
                        slot.node.notified.store(false, Ordering::Relaxed);
                    } else {
                        // A notified place has not yet seen its flag: leave its node alone.
                        slot.node = Arc::new(Node::new());
                    }
                    i
                }
                None => {
                    self.slots.push(Slot {
                        node: Arc::new(Node::new()),
                        generation: 0,
                        linked: false,
                        prev: NIL,
                        next: NIL,
                    });
                    (self.slots.len() - 1) as u32
                }
            }
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
            self.free.push(i);
        }

        /// Unlinks the oldest place and flags it notified, under the lock, and returns its node to
        /// be woken after unlocking. Flagging under the lock orders the flag before any later
        /// reuse of the node (which resets it under the same lock).
        fn pop_front(&mut self) -> Option<Arc<Node>> {
            let i = self.head;
            if i == NIL {
                return None;
            }
            let node = self.slots[i as usize].node.clone();
            self.unlink(i);
            // Release: what the notifier did before (the pushed item, the counted slot) is visible
            // to the task that sees the flag.
            node.notified.store(true, Ordering::Release);
            Some(node)
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
    }

    impl Line {
        pub(crate) fn new() -> Self {
            Line {
                list: Mutex::new(List {
                    head: NIL,
                    tail: NIL,
                    ..List::default()
                }),
            }
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

        /// Notifies up to `n` places that are not notified yet, oldest first; returns how many.
        pub(crate) fn notify_additional(&self, n: usize) -> usize {
            if n == 1 {
                // The hand-off path (a release with waiters): one node, no allocation.
                let node = self.list.lock().pop_front();
                return match node {
                    Some(node) => {
                        wake(&node);
                        1
                    }
                    None => 0,
                };
            }
            // close() only: collect, then wake outside the lock.
            let woken: Vec<_> = {
                let mut list = self.list.lock();
                std::iter::from_fn(|| list.pop_front()).take(n).collect()
            };
            for node in &woken {
                wake(node);
            }
            woken.len()
        }

        /// Notifies every place.
        pub(crate) fn notify_all(&self) -> usize {
            self.notify_additional(usize::MAX)
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

    use crate::engine::loom::{Event, EventListener};

    pub(crate) struct Line(Event);

    impl Line {
        pub(crate) fn new() -> Self {
            Line(Event::new())
        }

        pub(crate) fn listen(&self) -> Place<'_> {
            Place(self.0.listen(), PhantomData)
        }

        /// event-listener cannot insert at the front: the waiter rejoins at the back.
        pub(crate) fn listen_front(&self) -> Place<'_> {
            self.listen()
        }

        pub(crate) fn notify_additional(&self, n: usize) -> usize {
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
        assert_eq!(list.notify_additional(1), 1);
        assert!((&mut b).now_or_never().is_none(), "b is not the oldest");
        assert!((&mut a).now_or_never().is_some());
        assert_eq!(list.notify_additional(1), 1); // b
        assert!(b.discard(), "b held a notification");
        assert!(!c.discard(), "c was never notified");
        assert_eq!(list.notify_additional(5), 0, "nobody left");
    }

    #[test]
    fn leaving_from_the_middle_keeps_the_order_and_a_reused_slot_is_not_mistaken() {
        let list = Line::new();
        let a = list.listen();
        let b = list.listen();
        let mut c = list.listen();
        assert!(!b.discard(), "b leaves from the middle, unnotified");
        assert_eq!(list.notify_additional(1), 1); // a, the oldest
                                                  // a's slot is free again; d takes it (a newer generation of the same slot).
        let mut d = list.listen();
        assert!(
            a.discard(),
            "a was notified, although its slot now serves d"
        );
        let mut front = list.listen_front();
        assert_eq!(list.notify_additional(1), 1);
        assert!(
            (&mut front).now_or_never().is_some(),
            "listen_front is served first"
        );
        assert_eq!(list.notify_additional(1), 1);
        assert!(
            (&mut c).now_or_never().is_some(),
            "then c, in arrival order"
        );
        assert!((&mut d).now_or_never().is_none());
        assert_eq!(list.notify_additional(1), 1);
        assert!((&mut d).now_or_never().is_some());
    }
}
