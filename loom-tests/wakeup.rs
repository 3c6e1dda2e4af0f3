//! Loom models: wake-ups between releases and waiters (no lost wake-up, no coalesced notify,
//! cancelled notified waiters, a hand-over cell still full when its place is reused, and the
//! two handoff races of `src/engine/handoff.rs` and
//! `src/engine/waiter.rs`: races R3 and R4 in DESIGN.md §7).
#![cfg(shadowcat_loom)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use loom::thread;

/// Model 1. max 1, two acquirers, one release: no lost wake-up. Each acquirer gives its resource
/// back, so both must finish; a lost wake-up shows up as a loom deadlock.
#[test]
fn lost_wakeup_max1_two_acquirers_one_release() {
    model("lost_wakeup_max1_two_acquirers_one_release", || {
        let (pool, tracker) = pool(1);
        let first = acquire(&pool).unwrap();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || drop(acquire(&pool).unwrap()))
            })
            .collect();
        drop(first);
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_at_rest(&pool, &tracker);
        assert_eq!(tracker.created.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model 2. max 2, two parked waiters, two back-to-back releases: both waiters finish while
/// keeping what they got, so each release must wake a different waiter (no coalesced notify).
#[test]
fn two_releases_wake_two_waiters() {
    model("two_releases_wake_two_waiters", || {
        let (pool, tracker) = pool(2);
        let a = acquire(&pool).unwrap();
        let b = acquire(&pool).unwrap();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let fut = parked_acquire(&pool);
                thread::spawn(move || finish(fut).unwrap())
            })
            .collect();
        drop(a);
        drop(b);
        let held: Vec<Held> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(pool.stats().in_use, 2);
        drop(held);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model 3. A notified waiter is cancelled before it polls again: its reservation is passed on
/// and the other waiter still acquires.
#[test]
fn notified_waiter_cancelled_passes_it_on() {
    model("notified_waiter_cancelled_passes_it_on", || {
        let (pool, tracker) = pool(1);
        let held = acquire(&pool).unwrap();
        // Parked first in line, then cancelled without being polled again, racing the release.
        let fut = parked_acquire(&pool);
        let cancelled = thread::spawn(move || drop(fut));
        let p2 = pool.clone();
        let other = thread::spawn(move || drop(acquire(&p2).unwrap()));
        drop(held);
        cancelled.join().unwrap();
        other.join().unwrap();
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// A hand-over cell still full when its place in line is reused. A release hands its item to
/// the first waiter in the notification (into the cell of its place); before that waiter runs,
/// a second waiter parks in the same slot, and a second release notifies it. The full cell
/// refuses the second item, which goes to the queue before the second waiter is flagged.
/// Whichever waiter looks first takes the item in the cell (they are interchangeable); the other
/// finds the cell empty and pops the queued one. Both must end up holding a resource.
#[test]
fn a_full_cell_sends_the_next_item_through_the_queue() {
    model("a_full_cell_sends_the_next_item_through_the_queue", || {
        let (pool, tracker) = pool(2);
        let a = acquire(&pool).unwrap();
        let b = acquire(&pool).unwrap();
        let first = parked_acquire(&pool);
        // Handed to `first`, in its cell; `first`'s slot is free again.
        drop(a);
        // Parks in the slot `first` left.
        let second = parked_acquire(&pool);
        let t1 = thread::spawn(move || finish(first).unwrap());
        let t2 = thread::spawn(move || finish(second).unwrap());
        drop(b);
        let held = [t1.join().unwrap(), t2.join().unwrap()];
        assert_eq!(pool.stats().in_use, 2);
        drop(held);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Race 3 (`hand_off`): a release whose notify finds nobody (the only counted waiter is already
/// notified) publishes its item; a second waiter that inserted its listener after that notify
/// and registered before the publish must not sleep beside the published item. `hand_off`
/// sees the registration counter move, takes the item back and notifies again.
#[test]
fn race3_notify_finds_nobody_then_waiter_registers() {
    model("race3_notify_finds_nobody_then_waiter_registers", || {
        let (pool, tracker) = pool(2);
        let a = acquire(&pool).unwrap();
        let b = acquire(&pool).unwrap();
        let fut = parked_acquire(&pool);
        let first = thread::spawn(move || finish(fut).unwrap());
        // `a` goes to the registered waiter (a reservation it has not taken yet).
        drop(a);
        let p2 = pool.clone();
        let second = thread::spawn(move || acquire(&p2).unwrap());
        // This release may see the first waiter still counted, notify nobody, and publish
        // while the second waiter registers.
        drop(b);
        let x = first.join().unwrap();
        let y = second.join().unwrap();
        drop((x, y));
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Race 4: a listener can be notified from the moment it is inserted, before its task is
/// counted as waiting. Such a task may then claim a published item instead of parking; it must
/// pass the reservation it was handed on, or that item stays reserved for nobody.
///
/// Preemption bound 2: with the loom queue, bound 3 explores millions of schedules (more than
/// ten minutes); mutants 08 and 10, which it catches, are also caught by other models.
#[test]
fn race4_notified_before_counted() {
    model_capped("race4_notified_before_counted", 2, || {
        let (pool, tracker) = pool(2);
        let a = acquire(&pool).unwrap();
        let b = acquire(&pool).unwrap();
        // Registered first, and handed `a` (a reservation it has not taken yet).
        let fut = parked_acquire(&pool);
        drop(a);
        // It takes `a` and gives it straight back, racing a second waiter that inserts its
        // listener (which `b`'s handoff may notify before the waiter is counted) and a release
        // of `b`.
        let first = thread::spawn(move || drop(finish(fut).unwrap()));
        let p2 = pool.clone();
        let second = thread::spawn(move || drop(acquire(&p2).unwrap()));
        drop(b);
        first.join().unwrap();
        second.join().unwrap();
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Reservations are interchangeable: max 2, two parked waiters, then a `detach` (a unit of
/// capacity, a slot reservation for the first waiter) and a release (an item for the second),
/// back to back on one thread. The second waiter may take the slot first; the first then finds
/// no slot and pops the item, whose push only the second waiter's slot-taking CAS orders before
/// that pop (`take_slot` reads the count with `Acquire`). Both waiters must get a resource.
#[test]
fn slot_and_item_for_two_waiters() {
    model("slot_and_item_for_two_waiters", || {
        let (pool, tracker) = pool(2);
        let a = acquire(&pool).unwrap();
        let b = acquire(&pool).unwrap();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let fut = parked_acquire(&pool);
                thread::spawn(move || finish(fut).unwrap())
            })
            .collect();
        a.detach();
        drop(b);
        let held: Vec<Held> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(pool.stats().in_use, 2);
        drop(held);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}
