//! Keys that hold nothing are removed: after idle expiry the maintenance task reaps each key's
//! idle resources and removes the empty keys; a key with a resource out, or a waiter, stays; an
//! acquire after the removal starts a fresh key. Paused clock: no real sleeps.
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::sync::Arc;
use std::time::Duration;

use keyed_support::{assert_parked, options, poll_once, Counting, Tally};

const IDLE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn idle_keys_expire_and_leave_the_map() {
    let tally = Arc::new(Tally::default());
    let pool = options(2, 16)
        .idle_timeout(Some(IDLE))
        .maintenance_interval(Duration::from_secs(1))
        .build(Counting(tally.clone()))
        .unwrap();
    for key in 0..8u8 {
        drop(pool.acquire(&key).await.unwrap());
    }
    let held = pool.acquire(&0).await.unwrap();
    assert_eq!(pool.keys(), 8);
    tokio::time::sleep(IDLE + Duration::from_secs(3)).await;
    assert_eq!(pool.keys(), 1, "only the key with a resource out stays");
    assert_eq!(pool.stats().destroyed.idle_timeout, 7);
    assert_eq!(tally.total(), 1);
    assert_eq!(pool.stats().size, 1);
    drop(held);
    tokio::time::sleep(IDLE + Duration::from_secs(3)).await;
    assert_eq!(pool.keys(), 0);
    assert_eq!((tally.total(), pool.stats().size), (0, 0));
    // The key comes back on demand.
    let again = pool.acquire(&3).await.unwrap();
    assert_eq!(again.key, 3);
    assert_eq!(pool.keys(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_key_with_a_waiter_or_a_create_in_flight_is_not_removed() {
    let pool = options(1, 1)
        .saturation(shadowcat_pool::Saturation::Wait)
        .build(Counting::default())
        .unwrap();
    let a = pool.acquire(&0).await.unwrap();
    // Key 1 holds a per-key unit while its create waits for global capacity.
    let mut b = Box::pin(pool.acquire(&1));
    assert_parked(&mut b, "key 1").await;
    pool.run_maintenance();
    assert_eq!(pool.keys(), 2);
    a.discard();
    pool.run_maintenance();
    assert_eq!(
        pool.keys(),
        1,
        "key 0 is empty now and removed; key 1 is creating"
    );
    let b = match poll_once(&mut b).await {
        std::task::Poll::Ready(conn) => conn.unwrap(),
        std::task::Poll::Pending => panic!("key 1 was not served"),
    };
    assert_eq!(b.key, 1);
}
