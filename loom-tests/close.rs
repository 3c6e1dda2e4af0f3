//! Loom models: `close()` racing waiters, releases and capacity returns. Nothing may be left
//! idle, reserved or counted in a closed pool: `close()` itself only returns once `size` is 0,
//! so anything stranded shows up as a loom deadlock.
#![cfg(shadowcat_loom)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use loom::future::block_on;
use loom::thread;
use shadowcat_pool::Error;

/// Model 4. An acquire racing `close()` (while the only resource is checked out) always ends
/// with `Closed`, whether it was parked, registering or just arriving.
#[test]
fn acquire_racing_close() {
    model("acquire_racing_close", || {
        let (pool, tracker) = pool(1);
        let held = acquire(&pool).unwrap();
        let p = pool.clone();
        let waiter = thread::spawn(move || matches!(acquire(&p), Err(Error::Closed)));
        let p = pool.clone();
        let closer = thread::spawn(move || block_on(p.close()));
        assert!(waiter.join().unwrap(), "a waiter did not wake with Closed");
        drop(held);
        closer.join().unwrap();
        assert_closed_and_empty(&pool, &tracker);
    });
}

/// Model 5. A release racing `close()`: the resource is destroyed exactly once and never left
/// idle in the closed pool.
#[test]
fn release_racing_close() {
    model("release_racing_close", || {
        let (pool, tracker) = pool(1);
        let held = acquire(&pool).unwrap();
        let releaser = thread::spawn(move || drop(held));
        block_on(pool.close());
        releaser.join().unwrap();
        assert_closed_and_empty(&pool, &tracker);
        let s = pool.stats();
        assert_eq!((s.created, s.destroyed.closed), (1, 1), "{s:?}");
    });
}

/// Close racing a depositor that hands an item to a parked waiter: the release pushes and
/// notifies, then re-checks `closed` with an RMW on the state word; the closer sets `closed`
/// with an RMW and drains. Either the depositor sees `closed` or the closer sees the deposit.
/// The waiter gets the item (and gives it back) or `Closed`.
#[test]
fn close_racing_item_handoff() {
    model("close_racing_item_handoff", || {
        let (pool, tracker) = pool(1);
        let held = acquire(&pool).unwrap();
        let fut = parked_acquire(&pool);
        let waiter = thread::spawn(move || match finish(fut) {
            Ok(h) => drop(h),
            Err(e) => assert!(matches!(e, Error::Closed), "{e:?}"),
        });
        let releaser = thread::spawn(move || drop(held));
        block_on(pool.close());
        waiter.join().unwrap();
        releaser.join().unwrap();
        assert_closed_and_empty(&pool, &tracker);
    });
}

/// Close racing a depositor that hands a unit of capacity (a slot reservation: `detach` frees
/// the unit while a waiter is parked) to the waiter: the slot is never stranded, and the
/// waiter creates with it or gets `Closed`.
#[test]
fn close_racing_slot_handoff() {
    model("close_racing_slot_handoff", || {
        let (pool, tracker) = pool(1);
        let held = acquire(&pool).unwrap();
        let fut = parked_acquire(&pool);
        let waiter = thread::spawn(move || match finish(fut) {
            Ok(h) => drop(h),
            Err(e) => assert!(matches!(e, Error::Closed), "{e:?}"),
        });
        let detacher = thread::spawn(move || held.detach());
        block_on(pool.close());
        waiter.join().unwrap();
        detacher.join().unwrap();
        assert_closed_and_empty(&pool, &tracker);
    });
}
