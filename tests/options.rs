//! Invalid options are rejected by `build()` with an error naming the field, never a panic
//! (hazard H15).
#![cfg(not(shadowcat_loom))]

mod support;

use std::time::Duration;

use shadowcat_pool::{PoolOptions, MAX_CONNECTIONS_LIMIT};
use support::{Conn, TestManager};

fn field_of(options: PoolOptions<Conn>) -> &'static str {
    match options.build(TestManager::new()) {
        Ok(_) => panic!("invalid options were accepted"),
        Err(e) => {
            assert!(
                e.to_string().contains(e.field),
                "message names the field: {e}"
            );
            e.field
        }
    }
}

#[test]
fn each_invalid_option_is_named() {
    let base = || PoolOptions::<Conn>::new().max_connections(4);
    assert_eq!(field_of(PoolOptions::new()), "max_connections");
    assert_eq!(
        field_of(PoolOptions::new().max_connections(0)),
        "max_connections"
    );
    assert_eq!(
        field_of(PoolOptions::new().max_connections(MAX_CONNECTIONS_LIMIT + 1)),
        "max_connections"
    );
    assert_eq!(field_of(base().min_connections(5)), "min_connections");
    assert_eq!(field_of(base().warmup_concurrency(0)), "warmup_concurrency");
    assert_eq!(
        field_of(base().acquire_timeout(Duration::ZERO)),
        "acquire_timeout"
    );
    assert_eq!(
        field_of(base().create_timeout(Duration::ZERO)),
        "create_timeout"
    );
    assert_eq!(
        field_of(base().idle_timeout(Duration::ZERO)),
        "idle_timeout"
    );
    assert_eq!(
        field_of(base().max_lifetime(Duration::ZERO)),
        "max_lifetime"
    );
    assert_eq!(
        field_of(base().maintenance_interval(Duration::ZERO)),
        "maintenance_interval"
    );
    assert_eq!(
        field_of(
            base()
                .max_lifetime(Duration::from_secs(1))
                .max_lifetime_jitter(Duration::from_secs(2))
        ),
        "max_lifetime_jitter"
    );
}

#[test]
fn valid_edge_values_build_outside_a_runtime() {
    // No runtime here: building must not panic (maintenance is simply not started).
    let pool = PoolOptions::<Conn>::new()
        .max_connections(MAX_CONNECTIONS_LIMIT)
        .min_connections(0)
        .acquire_timeout(None)
        .build(TestManager::new())
        .unwrap();
    assert_eq!(pool.max_connections(), MAX_CONNECTIONS_LIMIT);
    let one = PoolOptions::<Conn>::new()
        .max_connections(1)
        .min_connections(1)
        .build(TestManager::new())
        .unwrap();
    assert_eq!(one.stats().max, 1);
}

#[test]
fn handles_are_send_sync_and_static() {
    fn send_sync_static<T: Send + Sync + 'static>() {}
    fn send_static<T: Send + 'static>() {}
    send_sync_static::<shadowcat_pool::Pool<tokio::net::TcpStream>>();
    send_sync_static::<shadowcat_pool::PoolConnection<tokio::net::TcpStream>>();
    send_sync_static::<shadowcat_pool::Error>();
    // The acquire future can move between worker threads.
    fn acquire_future_is_send(pool: &shadowcat_pool::Pool<tokio::net::TcpStream>) {
        fn is_send<F: Send>(_: &F) {}
        is_send(&pool.acquire());
        is_send(&pool.close());
        is_send(&pool.close_event());
    }
    let _ = acquire_future_is_send;
    send_static::<PoolOptions<Conn>>();
}

#[test]
fn debug_lists_the_options_and_which_hooks_are_set() {
    let options = shadowcat_pool::PoolOptions::<u8>::new()
        .max_connections(3)
        .acquire_slow_threshold(None)
        .before_acquire(|_r, _m| Box::pin(async { Ok(true) }));
    let shown = format!("{options:?}");
    for expected in [
        "max_connections: Some(3)",
        "acquire_slow_threshold: None",
        "after_create: false",
        "before_acquire: true",
        "after_release: false",
    ] {
        assert!(shown.contains(expected), "{expected} not in {shown}");
    }
}
