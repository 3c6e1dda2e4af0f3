//! The waiter line: a FIFO of parked acquirers with exactly the notification semantics the
//! engine needs, in two lock round trips per wait.
//!
//! event-listener takes its internal mutex four times per wait (insert on `listen`, waker
//! registration on the first poll, `notify`, and removal on the wake-up poll), and profiles of the
//! oversubscribed benchmarks showed that mutex, contended between the two workers, as the largest
//! single cost. This list takes its lock twice per wait:
//!
//! * `listen` pushes a node at the back (lock 1). The node's `AtomicWaker` is registered
//!   without the lock.
//! * `notify_additional(n)` pops the `n` oldest nodes (lock 2), then, after unlocking, marks each
//!   notified (`Release`) and wakes it. A popped node *is* a notified one, so the waking task
//!   never takes the lock: it sees `notified` (`Acquire`) and completes.
//! * `discard` (cancellation) takes the lock to unlink the node if it is still queued; a node
//!   that is no longer queued was popped by a notifier, so `discard` reports the notification,
//!   which the caller passes on (the engine's race 5).
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
    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use crate::engine::loom::{AtomicBool, AtomicWaker, Mutex, Ordering};

    /// One parked task.
    struct Node {
        /// Set (after the node was popped) by the notifier.
        notified: AtomicBool,
        waker: AtomicWaker,
    }

    /// Marks a popped node notified, then wakes its task (outside the list's lock).
    fn flag_and_wake(node: &Node) {
        // Release: what the notifier did before (the pushed item, the counted slot) is visible
        // to the task that sees the flag.
        node.notified.store(true, Ordering::Release);
        node.waker.wake();
    }

    /// The line of parked tasks.
    pub(crate) struct Line {
        /// Unnotified listeners, oldest first.
        queue: Mutex<VecDeque<std::sync::Arc<Node>>>,
    }

    impl Line {
        pub(crate) fn new() -> Self {
            Line {
                queue: Mutex::new(VecDeque::new()),
            }
        }

        /// Joins the back of the line; the listener can be notified from now on.
        pub(crate) fn listen(&self) -> Place<'_> {
            self.join(false)
        }

        /// Joins the *front* of the line: for a waiter that was served but must wait again (its
        /// resource failed a check and its unit went to teardown), so it keeps its place.
        pub(crate) fn listen_front(&self) -> Place<'_> {
            self.join(true)
        }

        fn join(&self, front: bool) -> Place<'_> {
            let node = std::sync::Arc::new(Node {
                notified: AtomicBool::new(false),
                waker: AtomicWaker::new(),
            });
            let mut queue = self.queue.lock();
            if front {
                queue.push_front(node.clone());
            } else {
                queue.push_back(node.clone());
            }
            drop(queue);
            Place {
                list: self,
                node: Some(node),
            }
        }

        /// Notifies up to `n` listeners that are not notified yet, oldest first; returns how many.
        pub(crate) fn notify_additional(&self, n: usize) -> usize {
            if n == 1 {
                // The hand-off path (a release with waiters): one node, no allocation.
                let node = self.queue.lock().pop_front();
                return match node {
                    Some(node) => {
                        flag_and_wake(&node);
                        1
                    }
                    None => 0,
                };
            }
            let woken: Vec<_> = {
                let mut queue = self.queue.lock();
                let take = n.min(queue.len());
                queue.drain(..take).collect()
            };
            for node in &woken {
                flag_and_wake(node);
            }
            woken.len()
        }

        /// Notifies every listener.
        pub(crate) fn notify_all(&self) -> usize {
            self.notify_additional(usize::MAX)
        }
    }

    /// A place in the [`Line`]: a future that completes once notified.
    pub(crate) struct Place<'a> {
        list: &'a Line,
        /// `None` once completed or discarded.
        node: Option<std::sync::Arc<Node>>,
    }

    impl Place<'_> {
        /// Leaves the line, and says whether a notification was held (and not yet consumed by
        /// completing). The caller passes a held notification on.
        pub(crate) fn discard(mut self) -> bool {
            let Some(node) = self.node.take() else {
                return false;
            };
            let mut queue = self.list.queue.lock();
            match queue.iter().position(|n| std::sync::Arc::ptr_eq(n, &node)) {
                Some(at) => {
                    queue.remove(at);
                    false
                }
                // Not queued: a notifier popped it, so it is (or is about to be marked) notified.
                None => true,
            }
        }
    }

    impl Future for Place<'_> {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let node = self
                .node
                .as_ref()
                .expect("listener polled after completion");
            // Acquire: pairs with the notifier's Release store.
            if node.notified.load(Ordering::Acquire) {
                self.node = None;
                return Poll::Ready(());
            }
            node.waker.register(cx.waker());
            // Re-check after registering: a notifier that stored the flag before our registration
            // may have found no waker to wake.
            if node.notified.load(Ordering::Acquire) {
                self.node = None;
                return Poll::Ready(());
            }
            Poll::Pending
        }
    }

    impl Drop for Place<'_> {
        fn drop(&mut self) {
            // Leave the line if still queued; a held notification is dropped (see module docs).
            if let Some(node) = self.node.take() {
                let mut queue = self.list.queue.lock();
                if let Some(at) = queue.iter().position(|n| std::sync::Arc::ptr_eq(n, &node)) {
                    queue.remove(at);
                }
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
}
