//! Cancellation at every await point gives capacity back and leaks nothing (hazard H1), and a
//! cancelled notified waiter passes its wake-up on (hazard H4).
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use support::{
    assert_quiescent, drain_capacity, options, parked, poll_once, Gated, TestManager, STORM_GUARD,
};
use tokio::sync::{Notify, Semaphore};

#[tokio::test]
async fn cancel_while_waiting_frees_the_place_in_line() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let held = pool.acquire().await.unwrap();

    let waiter = parked(&pool).await;
    assert_eq!(pool.stats().waiting, 1);
    drop(waiter);
    assert_eq!(pool.stats().waiting, 0);

    drop(held);
    assert_eq!(pool.stats().idle, 1);
    let again = pool
        .try_acquire()
        .expect("the released resource is idle, not reserved");
    drop(again);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn cancel_mid_create_returns_the_unit() {
    let (m, gate) = TestManager::gated(Gated::Create, 0);
    let counts = m.counts();
    let started = m.create_started.clone();
    let pool = options(1).build(m).unwrap();

    let creating = parked(&pool).await;
    started.notified().await;
    assert_eq!(pool.stats().size, 1, "the create holds the only unit");
    drop(creating);
    assert_eq!(
        pool.stats().size,
        0,
        "cancelling the create returned the unit"
    );

    gate.add_permits(1);
    let conn = pool.acquire().await.unwrap();
    drop(conn);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn cancel_mid_create_hands_the_unit_to_the_next_waiter() {
    let (m, gate) = TestManager::gated(Gated::Create, 0);
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();

    let first = parked(&pool).await;
    let second = parked(&pool).await;
    assert_eq!(pool.stats().size, 1);

    drop(first); // its unit goes to `second`, which creates with it
    gate.add_permits(1);
    let conn = second.await.unwrap();
    assert_eq!(pool.stats().size, 1);
    drop(conn);
    assert_quiescent(&pool, &counts);
}

/// A check cut off by a cancelled acquire finishes in the background, and a resource that passes
/// is kept (more cases in `tests/cancelled_check.rs`).
#[tokio::test]
async fn cancel_mid_check_lets_the_check_finish_and_keeps_the_resource() {
    let (m, gate) = TestManager::gated(Gated::Check, 0);
    let counts = m.counts();
    let started = m.check_started.clone();
    let pool = options(2).test_before_acquire(true).build(m).unwrap();

    drop(pool.acquire().await.unwrap()); // create one, return it idle
    assert_eq!(pool.stats().idle, 1);

    let checking = parked(&pool).await;
    started.notified().await;
    drop(checking);
    // The check goes on in the background and still holds the resource's unit.
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.destroyed.total()), (1, 0, 0), "{s:?}");

    gate.add_permits(10);
    until(|| pool.stats().recovered_after_cancel == 1).await;
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.destroyed.cancelled), (1, 1, 0), "{s:?}");
    drop(pool.acquire().await.unwrap());
    assert_eq!(pool.stats().created, 1, "the healthy resource was reused");
    let held = drain_capacity(&pool, 2).await;
    drop(held);
    assert_quiescent(&pool, &counts);
}

/// Yields to the runtime until `done` holds (the background task it waits for runs on this
/// runtime); bounded, so a bug fails the test instead of hanging it.
async fn until(done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the background work never finished");
}

#[tokio::test]
async fn cancel_mid_after_create_hook_returns_the_unit() {
    let hook_gate = Arc::new(Notify::new());
    let hook_started = Arc::new(Notify::new());
    let m = TestManager::new();
    let counts = m.counts();
    let (gate, started) = (hook_gate.clone(), hook_started.clone());
    let pool = options(1)
        .after_create(move |_conn, _meta| {
            let (gate, started) = (gate.clone(), started.clone());
            Box::pin(async move {
                started.notify_one();
                gate.notified().await;
                Ok(())
            })
        })
        .build(m)
        .unwrap();

    let acquiring = parked(&pool).await;
    hook_started.notified().await;
    assert_eq!(pool.stats().size, 1);
    drop(acquiring);
    let s = pool.stats();
    assert_eq!(s.size, 0, "{s:?}");
    assert_eq!(
        counts.live(),
        0,
        "the half-initialised resource was destroyed"
    );

    hook_gate.notify_one();
    let conn = pool.acquire().await.unwrap();
    drop(conn);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn cancel_mid_before_acquire_hook_lets_the_hook_finish_and_keeps_the_resource() {
    let hook_gate = Arc::new(Semaphore::new(0));
    let hook_started = Arc::new(Notify::new());
    let m = TestManager::new();
    let counts = m.counts();
    let (gate, started) = (hook_gate.clone(), hook_started.clone());
    let pool = options(1)
        .before_acquire(move |_conn, _meta| {
            let (gate, started) = (gate.clone(), started.clone());
            Box::pin(async move {
                started.notify_one();
                gate.acquire().await.unwrap().forget();
                Ok(true)
            })
        })
        .build(m)
        .unwrap();

    drop(pool.acquire().await.unwrap()); // created resources skip before_acquire
    let acquiring = parked(&pool).await;
    hook_started.notified().await;
    drop(acquiring);
    // The hook goes on in the background, holding the unit; once it passes, the resource is idle.
    assert_eq!(pool.stats().size, 1);
    hook_gate.add_permits(10);
    until(|| pool.stats().idle == 1).await;
    assert_eq!(pool.stats().recovered_after_cancel, 1);
    drop(pool.acquire().await.unwrap());
    assert_eq!(pool.stats().created, 1);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn cancelled_notified_waiter_passes_the_wakeup_on() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let held = pool.acquire().await.unwrap();

    let first = parked(&pool).await;
    let mut second = parked(&pool).await;
    assert_eq!(pool.stats().waiting, 2);

    drop(held); // reserved for `first`, the oldest waiter
    assert_eq!(pool.stats().idle, 0, "the item is reserved, not published");
    drop(first); // cancelled before it ever saw the notification
    match poll_once(&mut second).await {
        Poll::Ready(Ok(conn)) => drop(conn),
        other => panic!(
            "second waiter was not handed the resource: {:?}",
            other.map(|r| r.map(|c| c.id))
        ),
    }
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn cancelled_last_notified_waiter_publishes_the_item() {
    // With no other waiter to pass to, the reservation must become an idle item again
    // (event-listener's own forward-on-drop would lose it).
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let held = pool.acquire().await.unwrap();
    let waiter = parked(&pool).await;
    drop(held);
    drop(waiter);
    let s = pool.stats();
    assert_eq!((s.idle, s.waiting, s.size), (1, 0, 1), "{s:?}");
    assert!(pool.try_acquire().is_some());
    assert_quiescent(&pool, &counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_storm_leaves_the_books_balanced() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(4).build(m).unwrap();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..300u64 {
                // Timeouts from 0 to 49 µs cut acquires off at every stage.
                let limit = Duration::from_micros((t * 7 + i) % 50);
                if let Ok(Ok(conn)) = tokio::time::timeout(limit, pool.acquire()).await {
                    tokio::task::yield_now().await;
                    drop(conn);
                }
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
    let s = pool.stats();
    assert_eq!(s.waiting, 0, "{s:?}");
    assert_eq!(s.in_use, 0, "{s:?}");
    assert_eq!(s.idle, s.size, "every live resource is idle: {s:?}");
    assert_quiescent(&pool, &counts);
    // All capacity can be taken without waiting.
    let held = drain_capacity(&pool, 4).await;
    assert_eq!(pool.stats().size, 4);
    drop(held);
}
