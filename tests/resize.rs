//! Runtime resize (`Pool::set_max_connections`): raising the bound serves parked acquirers at
//! once; lowering it destroys idle resources, retires resources in use as they come back, and
//! keeps waiters in line until the size is below the new bound; bad bounds are rejected.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use shadowcat_pool::{Error, ResizeError};
use support::{
    assert_quiescent, drain_capacity, options, parked, poll_once, yield_until, TestManager,
    STORM_GUARD,
};

#[tokio::test]
async fn raising_the_bound_serves_parked_waiters_in_order() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).max_connections_ceiling(8).build(m).unwrap();
    let held = pool.acquire().await.unwrap();
    let mut first = parked(&pool).await;
    let mut second = parked(&pool).await;
    assert_eq!(pool.stats().waiting, 2);

    assert_eq!(pool.set_max_connections(2), Ok(1));
    assert_eq!(pool.max_connections(), 2);
    // One unit of new room: the oldest waiter gets it and creates; the younger keeps waiting.
    let a = first.as_mut().await.unwrap();
    assert!(poll_once(&mut second).await.is_pending());
    assert_eq!(pool.stats().waiting, 1);

    assert_eq!(pool.set_max_connections(3), Ok(2));
    let b = second.await.unwrap();
    let s = pool.stats();
    assert_eq!((s.size, s.max, s.created), (3, 3, 3), "{s:?}");
    drop((held, a, b));
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn lowering_the_bound_destroys_idle_resources() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(4).build(m).unwrap();
    drop(drain_capacity(&pool, 4).await);
    assert_eq!(pool.stats().idle, 4);

    assert_eq!(pool.set_max_connections(1), Ok(4));
    assert!(
        yield_until(1000, || counts.live() == 1).await,
        "{:?}",
        pool.stats()
    );
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.destroyed.resized), (1, 1, 3), "{s:?}");
    // The one left is served, and no second one can be created.
    let conn = pool.acquire().await.unwrap();
    assert!(pool.try_acquire().is_none());
    drop(conn);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn resources_in_use_are_retired_as_they_come_back() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(3).build(m).unwrap();
    let mut held = drain_capacity(&pool, 3).await;
    pool.set_max_connections(1).unwrap();
    assert_eq!(pool.size(), 3, "a resource in use is never taken away");

    drop(held.pop());
    assert!(yield_until(1000, || pool.size() == 2).await);
    drop(held.pop());
    assert!(yield_until(1000, || pool.size() == 1).await);
    let s = pool.stats();
    assert_eq!((s.idle, s.destroyed.resized), (0, 2), "{s:?}");
    // Now within the bound: the last one goes idle.
    let last = held.pop().unwrap();
    let id = last.id;
    drop(last);
    assert_eq!(pool.stats().idle, 1);
    assert_eq!(pool.acquire().await.unwrap().id, id);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn waiters_keep_their_place_until_the_size_is_below_the_new_bound() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(2).build(m).unwrap();
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    let mut waiter = parked(&pool).await;
    pool.set_max_connections(1).unwrap();

    // Size 2 over a bound of 1: the first resource back is retired, not handed to the waiter.
    drop(a);
    assert!(yield_until(1000, || pool.size() == 1).await);
    assert!(matches!(poll_once(&mut waiter).await, Poll::Pending));
    assert_eq!(pool.stats().waiting, 1);

    // Size 1 within the bound: the next one goes to the waiter.
    let b_id = b.id;
    drop(b);
    assert_eq!(waiter.await.unwrap().id, b_id);
    assert_eq!(pool.stats().destroyed.resized, 1);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn lowering_then_raising_again_reuses_the_room() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(2).build(m).unwrap();
    pool.set_max_connections(1).unwrap();
    let a = pool.acquire().await.unwrap();
    assert!(pool.try_acquire().is_none());
    assert_eq!(
        pool.set_max_connections(2),
        Ok(1),
        "up to the ceiling again"
    );
    let b = pool.acquire().await.unwrap();
    assert_eq!(pool.size(), 2);
    drop((a, b));
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn bad_bounds_are_rejected_naming_the_limit() {
    let pool = options(2)
        .max_connections_ceiling(4)
        .build(TestManager::new())
        .unwrap();
    assert_eq!(
        pool.set_max_connections(0),
        Err(ResizeError::OutOfRange { max: 0, ceiling: 4 })
    );
    let err = pool.set_max_connections(5).unwrap_err();
    assert_eq!(err, ResizeError::OutOfRange { max: 5, ceiling: 4 });
    assert!(err.to_string().contains("max_connections_ceiling"), "{err}");
    assert_eq!(
        pool.max_connections(),
        2,
        "a rejected resize changes nothing"
    );

    let err = options(4)
        .max_connections_ceiling(3)
        .build(TestManager::new())
        .unwrap_err();
    assert_eq!(err.field, "max_connections_ceiling");

    pool.close().await;
    assert_eq!(pool.set_max_connections(3), Err(ResizeError::Closed));
}

/// A pool of 4 that maintenance keeps at 3 (`min_connections`), with a pass every 100 ms.
fn kept_at_three(m: TestManager) -> shadowcat_pool::Pool<support::Conn> {
    options(4)
        .min_connections(3)
        .maintenance_interval(Duration::from_millis(100))
        .build(m)
        .unwrap()
}

/// On tokio's paused clock, so maintenance passes run without real waiting.
#[tokio::test(start_paused = true)]
async fn min_connections_is_capped_at_a_lowered_bound() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = kept_at_three(m);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pool.stats().idle, 3, "{:?}", pool.stats());
    pool.set_max_connections(1).unwrap();
    // Many maintenance passes: warm-up must not grow past the bound to reach its minimum.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = pool.stats();
    assert_eq!((s.size, s.destroyed.resized), (1, 2), "{s:?}");
    assert!(s.maintenance_passes >= 5, "{s:?}");
    assert_quiescent(&pool, &counts);
}

/// A raise keeps its room from arrivals (warm-up is one) only until it has served the line: then
/// warm-up grows to the minimum again.
#[tokio::test(start_paused = true)]
async fn after_a_raise_serves_the_line_warm_up_may_use_the_rest() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = kept_at_three(m);
    pool.set_max_connections(1).unwrap();
    let held = pool.acquire().await.unwrap();
    let waiter = parked(&pool).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pool.stats().size, 1, "warm-up stays within the bound");
    assert_eq!(pool.set_max_connections(4), Ok(1));
    let served = waiter.await.unwrap();
    // Many maintenance passes: the raise is over, so warm-up reaches its minimum.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = pool.stats();
    assert_eq!((s.size, s.in_use, s.idle), (3, 2, 1), "{s:?}");
    drop((held, served));
    assert_quiescent(&pool, &counts);
}

/// Many tasks cycling while another keeps moving the bound: nothing leaks, nobody is stranded,
/// and once everything is back the size is within the last bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizing_under_load_keeps_the_books() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(4).max_connections_ceiling(16).build(m).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                let conn = pool.acquire().await?;
                tokio::task::yield_now().await;
                drop(conn);
            }
            Ok::<_, Error>(())
        }));
    }
    let resizer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                pool.set_max_connections([1, 16, 3, 8, 2][i % 5]).unwrap();
                tokio::task::yield_now().await;
            }
            pool.set_max_connections(5).unwrap();
        })
    };
    tokio::time::timeout(STORM_GUARD, async {
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        resizer.await.unwrap();
    })
    .await
    .unwrap_or_else(|_| panic!("a task is stranded: {:?}", pool.stats()));
    // Everything is back, so every resource above the last bound has been retired.
    assert!(
        yield_until(10_000, || counts.live() == pool.size()).await,
        "{:?} {counts:?}",
        pool.stats()
    );
    let s = pool.stats();
    assert!(s.size <= 5, "{s:?}");
    assert_eq!(s.in_use, 0, "{s:?}");
    assert_eq!(
        s.created - s.destroyed.total(),
        s.size as u64,
        "created - destroyed != size: {s:?}"
    );
    assert!(counts.created.load(Ordering::SeqCst) >= 1);
    assert_quiescent(&pool, &counts);
}
