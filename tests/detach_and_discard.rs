//! Taking one resource out of the pool: `detach` (keep it, free its unit), `discard` (destroy it
//! now, synchronously) and `close` (destroy it, awaiting teardown). Each frees capacity for a
//! waiter.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::Ordering;
use std::task::Poll;

use support::{assert_quiescent, options, parked, poll_once, Gated, TestManager};

#[tokio::test]
async fn detach_keeps_the_resource_and_frees_its_unit_for_a_waiter() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let conn = pool.acquire().await.unwrap();
    let mut waiter = parked(&pool).await;
    let kept = conn.detach();
    assert_eq!(kept.id, 0);
    let Poll::Ready(Ok(fresh)) = poll_once(&mut waiter).await else {
        panic!("the freed unit was not handed to the waiter");
    };
    assert_eq!(fresh.id, 1);
    let s = pool.stats();
    assert_eq!((s.size, s.detached, s.in_use), (1, 1, 1), "{s:?}");
    drop(fresh);
    drop(kept);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn discard_destroys_synchronously() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    pool.acquire().await.unwrap().discard();
    let s = pool.stats();
    assert_eq!((s.size, s.destroyed.closed_by_user), (0, 1), "{s:?}");
    assert_eq!(counts.live(), 0);
    assert_eq!(pool.acquire().await.unwrap().id, 1);
}

#[tokio::test]
async fn close_awaits_teardown_then_frees_the_unit() {
    let (m, gate) = TestManager::gated(Gated::Destroy, 0);
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let conn = pool.acquire().await.unwrap();
    let mut closing = Box::pin(conn.close());
    assert!(poll_once(&mut closing).await.is_pending());
    assert_eq!(counts.destroy_calls.load(Ordering::SeqCst), 1);
    assert_eq!(pool.stats().size, 1, "the unit is held while teardown runs");
    gate.add_permits(1);
    support::within("close()", closing).await;
    assert_eq!(pool.stats().size, 0);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn retain_closes_the_idle_resources_it_rejects() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(4).build(m).unwrap();
    let held = support::drain_capacity(&pool, 4).await;
    let mut held = held.into_iter();
    let out = held.next().unwrap(); // #0 stays checked out
    drop(held); // #1, #2, #3 idle
    let result = pool.retain(|conn, _meta| conn.id != 2);
    assert_eq!((result.retained, result.removed), (2, 1));
    // A panicking predicate keeps the resource.
    let result = pool.retain(|_conn, _meta| panic!("retain predicate panicked on purpose"));
    assert_eq!((result.retained, result.removed), (2, 0));
    let s = pool.stats();
    assert_eq!(
        (s.size, s.idle, s.destroyed.closed_by_user),
        (3, 2, 1),
        "{s:?}"
    );
    assert_eq!(out.id, 0, "checked-out resources are not touched");
    drop(out);
    assert_quiescent(&pool, &counts);
}
