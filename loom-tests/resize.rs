//! Loom models of runtime resize (race 7 in DESIGN.md): a shrink racing a release must not leave
//! an idle resource above the new bound, a raise racing a registering waiter must not leave the
//! new room unused beside the parked waiter, and a raise racing an arrival must give its room to
//! the waiter parked before it.
#![cfg(shadowcat_loom)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use loom::thread;

/// Model 14a. A release races `set_max_connections` lowering the bound from 2 to 1 while both
/// resources are in use. Whatever the order, the released one is retired: either the shrink's
/// RMW comes after the release's publish and the shrink retires it, or the release's publish
/// comes after and sees the new bound. Checked while the other resource is still held, so
/// nothing released later can hide a resource left idle above the bound.
#[test]
fn shrink_racing_a_release_ends_within_the_bound() {
    model("shrink_racing_a_release_ends_within_the_bound", || {
        let (pool, tracker) = pool(2);
        let a = acquire(&pool).unwrap();
        let b = acquire(&pool).unwrap();
        let releaser = thread::spawn(move || drop(a));
        assert_eq!(pool.set_max_connections(1), Ok(2));
        releaser.join().unwrap();
        let s = pool.stats();
        assert_eq!((s.size, s.idle, s.destroyed.resized), (1, 0, 1), "{s:?}");
        drop(b);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model 14c. Two retirements race for one excess unit: max 3 lowered to 2 with two resources
/// idle, while the third is released. The shrink and the release may each pick an idle resource
/// to retire, but only one of them may go: a retirement frees its unit with a CAS that checks
/// the bound, and the loser puts its resource back.
#[test]
fn racing_retirements_retire_only_the_excess() {
    model("racing_retirements_retire_only_the_excess", || {
        let (pool, tracker) = pool(3);
        let a = acquire(&pool).unwrap();
        drop((acquire(&pool).unwrap(), acquire(&pool).unwrap())); // two idle
        let releaser = thread::spawn(move || drop(a));
        assert_eq!(pool.set_max_connections(2), Ok(3));
        releaser.join().unwrap();
        let s = pool.stats();
        assert_eq!((s.size, s.idle, s.destroyed.resized), (2, 2, 1), "{s:?}");
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model 14b. An acquirer finds the pool full and registers while `set_max_connections` raises
/// the bound from 1 to 2; the one resource stays checked out throughout. The waiter must be
/// served from the new room: either the resize sees it counted and hands it a unit, or the
/// waiter's registration sees the raised bound and grows for the line. A waiter left parked
/// beside the room blocks forever, which loom reports as a deadlock.
#[test]
fn raise_racing_a_registration_serves_the_waiter() {
    model("raise_racing_a_registration_serves_the_waiter", || {
        let (pool, tracker) = pool_with(options(1).max_connections_ceiling(2), Vec::new());
        let held = acquire(&pool).unwrap();
        let p = pool.clone();
        let waiter = thread::spawn(move || drop(acquire(&p).unwrap()));
        assert_eq!(pool.set_max_connections(2), Ok(1));
        waiter.join().unwrap();
        drop(held);
        let s = pool.stats();
        assert_eq!((s.size, s.created), (2, 2), "{s:?}");
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model 14d. A waiter is parked (the one resource held) when `set_max_connections` raises the
/// bound from 1 to 2 while another acquire arrives. The new unit is the waiter's: the arrival,
/// polled once, must not complete with it. Until the resizer has handed the room to the waiters
/// counted before its RMW, arrivals grow below the old bound and register behind them instead
/// (without that, an arrival between the bound's store and the hand-off took the unit, and the
/// waiter waited for the next release).
#[test]
fn raise_serves_a_parked_waiter_before_an_arrival() {
    model("raise_serves_a_parked_waiter_before_an_arrival", || {
        let (pool, tracker) = pool_with(options(1).max_connections_ceiling(2), Vec::new());
        let held = acquire(&pool).unwrap();
        let waiter = parked_acquire(&pool);
        let p = pool.clone();
        let arrival = thread::spawn(move || {
            let mut fut: AcquireFut = Box::pin(async move { p.acquire().await });
            let overtook = poll_once(&mut fut).is_some();
            (overtook, fut)
        });
        assert_eq!(pool.set_max_connections(2), Ok(1));
        let (overtook, arrival) = arrival.join().unwrap();
        assert!(
            !overtook,
            "an arrival took the raise's room ahead of the parked waiter"
        );
        // The waiter was served by the raise (it would block for good otherwise); the arrival
        // is served by the next release.
        let served = finish(waiter).unwrap();
        drop(held);
        drop(finish(arrival).unwrap());
        drop(served);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}
