//! A `before_acquire` hook that fails or panics, and a health check that panics: the resource is
//! closed (never handed out), the acquire is served by a fresh one, and the books stay balanced.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use shadowcat_pool::{Manager, PoolOptions};
use support::{assert_quiescent, options, TestManager};

/// What the `before_acquire` hook does next.
const PASS: u8 = 0;
const FAIL: u8 = 1;
const PANIC: u8 = 2;

async fn hook_that(mode: u8) {
    let next = Arc::new(AtomicU8::new(PASS));
    let hook_mode = next.clone();
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1)
        .before_acquire(move |_conn, _meta| {
            let mode = hook_mode.swap(PASS, Ordering::SeqCst);
            Box::pin(async move {
                match mode {
                    FAIL => Err("refused".into()),
                    PANIC => panic!("before_acquire blew up"),
                    _ => Ok(true),
                }
            })
        })
        .build(m)
        .unwrap();

    let first = pool.acquire().await.unwrap();
    let first_id = first.id;
    drop(first);
    assert_eq!(pool.stats().idle, 1);

    next.store(mode, Ordering::SeqCst);
    let second = support::within("an acquire after the rejection", pool.acquire())
        .await
        .expect("served by a fresh resource");
    assert_ne!(second.id, first_id, "the rejected resource was handed out");
    drop(second);

    let s = pool.stats();
    assert_eq!(s.created, 2, "{s:?}");
    assert_eq!(s.destroyed.hook_rejected, 1, "{s:?}");
    assert_eq!((s.size, s.idle, s.in_use), (1, 1, 0), "{s:?}");
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn before_acquire_error_closes_the_resource_and_acquire_moves_on() {
    hook_that(FAIL).await;
}

#[tokio::test]
async fn before_acquire_panic_closes_the_resource_and_acquire_moves_on() {
    hook_that(PANIC).await;
}

/// A manager whose health check panics on the resource it is told to.
struct PanickyCheck {
    created: std::sync::atomic::AtomicU64,
    panic_on: std::sync::atomic::AtomicU64,
}

impl Manager for PanickyCheck {
    type Resource = u64;
    type Error = std::io::Error;

    async fn create(&self) -> std::io::Result<u64> {
        Ok(self.created.fetch_add(1, Ordering::SeqCst) + 1)
    }

    async fn check(&self, id: &mut u64) -> std::io::Result<()> {
        if *id == self.panic_on.load(Ordering::SeqCst) {
            panic!("check blew up on {id}");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_health_check_closes_the_resource_and_acquire_moves_on() {
    let pool = PoolOptions::new()
        .max_connections(1)
        .test_before_acquire(true)
        .build(PanickyCheck {
            created: 0.into(),
            panic_on: 1.into(),
        })
        .unwrap();
    let first = pool.acquire().await.unwrap();
    assert_eq!(*first, 1);
    drop(first);

    // Resource 1 is idle; its check panics, so it is destroyed and resource 2 is created.
    let second = support::within("an acquire after the rejection", pool.acquire())
        .await
        .expect("served by a fresh resource");
    assert_eq!(*second, 2);
    drop(second);
    let s = pool.stats();
    assert_eq!((s.created, s.destroyed.check_failed), (2, 1), "{s:?}");
    assert_eq!((s.size, s.idle), (1, 1), "{s:?}");

    // Resource 2 passes its check and is reused.
    assert_eq!(*pool.acquire().await.unwrap(), 2);
}
