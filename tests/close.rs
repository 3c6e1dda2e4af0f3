//! Close with waiters, with checked-out resources, release after close, idempotence, and closing
//! by dropping the last handle (hazard H8).
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::Ordering;
use std::task::Poll;

use shadowcat_pool::Error;
use support::{options, poll_once, Gated, TestManager};

#[tokio::test]
async fn close_wakes_every_waiter_with_closed() {
    let pool = options(1).build(TestManager::new()).unwrap();
    let held = pool.acquire().await.unwrap();
    let mut waiters: Vec<_> = (0..3).map(|_| Box::pin(pool.acquire())).collect();
    for w in &mut waiters {
        assert!(poll_once(w).await.is_pending());
    }
    let mut closing = Box::pin(pool.close());
    assert!(
        poll_once(&mut closing).await.is_pending(),
        "a resource is still out"
    );
    for w in &mut waiters {
        assert!(matches!(
            poll_once(w).await,
            Poll::Ready(Err(Error::Closed))
        ));
    }
    assert!(matches!(pool.acquire().await, Err(Error::Closed)));
    assert!(pool.try_acquire().is_none());
    drop(held);
    support::within("close()", closing).await;
    assert_eq!(pool.stats().size, 0);
}

#[tokio::test]
async fn close_waits_for_checked_out_resources_and_destroys_them() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(3).build(m).unwrap();
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    drop(pool.acquire().await.unwrap()); // one idle
    assert_eq!(pool.stats().idle, 1);

    let mut closing = Box::pin(pool.close());
    assert!(poll_once(&mut closing).await.is_pending());
    assert_eq!(counts.live(), 2, "the idle resource is destroyed at once");
    drop(a);
    assert!(poll_once(&mut closing).await.is_pending());
    drop(b); // returned after close: destroyed, never re-idled
    assert!(poll_once(&mut closing).await.is_ready());
    let s = pool.stats();
    assert_eq!((s.size, s.idle), (0, 0));
    assert_eq!(s.destroyed.closed, 3, "{s:?}");
    assert_eq!(counts.live(), 0);
}

#[tokio::test]
async fn close_is_idempotent_and_close_event_fires() {
    let pool = options(1).build(TestManager::new()).unwrap();
    let event = pool.close_event();
    let mut event = Box::pin(event);
    assert!(poll_once(&mut event).await.is_pending());
    pool.close().await;
    pool.close().await;
    assert!(pool.is_closed());
    assert!(poll_once(&mut event).await.is_ready());
    // A close_event made after closing resolves at once.
    pool.close_event().await;
}

#[tokio::test]
async fn close_awaits_async_teardown() {
    let (m, gate) = TestManager::gated(Gated::Destroy, 0);
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    drop(pool.acquire().await.unwrap());
    let mut closing = Box::pin(pool.close());
    assert!(poll_once(&mut closing).await.is_pending());
    assert_eq!(counts.destroy_calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        pool.stats().size,
        1,
        "the unit is held until teardown finishes"
    );
    gate.add_permits(1);
    support::within("close()", closing).await;
    assert_eq!(pool.stats().size, 0);
    assert_eq!(counts.live(), 0);
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_pool() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(2).build(m).unwrap();
    let other = pool.clone();
    let out = pool.acquire().await.unwrap();
    drop(pool.acquire().await.unwrap());
    drop(pool);
    assert!(!other.is_closed(), "a handle is still alive");
    drop(other);
    assert_eq!(counts.live(), 1, "the idle resource was destroyed on close");
    drop(out); // returned to a closed pool: destroyed
    assert_eq!(counts.live(), 0);
}

#[tokio::test]
async fn release_after_close_destroys_instead_of_idling() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let conn = pool.acquire().await.unwrap();
    let closer = pool.clone();
    let closing = tokio::spawn(async move { closer.close().await });
    pool.close_event().await;
    drop(conn);
    support::within("the closing task", closing).await.unwrap();
    assert_eq!(pool.stats().idle, 0);
    assert_eq!(counts.live(), 0);
}

/// The close happens when `close()` is called, not when its future is first polled: dropping
/// the future unpolled (deadpool's synchronous close) still wakes waiters, fails new acquires and
/// destroys idle resources; a resource still out is destroyed when it comes back.
#[tokio::test]
async fn close_takes_effect_at_the_call_even_if_its_future_is_dropped() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(2).build(m).unwrap();
    let held = pool.acquire().await.unwrap();
    drop(pool.acquire().await.unwrap()); // one idle
    let mut waiter = Box::pin(pool.acquire());
    let second = pool.acquire().await.unwrap(); // the idle one; max reached
    assert!(poll_once(&mut waiter).await.is_pending());

    drop(pool.close()); // never polled
    assert!(pool.is_closed());
    assert!(matches!(waiter.await, Err(Error::Closed)));
    assert!(matches!(pool.acquire().await, Err(Error::Closed)));
    drop(held);
    drop(second);
    assert_eq!(counts.live(), 0, "both destroyed on return");
    pool.close().await; // resolves: everything is gone
    assert_eq!(pool.stats().size, 0);
}
