//! Two releases wake two waiters (no coalesced notify, hazard H5), and a release racing a
//! parking acquirer is never lost (hazard H3).
#![cfg(not(shadowcat_loom))]

mod support;

use std::task::Poll;

use support::{assert_quiescent, options, parked, poll_once, TestManager, STORM_GUARD};

#[tokio::test]
async fn two_back_to_back_releases_wake_two_waiters() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(2).build(m).unwrap();
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();

    let mut w1 = parked(&pool).await;
    let mut w2 = parked(&pool).await;

    // Both releases happen before either waiter runs.
    drop(a);
    drop(b);
    let (Poll::Ready(Ok(c1)), Poll::Ready(Ok(c2))) =
        (poll_once(&mut w1).await, poll_once(&mut w2).await)
    else {
        panic!("both waiters must be served by the two releases");
    };
    assert_ne!(c1.id, c2.id);
    drop((c1, c2));
    assert_quiescent(&pool, &counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_on_one_resource_all_finish() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let conn = pool.acquire().await.unwrap();
                tokio::task::yield_now().await;
                drop(conn);
            }
        }));
    }
    tokio::time::timeout(STORM_GUARD, async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a task is stranded: {:?}", pool.stats()));
    assert_eq!(counts.created.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_quiescent(&pool, &counts);
}
