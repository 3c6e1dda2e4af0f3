//! `PoolStats::total_wait` and `acquired_after_wait`: a parked acquire's wait is counted once and
//! timed in real time (the wait timer reads the CPU's counter, not tokio's clock), so the figure
//! means the same in production and in a test that pauses tokio's time.
#![cfg(not(shadowcat_loom))]

mod support;

use std::time::{Duration, Instant};

use support::{assert_quiescent, options, parked, TestManager, Warnings};

#[tokio::test]
async fn a_parked_acquire_records_the_real_time_it_waited() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let held = pool.acquire().await.unwrap();
    let served_at_once = pool.stats();
    assert_eq!(served_at_once.acquired_after_wait, 0, "{served_at_once:?}");
    assert_eq!(served_at_once.total_wait, Duration::ZERO);

    let waiter = parked(&pool).await;
    // The wait must last at least this long: the interval being measured, not synchronisation.
    let parked_for = Duration::from_millis(30);
    let since = Instant::now();
    std::thread::sleep(parked_for);
    drop(held); // handed to the parked acquire
    let conn = waiter.await.unwrap();
    let upper = since.elapsed();

    let s = pool.stats();
    assert_eq!(s.acquired_after_wait, 1, "{s:?}");
    assert_eq!(s.acquired_immediately, 1, "{s:?}");
    // Parked before `since` and served before `upper` was read. Allowed: 5% for the error of the
    // counter's calibrated rate (a converged calibration leaves far less).
    assert!(
        s.total_wait >= parked_for.mul_f64(0.95),
        "waited at least {parked_for:?}, recorded {:?}",
        s.total_wait
    );
    assert!(
        s.total_wait <= upper + Duration::from_secs(1),
        "recorded {:?}, but at most {upper:?} passed",
        s.total_wait
    );
    drop(conn);
    assert_quiescent(&pool, &counts);
}

#[tokio::test(start_paused = true)]
async fn tokio_s_paused_clock_does_not_inflate_the_recorded_wait() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let held = pool.acquire().await.unwrap();
    let waiter = parked(&pool).await;
    // An hour of virtual time passes while the acquire is parked; far less real time does.
    tokio::time::advance(Duration::from_secs(3600)).await;
    drop(held);
    let conn = waiter.await.unwrap();

    let s = pool.stats();
    assert_eq!(s.acquired_after_wait, 1, "{s:?}");
    assert!(
        s.total_wait < Duration::from_secs(60),
        "the virtual hour was recorded as waiting: {:?}",
        s.total_wait
    );
    drop(conn);
    assert_quiescent(&pool, &counts);
}

/// The messages of the `WARN` events the pool logged while `pool`'s one resource was held for
/// `held_for` by the test and then handed to a parked acquire.
async fn warnings_of_a_wait(
    pool: &shadowcat_pool::Pool<support::Conn>,
    held_for: Duration,
) -> Vec<String> {
    let warnings = Warnings::default();
    let _installed = warnings.install();
    let held = pool.acquire().await.unwrap();
    let waiter = parked(pool).await;
    // The wait must last at least this long: the interval being measured, not synchronisation.
    std::thread::sleep(held_for);
    drop(held); // handed to the parked acquire, which notes its wait as it completes
    drop(waiter.await.unwrap());
    let logged = warnings.0.lock().unwrap().clone();
    logged
}

#[tokio::test]
async fn a_wait_past_acquire_slow_threshold_is_logged_and_a_shorter_one_is_not() {
    let slow = Duration::from_millis(30);
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1)
        .acquire_slow_threshold(Duration::from_millis(5))
        .build(m)
        .unwrap();
    assert_eq!(
        warnings_of_a_wait(&pool, slow).await,
        ["slow acquire"],
        "a 30 ms wait against a 5 ms threshold"
    );
    assert_quiescent(&pool, &counts);

    // The same wait under a threshold it does not reach, and with the warning switched off.
    for threshold in [Some(Duration::from_secs(3600)), None] {
        let m = TestManager::new();
        let counts = m.counts();
        let pool = options(1)
            .acquire_slow_threshold(threshold)
            .build(m)
            .unwrap();
        let logged = warnings_of_a_wait(&pool, slow).await;
        assert!(logged.is_empty(), "threshold {threshold:?}: {logged:?}");
        assert_eq!(pool.stats().acquired_after_wait, 1, "the acquire did wait");
        assert_quiescent(&pool, &counts);
    }
}
