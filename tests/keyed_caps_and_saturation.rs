//! Keyed pool caps: `max_per_key` and `max_total` hold under concurrent load, and each
//! saturation policy (evict, wait, fail) does what it says when `max_total` is reached; the
//! builder names the field it rejects.
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::sync::Arc;

use keyed_support::{assert_parked, options, poll_once, Counting, Tally, KEYS, STORM_GUARD};
use shadowcat_pool::{Error, KeyedPoolOptions, Saturation};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_hold_under_concurrent_load_with_eviction() {
    let tally = Arc::new(Tally::default());
    let pool = options(3, 10)
        .saturation(Saturation::Evict)
        .build(Counting(tally.clone()))
        .unwrap();
    let tasks: Vec<_> = (0..64u32)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..200u32 {
                    let key = ((t * 7 + i * 13) % KEYS as u32) as u8;
                    let conn = pool.acquire(&key).await.unwrap();
                    assert_eq!(conn.key, key, "a resource of another key was handed out");
                    tokio::task::yield_now().await;
                    drop(conn);
                }
            })
        })
        .collect();
    tokio::time::timeout(STORM_GUARD, async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a task is stranded: {:?}", pool.stats()));
    assert!(
        tally.total_high() <= 10,
        "max_total exceeded: {}",
        tally.total_high()
    );
    assert!(
        tally.key_high() <= 3,
        "max_per_key exceeded: {}",
        tally.key_high()
    );
    let stats = pool.stats();
    assert!(
        stats.destroyed.evicted > 0,
        "8 keys x 3 > 10: something was evicted"
    );
    assert_eq!(
        stats.size,
        tally.total(),
        "global units == live resources at rest"
    );
    pool.close().await;
    assert_eq!(tally.total(), 0);
    assert_eq!(pool.stats().size, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn evict_takes_the_idle_resource_of_another_key() {
    let tally = Arc::new(Tally::default());
    let pool = options(2, 2)
        .saturation(Saturation::Evict)
        .build(Counting(tally.clone()))
        .unwrap();
    let a1 = pool.acquire(&0).await.unwrap();
    let a2 = pool.acquire(&0).await.unwrap();
    drop(a1); // idle in key 0
              // Key 1 needs a resource, the total is reached: key 0's idle one is evicted for it.
    let b = pool.acquire(&1).await.unwrap();
    assert_eq!(b.key, 1);
    assert_eq!((tally.live(0), tally.live(1)), (1, 1));
    assert_eq!(pool.stats().destroyed.evicted, 1);
    assert_eq!(pool.key_stats(&0).unwrap().idle, 0);
    drop((a2, b));
    pool.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn evict_prefers_the_key_released_least_recently() {
    let tally = Arc::new(Tally::default());
    let pool = options(1, 3)
        .saturation(Saturation::Evict)
        .build(Counting(tally.clone()))
        .unwrap();
    for key in [0u8, 1, 2] {
        drop(pool.acquire(&key).await.unwrap());
    }
    // Key 0 used again, so key 1 is now the stalest.
    drop(pool.acquire(&0).await.unwrap());
    let _d = pool.acquire(&3).await.unwrap();
    assert_eq!(
        (tally.live(0), tally.live(1), tally.live(2)),
        (1, 0, 1),
        "key 1 (released least recently) should have been evicted"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn wait_policy_waits_for_a_destroy_and_fail_policy_fails_at_once() {
    let tally = Arc::new(Tally::default());
    let waiting = options(1, 1)
        .saturation(Saturation::Wait)
        .build(Counting(tally.clone()))
        .unwrap();
    let a = waiting.acquire(&0).await.unwrap();
    drop(a); // idle: still holds the only global unit
    let mut b = Box::pin(waiting.acquire(&1));
    assert_parked(&mut b, "an acquire for key 1 under Wait").await;
    assert_eq!(waiting.stats().waiting_for_capacity, 1);
    assert_eq!(waiting.stats().destroyed.evicted, 0, "Wait never evicts");
    // Key 0's idle resource is closed by the user: its unit goes to the waiter.
    let removed = waiting.retain(|key, _, _| *key != 0);
    assert_eq!(removed.removed, 1);
    let b = b.await.unwrap();
    assert_eq!(b.key, 1);
    drop(b);

    let failing = options(1, 1)
        .saturation(Saturation::Fail)
        .build(Counting::default())
        .unwrap();
    let a = failing.acquire(&0).await.unwrap();
    assert!(matches!(
        failing.acquire(&1).await,
        Err(Error::Saturated(1))
    ));
    drop(a);
    // Key 0 is idle and under its own cap: it is served from its idle set.
    let again = failing.acquire(&0).await.unwrap();
    assert_eq!(again.key, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn idle_total_is_capped_across_keys() {
    let tally = Arc::new(Tally::default());
    let pool = options(4, 16)
        .max_idle_total(Some(3))
        .saturation(Saturation::Wait)
        .build(Counting(tally.clone()))
        .unwrap();
    let mut held = Vec::new();
    for key in 0..6u8 {
        held.push(pool.acquire(&key).await.unwrap());
    }
    drop(held);
    assert!(
        pool.stats().idle <= 3,
        "idle {} over max_idle_total",
        pool.stats().idle
    );
    assert_eq!(tally.total(), 3);
    assert_eq!(pool.stats().destroyed.evicted, 3);
}

#[tokio::test(flavor = "current_thread")]
async fn a_waiter_for_global_capacity_is_cancel_safe() {
    let pool = options(1, 1)
        .saturation(Saturation::Wait)
        .build(Counting::default())
        .unwrap();
    let a = pool.acquire(&0).await.unwrap();
    let mut b = Box::pin(pool.acquire(&1));
    assert_parked(&mut b, "key 1").await;
    let mut c = Box::pin(pool.acquire(&2));
    assert_parked(&mut c, "key 2").await;
    drop(b); // cancelled while waiting for a global unit
    assert_eq!(pool.stats().waiting_for_capacity, 1);
    a.discard(); // frees the unit: it goes to key 2's waiter, not lost with key 1's
    match poll_once(&mut c).await {
        std::task::Poll::Ready(Ok(conn)) => assert_eq!(conn.key, 2),
        other => panic!(
            "key 2's waiter was not served: {:?}",
            other.map(|r| r.map(|c| c.key))
        ),
    }
}

#[test]
fn build_rejects_bad_values_naming_the_field() {
    let m = || Counting::default();
    let field = |o: KeyedPoolOptions<_, _>| o.build(m()).unwrap_err().field;
    assert_eq!(field(KeyedPoolOptions::new().max_total(4)), "max_per_key");
    assert_eq!(field(KeyedPoolOptions::new().max_per_key(4)), "max_total");
    assert_eq!(field(options(0, 4)), "max_per_key");
    assert_eq!(field(options(4, 0)), "max_total");
    assert_eq!(field(options(4, 2)), "max_total");
    assert_eq!(
        field(options(1, 2).max_idle_total(Some(3))),
        "max_idle_total"
    );
    assert_eq!(
        field(options(1, 2).max_waiters_per_key(Some(0))),
        "max_waiters_per_key"
    );
    assert_eq!(
        field(options(1, 2).idle_timeout(Some(std::time::Duration::ZERO))),
        "idle_timeout"
    );
    assert_eq!(field(options(1 << 21, 1 << 21)), "max_per_key");
}

/// `stats()` tells acquires served at once from those that parked, and counts creates in
/// flight (here one waiting for global capacity).
#[tokio::test(flavor = "current_thread")]
async fn stats_count_parked_acquires_and_creates_in_flight() {
    let pool = options(1, 1)
        .saturation(Saturation::Wait)
        .build(Counting::default())
        .unwrap();
    let a = pool.acquire(&0).await.unwrap();
    // Key 0 is at max_per_key: this one parks in the key's line.
    let mut a2 = Box::pin(pool.acquire(&0));
    assert_parked(&mut a2, "key 0's second acquire").await;
    // Key 1 creates and waits for the global unit.
    let mut b = Box::pin(pool.acquire(&1));
    assert_parked(&mut b, "key 1's acquire").await;
    let s = pool.stats();
    assert_eq!(s.creating, 1, "key 1's create waits for global capacity");
    assert_eq!((s.acquired_immediately, s.acquired_after_wait), (1, 0));

    drop(a); // handed to a2, which parked first
    let a2 = match poll_once(&mut a2).await {
        std::task::Poll::Ready(conn) => conn.unwrap(),
        std::task::Poll::Pending => panic!("a2 was not served by the release"),
    };
    let s = pool.stats();
    assert_eq!((s.acquired_immediately, s.acquired_after_wait), (1, 1));
    a2.discard(); // frees the global unit for key 1
    let b = match poll_once(&mut b).await {
        std::task::Poll::Ready(conn) => conn.unwrap(),
        std::task::Poll::Pending => panic!("key 1 was not served"),
    };
    let s = pool.stats();
    assert_eq!(s.creating, 0);
    assert_eq!(s.acquired_immediately + s.acquired_after_wait, 3);
    drop(b);
}
