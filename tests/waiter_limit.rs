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
