//! Issue 11 item 6: the maintenance task runs on the runtime the pool was built in. If that
//! runtime shuts down while the pool lives on in another, the next runtime that touches the pool
//! (an acquire or a release) restarts maintenance, so `idle_timeout` and `min_connections` are
//! still enforced. Each runtime runs on tokio's paused clock.
#![cfg(not(shadowcat_loom))]

mod support;

use std::time::Duration;

use support::{options, yield_until, CreateMode, TestManager};

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn idle_timeout_is_enforced_after_the_first_runtime_shuts_down() {
    let m = TestManager::new();
    let counts = m.counts();
    let rt_a = paused_runtime();
    let pool = rt_a.block_on(async {
        let pool = options(2)
            .idle_timeout(Duration::from_secs(1))
            .maintenance_interval(Duration::from_millis(100))
            .build(m)
            .unwrap();
        drop(pool.acquire().await.unwrap());
        pool
    });
    drop(rt_a); // the maintenance task goes with it

    paused_runtime().block_on(async {
        drop(pool.acquire().await.unwrap()); // runtime B touches the pool: acquire and release
        tokio::time::sleep(Duration::from_secs(5)).await; // five idle timeouts
    });
    let s = pool.stats();
    assert_eq!(
        (s.size, s.destroyed.idle_timeout),
        (0, 1),
        "a resource idle for 5 s (idle_timeout 1 s) in the second runtime was not reaped: {s:?}"
    );
    assert_eq!(counts.live(), 0);
}

#[test]
fn min_connections_is_restored_after_the_first_runtime_shuts_down() {
    let m = TestManager::new();
    let counts = m.counts();
    let rt_a = paused_runtime();
    let pool = rt_a.block_on(async {
        let pool = options(2)
            .min_connections(1)
            .maintenance_interval(Duration::from_millis(100))
            .build(m)
            .unwrap();
        assert!(
            yield_until(1_000, || pool.stats().idle == 1).await,
            "the warm-up did not run in runtime A"
        );
        pool
    });
    drop(rt_a);

    paused_runtime().block_on(async {
        let conn = pool.acquire().await.unwrap();
        drop(conn.detach()); // below min_connections now
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let s = pool.stats();
    assert_eq!(
        (s.size, s.idle),
        (1, 1),
        "5 s after dropping below min_connections 1 in the second runtime, no warm-up: {s:?}"
    );
    assert_eq!(counts.live(), 1);
}

/// A warm-up still creating when its runtime shuts down is dropped with the runtime's tasks;
/// it must stop counting as in flight, or the next runtime's maintenance never warms the pool
/// again (the count stayed at `warmup_concurrency` for good).
#[test]
fn a_warmup_dropped_with_its_runtime_does_not_stop_later_warmups() {
    // The first create (the warm-up in runtime A) hangs; later ones succeed.
    let m = TestManager::new().plan(&[CreateMode::Hang]);
    let counts = m.counts();
    let started = m.create_started.clone();
    let rt_a = paused_runtime();
    let pool = rt_a.block_on(async {
        let pool = options(2)
            .min_connections(1)
            .warmup_concurrency(1)
            .maintenance_interval(Duration::from_millis(100))
            .build(m)
            .unwrap();
        started.notified().await; // the warm-up is in its create
        pool
    });
    drop(rt_a); // drops the warm-up task (its unit comes back) and the maintenance task
    assert_eq!(pool.stats().size, 0);

    paused_runtime().block_on(async {
        let conn = pool.acquire().await.unwrap(); // restarts maintenance in runtime B
        drop(conn.detach()); // below min_connections 1
        tokio::time::sleep(Duration::from_secs(5)).await; // 50 maintenance passes
    });
    let s = pool.stats();
    assert_eq!(
        (s.size, s.idle),
        (1, 1),
        "5 s below min_connections 1 in runtime B, no warm-up: {s:?}"
    );
    assert_eq!(counts.live(), 1);
}
