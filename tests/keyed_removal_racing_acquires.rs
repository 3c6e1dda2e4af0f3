//! Empty keys are removed while acquires for them keep arriving on other threads: no acquire
//! ever fails because its key was removed under it (it retries on a fresh entry), and the caps
//! hold throughout. Real threads, so the removal lands at arbitrary points of the acquire path;
//! `loom-tests/keyed.rs` (model K3) explores the interleavings exhaustively for one acquire.
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use keyed_support::{options, Counting, Tally, STORM_GUARD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acquire_fails_while_its_key_is_removed() {
    let tally = Arc::new(Tally::default());
    let pool = options(2, 16).build(Counting(tally.clone())).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    // Removes every key that is empty at that moment, over and over.
    let sweeper = {
        let (pool, stop, started) = (pool.clone(), stop.clone(), started.clone());
        std::thread::spawn(move || {
            let mut passes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                pool.run_maintenance();
                passes += 1;
                started.store(true, Ordering::Relaxed);
                std::thread::yield_now();
            }
            passes
        })
    };
    // The acquires start once the sweeper is sweeping, so its passes overlap them.
    while !started.load(Ordering::Relaxed) {
        tokio::task::yield_now().await;
    }
    let tasks: Vec<_> = (0..8u8)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..2_000u32 {
                    let key = ((u32::from(t) + i) % 4) as u8;
                    let conn = pool.acquire(&key).await.expect("an acquire failed");
                    assert_eq!(conn.key, key);
                    // Destroy it, so the key is empty and removable again.
                    conn.discard();
                }
            })
        })
        .collect();
    tokio::time::timeout(STORM_GUARD, async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a task is stranded: {:?}", pool.stats()));
    stop.store(true, Ordering::Relaxed);
    let passes = sweeper.join().unwrap();
    assert!(passes > 0);
    assert!(
        tally.key_high() <= 2,
        "max_per_key exceeded: {}",
        tally.key_high()
    );
    assert!(tally.total_high() <= 16);
    assert_eq!(tally.total(), 0);
    assert_eq!(pool.stats().size, 0, "every global unit came back");
    pool.run_maintenance();
    assert_eq!(pool.keys(), 0, "every key was empty and removed");
}
