//! Loom models: `close()` racing waiters, releases and capacity returns. Nothing may be left
//! idle, reserved or counted in a closed pool: `close()` itself only returns once `size` is 0,
//! so anything stranded shows up as a loom deadlock.
#![cfg(shadowcat_loom)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use loom::future::block_on;
use loom::thread;
use shadowcat_pool::{Error, Pool};

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

/// Close racing a depositor that hands an item to a parked waiter: the release hands the item
/// over in the notification (into the waiter's cell), then re-checks `closed`; the closer sets
/// `closed` with an RMW, notifies everyone under the line's lock and drains the queue and the
/// cells. Either the depositor sees `closed` or the closer sees the deposit, and the item is
/// destroyed once, by whoever takes it from the cell. The waiter gets the item (and gives it
/// back) or `Closed`.
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

/// The body of the two "close racing a prepare" models: one idle resource; an acquirer claims
/// it and prepares it (the check or hook looks at `probe`) while the main thread closes the pool
/// and, once the closed bit is set, tells the probe. The acquire ends with `Closed`, or with a
/// connection whose check or hook finished before close started (one prepared after close
/// started must be destroyed, never handed out); `close()` returns once that connection is
/// dropped; the closed pool is empty and the books balance.
fn close_racing_prepare(
    pool: Pool<Res>,
    tracker: std::sync::Arc<Tracker>,
    probe: std::sync::Arc<Probe>,
) {
    // Created fresh (no check or hook), then released: one idle resource.
    drop(acquire(&pool).unwrap());
    let p = pool.clone();
    let acquirer = thread::spawn(move || match acquire(&p) {
        Ok(held) => assert!(
            !held.prepared_after_close(),
            "a resource checked after close() started was handed out"
        ),
        Err(e) => assert!(matches!(e, Error::Closed), "{e:?}"),
    });
    let mut closing = Box::pin(pool.close());
    // The first poll sets the closed bit (and returns Pending while the acquirer holds a unit).
    let done = poll_once(&mut closing).is_some();
    probe.close_started();
    if !done {
        block_on(closing);
    }
    acquirer.join().unwrap();
    assert_closed_and_empty(&pool, &tracker);
}

/// Issue 11, item 1: `close()` racing an acquire that is running `test_before_acquire`
/// (`Manager::check`) on an idle resource. A check that finished after close started must not
/// hand its resource out of the closed pool.
#[test]
fn close_racing_check() {
    model("close_racing_check", || {
        let probe = Probe::new();
        let opts = options(1).test_before_acquire(true);
        let (pool, tracker) = pool_with_check(opts, probe.clone());
        close_racing_prepare(pool, tracker, probe);
    });
}

/// The same with a `before_acquire` hook instead of a check.
#[test]
fn close_racing_before_acquire_hook() {
    model("close_racing_before_acquire_hook", || {
        let probe = Probe::new();
        let hook_probe = probe.clone();
        let opts = options(1).before_acquire(move |res, _meta| {
            let probe = hook_probe.clone();
            Box::pin(async move {
                probe.look(res).await;
                Ok(true)
            })
        });
        let (pool, tracker) = pool_with(opts, Vec::new());
        close_racing_prepare(pool, tracker, probe);
    });
}
