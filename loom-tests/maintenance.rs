//! Loom models: a maintenance reap pass racing an acquire. Under loom no maintenance task runs
//! (there is no runtime); the models run one pass by hand with `Pool::loom_maintenance_pass`,
//! which is the same `reap` the task runs on each tick.
#![cfg(shadowcat_loom)]

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use loom::thread;

/// Model 8. A reap that finds the idle resource expired (idle timeout) races an acquire: the
/// resource is either handed out or destroyed, never both; if it is destroyed, its unit goes to
/// the acquirer (parked or arriving), which creates.
///
/// The idle timeout is 1 ns, so the resource has always expired by the time the pass reads
/// the clock (the release stamped it earlier). Lifetime expiry takes the same path (claim,
/// destroy, return the unit) with a different predicate.
#[test]
fn reap_expired_racing_acquire() {
    model("reap_expired_racing_acquire", || {
        let opts = options(1).idle_timeout(Duration::from_nanos(1));
        let (pool, tracker) = pool_with(opts, Vec::new());
        drop(acquire(&pool).unwrap());
        let p = pool.clone();
        let reaper = thread::spawn(move || p.loom_maintenance_pass());
        let h = acquire(&pool).unwrap();
        drop(h);
        reaper.join().unwrap();
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// A reap that keeps the idle resource (not expired) claims it, looks at it and releases it
/// again, racing an acquire: an acquirer that found nothing meanwhile is handed the resource
/// when the reaper puts it back.
#[test]
fn reap_keeping_racing_acquire() {
    model("reap_keeping_racing_acquire", || {
        let opts = options(1).idle_timeout(Duration::from_secs(3600));
        let (pool, tracker) = pool_with(opts, Vec::new());
        drop(acquire(&pool).unwrap());
        let p = pool.clone();
        let reaper = thread::spawn(move || p.loom_maintenance_pass());
        let h = acquire(&pool).unwrap();
        drop(h);
        reaper.join().unwrap();
        assert_at_rest(&pool, &tracker);
        assert_eq!(pool.stats().created, 1, "the kept resource was replaced");
        assert_all_capacity_usable(&pool, &tracker);
    });
}
