//! `close_key` drains one upstream: its waiters get `Error::Closed`, its resources are destroyed
//! (checked-out ones when they come back), acquires for it fail while it drains (its resources
//! still count against `max_per_key`), other keys are untouched, and once drained a later acquire
//! for the key starts fresh. `close()` closes everything, and waiters for global capacity get `Closed`.
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::sync::Arc;

use keyed_support::{assert_parked, options, poll_once, Counting, Tally};
use shadowcat_pool::{Error, Saturation};

#[tokio::test(flavor = "current_thread")]
async fn close_key_fails_its_waiters_and_leaves_other_keys_alone() {
    let tally = Arc::new(Tally::default());
    let pool = options(1, 4).build(Counting(tally.clone())).unwrap();
    let down = pool.acquire(&0).await.unwrap();
    let mut waiter = Box::pin(pool.acquire(&0));
    assert_parked(&mut waiter, "key 0's waiter").await;
    let other = pool.acquire(&1).await.unwrap();
    drop(pool.acquire(&2).await.unwrap()); // key 2 idle

    let mut closing = Box::pin(pool.close_key(&0));
    assert_parked(&mut closing, "close_key with a resource out").await;
    assert!(matches!(waiter.await, Err(Error::Closed)));
    assert!(pool.key_stats(&0).unwrap().closed);
    // While it drains, its resource still counts against max_per_key: no fresh key beside it.
    assert!(matches!(pool.acquire(&0).await, Err(Error::Closed)));
    // Other keys work as before.
    assert_eq!(other.key, 1);
    assert!(pool.try_acquire(&2).is_some());
    drop(other);
    // The checked-out resource of the closed key is destroyed when it comes back.
    drop(down);
    assert_eq!(tally.live(0), 0);
    assert!(matches!(
        poll_once(&mut closing).await,
        std::task::Poll::Ready(true)
    ));
    assert_eq!((tally.live(1), tally.live(2)), (1, 1));
    // A later acquire for the key starts a fresh one.
    let fresh = pool.acquire(&0).await.unwrap();
    assert_eq!(fresh.key, 0);
    assert!(!pool.close_key(&9).await, "an unknown key");
}

#[tokio::test(flavor = "current_thread")]
async fn close_fails_every_waiter_and_destroys_everything() {
    let tally = Arc::new(Tally::default());
    let pool = options(1, 2)
        .saturation(Saturation::Wait)
        .build(Counting(tally.clone()))
        .unwrap();
    let a = pool.acquire(&0).await.unwrap();
    drop(pool.acquire(&1).await.unwrap()); // idle, holds the second global unit
    let mut same_key = Box::pin(pool.acquire(&0)); // waits in key 0's line
    assert_parked(&mut same_key, "key 0").await;
    let mut for_capacity = Box::pin(pool.acquire(&2)); // waits for global capacity
    assert_parked(&mut for_capacity, "key 2").await;
    let mut closing = Box::pin(pool.close());
    assert_parked(&mut closing, "close with a resource out").await;
    assert!(matches!(same_key.await, Err(Error::Closed)));
    assert!(matches!(for_capacity.await, Err(Error::Closed)));
    assert!(matches!(pool.acquire(&3).await, Err(Error::Closed)));
    drop(a);
    closing.await;
    assert_eq!(tally.total(), 0);
    assert_eq!(pool.stats().size, 0);
    assert!(pool.is_closed());
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_the_last_handle_closes_the_pool() {
    let tally = Arc::new(Tally::default());
    let pool = options(2, 2).build(Counting(tally.clone())).unwrap();
    let conn = pool.acquire(&0).await.unwrap();
    drop(pool.acquire(&1).await.unwrap());
    drop(pool);
    assert_eq!(
        tally.live(1),
        0,
        "idle resources are destroyed with the pool"
    );
    drop(conn);
    assert_eq!(
        tally.total(),
        0,
        "a resource returned after the close is destroyed"
    );
}

/// `close_key` and `close` close when called, not at their futures' first poll: dropping the
/// futures unpolled still fails the key's waiters and later acquires.
#[tokio::test(flavor = "current_thread")]
async fn close_and_close_key_take_effect_at_the_call() {
    let tally = Arc::new(Tally::default());
    let pool = options(1, 4).build(Counting(tally.clone())).unwrap();
    let held = pool.acquire(&0).await.unwrap();
    let mut waiter = Box::pin(pool.acquire(&0));
    assert_parked(&mut waiter, "key 0's waiter").await;
    drop(pool.close_key(&0)); // never polled
    assert!(matches!(waiter.await, Err(Error::Closed)));
    assert!(matches!(pool.acquire(&0).await, Err(Error::Closed)));
    drop(held);
    assert_eq!(tally.live(0), 0);

    let other = pool.acquire(&1).await.unwrap();
    drop(pool.close()); // never polled
    assert!(pool.is_closed());
    assert!(matches!(pool.acquire(&1).await, Err(Error::Closed)));
    drop(other);
    assert_eq!(tally.live(1), 0);
    pool.close().await;
}
