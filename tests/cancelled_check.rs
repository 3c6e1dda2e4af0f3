//! Issue 11 item 2: an acquire cancelled (or timed out) while the pool health-checks an idle
//! resource must not throw a healthy resource away. The cancelled check finishes in the
//! background, bounded by its timeout; a resource that passes goes back to the idle set, and one
//! that fails, times out, or meets a closed pool is destroyed. Otherwise every cancellation costs
//! a reconnect, and a timeout storm feeds on itself.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use support::{assert_quiescent, options, poll_once, yield_until, Gated, TestManager, HANG_GUARD};

/// Acquires cancelled mid-check in this test.
const CANCELLATIONS: usize = 20;

#[tokio::test]
async fn acquires_cancelled_mid_check_keep_the_healthy_connection() {
    let (m, gate) = TestManager::gated(Gated::Check, 0);
    let counts = m.counts();
    let pool = options(1)
        .acquire_timeout(Duration::from_secs(60))
        .test_before_acquire(true)
        .build(m)
        .unwrap();
    drop(pool.acquire().await.unwrap()); // the one healthy connection, idle

    let mut cancelled = 0;
    for _ in 0..CANCELLATIONS * 4 {
        if cancelled == CANCELLATIONS {
            break;
        }
        let checks_before = counts.check_calls.load(Ordering::SeqCst);
        let mut acquiring = Box::pin(pool.acquire());
        match poll_once(&mut acquiring).await {
            Poll::Pending => {
                assert_eq!(
                    counts.check_calls.load(Ordering::SeqCst),
                    checks_before + 1,
                    "the acquire parked without checking: {:?}",
                    pool.stats()
                );
                drop(acquiring); // cancelled (a timeout does the same) mid-check
                cancelled += 1;
                // The check that was cut off now passes; let it finish wherever it runs.
                gate.add_permits(1);
            }
            // Served at once: a fresh resource (fresh ones are not checked), or a check that
            // found the permit a destroyed resource's cut-off check never used.
            Poll::Ready(conn) => drop(conn.expect("acquire failed")),
        }
        let settled = yield_until(1_000, || {
            let s = pool.stats();
            s.idle == 1 || s.size == 0
        })
        .await;
        assert!(
            settled,
            "the resource neither came back nor went: {:?}",
            pool.stats()
        );
    }
    assert_eq!(cancelled, CANCELLATIONS, "{:?}", pool.stats());

    gate.add_permits(1);
    let conn = tokio::time::timeout(HANG_GUARD, pool.acquire())
        .await
        .expect("the last acquire hung")
        .expect("the last acquire failed");
    let s = pool.stats();
    assert_eq!(
        (s.created, s.destroyed.total()),
        (1, 0),
        "{CANCELLATIONS} acquires cancelled mid-check, then one more: expected 1 connection \
         created and none destroyed; {s:?}"
    );
    drop(conn);
    assert_quiescent(&pool, &counts);
}

/// The other side of the fix: a cut-off check that fails still destroys the resource.
#[tokio::test]
async fn an_acquire_cancelled_mid_check_that_fails_destroys_the_connection() {
    let (m, gate) = TestManager::gated(Gated::Check, 0);
    let counts = m.counts();
    m.check_fails.store(true, Ordering::SeqCst);
    let pool = options(1).test_before_acquire(true).build(m).unwrap();
    drop(pool.acquire().await.unwrap());

    let mut acquiring = Box::pin(pool.acquire());
    assert!(poll_once(&mut acquiring).await.is_pending());
    drop(acquiring);
    gate.add_permits(1);
    assert!(
        yield_until(1_000, || pool.stats().size == 0).await,
        "a resource whose check failed was kept: {:?}",
        pool.stats()
    );
    assert_eq!(pool.stats().destroyed.total(), 1);
    assert_eq!(counts.live(), 0);
}

/// And a cut-off check still in flight loses to `close()`.
#[tokio::test]
async fn close_does_not_wait_for_a_cancelled_check() {
    let (m, _gate) = TestManager::gated(Gated::Check, 0);
    let counts = m.counts();
    let pool = options(1).test_before_acquire(true).build(m).unwrap();
    drop(pool.acquire().await.unwrap());

    let mut acquiring = Box::pin(pool.acquire());
    assert!(poll_once(&mut acquiring).await.is_pending());
    drop(acquiring); // the check never finishes
    tokio::time::timeout(HANG_GUARD, pool.close())
        .await
        .expect("close() waited for a check nobody waits for");
    assert_eq!(pool.stats().size, 0);
    assert_eq!(counts.live(), 0);
}

/// With `acquire_timeout(None)`, a cut-off check that hangs is still bounded: nobody waits for
/// it, so after `DEFAULT_BACKGROUND_CREATE_LIMIT` its resource is destroyed and its unit freed
/// (a hung check must not pin capacity for good, hazard H9).
#[tokio::test(start_paused = true)]
async fn a_cancelled_check_that_hangs_is_bounded_without_an_acquire_timeout() {
    let (m, _gate) = TestManager::gated(Gated::Check, 0); // the check never passes the gate
    let counts = m.counts();
    let pool = options(1).test_before_acquire(true).build(m).unwrap();
    drop(pool.acquire().await.unwrap());

    let mut acquiring = Box::pin(pool.acquire());
    assert!(poll_once(&mut acquiring).await.is_pending());
    drop(acquiring); // the check goes on in the background
    tokio::time::sleep(shadowcat_pool::DEFAULT_BACKGROUND_CREATE_LIMIT - Duration::from_secs(1))
        .await;
    assert_eq!(pool.stats().size, 1, "destroyed before the limit");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        yield_until(1_000, || pool.stats().size == 0).await,
        "a hung background check still holds its unit past the limit: {:?}",
        pool.stats()
    );
    assert_eq!(pool.stats().destroyed.cancelled, 1);
    assert_eq!(counts.live(), 0);
    // The freed unit serves the next acquire (a fresh resource: fresh ones are not checked).
    drop(pool.acquire().await.unwrap());
}
