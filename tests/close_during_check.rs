//! Issue 11 item 1: a pool closed while an acquire prepares an idle resource
//! (`test_before_acquire`, `before_acquire`) must not hand that resource out. The acquire fails
//! with `Error::Closed`, the resource is destroyed, and `close()` returns without waiting for the
//! caller to drop a connection it should never have been given. A freshly created resource
//! already gets this last look at `closed`; a prepared idle one must get it too.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::Arc;

use shadowcat_pool::{Error, Pool};
use support::{options, yield_until, Conn, Counts, Gated, TestManager, HANG_GUARD};
use tokio::sync::Notify;

/// With one idle resource in `pool`: starts an acquire, waits until its preparation (check or
/// hook) has `started`, closes the pool, then lets the preparation pass with `pass`. The acquire
/// must end with `Error::Closed` and `close()` must return while the test still holds whatever
/// the acquire returned.
async fn close_while_preparing(
    pool: Pool<Conn>,
    counts: &Counts,
    started: Arc<Notify>,
    pass: impl FnOnce(),
) {
    drop(pool.acquire().await.unwrap()); // one idle resource
    assert_eq!(pool.stats().idle, 1);

    let acquiring = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire().await }
    });
    started.notified().await; // the acquire is preparing the idle resource
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close().await }
    });
    assert!(
        yield_until(1_000, || pool.is_closed()).await,
        "close() did not mark the pool closed"
    );

    pass(); // the check or hook now says "healthy"
    let got = tokio::time::timeout(HANG_GUARD, acquiring)
        .await
        .expect("the acquire hung after its preparation passed")
        .expect("the acquire panicked");
    // Keep `got` alive while close runs: a closed pool must not need it back.
    let close_returned = tokio::time::timeout(HANG_GUARD, closing).await.is_ok();
    let s = pool.stats();
    assert!(
        matches!(got, Err(Error::Closed)),
        "an acquire whose idle resource was prepared while the pool closed returned {:?} \
         instead of Err(Closed); close() returned while it was held: {close_returned}; {s:?}",
        got.as_ref().map(|conn| conn.id),
    );
    assert!(
        close_returned,
        "close() did not return within {HANG_GUARD:?}: {s:?}"
    );
    assert_eq!(s.size, 0, "{s:?}");
    assert_eq!(
        s.destroyed.closed, 1,
        "the prepared resource is destroyed as closed: {s:?}"
    );
    assert_eq!(counts.live(), 0);
}

#[tokio::test]
async fn close_during_health_check_fails_the_acquire_and_returns() {
    let (m, gate) = TestManager::gated(Gated::Check, 0);
    let counts = m.counts();
    let started = m.check_started.clone();
    let pool = options(1).test_before_acquire(true).build(m).unwrap();
    close_while_preparing(pool, &counts, started, || gate.add_permits(1)).await;
}

#[tokio::test]
async fn close_during_before_acquire_hook_fails_the_acquire_and_returns() {
    let m = TestManager::new();
    let counts = m.counts();
    let (started, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (hook_started, hook_gate) = (started.clone(), gate.clone());
    let pool = options(1)
        .before_acquire(move |_conn, _meta| {
            let (started, gate) = (hook_started.clone(), hook_gate.clone());
            Box::pin(async move {
                started.notify_one();
                gate.notified().await;
                Ok(true)
            })
        })
        .build(m)
        .unwrap();
    close_while_preparing(pool, &counts, started, || gate.notify_one()).await;
}
