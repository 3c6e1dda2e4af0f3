//! The std half of the facade: what normal builds run.

pub(crate) use futures_util::task::AtomicWaker;
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
pub(crate) use std::sync::{Arc, Weak};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::{IntoNotification, Listener};

/// A mutex for the waiter line's slow path (parking_lot: no poisoning, a fast uncontended
/// path). Never held on the acquire/release fast path.
pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(parking_lot::Mutex::new(value))
    }

    #[inline]
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
        self.0.lock()
    }
}

/// The idle set: a bounded lock-free MPMC queue (Vyukov's bounded queue, via crossbeam).
pub(crate) struct Queue<T>(crossbeam_queue::ArrayQueue<T>);

impl<T> Queue<T> {
    /// A queue holding at most `cap` items (`cap > 0`, checked by `PoolOptions::build`).
    pub(crate) fn new(cap: usize) -> Self {
        Queue(crossbeam_queue::ArrayQueue::new(cap))
    }

    /// Appends `value`, or hands it back if the queue is full.
    #[inline]
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        self.0.push(value)
    }

    /// Removes the oldest item.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        self.0.pop()
    }

    /// How many items it can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

/// A per-worker hot slot: holds at most one value, on a cache line of its own, plus the *seal*:
/// the newest epoch of the hot slots' handshake (`engine/hot.rs`) that flushed it. A put succeeds
/// only into an empty slot sealed no later than the epoch its caller saw.
///
/// A `parking_lot` mutex: `put` and `take` only *try* to lock (one CAS to lock, one to unlock, on a
/// line that in steady state only its own worker writes; a busy slot counts as full for `put` and
/// as empty for `take`), while `seal` waits for the lock, so a flush never misses a put that is
/// under way: the lock orders every put before or after each seal.
pub(crate) struct Slot<T>(crossbeam_utils::CachePadded<parking_lot::Mutex<SlotCell<T>>>);

struct SlotCell<T> {
    sealed: usize,
    value: Option<T>,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Self {
        Slot(crossbeam_utils::CachePadded::new(parking_lot::Mutex::new(
            SlotCell {
                sealed: 0,
                value: None,
            },
        )))
    }

    /// Stores `value` if the slot is empty, not busy, and not sealed after epoch `seen`;
    /// otherwise hands it back.
    #[inline]
    pub(crate) fn put(&self, value: T, seen: usize) -> Result<(), T> {
        match self.0.try_lock() {
            Some(mut cell) if cell.value.is_none() && cell.sealed <= seen => {
                cell.value = Some(value);
                Ok(())
            }
            _ => Err(value),
        }
    }

    /// Takes the value, if the slot holds one and is not busy.
    #[inline]
    pub(crate) fn take(&self) -> Option<T> {
        self.0.try_lock()?.value.take()
    }

    /// Seals the slot at `epoch` (waiting for a put or take under way) and takes its value.
    pub(crate) fn seal(&self, epoch: usize) -> Option<T> {
        let mut cell = self.0.lock();
        cell.sealed = cell.sealed.max(epoch);
        cell.value.take()
    }

    /// Whether the slot holds a value (a snapshot, for statistics; a busy slot counts as full).
    pub(crate) fn is_full(&self) -> bool {
        self.0.try_lock().is_none_or(|cell| cell.value.is_some())
    }
}

/// This thread's index for hot slots: a number handed out once per thread, in the order threads
/// first ask (so a runtime's workers get consecutive ones). `None` while the thread's locals are
/// being torn down (a connection dropped from another thread-local's destructor).
#[inline]
pub(crate) fn worker_index() -> Option<usize> {
    use std::cell::Cell;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX
        .try_with(|index| {
            let mut i = index.get();
            if i == usize::MAX {
                // Relaxed: the counter only hands out distinct numbers.
                i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                index.set(i);
            }
            i
        })
        .ok()
}

/// A list of parked tasks: event-listener's `Event`.
pub(crate) struct Event(event_listener::Event);

impl Event {
    pub(crate) fn new() -> Self {
        Event(event_listener::Event::new())
    }

    /// Inserts a listener at the back of the list at once (under the event's lock); it can
    /// be notified from now on.
    #[inline]
    pub(crate) fn listen(&self) -> EventListener {
        EventListener(self.0.listen())
    }

    /// Notifies `n` listeners that are not notified yet, oldest first, and returns how many
    /// were. event-listener emits a `SeqCst` fence, then takes its lock. (It wakes the tasks
    /// while holding the lock; the loom stand-in wakes them after releasing it.)
    #[inline]
    pub(crate) fn notify_additional(&self, n: usize) -> usize {
        self.0.notify(n.additional())
    }

    /// Notifies every listener. Emits a `SeqCst` fence first.
    #[inline]
    pub(crate) fn notify_all(&self) -> usize {
        self.0.notify(usize::MAX)
    }
}

/// A registered listener: a future that completes once it is notified.
pub(crate) struct EventListener(event_listener::EventListener);

impl EventListener {
    /// Removes the listener without passing its notification on, and says whether it had
    /// one. A listener that has already completed reports `false`.
    #[inline]
    #[cfg_attr(not(feature = "event-listener-waiters"), allow(dead_code))]
    pub(crate) fn discard(self) -> bool {
        self.0.discard()
    }
}

impl Future for EventListener {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}
