//! Hooks get the resource's age and idle time; `before_acquire`/`after_release` returning false
//! close the resource.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shadowcat_pool::Metadata;
use support::{assert_quiescent, options, TestManager};

#[tokio::test(start_paused = true)]
async fn hooks_receive_age_and_idle_time() {
    let seen: Arc<Mutex<Vec<(&'static str, Metadata)>>> = Arc::default();
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let pool = options(1)
        .after_create(move |_c, meta| {
            s1.lock().unwrap().push(("after_create", meta));
            Box::pin(async { Ok(()) })
        })
        .before_acquire(move |_c, meta| {
            s2.lock().unwrap().push(("before_acquire", meta));
            Box::pin(async { Ok(true) })
        })
        .after_release(move |_c, meta| {
            s3.lock().unwrap().push(("after_release", meta));
            Box::pin(async { Ok(true) })
        })
        .build(TestManager::new())
        .unwrap();

    let conn = pool.acquire().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    drop(conn); // after_release runs in a task
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(());
    });
    rx.await.unwrap(); // the hook task was spawned before this one, so it ran first
    tokio::time::sleep(Duration::from_secs(3)).await;
    let conn = pool.acquire().await.unwrap();
    drop(conn);

    let seen = seen.lock().unwrap().clone();
    let names: Vec<_> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        &names[..3],
        ["after_create", "after_release", "before_acquire"]
    );
    assert_eq!(seen[0].1.age, Duration::ZERO);
    assert_eq!(seen[1].1.age, Duration::from_secs(5));
    assert_eq!(seen[2].1.age, Duration::from_secs(8));
    assert_eq!(seen[2].1.idle_for, Duration::from_secs(3));
}

#[tokio::test]
async fn before_acquire_false_closes_and_moves_on() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1)
        .before_acquire(|conn, _meta| {
            let keep = conn.id != 0;
            Box::pin(async move { Ok(keep) })
        })
        .build(m)
        .unwrap();
    drop(pool.acquire().await.unwrap()); // #0, fresh: no before_acquire
    let conn = pool.acquire().await.unwrap(); // #0 rejected, #1 created
    assert_eq!(conn.id, 1);
    drop(conn);
    assert_eq!(pool.stats().destroyed.hook_rejected, 1);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn after_release_false_closes_the_resource() {
    let m = TestManager::new();
    let counts = m.counts();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let pool = options(1)
        .after_release(move |_conn, _meta| {
            let done = done_tx.clone();
            Box::pin(async move {
                let _ = done.send(());
                Ok(false)
            })
        })
        .build(m)
        .unwrap();
    drop(pool.acquire().await.unwrap());
    done_rx.recv().await.unwrap();
    // The hook's verdict is applied right after it returns, in the same task poll.
    let conn = pool.acquire().await.unwrap();
    assert_eq!(
        conn.id, 1,
        "the released resource was closed, a new one made"
    );
    drop(conn);
    done_rx.recv().await.unwrap();
    let s = pool.stats();
    assert_eq!((s.destroyed.hook_rejected, s.size), (2, 0), "{s:?}");
    assert_eq!(counts.live(), 0);
}
