//! The checkout and return counts behind `PoolStats::in_use` and `acquired_immediately`. For a
//! thread with a hot slot they are kept on that slot's line: a take from the slot for a hand-out
//! counts the checkout, and is taken back if the resource is not handed out after all; a park
//! counts the return, and a release that does not park counts it elsewhere. These tests walk
//! each of those ways and check that the counts stay exact.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::Ordering;

use shadowcat_pool::{Pool, PoolStats};
use support::{current_thread, options, parked, Conn, TestManager};

/// `(in_use, acquired_immediately, acquired_after_wait)`.
fn counts(pool: &Pool<Conn>) -> (usize, u64, u64) {
    let PoolStats {
        in_use,
        acquired_immediately,
        acquired_after_wait,
        ..
    } = pool.stats();
    (in_use, acquired_immediately, acquired_after_wait)
}

#[test]
fn hot_cycles_count_every_checkout_and_return() {
    current_thread().block_on(async {
        let pool = options(2)
            .worker_slots(4)
            .build(TestManager::new())
            .unwrap();
        for i in 0..100u64 {
            let conn = pool.acquire().await.unwrap();
            assert_eq!(counts(&pool), (1, i + 1, 0));
            drop(conn);
            // Parked in this thread's slot (the next acquire takes it from there).
            assert_eq!((pool.num_idle(), counts(&pool)), (1, (0, i + 1, 0)));
        }
        for i in 0..10u64 {
            let conn = pool.try_acquire().unwrap();
            assert_eq!(counts(&pool), (1, 101 + i, 0));
            drop(conn);
        }
        assert_eq!(pool.stats().created, 1, "every cycle went through the slot");
        pool.close().await;
    });
}

#[test]
fn a_resource_from_the_slot_that_fails_is_open_is_not_counted_as_checked_out() {
    let m = TestManager::new();
    m.close_next_opens.store(2, Ordering::SeqCst);
    let counts_of = m.counts();
    current_thread().block_on(async {
        let pool = options(2).worker_slots(4).build(m).unwrap();
        drop(pool.acquire().await.unwrap()); // created (no `is_open`), then parked
        assert_eq!((pool.num_idle(), counts(&pool)), (1, (0, 1, 0)));
        // Taken from the slot, rejected by `is_open` and destroyed; a new one is created.
        let conn = pool.acquire().await.unwrap();
        assert_eq!(counts(&pool), (1, 2, 0));
        assert_eq!(pool.stats().destroyed.check_failed, 1);
        drop(conn);
        // The same through `try_acquire`: rejected, and nothing else is idle.
        assert!(pool.try_acquire().is_none());
        assert_eq!(counts(&pool), (0, 2, 0));
        assert_eq!(pool.stats().destroyed.check_failed, 2);
        pool.close().await;
    });
    assert_eq!(counts_of.live(), 0);
}

#[test]
fn a_resource_from_the_slot_that_needs_preparing_is_counted_once() {
    current_thread().block_on(async {
        let pool = options(2)
            .worker_slots(4)
            .test_before_acquire(true)
            .build(TestManager::new())
            .unwrap();
        for i in 0..20u64 {
            // From the slot (after the first), through the slow path's check.
            let conn = pool.acquire().await.unwrap();
            assert_eq!(counts(&pool), (1, i + 1, 0));
            drop(conn);
            assert_eq!(counts(&pool), (0, i + 1, 0));
        }
        assert_eq!(pool.stats().created, 1);
        pool.close().await;
    });
}

#[test]
fn a_release_that_finds_a_waiter_is_counted_past_the_slot() {
    current_thread().block_on(async {
        let pool = options(1)
            .worker_slots(4)
            .build(TestManager::new())
            .unwrap();
        let held = pool.acquire().await.unwrap();
        let mut waiter = parked(&pool).await;
        // Somebody waits: the release does not park, it hands the resource to the waiter.
        drop(held);
        assert_eq!(pool.num_idle(), 0);
        assert_eq!(counts(&pool).0, 0, "returned, not yet handed out");
        let conn = waiter.as_mut().await.unwrap();
        assert_eq!(counts(&pool), (1, 1, 1));
        drop(conn);
        assert_eq!((pool.num_idle(), counts(&pool)), (1, (0, 1, 1)));
        pool.close().await;
    });
}

#[test]
fn counts_from_threads_with_and_without_slots_add_up() {
    // One slot: of the threads below, at most one owns it; the others count in the per-thread
    // cells, and a resource may be checked out on one thread and returned on another.
    let pool = options(4)
        .worker_slots(1)
        .build(TestManager::new())
        .unwrap();
    let (to_other, from_main) = std::sync::mpsc::channel();
    let rt = current_thread();
    std::thread::scope(|s| {
        for _ in 0..3 {
            let pool = &pool;
            s.spawn(move || {
                current_thread().block_on(async {
                    for _ in 0..200 {
                        drop(pool.acquire().await.unwrap());
                    }
                })
            });
        }
        s.spawn(move || {
            // Returns on this thread what the main thread checked out.
            for conn in from_main {
                drop::<shadowcat_pool::PoolConnection<Conn>>(conn);
            }
        });
        rt.block_on(async {
            for _ in 0..200 {
                to_other.send(pool.acquire().await.unwrap()).unwrap();
            }
        });
        drop(to_other);
    });
    let s = pool.stats();
    assert_eq!(
        (s.in_use, s.acquired_immediately + s.acquired_after_wait),
        (0, 800),
        "{s:?}"
    );
    assert_eq!(s.idle, s.size, "{s:?}");
}
