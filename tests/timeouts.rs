//! Timeouts: acquire_timeout on an exhausted pool, create_timeout, and the capacity they hold
//! comes back. Time is tokio's paused clock, so no test depends on real elapsed time.
#![cfg(not(shadowcat_loom))]

mod support;

use std::time::Duration;

use shadowcat_pool::Error;
use support::{assert_quiescent, options, Gated, TestManager};

#[tokio::test(start_paused = true)]
async fn exhausted_pool_times_out_and_counts_it() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1)
        .acquire_timeout(Duration::from_millis(100))
        .build(m)
        .unwrap();
    let held = pool.acquire().await.unwrap();
    match pool.acquire().await {
        Err(Error::Timeout(d)) => assert_eq!(d, Duration::from_millis(100)),
        other => panic!("expected a timeout, got {:?}", other.map(|c| c.id)),
    }
    let s = pool.stats();
    assert_eq!((s.timeouts, s.waiting), (1, 0), "{s:?}");
    drop(held);
    assert!(pool.acquire().await.is_ok());
    assert_quiescent(&pool, &counts);
}

#[tokio::test(start_paused = true)]
async fn hanging_create_hits_create_timeout_and_returns_the_unit() {
    let (m, _gate) = TestManager::gated(Gated::Create, 0);
    let counts = m.counts();
    let pool = options(1)
        .create_timeout(Duration::from_millis(50))
        .build(m)
        .unwrap();
    match pool.acquire().await {
        Err(Error::Create(source)) => {
            assert!(source.to_string().contains("longer than"), "{source}")
        }
        other => panic!("expected a create timeout, got {:?}", other.map(|c| c.id)),
    }
    let s = pool.stats();
    assert_eq!((s.size, s.create_failed), (0, 1), "{s:?}");
    assert_quiescent(&pool, &counts);
}

#[tokio::test(start_paused = true)]
async fn acquire_timeout_bounds_a_hanging_create() {
    let (m, gate) = TestManager::gated(Gated::Create, 0);
    let counts = m.counts();
    let pool = options(1)
        .acquire_timeout(Duration::from_millis(30))
        .build(m)
        .unwrap();
    assert!(matches!(pool.acquire().await, Err(Error::Timeout(_))));
    assert_eq!(
        pool.stats().size,
        0,
        "the abandoned create gave its unit back"
    );
    gate.add_permits(1);
    drop(pool.acquire().await.unwrap());
    assert_quiescent(&pool, &counts);
}

#[tokio::test(start_paused = true)]
async fn waiters_that_time_out_do_not_block_later_ones() {
    let pool = options(1)
        .acquire_timeout(Duration::from_millis(10))
        .build(TestManager::new())
        .unwrap();
    let held = pool.acquire().await.unwrap();
    for _ in 0..5 {
        assert!(matches!(pool.acquire().await, Err(Error::Timeout(_))));
    }
    let pool2 = pool.clone();
    let late = tokio::spawn(async move { pool2.acquire().await.map(|c| c.id) });
    tokio::task::yield_now().await;
    drop(held);
    assert!(late.await.unwrap().is_ok());
    assert_eq!(pool.stats().timeouts, 5);
}
