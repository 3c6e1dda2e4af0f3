//! The keyed manager is called with the key on every path (create, check, is_open, is_reusable,
//! destroy), a failed health check or a rejected release closes that key's resource only, and
//! `max_lifetime` applies per resource. Paused clock for the lifetime.
#![cfg(not(shadowcat_loom))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shadowcat_pool::{Error, KeyedManager, KeyedPoolOptions};

/// Resources are `(key, serial)`; every call is logged with its key.
#[derive(Clone, Default)]
struct Logging {
    log: Arc<Mutex<Vec<(&'static str, u8)>>>,
    /// Keys whose health check fails.
    sick: Arc<Mutex<Vec<u8>>>,
}

impl Logging {
    fn note(&self, what: &'static str, key: u8) {
        self.log.lock().unwrap().push((what, key));
    }
    fn count(&self, what: &'static str, key: u8) -> usize {
        let log = self.log.lock().unwrap();
        log.iter().filter(|e| **e == (what, key)).count()
    }
}

impl KeyedManager<u8> for Logging {
    type Resource = (u8, usize);
    type Error = std::io::Error;

    async fn create(&self, key: &u8) -> std::io::Result<(u8, usize)> {
        self.note("create", *key);
        Ok((*key, self.count("create", *key)))
    }

    async fn check(&self, key: &u8, r: &mut (u8, usize)) -> std::io::Result<()> {
        assert_eq!(r.0, *key);
        self.note("check", *key);
        if self.sick.lock().unwrap().contains(key) {
            return Err(std::io::Error::other("sick"));
        }
        Ok(())
    }

    fn is_open(&self, key: &u8, r: &mut (u8, usize)) -> bool {
        assert_eq!(r.0, *key);
        self.note("is_open", *key);
        true
    }

    fn is_reusable(&self, key: &u8, r: &mut (u8, usize)) -> bool {
        assert_eq!(r.0, *key);
        self.note("is_reusable", *key);
        // Key 9's resources are single-use.
        *key != 9
    }

    async fn destroy(&self, key: &u8, r: (u8, usize)) {
        assert_eq!(r.0, *key);
        self.note("destroy", *key);
    }
}

fn options() -> KeyedPoolOptions<u8, (u8, usize)> {
    KeyedPoolOptions::new()
        .max_per_key(2)
        .max_total(8)
        .acquire_timeout(None)
        .idle_timeout(None)
        .max_lifetime(None)
}

#[tokio::test(flavor = "current_thread")]
async fn every_manager_call_gets_the_key_and_a_failed_check_closes_only_that_resource() {
    let manager = Logging::default();
    let pool = options()
        .test_before_acquire(true)
        .build(manager.clone())
        .unwrap();
    drop(pool.acquire(&1).await.unwrap());
    drop(pool.acquire(&2).await.unwrap());
    // Reused: is_open and the check run with the key.
    let again = pool.acquire(&1).await.unwrap();
    assert_eq!(*again, (1, 1));
    assert_eq!(
        (manager.count("is_open", 1), manager.count("check", 1)),
        (1, 1)
    );
    drop(again);
    // Key 2 falls sick: its idle resource fails the check, is destroyed, and a new one is made.
    manager.sick.lock().unwrap().push(2);
    let replaced = pool.acquire(&2).await.unwrap();
    assert_eq!(*replaced, (2, 2), "a fresh resource after the failed check");
    assert_eq!(manager.count("destroy", 2), 1);
    assert_eq!(manager.count("destroy", 1), 0, "key 1 untouched");
    assert_eq!(pool.stats().destroyed.check_failed, 1);
    drop(replaced);
    // A resource the manager will not reuse is destroyed on release, with its key.
    drop(pool.acquire(&9).await.unwrap());
    assert_eq!(
        (manager.count("is_reusable", 9), manager.count("destroy", 9)),
        (1, 1)
    );
    assert_eq!(pool.key_stats(&9).unwrap().size, 0);
    assert_eq!(
        pool.stats().size,
        2,
        "the global unit came back with the destroy"
    );
    // retain sees the key.
    let result = pool.retain(|key, resource, _| {
        assert_eq!(*key, resource.0);
        *key != 1
    });
    assert_eq!((result.retained, result.removed), (1, 1));
    assert_eq!(manager.count("destroy", 1), 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn max_lifetime_closes_a_resource_on_release() {
    let manager = Logging::default();
    let pool = options()
        .max_lifetime(Some(Duration::from_secs(60)))
        .build(manager.clone())
        .unwrap();
    let conn = pool.acquire(&1).await.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    drop(conn);
    assert_eq!(manager.count("destroy", 1), 1);
    assert_eq!(pool.stats().destroyed.lifetime, 1);
    assert_eq!(pool.stats().size, 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn acquire_timeout_applies_to_a_wait_for_global_capacity() {
    let pool = options()
        .max_total(2)
        .saturation(shadowcat_pool::Saturation::Wait)
        .acquire_timeout(Some(Duration::from_secs(1)))
        .build(Logging::default())
        .unwrap();
    let _a = pool.acquire(&1).await.unwrap();
    let _b = pool.acquire(&1).await.unwrap();
    assert!(matches!(pool.acquire(&2).await, Err(Error::Timeout(_))));
    assert_eq!(
        pool.stats().waiting_for_capacity,
        0,
        "the timed-out wait left the line"
    );
    assert_eq!(
        pool.key_stats(&2).unwrap().size,
        0,
        "and gave back its per-key unit"
    );
}

/// A checked-out resource tells its key and creation time (as `PoolConnection::created_at`).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_connection_knows_its_key_and_when_it_was_created() {
    let pool = options().build(Logging::default()).unwrap();
    let before = tokio::time::Instant::now();
    let conn = pool.acquire(&7).await.unwrap();
    assert_eq!(*conn.key(), 7);
    assert_eq!(conn.0, 7);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(conn.created_at(), before);
    assert_eq!(conn.age(), Duration::from_secs(5));
}
