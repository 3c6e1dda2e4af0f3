//! The `after_release` hook runs in a spawned task. Released with no tokio runtime, the resource
//! is closed instead (nothing to spawn on); released into a closed pool, it is destroyed without
//! running the hook. Either way its unit of capacity comes back.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::FutureExt;
use support::{assert_quiescent, options, TestManager};

#[test]
fn released_outside_a_runtime_the_resource_is_closed_not_leaked() {
    let hook_runs = Arc::new(AtomicUsize::new(0));
    let runs = hook_runs.clone();
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1)
        .after_release(move |_conn, _meta| {
            runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(true) })
        })
        .build(m)
        .unwrap();
    // No runtime anywhere: acquire completes at once (room to create), release cannot spawn.
    let conn = pool
        .acquire()
        .now_or_never()
        .expect("served at once")
        .unwrap();
    drop(conn);

    let s = pool.stats();
    assert_eq!(hook_runs.load(Ordering::SeqCst), 0);
    assert_eq!(s.destroyed.hook_rejected, 1, "{s:?}");
    assert_eq!((s.size, s.idle, s.in_use), (0, 0, 0), "{s:?}");
    assert_quiescent(&pool, &counts);
    // The capacity is back: the next acquire creates again.
    let again = pool.acquire().now_or_never().expect("served at once");
    assert!(again.is_ok());
}

#[tokio::test]
async fn released_after_close_the_resource_is_destroyed_without_the_hook() {
    let hook_runs = Arc::new(AtomicUsize::new(0));
    let runs = hook_runs.clone();
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1)
        .after_release(move |_conn, _meta| {
            runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(true) })
        })
        .build(m)
        .unwrap();
    let conn = pool.acquire().await.unwrap();
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close().await }
    });
    // Wait until the pool says it is closed, then release into it.
    pool.close_event().await;
    drop(conn);
    support::within("the closing task", closing).await.unwrap();

    let s = pool.stats();
    assert_eq!(
        hook_runs.load(Ordering::SeqCst),
        0,
        "the hook ran on a closed pool"
    );
    assert_eq!(s.size, 0, "{s:?}");
    assert_eq!(s.destroyed.closed, 1, "{s:?}");
    assert_eq!(counts.live(), 0);
}
