//! The loom half of the sync facade (`RUSTFLAGS="--cfg shadowcat_loom"`), with the same API as
//! the native half in `native.rs`.
//!
//! * Atomics are loom's, so loom explores every interleaving and weak-memory outcome of the
//!   engine's own atomics (except that loom models `SeqCst` accesses as `AcqRel`).
//! * `Arc` and `Weak` stay std's: the engine uses `self: &Arc<Self>` receivers, which stable Rust
//!   accepts only for std's `Arc` (loom's `Arc` would need `arbitrary_self_types`), and loom 0.7
//!   has no `Weak`. A reference count is not part of any protocol the models check.
//! * [`Queue`] is crossbeam's `ArrayQueue` algorithm (Vyukov's bounded queue) rewritten on loom
//!   atomics, with crossbeam's orderings. Loom sees the queue's own stamps, `head` and `tail`, so
//!   a pop that the pool's atomics do not order after a push can find the queue empty, exactly as
//!   with the real queue, and a weakened ordering elsewhere in the engine is no longer hidden by
//!   the queue (DESIGN.md, "What is modelled, and how"). The queue adds no synchronisation of its
//!   own beyond crossbeam's.
//! * [`Event`] is a stand-in for `event_listener::Event` built on a `loom::sync::Mutex`, with the
//!   semantics of event-listener 5.4 that the engine relies on:
//!   - `listen` inserts the listener at the back of the list at once;
//!   - notified listeners always form a prefix of the list; `notify(n)` counts listeners that
//!     are already notified, `notify_additional(n)` notifies `n` more;
//!   - `notify*` emits a `SeqCst` fence, then takes the lock;
//!   - dropping a notified listener that has not completed passes its notification on (with the
//!     same "additional" flavour); `discard` does not, and reports whether it had one;
//!   - a completed listener is unlinked; wakers are woken after the lock is released.
//!
//!   The uninstrumented crate cannot be used: loom does not see the happens-before edges of its
//!   std `Mutex` and reports false deadlocks.

pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The waiter line's mutex, on loom's.
pub(crate) struct Mutex<T>(LoomMutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(LoomMutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

pub(crate) use std::sync::{Arc, Weak};

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::Mutex as LoomMutex;

/// The listener list, shared by the event and its listeners.
type Shared<T> = loom::sync::Arc<T>;

/// One slot of the [`Queue`].
struct Slot<T> {
    /// crossbeam's stamp: `tail + 1` once the slot holds the value pushed at position `tail`,
    /// `head + one_lap` once the value at position `head` was popped (free for the next lap).
    stamp: AtomicUsize,
    /// The value. The std mutex only gives interior mutability without `unsafe`: the stamp
    /// protocol makes every access exclusive, so it is never contended, and loom does not see it
    /// (it adds no happens-before edge and no scheduling point). The loom cell beside the value
    /// is touched on every access, so loom's race detector checks that the stamps really order
    /// the accesses.
    value: std::sync::Mutex<(loom::cell::UnsafeCell<()>, Option<T>)>,
}

/// loom's `UnsafeCell`: loom checks that the hot slots' protocol makes every access exclusive.
pub(crate) use loom::cell::UnsafeCell;

/// How many threads hold a worker index at once (as natively).
pub(crate) const WORKER_INDICES: usize = 64;

/// The loom thread's worker index: its loom thread id (0 for the model's main thread, then in
/// spawn order), so the slot a thread uses is the same in every execution of a model.
pub(crate) fn worker_index() -> Option<usize> {
    let id = format!("{:?}", loom::thread::current().id());
    id.trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .ok()
        .filter(|&i| i < WORKER_INDICES)
}

/// [`worker_index`]: a loom thread's index is its id, there from the start.
pub(crate) fn worker_index_if_claimed() -> Option<usize> {
    worker_index()
}

/// The idle set: a bounded MPMC queue on loom atomics, with the algorithm and orderings of
/// crossbeam's `ArrayQueue` (Vyukov's bounded queue: a stamp per slot, `head` and `tail`
/// carrying a lap above the index). Loom sees every access, so a pop that is not ordered after
/// a push by the pool's own atomics can miss the item, as it can with the real queue.
///
/// crossbeam's `SeqCst` CASes on `head`/`tail` and `SeqCst` fences are kept (loom models a
/// `SeqCst` access as `AcqRel`); its spin backoff becomes `loom::thread::yield_now` where a
/// thread waits for another one to finish its operation on a slot.
pub(crate) struct Queue<T> {
    head: AtomicUsize,
    tail: AtomicUsize,
    slots: Box<[Slot<T>]>,
    cap: usize,
    /// `(cap + 1).next_power_of_two()`: the index occupies the bits below it, the lap the bits
    /// above.
    one_lap: usize,
}

impl<T> Queue<T> {
    /// A queue holding at most `cap` items (`cap > 0`).
    pub(crate) fn new(cap: usize) -> Self {
        assert!(cap > 0, "queue capacity must be positive");
        let slots = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: std::sync::Mutex::new((loom::cell::UnsafeCell::new(()), None)),
            })
            .collect();
        Queue {
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            slots,
            cap,
            one_lap: (cap + 1).next_power_of_two(),
        }
    }

    /// How many items it can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// The position after `pos`: the next index, or index 0 of the next lap.
    fn next(&self, pos: usize) -> usize {
        let index = pos & (self.one_lap - 1);
        let lap = pos & !(self.one_lap - 1);
        if index + 1 < self.cap {
            pos + 1
        } else {
            lap.wrapping_add(self.one_lap)
        }
    }

    /// Appends `value`, or hands it back if the queue is full.
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[tail & (self.one_lap - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                // The slot is free for this lap: try to move the tail past it.
                match self.tail.compare_exchange_weak(
                    tail,
                    self.next(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let mut cell = slot.value.lock().expect("queue slot");
                        cell.0.with_mut(|_| ());
                        debug_assert!(cell.1.is_none(), "pushing into a full slot");
                        cell.1 = Some(value);
                        drop(cell);
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(t) => tail = t,
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot still holds last lap's value: full, unless a pop is under way.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(value);
                }
                loom::thread::yield_now();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another push took this position and has not stored its stamp yet.
                loom::thread::yield_now();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Removes the oldest item.
    pub(crate) fn pop(&self) -> Option<T> {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[head & (self.one_lap - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if head + 1 == stamp {
                // The slot holds a value for this lap: try to move the head past it.
                match self.head.compare_exchange_weak(
                    head,
                    self.next(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let mut cell = slot.value.lock().expect("queue slot");
                        cell.0.with_mut(|_| ());
                        let value = cell.1.take().expect("a stamped slot holds a value");
                        drop(cell);
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        return Some(value);
                    }
                    Err(h) => head = h,
                }
            } else if stamp == head {
                // The slot is empty for this lap: empty, unless a push is under way.
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail == head {
                    return None;
                }
                loom::thread::yield_now();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // Another pop took this position and has not stored its stamp yet.
                loom::thread::yield_now();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Notified {
    No,
    /// Notified by `notify(n)` (`additional == false`) or `notify_additional(n)`.
    Yes {
        additional: bool,
    },
}

struct Entry {
    id: u64,
    notified: Notified,
    waker: Option<Waker>,
}

#[derive(Default)]
struct List {
    /// In insertion order; the notified entries are a prefix.
    entries: VecDeque<Entry>,
    notified: usize,
    next_id: u64,
}

impl List {
    /// event-listener's `Inner::notify`: marks up to `n` (or `n - notified`) unnotified entries,
    /// oldest first, collecting their wakers into `wake`. Returns how many it marked.
    fn notify(&mut self, n: usize, additional: bool, wake: &mut Vec<Waker>) -> usize {
        let mut n = n;
        if !additional {
            if n < self.notified {
                return 0;
            }
            n -= self.notified;
        }
        let mut count = 0;
        for entry in self.entries.iter_mut().skip(self.notified) {
            if count == n {
                break;
            }
            debug_assert!(entry.notified == Notified::No);
            entry.notified = Notified::Yes { additional };
            if let Some(waker) = entry.waker.take() {
                wake.push(waker);
            }
            count += 1;
        }
        self.notified += count;
        count
    }

    /// Unlinks entry `id`; returns its notification, if it had one.
    fn remove(&mut self, id: u64) -> Option<Notified> {
        let pos = self.entries.iter().position(|e| e.id == id)?;
        let entry = self.entries.remove(pos).expect("position is in bounds");
        if entry.notified != Notified::No {
            self.notified -= 1;
        }
        Some(entry.notified)
    }
}

fn wake_all(wake: Vec<Waker>) {
    for waker in wake {
        waker.wake();
    }
}

/// A list of parked tasks with event-listener 5's semantics, on a loom mutex.
pub(crate) struct Event {
    list: Shared<LoomMutex<List>>,
}

impl Event {
    pub(crate) fn new() -> Self {
        Event {
            list: Shared::new(LoomMutex::new(List::default())),
        }
    }

    /// Inserts a listener at the back of the list at once.
    pub(crate) fn listen(&self) -> EventListener {
        let mut list = self.list.lock().unwrap();
        let id = list.next_id;
        list.next_id += 1;
        list.entries.push_back(Entry {
            id,
            notified: Notified::No,
            waker: None,
        });
        drop(list);
        EventListener {
            list: self.list.clone(),
            id: Some(id),
        }
    }

    fn notify_with(&self, n: usize, additional: bool) -> usize {
        // event-listener: "Make sure the notification comes after whatever triggered it."
        fence(Ordering::SeqCst);
        let mut wake = Vec::new();
        let count = self.list.lock().unwrap().notify(n, additional, &mut wake);
        wake_all(wake);
        count
    }

    /// Notifies `n` listeners that are not notified yet, oldest first; returns how many were.
    pub(crate) fn notify_additional(&self, n: usize) -> usize {
        self.notify_with(n, true)
    }

    /// Notifies every listener.
    pub(crate) fn notify_all(&self) -> usize {
        self.notify_with(usize::MAX, false)
    }
}

/// A registered listener: a future that completes once it is notified.
pub(crate) struct EventListener {
    list: Shared<LoomMutex<List>>,
    /// `None` once completed or discarded (the entry is then unlinked).
    id: Option<u64>,
}

impl EventListener {
    /// Removes the listener without passing its notification on, and says whether it had one.
    /// A listener that has already completed reports `false`.
    #[cfg_attr(not(feature = "event-listener-waiters"), allow(dead_code))]
    pub(crate) fn discard(mut self) -> bool {
        let Some(id) = self.id.take() else {
            return false;
        };
        let mut list = self.list.lock().unwrap();
        matches!(list.remove(id), Some(Notified::Yes { .. }))
    }
}

impl Future for EventListener {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let id = self.id.expect("listener polled after completion");
        let mut list = self.list.lock().unwrap();
        let entry = list
            .entries
            .iter_mut()
            .find(|e| e.id == id)
            .expect("listener entry missing");
        if let Notified::Yes { .. } = entry.notified {
            list.remove(id);
            drop(list);
            self.id = None;
            return Poll::Ready(());
        }
        match &entry.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => entry.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for EventListener {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let mut wake = Vec::new();
        {
            let mut list = self.list.lock().unwrap();
            // A notified listener dropped before it completed passes its notification on.
            if let Some(Notified::Yes { additional }) = list.remove(id) {
                list.notify(1, additional, &mut wake);
            }
        }
        wake_all(wake);
    }
}
