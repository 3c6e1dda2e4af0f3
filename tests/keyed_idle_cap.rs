//! `max_idle_total` across keys: the idle estimate behind it counts what really holds a global
//! unit, so the cap holds while creates wait for capacity and after a cancelled close.
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::sync::Arc;
use std::task::Poll;

use keyed_support::{assert_parked, options, poll_once, Counting, Res, Tally};
use shadowcat_pool::{KeyedManager, Saturation};

/// Creates waiting for global capacity hold no unit: the idle estimate must not subtract them, or
/// `max_idle_total` goes unenforced exactly while they wait (beside idle resources above the
/// cap, under `Wait`).
#[tokio::test(flavor = "current_thread")]
async fn max_idle_total_is_enforced_while_creates_wait_for_capacity() {
    let pool = options(4, 4)
        .saturation(Saturation::Wait)
        .max_idle_total(2)
        .build(Counting(Arc::new(Tally::default())))
        .unwrap();
    let held: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(pool.acquire(&0).await.unwrap());
        }
        v
    };
    let mut b = Box::pin(pool.acquire(&1));
    let mut c = Box::pin(pool.acquire(&2));
    assert_parked(&mut b, "b").await;
    assert_parked(&mut c, "c").await;
    drop(held);
    pool.run_maintenance();
    let s = pool.stats();
    assert!(s.idle <= 2, "idle {} above max_idle_total 2: {s:?}", s.idle);
    assert!(
        matches!(poll_once(&mut b).await, Poll::Ready(Ok(_))),
        "b still waits beside idle resources"
    );
}

/// A manager whose destroy of key 0 never finishes.
struct SlowDestroy(Counting);

impl KeyedManager<u8> for SlowDestroy {
    type Resource = Res;
    type Error = std::io::Error;
    async fn create(&self, key: &u8) -> std::io::Result<Res> {
        self.0.create(key).await
    }
    async fn destroy(&self, key: &u8, resource: Res) {
        if *key == 0 {
            std::future::pending::<()>().await;
        }
        drop(resource);
    }
}

/// A `KeyedConnection::close()` dropped during its teardown still does the release's
/// bookkeeping: otherwise the checked-out gauge stays one too high for good and
/// `max_idle_total` is under-enforced.
#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_close_does_not_leak_the_checked_out_gauge() {
    let pool = options(4, 4)
        .max_idle_total(1)
        .build(SlowDestroy(Counting(Arc::new(Tally::default()))))
        .unwrap();
    let conn = pool.acquire(&0).await.unwrap();
    let mut closing = Box::pin(conn.close());
    assert!(poll_once(&mut closing).await.is_pending());
    drop(closing); // cancelled: teardown dropped, both units back
    assert_eq!(pool.stats().size, 0);
    let a1 = pool.acquire(&1).await.unwrap();
    let a2 = pool.acquire(&1).await.unwrap();
    drop(a1);
    drop(a2);
    let s = pool.stats();
    assert!(s.idle <= 1, "idle {} above max_idle_total 1: {s:?}", s.idle);
}
