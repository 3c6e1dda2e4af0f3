//! With the `metrics` feature, the pool and the keyed pool report through the `metrics` facade
//! under the documented names and labels (run by `.ci/run` as
//! `cargo test --features metrics --test metrics`).
#![cfg(all(feature = "metrics", not(shadowcat_loom)))]

mod support;

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use shadowcat_pool::{keyed_fn, Error, KeyedPoolOptions};
use support::{options, parked, TestManager};

/// (kind, name, labels sorted, value) for every metric recorded.
fn recorded(recorder: &DebuggingRecorder) -> Vec<(MetricKind, String, Vec<String>, DebugValue)> {
    let mut all: Vec<_> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (kind, key.name().to_string(), labels, value)
        })
        .collect();
    all.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    all
}

fn value<'a>(
    all: &'a [(MetricKind, String, Vec<String>, DebugValue)],
    name: &str,
    labels: &[&str],
) -> &'a DebugValue {
    &all.iter()
        .find(|(_, n, l, _)| n == name && l.iter().map(String::as_str).eq(labels.iter().copied()))
        .unwrap_or_else(|| panic!("{name} {labels:?} not recorded: {all:#?}"))
        .3
}

#[tokio::test(start_paused = true)]
async fn events_and_gauges_are_reported_with_the_pool_label() {
    let recorder = DebuggingRecorder::new();
    let pool = metrics::with_local_recorder(&recorder, || {
        options(1)
            .name("upstream-a")
            .acquire_timeout(Duration::from_millis(50))
            .build(TestManager::new())
            .unwrap()
    });
    let pool_label = ["pool=upstream-a"];

    let held = pool.acquire().await.unwrap(); // a create
    let waiter = parked(&pool).await;
    drop(held); // handed to the parked waiter
    let conn = waiter.await.unwrap();
    let timed_out = pool.acquire().await; // nothing free: times out (paused clock)
    assert!(matches!(timed_out, Err(Error::Timeout(_))));
    pool.record_metrics(); // gauges while one resource is checked out
    conn.discard(); // destroyed by the user

    let all = recorded(&recorder);
    let counter = |name, labels: &[&str]| match value(&all, name, labels) {
        DebugValue::Counter(n) => *n,
        other => panic!("{name} is not a counter: {other:?}"),
    };
    let samples = |name| match value(&all, name, &pool_label) {
        DebugValue::Histogram(v) => v.len(),
        other => panic!("{name} is not a histogram: {other:?}"),
    };
    let gauge = |name| match value(&all, name, &pool_label) {
        DebugValue::Gauge(v) => v.into_inner(),
        other => panic!("{name} is not a gauge: {other:?}"),
    };
    assert_eq!(counter("shadowcat_pool_creates_total", &pool_label), 1);
    assert_eq!(
        counter("shadowcat_pool_create_failures_total", &pool_label),
        0
    );
    assert_eq!(
        counter("shadowcat_pool_acquire_timeouts_total", &pool_label),
        1
    );
    assert_eq!(
        counter(
            "shadowcat_pool_destroys_total",
            &["pool=upstream-a", "reason=closed_by_user"]
        ),
        1
    );
    assert_eq!(
        counter(
            "shadowcat_pool_destroys_total",
            &["pool=upstream-a", "reason=broken"]
        ),
        0
    );
    assert_eq!(
        samples("shadowcat_pool_create_seconds"),
        1,
        "create time, apart from waits"
    );
    assert_eq!(
        samples("shadowcat_pool_wait_seconds"),
        1,
        "one acquire parked and was served"
    );
    assert_eq!(gauge("shadowcat_pool_size"), 1.0);
    assert_eq!(gauge("shadowcat_pool_in_use"), 1.0);
    assert_eq!(gauge("shadowcat_pool_idle"), 0.0);
    assert_eq!(gauge("shadowcat_pool_waiting"), 0.0);
    assert_eq!(gauge("shadowcat_pool_creating"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_keyed_pool_reports_sums_over_its_keys_and_its_maintenance_sets_the_gauges() {
    let recorder = DebuggingRecorder::new();
    // For the whole test: the keys' pools are built on their first acquire and register their
    // handles then. (A current-thread runtime, so every step runs on this thread.)
    let _local = metrics::set_default_local_recorder(&recorder);
    let pool = KeyedPoolOptions::new()
        .name("upstreams")
        .max_per_key(2)
        .max_total(4)
        .maintenance_interval(Duration::from_secs(1))
        .build(keyed_fn(|key: &u32| {
            let key = *key;
            async move { Ok::<_, std::io::Error>(key) }
        }))
        .unwrap();
    let label = ["pool=upstreams"];
    let gauge = |all: &[(MetricKind, String, Vec<String>, DebugValue)], name| match value(
        all, name, &label,
    ) {
        DebugValue::Gauge(v) => v.into_inner(),
        other => panic!("{name} is not a gauge: {other:?}"),
    };

    let held = pool.acquire(&1).await.unwrap();
    drop(pool.acquire(&2).await.unwrap()); // idle on key 2
    pool.record_metrics();
    let all = recorded(&recorder);
    match value(&all, "shadowcat_pool_creates_total", &label) {
        DebugValue::Counter(n) => assert_eq!(*n, 2, "one create per key, one counter"),
        other => panic!("not a counter: {other:?}"),
    }
    assert_eq!(gauge(&all, "shadowcat_pool_keys"), 2.0);
    assert_eq!(gauge(&all, "shadowcat_pool_size"), 2.0);
    assert_eq!(gauge(&all, "shadowcat_pool_in_use"), 1.0);
    assert_eq!(gauge(&all, "shadowcat_pool_idle"), 1.0);
    assert_eq!(gauge(&all, "shadowcat_pool_waiting"), 0.0);
    assert_eq!(gauge(&all, "shadowcat_pool_creating"), 0.0);

    // Without a call: the maintenance task's next pass sets them (the paused clock advances to
    // its timer once every task is idle).
    drop(held);
    let passes = pool.stats().maintenance_passes;
    for _ in 0..100 {
        if pool.stats().maintenance_passes > passes {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        pool.stats().maintenance_passes > passes,
        "no maintenance pass ran"
    );
    let all = recorded(&recorder);
    assert_eq!(gauge(&all, "shadowcat_pool_in_use"), 0.0);
    assert_eq!(gauge(&all, "shadowcat_pool_idle"), 2.0);
}

#[tokio::test]
async fn a_keyed_pools_keys_report_to_the_handles_registered_when_it_was_built() {
    // The recorder is in place only while the pool is built, as for a plain pool: the keys'
    // pools, built later on their first acquire, register nothing of their own and report to
    // the keyed pool's handles.
    let recorder = DebuggingRecorder::new();
    let pool = metrics::with_local_recorder(&recorder, || {
        KeyedPoolOptions::new()
            .name("upstreams")
            .max_per_key(1)
            .max_total(4)
            .build(keyed_fn(|key: &u32| {
                let key = *key;
                async move { Ok::<_, std::io::Error>(key) }
            }))
            .unwrap()
    });
    let registered = recorded(&recorder).len();
    for key in 1..=3 {
        drop(pool.acquire(&key).await.unwrap());
    }
    let all = recorded(&recorder);
    match value(&all, "shadowcat_pool_creates_total", &["pool=upstreams"]) {
        DebugValue::Counter(n) => assert_eq!(*n, 3, "one create on each of three keys"),
        other => panic!("not a counter: {other:?}"),
    }
    assert_eq!(all.len(), registered, "a key registered metrics of its own");
}
