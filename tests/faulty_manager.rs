//! Factory and hook errors and panics: the error reaches the caller, capacity comes back, nothing
//! is poisoned, and later acquires work (hazards H7 and H14).
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::Ordering;

use shadowcat_pool::{Error, HookKind};
use support::{
    assert_quiescent, drain_capacity, options, parked, within, CreateMode, Gated, TestManager,
    HANG_GUARD,
};

#[tokio::test]
async fn create_error_is_returned_and_capacity_comes_back() {
    let m = TestManager::new().plan(&[CreateMode::Fail, CreateMode::Fail]);
    let counts = m.counts();
    let pool = options(2).build(m).unwrap();
    for _ in 0..2 {
        match pool.acquire().await {
            Err(Error::Create(e)) => assert!(e.to_string().contains("create failed")),
            other => panic!("expected a create error, got {:?}", other.map(|c| c.id)),
        }
    }
    let s = pool.stats();
    assert_eq!((s.size, s.create_failed), (0, 2), "{s:?}");
    drop(drain_capacity(&pool, 2).await);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn create_panic_becomes_an_error_without_poisoning() {
    let m = TestManager::new().plan(&[CreateMode::Panic]);
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    match pool.acquire().await {
        Err(Error::Create(e)) => assert!(e.to_string().contains("panicked"), "{e}"),
        other => panic!("expected a create error, got {:?}", other.map(|c| c.id)),
    }
    assert_eq!(pool.stats().size, 0);
    drop(pool.acquire().await.unwrap());
    assert_quiescent(&pool, &counts);
}

/// The first acquire creates (and fails); the second waits behind it for the one unit. The
/// failure must free the unit for the waiter, which then creates.
#[tokio::test]
async fn failing_create_wakes_the_next_waiter_to_try_again() {
    let (m, gate) = TestManager::gated(Gated::Create, 0);
    let m = m.plan(&[CreateMode::Fail]);
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let first = parked(&pool).await; // creating, held at the closed gate
    let second = parked(&pool).await; // no room: waits in line
    assert_eq!(pool.stats().waiting, 1);
    gate.add_permits(2);
    let (a, b) = tokio::time::timeout(HANG_GUARD, async { (first.await, second.await) })
        .await
        .expect("the waiter was never woken after the failed create");
    assert!(matches!(a, Err(Error::Create(_))), "{:?}", a.map(|c| c.id));
    assert_eq!(b.expect("the woken waiter created").id, 1);
    assert_eq!(pool.stats().acquired_after_wait, 1);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn failing_and_panicking_hooks_close_the_resource_and_keep_the_pool_usable() {
    let m = TestManager::new();
    let counts = m.counts();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let pool = options(1)
        .after_create(move |_conn, _meta| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match n {
                    0 => Err("refused".into()),
                    1 => panic!("hook panicked on purpose"),
                    _ => Ok(()),
                }
            })
        })
        .build(m)
        .unwrap();
    for expected in ["refused", "panicked"] {
        match pool.acquire().await {
            Err(Error::Hook {
                hook: HookKind::AfterCreate,
                source,
            }) => {
                assert!(source.to_string().contains(expected), "{source}")
            }
            other => panic!("expected a hook error, got {:?}", other.map(|c| c.id)),
        }
        assert_eq!(pool.stats().size, 0);
    }
    drop(pool.acquire().await.unwrap());
    let s = pool.stats();
    assert_eq!(s.destroyed.hook_rejected, 2, "{s:?}");
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn failing_check_destroys_and_moves_on() {
    let m = TestManager::new();
    let counts = m.counts();
    m.check_fails.store(true, Ordering::SeqCst);
    let pool = options(1).test_before_acquire(true).build(m).unwrap();
    drop(pool.acquire().await.unwrap()); // created: not checked
                                         // The idle one fails its check; a new one is made with its unit.
    let conn = within("an acquire past a failed check", pool.acquire())
        .await
        .unwrap();
    assert_eq!(conn.id, 1);
    drop(conn);
    let s = pool.stats();
    assert_eq!((s.destroyed.check_failed, s.created), (1, 2), "{s:?}");
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn broken_release_is_destroyed_and_its_unit_reused() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    conn.broken = true;
    drop(conn);
    let s = pool.stats();
    assert_eq!((s.size, s.destroyed.broken), (0, 1), "{s:?}");
    let reused = within("an acquire with the broken one's unit", pool.acquire());
    assert_eq!(reused.await.unwrap().id, 1);
    assert_quiescent(&pool, &counts);
}

/// A manager whose synchronous check panics: `is_reusable` on every release, or `is_open` on
/// every idle resource handed out.
enum Panicky {
    Reuse,
    Open,
}

impl shadowcat_pool::Manager for Panicky {
    type Resource = u32;
    type Error = std::io::Error;

    async fn create(&self) -> Result<u32, std::io::Error> {
        Ok(7)
    }

    fn is_reusable(&self, _r: &mut u32) -> bool {
        match self {
            Panicky::Reuse => panic!("is_reusable panicked on purpose"),
            Panicky::Open => true,
        }
    }

    fn is_open(&self, _r: &mut u32) -> bool {
        match self {
            Panicky::Open => panic!("is_open panicked on purpose"),
            Panicky::Reuse => true,
        }
    }
}

/// A pool of one over `m`.
fn pool_of_one(m: Panicky) -> shadowcat_pool::Pool<u32> {
    shadowcat_pool::PoolOptions::new()
        .max_connections(1)
        .build(m)
        .unwrap()
}

#[tokio::test]
async fn panicking_is_reusable_counts_as_broken() {
    let pool = pool_of_one(Panicky::Reuse);
    drop(pool.acquire().await.unwrap());
    let s = pool.stats();
    assert_eq!((s.size, s.destroyed.broken), (0, 1), "{s:?}");
    assert_eq!(*pool.acquire().await.unwrap(), 7);
}

#[tokio::test]
async fn panicking_is_open_counts_as_not_open() {
    let pool = pool_of_one(Panicky::Open);
    // A fresh resource is not checked.
    drop(pool.acquire().await.unwrap());
    // The idle one's check panics: it is destroyed, and the acquire creates a replacement.
    assert_eq!(*pool.acquire().await.unwrap(), 7);
    let s = pool.stats();
    assert_eq!((s.size, s.destroyed.check_failed), (1, 1), "{s:?}");
    // try_acquire runs the same check: the idle resource is destroyed, nothing is handed out.
    assert!(pool.try_acquire().is_none());
    let s = pool.stats();
    assert_eq!((s.size, s.destroyed.check_failed), (0, 2), "{s:?}");
}

#[tokio::test]
async fn idle_resources_that_are_not_open_are_skipped_on_hand_out() {
    let m = TestManager::new();
    m.close_next_opens.store(2, Ordering::SeqCst);
    let counts = m.counts();
    let pool = options(3).build(m).unwrap();
    let held = drain_capacity(&pool, 3).await; // fresh resources are not checked
    drop(held); // idle, oldest first: #0, #1, #2
    let conn = pool.acquire().await.unwrap(); // #0 is not open: destroyed, then #1 is not open
    assert_eq!(conn.id, 2, "the next open idle resource was handed out");
    drop(conn);
    let s = pool.stats();
    assert_eq!(
        (s.destroyed.check_failed, s.size, s.created),
        (2, 1, 3),
        "{s:?}"
    );
    // try_acquire runs the same check.
    assert_eq!(pool.try_acquire().map(|c| c.id), Some(2));
    assert_quiescent(&pool, &counts);
}
