//! The packed state word: size, idle-available count, counted waiters and the closed bit.
//!
//! All four fields live in one `AtomicU64` so that one compare-and-swap sees and changes them
//! together. That is what closes the classic lost-wakeup window (bug class 3 in the notes): a task
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
//!   than `avail`: the rest are reserved for notified waiters (see `waiters.rs`).
//! * `waiters`: tasks registered as waiting and not yet served or cancelled.
//! * `closed`: set once by `close()` or by dropping the last `Pool` handle, never cleared.

/// Largest `max_connections` the word can count.
pub(crate) const MAX_SIZE: usize = (1 << 20) - 1;
/// Largest number of tasks that can be counted as waiting at once.
pub(crate) const MAX_WAITERS: usize = (1 << 22) - 1;

const WAITERS_SHIFT: u32 = 0;
const AVAIL_SHIFT: u32 = 22;
const SIZE_SHIFT: u32 = 42;

/// One waiter.
pub(crate) const WAITER: u64 = 1 << WAITERS_SHIFT;
/// One available idle resource.
pub(crate) const AVAIL: u64 = 1 << AVAIL_SHIFT;
/// One unit of capacity.
pub(crate) const SIZE: u64 = 1 << SIZE_SHIFT;
/// The closed bit.
pub(crate) const CLOSED: u64 = 1 << 63;

const WAITERS_MASK: u64 = (MAX_WAITERS as u64) << WAITERS_SHIFT;
const AVAIL_MASK: u64 = (MAX_SIZE as u64) << AVAIL_SHIFT;
const SIZE_MASK: u64 = (MAX_SIZE as u64) << SIZE_SHIFT;

/// A decoded snapshot of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct State(pub(crate) u64);

impl State {
    #[inline]
    pub(crate) fn waiters(self) -> usize {
        ((self.0 & WAITERS_MASK) >> WAITERS_SHIFT) as usize
    }

    #[inline]
    pub(crate) fn avail(self) -> usize {
        ((self.0 & AVAIL_MASK) >> AVAIL_SHIFT) as usize
    }

    #[inline]
    pub(crate) fn size(self) -> usize {
        ((self.0 & SIZE_MASK) >> SIZE_SHIFT) as usize
    }

    #[inline]
    pub(crate) fn is_closed(self) -> bool {
        self.0 & CLOSED != 0
    }

    /// The same word with `avail` set to zero (used when closing: idle items become the closer's).
    #[inline]
    pub(crate) fn without_avail(self) -> u64 {
        self.0 & !AVAIL_MASK
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

#[cfg(test)]
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
        assert_eq!(State(full.without_avail()).avail(), 0);
        assert_eq!(State(full.without_avail()).size(), MAX_SIZE);
    }
}
