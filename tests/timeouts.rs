//! Timeouts: acquire_timeout on an exhausted pool, create_timeout, and the capacity they hold
//! comes back (hazards H1 and H9). Time is tokio's paused clock, so no test depends on real
//! elapsed time.
#![cfg(not(shadowcat_loom))]

mod support;

use std::time::Duration;

use shadowcat_pool::Error;
use support::{assert_quiescent, options, yield_until, Gated, TestManager};

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
    assert!(
        yield_until(1_000, || pool.stats().waiting == 1).await,
        "the later acquire never parked"
    );
    drop(held);
    assert!(late.await.unwrap().is_ok());
    assert_eq!(pool.stats().timeouts, 5);
}

#[tokio::test(start_paused = true)]
async fn a_hung_after_release_hook_cannot_pin_capacity() {
    // sqlx#4349: a release-path call that never completes must not hold its unit for good.
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(2)
        .release_timeout(Duration::from_secs(1))
        .after_release(|_conn, _meta| Box::pin(std::future::pending()))
        .build(m)
        .unwrap();
    let (a, b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    drop((a, b)); // both hooks hang
                  // Waits until the hooks time out; the resources are closed and their units freed.
    let conn = pool.acquire().await.unwrap();
    assert_eq!(conn.id, 2, "a new resource replaced the closed ones");
    drop(conn);
    let s = pool.stats();
    assert_eq!(s.destroyed.hook_rejected, 2, "{s:?}");
    pool.close().await; // resolves: nothing is pinned
    assert_eq!(counts.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hung_async_teardown_is_bounded_too() {
    let (m, _gate) = TestManager::gated(Gated::Destroy, 0); // teardown never finishes
    let counts = m.counts();
    let pool = options(1)
        .release_timeout(Duration::from_secs(1))
        .build(m)
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    conn.broken = true;
    drop(conn);
    assert_eq!(pool.stats().size, 1, "teardown in progress holds the unit");
    let conn = pool.acquire().await.unwrap(); // after the teardown times out
    assert_eq!(conn.id, 1);
    drop(conn);
    pool.close().await;
    assert_eq!(counts.live(), 0);
}
