//! Issue 11 item 7: idle expiry never takes the pool below `min_connections`, even while an
//! asynchronous `Manager::destroy` is still running for the resources it reaped (their units
//! stay counted in `size` until teardown ends). One pass must reap only down to the minimum,
//! not every expired idle resource followed by a burst of reconnects. Paused clock.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use support::{assert_quiescent, options, yield_until, Gated, TestManager};

#[tokio::test(start_paused = true)]
async fn reaping_with_async_teardown_stops_at_min_connections() {
    // Teardown waits at the gate, so the reaped units stay in teardown during the pass.
    let (m, gate) = TestManager::gated(Gated::Destroy, 0);
    let counts = m.counts();
    let pool = options(4)
        .min_connections(2)
        .idle_timeout(Duration::from_secs(1))
        .maintenance_interval(Duration::from_millis(100))
        .build(m)
        .unwrap();
    let held: Vec<_> = vec![
        pool.acquire().await.unwrap(),
        pool.acquire().await.unwrap(),
        pool.acquire().await.unwrap(),
        pool.acquire().await.unwrap(),
    ];
    drop(held);
    assert_eq!(pool.stats().idle, 4);

    // Past the idle timeout, within release_timeout (5 s): teardowns are still in flight.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let s = pool.stats();
    assert_eq!(
        (
            s.destroyed.idle_timeout,
            counts.destroy_calls.load(Ordering::SeqCst)
        ),
        (2, 2),
        "4 idle resources past idle_timeout with min_connections 2: reaped below the minimum; \
         {s:?}"
    );

    gate.add_permits(10);
    assert!(
        yield_until(1_000, || pool.stats().size == 2).await,
        "{:?}",
        pool.stats()
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // a few more passes
    let s = pool.stats();
    assert_eq!(
        (s.size, s.idle, s.created),
        (2, 2, 4),
        "no reconnect burst: {s:?}"
    );
    assert_quiescent(&pool, &counts);
}
