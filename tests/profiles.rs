//! The configuration profiles keep their documented values (a change to a profile is a change to
//! its docs too), and each builds a working pool.
#![cfg(not(shadowcat_loom))]

use shadowcat_pool::profiles;

fn knobs<T>(options: &shadowcat_pool::PoolOptions<T>) -> String {
    format!("{options:?}")
}

#[test]
fn stdio_subprocess_values_are_pinned() {
    assert_eq!(
        knobs(&profiles::stdio_subprocess::<()>()),
        "PoolOptions { max_connections: Some(4), max_connections_ceiling: None, worker_slots: None, min_connections: 1, warmup_concurrency: 1, \
         acquire_timeout: Some(30s), create_timeout: Some(10s), idle_timeout: Some(300s), \
         max_lifetime: Some(3600s), max_lifetime_jitter: None, test_before_acquire: true, \
         maintenance_interval: None, acquire_slow_threshold: Some(1s), release_timeout: Some(5s), \
         max_waiters: None, name: \"default\", after_create: false, before_acquire: false, after_release: false }"
    );
}

#[test]
fn http1_upstream_values_are_pinned() {
    assert_eq!(
        knobs(&profiles::http1_upstream::<()>()),
        "PoolOptions { max_connections: Some(64), max_connections_ceiling: None, worker_slots: None, min_connections: 0, warmup_concurrency: 4, \
         acquire_timeout: Some(2s), create_timeout: Some(2s), idle_timeout: Some(30s), \
         max_lifetime: Some(600s), max_lifetime_jitter: None, test_before_acquire: false, \
         maintenance_interval: None, acquire_slow_threshold: Some(1s), release_timeout: Some(5s), \
         max_waiters: Some(1024), name: \"default\", after_create: false, before_acquire: false, after_release: false }"
    );
}

#[test]
fn database_values_are_pinned() {
    assert_eq!(
        knobs(&profiles::database::<()>()),
        "PoolOptions { max_connections: Some(10), max_connections_ceiling: None, worker_slots: None, min_connections: 1, warmup_concurrency: 2, \
         acquire_timeout: Some(30s), create_timeout: Some(10s), idle_timeout: Some(600s), \
         max_lifetime: Some(1800s), max_lifetime_jitter: None, test_before_acquire: true, \
         maintenance_interval: None, acquire_slow_threshold: Some(1s), release_timeout: Some(5s), \
         max_waiters: None, name: \"default\", after_create: false, before_acquire: false, after_release: false }"
    );
}

#[tokio::test]
async fn every_profile_builds_a_working_pool() {
    for options in [
        profiles::stdio_subprocess(),
        profiles::http1_upstream(),
        profiles::database(),
    ] {
        let pool = options
            .build_with(|| async { Ok::<_, std::io::Error>(7u8) })
            .unwrap();
        assert_eq!(*pool.acquire().await.unwrap(), 7);
        pool.close().await;
    }
}
