//! Memory of a keyed pool: 100,000 distinct keys touched once and released; after idle expiry
//! (paused clock) the pool is back within 1 MB of the empty pool. Also reports what a live key
//! and an idle resource cost (run with `--nocapture`; the figures are in benches/RESULTS.md).
//!
//! A counting global allocator keeps the net heap bytes allocated by this test's thread; the
//! pool lives on a current-thread runtime on that thread.
#![cfg(not(shadowcat_loom))]

use std::time::Duration;

use shadowcat_pool::{keyed_fn, KeyedPoolOptions};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// A resource of a typical handle's size, with no heap of its own.
#[allow(dead_code)]
struct Res([u64; 4]);

const KEYS: u64 = 100_000;
const IDLE: Duration = Duration::from_secs(60);
const MB: isize = 1 << 20;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_hundred_thousand_keys_touched_once_return_to_within_1_mb_after_expiry() {
    let pool = KeyedPoolOptions::new()
        .max_per_key(4)
        .max_total(1 << 17)
        .idle_timeout(Some(IDLE))
        .max_lifetime(None)
        .maintenance_interval(Duration::from_secs(5))
        .build(keyed_fn(|_: &u64| async {
            Ok::<_, std::io::Error>(Res([0; 4]))
        }))
        .unwrap();
    // Warm up lazily initialised state (tracing call sites, thread-locals, timers) once.
    drop(pool.acquire(&u64::MAX).await.unwrap());
    tokio::time::sleep(IDLE * 2).await;
    assert_eq!(pool.keys(), 0);

    counting_alloc::start();
    for key in 0..KEYS {
        drop(pool.acquire(&key).await.unwrap());
    }
    let live = counting_alloc::net_bytes();
    assert_eq!(pool.keys(), KEYS as usize);
    assert_eq!(pool.stats().idle, KEYS as usize);
    // One more idle resource on each of 1,000 keys: the marginal cost of an idle resource.
    let mut held = Vec::new();
    for key in 0..1_000 {
        held.push(pool.acquire(&key).await.unwrap());
        held.push(pool.acquire(&key).await.unwrap());
    }
    drop(held);
    let per_idle = (counting_alloc::net_bytes() - live) / 1_000;
    tokio::time::sleep(IDLE + Duration::from_secs(15)).await;
    let after = counting_alloc::net_bytes();
    counting_alloc::stop();

    println!(
        "keyed memory: {} B per live key with one idle resource (max_per_key 4, 32 B resource), \
         {per_idle} B per extra idle resource, {after} B left after expiry of {KEYS} keys",
        live / KEYS as isize
    );
    assert_eq!(pool.keys(), 0, "every key expired and was removed");
    assert_eq!(pool.stats().size, 0);
    assert!(
        after.abs() < MB,
        "{after} B still allocated after every key expired (budget 1 MB)"
    );
}
