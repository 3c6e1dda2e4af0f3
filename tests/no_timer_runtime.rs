//! Issue 11 item 3: a time limit that cannot be armed (no tokio runtime, or a runtime built
//! without a timer driver) is not applied: the operation runs without that limit and a warning
//! is logged once per pool. It never panics. These tests cover each place a limit is armed on a
//! path a user reaches: `acquire_timeout` when creating and when waiting, `create_timeout`
//! outside tokio, and `release_timeout` in `PoolConnection::close`.
#![cfg(not(shadowcat_loom))]

mod support;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::Duration;

use shadowcat_pool::PoolOptions;
use support::{options, yield_until, Conn, TestManager, Warnings};

/// A current-thread runtime with no timer driver (`enable_time` not called).
fn runtime_without_timers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<non-string panic>".to_string())
}

/// The default options (`acquire_timeout` 2 s), minus the maintenance task (idle timeout and
/// lifetime off), which is not what these tests are about.
fn default_options() -> PoolOptions<Conn> {
    PoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
}

#[test]
fn acquire_on_a_runtime_without_timers_creates() {
    let m = TestManager::new();
    let counts = m.counts();
    let rt = runtime_without_timers();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let pool = default_options().build(m).unwrap();
            let conn = pool.acquire().await.map(|conn| conn.id);
            (pool, conn)
        })
    }));
    let (pool, conn) = match outcome {
        Ok(done) => done,
        Err(panic) => panic!(
            "acquire() panicked on a runtime without a timer driver: {}",
            panic_message(&*panic)
        ),
    };
    assert_eq!(conn.expect("acquire failed"), 0);
    assert_eq!(pool.stats().created, 1);
    assert_eq!(counts.live(), 1);
}

#[test]
fn acquire_on_a_runtime_without_timers_waits_for_a_release() {
    // The first connection comes from a runtime with timers, so that only the wait is tested.
    let pool = default_options().build(TestManager::new()).unwrap();
    let held = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(pool.acquire())
        .unwrap();

    let rt = runtime_without_timers();
    let got = rt.block_on(async {
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire().await.map(|conn| conn.id) }
        });
        let parked = yield_until(1_000, || pool.stats().waiting == 1 || waiter.is_finished()).await;
        assert!(parked, "the second acquire neither parked nor finished");
        drop(held); // handed to the waiter
        waiter.await
    });
    match got {
        Ok(conn) => assert_eq!(conn.expect("the waiting acquire failed"), 0),
        Err(e) if e.is_panic() => panic!(
            "a waiting acquire panicked on a runtime without a timer driver: {}",
            panic_message(&*e.into_panic())
        ),
        Err(e) => panic!("the waiting task was cancelled: {e}"),
    }
}

#[test]
fn acquire_outside_tokio_with_create_timeout_creates() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1)
        .create_timeout(Duration::from_secs(1))
        .build(m)
        .unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        futures_executor::block_on(pool.acquire()).map(|conn| conn.id)
    }));
    match outcome {
        Ok(conn) => assert_eq!(conn.expect("acquire failed"), 0),
        Err(panic) => panic!(
            "acquire() with create_timeout panicked outside tokio: {}",
            panic_message(&*panic)
        ),
    }
    assert_eq!(pool.stats().created, 1);
    assert_eq!(counts.live(), 1, "the connection went back to the idle set");
}

#[test]
fn connection_close_outside_tokio_destroys_the_resource() {
    let m = TestManager::new();
    let counts = m.counts();
    // Default release_timeout (5 s); no acquire or create limit, so acquire needs no timer.
    let pool = options(1).build(m).unwrap();
    let conn = futures_executor::block_on(pool.acquire()).unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        futures_executor::block_on(conn.close())
    }));
    if let Err(panic) = outcome {
        panic!(
            "PoolConnection::close() panicked outside tokio: {}",
            panic_message(&*panic)
        );
    }
    let s = pool.stats();
    assert_eq!((s.size, s.destroyed.closed_by_user), (0, 1), "{s:?}");
    assert_eq!(counts.destroy_calls.load(Ordering::SeqCst), 1);
    assert_eq!(counts.live(), 0);
}

#[test]
fn unarmed_time_limits_are_logged_once_per_pool() {
    let warnings = Warnings::default();
    let pool = options(3)
        .acquire_timeout(Duration::from_secs(2))
        .create_timeout(Duration::from_secs(1))
        .build(TestManager::new())
        .unwrap();
    let outcome = {
        let _installed = warnings.install();
        catch_unwind(AssertUnwindSafe(|| {
            futures_executor::block_on(async {
                // Three acquires that each create: each meets both limits.
                let held = support::drain_capacity(&pool, 3).await;
                drop(held);
            })
        }))
    };
    if let Err(panic) = outcome {
        panic!(
            "acquire() with time limits panicked outside tokio: {}",
            panic_message(&*panic)
        );
    }
    let logged = warnings.0.lock().unwrap().clone();
    assert_eq!(
        logged.len(),
        1,
        "time limits that cannot be armed should be logged once per pool, got: {logged:#?}"
    );
}
