//! Loom models: units of capacity coming back (failed or cancelled creates, `detach`,
//! `PoolConnection::close`) and being handed to waiters, and a release handed to a task that
//! is itself creating.
#![cfg(shadowcat_loom)]

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use common::*;
use loom::thread;
use shadowcat_pool::Error;

/// Model 6a. The first create fails while another acquire races it: the failed create's unit
/// comes back, and the other acquirer (parked or arriving) is woken and creates.
#[test]
fn create_failure_wakes_other_acquirer() {
    model("create_failure_wakes_other_acquirer", || {
        let (pool, tracker) = pool_with(options(1), vec![Create::Fail]);
        let p = pool.clone();
        let other = thread::spawn(move || acquire(&p).map(drop).is_ok());
        let mine = acquire(&pool).map(drop).is_ok();
        let theirs = other.join().unwrap();
        assert!(
            mine ^ theirs,
            "exactly one acquire fails (mine {mine}, theirs {theirs})"
        );
        assert_eq!(tracker.attempts.load(SeqCst), 2);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model 6b. An acquire cancelled in the middle of its create, racing another acquire: the unit
/// comes back and the other acquirer is woken and creates.
#[test]
fn cancelled_create_wakes_other_acquirer() {
    model("cancelled_create_wakes_other_acquirer", || {
        let (pool, tracker) = pool_with(options(1), vec![Create::YieldThenOk]);
        let p = pool.clone();
        let cancelled = thread::spawn(move || {
            let mut fut = Box::pin(p.acquire());
            if let Some(r) = poll_once(&mut fut) {
                drop(Held::new(r.unwrap()));
            }
            drop(fut);
        });
        drop(acquire(&pool).unwrap());
        cancelled.join().unwrap();
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Slot reservation: the unit of a failing create goes to the waiter that was parked when it
/// failed, not to a task that arrives afterwards (even though that task could create with it).
#[test]
fn failed_create_slot_goes_to_parked_waiter() {
    model("failed_create_slot_goes_to_parked_waiter", || {
        let gate = Gate::new();
        let (pool, tracker) = pool_with(options(1), vec![Create::GateThenFail(gate.clone())]);
        let order = Arc::new(AtomicUsize::new(0));
        // In line: a creator (its create waits on the gate), then a waiter.
        let creator = parked_acquire(&pool);
        let waiter = parked_acquire(&pool);
        let o = order.clone();
        let waiter = thread::spawn(move || {
            let _h = finish(waiter).unwrap();
            o.fetch_add(1, SeqCst)
        });
        gate.open();
        let p = pool.clone();
        let o = order.clone();
        let late = thread::spawn(move || {
            let _h = acquire(&p).unwrap();
            o.fetch_add(1, SeqCst)
        });
        assert!(matches!(finish(creator), Err(Error::Create(_))));
        let w = waiter.join().unwrap();
        let l = late.join().unwrap();
        assert!(w < l, "a late arrival was served before the parked waiter");
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model 9a. `detach()` racing a waiter: the freed unit wakes it and it creates a replacement.
#[test]
fn detach_wakes_waiter() {
    model("detach_wakes_waiter", || {
        let (pool, tracker) = pool(1);
        let held = acquire(&pool).unwrap();
        let p = pool.clone();
        let waiter = thread::spawn(move || drop(acquire(&p).unwrap()));
        held.detach();
        waiter.join().unwrap();
        let s = pool.stats();
        assert_eq!((s.created, s.detached), (2, 1), "{s:?}");
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model 9b. `PoolConnection::close()` racing a waiter: the freed unit wakes it.
#[test]
fn conn_close_wakes_waiter() {
    model("conn_close_wakes_waiter", || {
        let (pool, tracker) = pool(1);
        let held = acquire(&pool).unwrap();
        let p = pool.clone();
        let waiter = thread::spawn(move || drop(acquire(&p).unwrap()));
        held.close();
        waiter.join().unwrap();
        let s = pool.stats();
        assert_eq!((s.created, s.destroyed.closed_by_user), (2, 1), "{s:?}");
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Creator as waiter (`create_racing`): a task that is creating stays in line, so a release
/// that lands meanwhile is handed to it; it takes the released resource and abandons its create
/// (with no runtime the create is dropped and its unit returned), or, if its create finished
/// first, passes the handed-over item on. Nothing is lost either way.
#[test]
fn creator_as_waiter_gets_release() {
    model("creator_as_waiter_gets_release", || {
        let gate = Gate::new();
        let (pool, tracker) = pool_with(
            options(2),
            vec![Create::Ok, Create::GateThenOk(gate.clone())],
        );
        let held = acquire(&pool).unwrap();
        let creator = parked_acquire(&pool);
        let creator = thread::spawn(move || finish(creator).unwrap());
        drop(held);
        gate.open();
        let got = creator.join().unwrap();
        drop(got);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}
