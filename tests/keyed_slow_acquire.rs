//! A keyed pool's slow-acquire warning: off by default, and with `acquire_slow_threshold` set, a
//! parked acquire that waited longer logs one `WARN` event, as a plain pool's does.
#![cfg(not(shadowcat_loom))]

mod keyed_support;
mod support;

use std::sync::Arc;
use std::time::Duration;

use keyed_support::{assert_parked, options, Counting, Tally};
use support::Warnings;

/// Parks an acquire behind the key's one resource for `held_for` (real time: the interval being
/// measured), releases, and returns the warnings logged on this thread meanwhile.
async fn warnings_of_a_wait(threshold: Option<Duration>, held_for: Duration) -> Vec<String> {
    let pool = options(1, 4)
        .acquire_slow_threshold(threshold)
        .name("upstreams")
        .build(Counting(Arc::new(Tally::default())))
        .unwrap();
    let warnings = Warnings::default();
    let _installed = warnings.install();
    let held = pool.acquire(&0).await.unwrap();
    let mut waiter = Box::pin(pool.acquire(&0));
    assert_parked(&mut waiter, "key 0's waiter").await;
    std::thread::sleep(held_for);
    drop(held);
    drop(waiter.await.unwrap());
    let logged = warnings.0.lock().unwrap().clone();
    logged
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_keyed_acquire_is_logged_only_when_a_threshold_is_set() {
    let slow = Duration::from_millis(30);
    assert_eq!(
        warnings_of_a_wait(Some(Duration::from_millis(5)), slow).await,
        ["slow acquire"],
        "a 30 ms wait against a 5 ms threshold"
    );
    for threshold in [None, Some(Duration::from_secs(3600))] {
        let logged = warnings_of_a_wait(threshold, slow).await;
        assert!(logged.is_empty(), "threshold {threshold:?}: {logged:?}");
    }
}
