//! A manager's own `is_open` and `is_reusable` run on every hand-out and every release, however
//! many cycles came before. The pool stops calling only the trait's defaults, which it learns at
//! their first call: never an override, nor an override that runs another manager's defaults
//! before its own judgement. The same holds for a keyed pool's `KeyedManager`.
#![cfg(not(shadowcat_loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use shadowcat_pool::{KeyedManager, KeyedPoolOptions, Manager, PoolOptions};

/// Keeps both defaults.
struct Plain;

impl Manager for Plain {
    type Resource = u32;
    type Error = std::io::Error;
    async fn create(&self) -> Result<u32, std::io::Error> {
        Ok(0)
    }
}

/// Counts its checks and says no once each: `is_open` at its `reject_open_at`-th call,
/// `is_reusable` at its `reject_reuse_at`-th. With `delegate`, each check first asks `Plain`'s
/// default.
struct Judge {
    opens: Arc<AtomicUsize>,
    reuses: Arc<AtomicUsize>,
    reject_open_at: usize,
    reject_reuse_at: usize,
    delegate: bool,
}

impl Manager for Judge {
    type Resource = u32;
    type Error = std::io::Error;

    async fn create(&self) -> Result<u32, std::io::Error> {
        Ok(0)
    }

    fn is_open(&self, resource: &mut u32) -> bool {
        let n = self.opens.fetch_add(1, Ordering::Relaxed) + 1;
        (!self.delegate || Manager::is_open(&Plain, resource)) && n != self.reject_open_at
    }

    fn is_reusable(&self, resource: &mut u32) -> bool {
        let n = self.reuses.fetch_add(1, Ordering::Relaxed) + 1;
        (!self.delegate || Manager::is_reusable(&Plain, resource)) && n != self.reject_reuse_at
    }
}

impl Judge {
    /// Rejects the 70th hand-out from the idle set and the 50th release.
    fn new(delegate: bool) -> Self {
        Judge {
            opens: Arc::default(),
            reuses: Arc::default(),
            reject_open_at: 70,
            reject_reuse_at: 50,
            delegate,
        }
    }

    /// What 100 acquire/release cycles leave, given the pool's `created` and destroyed
    /// (`broken`, `check_failed`) counts.
    fn assert_judged_100_cycles(
        opens: &AtomicUsize,
        reuses: &AtomicUsize,
        created: u64,
        destroyed: (u64, u64),
    ) {
        // Created for the first acquire, after the rejected release, after the rejected hand-out.
        assert_eq!((created, destroyed), (3, (1, 1)));
        assert_eq!(reuses.load(Ordering::Relaxed), 100, "every release asked");
        // Every hand-out from the idle set asked: all but the three creates, plus the rejected one.
        assert_eq!(opens.load(Ordering::Relaxed), 98, "every hand-out asked");
    }
}

/// 100 acquire/release cycles on one task (so through the worker's hot slot).
async fn cycles(delegate: bool) {
    let judge = Judge::new(delegate);
    let (opens, reuses) = (Arc::clone(&judge.opens), Arc::clone(&judge.reuses));
    let pool = PoolOptions::new().max_connections(1).build(judge).unwrap();
    for _ in 0..100 {
        drop(pool.acquire().await.unwrap());
    }
    let s = pool.stats();
    let destroyed = (s.destroyed.broken, s.destroyed.check_failed);
    Judge::assert_judged_100_cycles(&opens, &reuses, s.created, destroyed);
}

#[tokio::test]
async fn overridden_checks_run_on_every_hand_out_and_release() {
    cycles(false).await;
}

#[tokio::test]
async fn checks_that_run_another_managers_defaults_first_are_not_skipped() {
    cycles(true).await;
}

#[tokio::test]
async fn a_manager_that_keeps_the_defaults_reuses_its_resource() {
    let pool = PoolOptions::new().max_connections(1).build(Plain).unwrap();
    for _ in 0..100 {
        drop(pool.acquire().await.unwrap());
    }
    let s = pool.stats();
    assert_eq!((s.created, s.destroyed.total()), (1, 0), "{s:?}");
}

/// `Judge` for a keyed pool: the same counts and rejections, for every key.
struct KeyedJudge(Judge);

impl KeyedManager<u8> for KeyedJudge {
    type Resource = u32;
    type Error = std::io::Error;

    async fn create(&self, _: &u8) -> Result<u32, std::io::Error> {
        Ok(0)
    }

    fn is_open(&self, _: &u8, resource: &mut u32) -> bool {
        Manager::is_open(&self.0, resource)
    }

    fn is_reusable(&self, _: &u8, resource: &mut u32) -> bool {
        Manager::is_reusable(&self.0, resource)
    }
}

#[tokio::test]
async fn a_keyed_managers_checks_run_on_every_hand_out_and_release() {
    let judge = Judge::new(false);
    let (opens, reuses) = (Arc::clone(&judge.opens), Arc::clone(&judge.reuses));
    let pool = KeyedPoolOptions::new()
        .max_per_key(1)
        .max_total(1)
        .build(KeyedJudge(judge))
        .unwrap();
    for _ in 0..100 {
        drop(pool.acquire(&7).await.unwrap());
    }
    let s = pool.stats();
    let destroyed = (s.destroyed.broken, s.destroyed.check_failed);
    Judge::assert_judged_100_cycles(&opens, &reuses, s.created, destroyed);
}
