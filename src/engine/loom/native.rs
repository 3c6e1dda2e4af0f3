//! The std half of the facade: what normal builds run.

pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

/// A cell for the hot slots' values (`engine/hot.rs`, the crate's one `unsafe` module), with
/// loom's `UnsafeCell` API so that loom builds can check every access.
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer to the value; the caller's protocol makes the access exclusive.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// How many threads hold a worker index at once; later threads get none.
pub(crate) const WORKER_INDICES: usize = 64;

/// Worker indices owned by live threads: one bit each.
static CLAIMED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A thread's worker index, claimed from `CLAIMED` on first use (the lowest free one) and given
/// back when the thread exits, so live threads never share one and a runtime's workers get small,
/// distinct numbers however many threads came and went before. `WORKER_INDICES` if none was free.
struct WorkerIndex(usize);

impl WorkerIndex {
    fn claim() -> Self {
        use std::sync::atomic::Ordering;
        // Relaxed: a hint for the CAS.
        let mut bits = CLAIMED.load(Ordering::Relaxed);
        while bits != u64::MAX {
            let free = bits.trailing_ones() as usize;
            // AcqRel: acquire the previous owner's last writes to what it owned under this index
            // (released when it gave the index back), so we continue from its last stores.
            match CLAIMED.compare_exchange_weak(
                bits,
                bits | 1 << free,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return WorkerIndex(free),
                Err(actual) => bits = actual,
            }
        }
        WorkerIndex(WORKER_INDICES)
    }
}

impl Drop for WorkerIndex {
    fn drop(&mut self) {
        // From now on this thread has no index: the bit may go to another thread.
        let _ = CACHED.try_with(|cached| cached.set(EXITED));
        if self.0 < WORKER_INDICES {
            // Release: our stores under this index happen-before the next owner's claim.
            CLAIMED.fetch_and(!(1 << self.0), std::sync::atomic::Ordering::Release);
        }
    }
}

/// `CACHED` before the first claim.
const UNSET: usize = usize::MAX;
/// `CACHED` once the thread gave its index back.
const EXITED: usize = usize::MAX - 1;

thread_local! {
    /// Owns the index and gives it back at thread exit (a local with a destructor).
    static INDEX: WorkerIndex = WorkerIndex::claim();
    /// The index, read on the hot path: a `const` local without a destructor is one load.
    static CACHED: std::cell::Cell<usize> = const { std::cell::Cell::new(UNSET) };
}

/// This thread's worker index, `0..WORKER_INDICES`: the per-thread statistics cells and the hot
/// slots use it. `None` if every index is taken by a live thread, or once the thread's locals
/// are being torn down (a connection dropped from another thread-local's destructor).
#[inline]
pub(crate) fn worker_index() -> Option<usize> {
    // One compare on the hot path: a claimed index is below `WORKER_INDICES`; everything else
    // (not yet claimed, given back, none free) is out of line.
    match CACHED.try_with(std::cell::Cell::get).unwrap_or(EXITED) {
        i if i < WORKER_INDICES => Some(i),
        other => worker_index_cold(other),
    }
}

/// This thread's worker index if it has claimed one already; never claims. For the release's
/// park, which must not hold a call on its path (`HotSlots::park`).
#[inline]
pub(crate) fn worker_index_if_claimed() -> Option<usize> {
    match CACHED.try_with(std::cell::Cell::get).unwrap_or(EXITED) {
        i if i < WORKER_INDICES => Some(i),
        _ => None,
    }
}

/// [`worker_index`] for a thread without a usable index: the first call claims one.
#[cold]
fn worker_index_cold(cached: usize) -> Option<usize> {
    if cached != UNSET {
        return None;
    }
    let i = INDEX.try_with(|index| index.0).ok()?;
    let _ = CACHED.try_with(|cached| cached.set(i));
    (i < WORKER_INDICES).then_some(i)
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
