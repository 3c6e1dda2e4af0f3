//! `max_waiters`: a bounded waiting line that fails fast (an acquire that would be waiter n + 1
//! gets `Error::TooManyWaiters` at once), counted in the stats; acquirers that are creating do
//! not count against it.
#![cfg(not(shadowcat_loom))]

mod support;

use shadowcat_pool::Error;
use support::{assert_quiescent, options, parked, poll_once, Gated, TestManager};

#[tokio::test]
async fn the_waiter_past_the_limit_fails_at_once_and_is_counted() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).max_waiters(2).build(m).unwrap();
    let held = pool.acquire().await.unwrap();
    let first = parked(&pool).await;
    let second = parked(&pool).await;
    assert_eq!(pool.stats().waiting, 2);

    let third = pool.acquire().await;
    assert!(matches!(third, Err(Error::TooManyWaiters(2))), "{third:?}");
    let s = pool.stats();
    assert_eq!((s.rejected_waiters, s.waiting), (1, 2), "{s:?}");

    drop(held); // the oldest waiter is served; the line has room again
    let conn = first.await.unwrap();
    let again = parked(&pool).await;
    assert_eq!(pool.stats().waiting, 2);
    drop(conn);
    drop(second.await.unwrap());
    drop(again.await.unwrap());
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn zero_never_waits_but_still_serves_what_is_idle() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).max_waiters(0).build(m).unwrap();
    let held = pool.acquire().await.unwrap(); // room to create: no wait needed
    assert!(matches!(
        pool.acquire().await,
        Err(Error::TooManyWaiters(0))
    ));
    drop(held);
    drop(pool.acquire().await.unwrap()); // idle: served at once
    assert_eq!(pool.stats().rejected_waiters, 1);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn an_acquirer_that_is_creating_does_not_count_as_waiting() {
    let (m, gate) = TestManager::gated(Gated::Create, 0);
    let counts = m.counts();
    let pool = options(1).max_waiters(1).build(m).unwrap();
    let mut creating = Box::pin(pool.acquire());
    assert!(poll_once(&mut creating).await.is_pending());
    let s = pool.stats();
    assert_eq!((s.creating, s.waiting), (1, 0), "{s:?}");

    let waiter = parked(&pool).await; // the one place in line
    assert!(matches!(
        pool.acquire().await,
        Err(Error::TooManyWaiters(1))
    ));

    gate.add_permits(10);
    drop(creating.await.unwrap()); // handed to the waiter
    drop(waiter.await.unwrap());
    assert_quiescent(&pool, &counts);
}

/// A creator in line that is handed spare capacity leaves the line but keeps creating; from then
/// on it must not count as a creator in line, or it would raise everybody's limit by one until
/// its create finished (here: a `max_waiters(0)` acquire parked instead of failing).
#[tokio::test]
async fn a_creator_handed_spare_capacity_no_longer_raises_the_limit() {
    let (m, gate) = TestManager::gated(Gated::Create, 1);
    let counts = m.counts();
    let pool = options(2).max_waiters(0).build(m).unwrap();
    let held = pool.acquire().await.unwrap(); // size 1; takes the one permit
    let mut first = Box::pin(pool.acquire()); // grows to 2, creates in line (gated)
    assert!(poll_once(&mut first).await.is_pending());
    // Its unit goes to the oldest counted waiter, the creator, as a slot reservation: the
    // creator passes the spare unit on and keeps creating, out of line.
    held.detach();
    assert!(poll_once(&mut first).await.is_pending());
    let mut second = Box::pin(pool.acquire()); // grows to 2 again, creates in line
    assert!(poll_once(&mut second).await.is_pending());

    // Full, and nobody may wait: it fails at its first poll (polled once, so that a regression
    // fails here instead of parking for good).
    let mut third = Box::pin(pool.acquire());
    let third = poll_once(&mut third).await;
    assert!(
        matches!(third, std::task::Poll::Ready(Err(Error::TooManyWaiters(0)))),
        "{third:?}"
    );
    let s = pool.stats();
    assert_eq!((s.size, s.creating, s.waiting), (2, 2, 0), "{s:?}");

    gate.add_permits(10);
    drop(first.await.unwrap());
    drop(second.await.unwrap());
    assert_quiescent(&pool, &counts);
}

/// A waiter handed a resource that fails its check (with a slow teardown) rejoins at the front of
/// the line; an acquirer that parked meanwhile must not get it refused by `max_waiters`. Not with
/// the `event-listener-waiters` line, which cannot insert at the front (the waiter rejoins at the
/// back there, behind the later acquirer).
#[cfg(not(feature = "event-listener-waiters"))]
#[tokio::test]
async fn a_waiter_rejoining_at_the_front_is_not_refused_for_a_later_arrival() {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use support::within;
    use tokio::sync::Semaphore;

    let (mut m, check_gate) = TestManager::gated(Gated::Check, 0);
    let destroy_gate = Arc::new(Semaphore::new(0));
    m.destroy_gate = Some(destroy_gate.clone());
    m.fail_next_checks = AtomicUsize::new(1); // the first check (W's) fails
    let pool = options(1)
        .max_waiters(1)
        .test_before_acquire(true)
        .build(m)
        .unwrap();
    let held = pool.acquire().await.unwrap(); // size 1 = max
    let mut w = parked(&pool).await; // W waits (1 counted)
    drop(held); // handed to W
    assert!(poll_once(&mut w).await.is_pending()); // W left the count; its check is gated
    let mut x = parked(&pool).await; // X arrives after W and waits (1 counted)
    check_gate.add_permits(10); // W's check fails; the destroy is gated: W must wait again
    let w_now = poll_once(&mut w).await;
    assert!(
        w_now.is_pending(),
        "W, first in line, was refused while X, who came later, waits: {:?}",
        w_now.map(|r| r.map(|_| ()))
    );
    destroy_gate.add_permits(10);
    let w = within("W's acquire", w).await.unwrap(); // the teardown's unit goes to W

    assert!(poll_once(&mut x).await.is_pending());
    drop(w);
    drop(within("X's acquire", x).await.unwrap());
}
