//! Scale: 10,000 tasks share a pool of 16 on a 2-worker runtime for a fixed number of cycles each.
//! Nothing hangs, every task is served every time, nothing leaks, and the pool's books balance
//! afterwards. The p99 acquire wait (hdrhistogram) is printed, not asserted: timing belongs in
//! the benchmarks.
#![cfg(not(shadowcat_loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shadowcat_pool::{Pool, PoolOptions};

const TASKS: usize = 10_000;
const MAX: usize = 16;
/// Cycles per task: the test is bounded by this count, not by time.
const CYCLES: usize = 3;
/// Turns a hang into a failure instead of a stuck CI run; far above the expected few seconds.
const WATCHDOG: Duration = Duration::from_secs(120);

/// A resource that counts itself, so a leaked or doubly dropped one shows.
struct Counted {
    live: Arc<AtomicUsize>,
    uses: u64,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn pool(live: Arc<AtomicUsize>) -> Pool<Counted> {
    PoolOptions::new()
        .max_connections(MAX)
        // Every task must eventually be served: no acquire timeout.
        .acquire_timeout(None)
        .build_with(move || {
            let live = live.clone();
            async move {
                live.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(Counted { live, uses: 0 })
            }
        })
        .expect("valid options")
}

#[test]
fn ten_thousand_tasks_on_max_16_are_all_served_and_the_books_balance() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let live = Arc::new(AtomicUsize::new(0));
    let pool = pool(live.clone());

    let waits = rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut waits = [0u64; CYCLES];
                    for wait in &mut waits {
                        let started = Instant::now();
                        let mut conn = pool.acquire().await.expect("no timeout, pool open");
                        *wait = started.elapsed().as_nanos() as u64;
                        conn.uses += 1;
                        // Hold it across a yield so that the line really forms.
                        tokio::task::yield_now().await;
                        drop(conn);
                    }
                    waits
                })
            })
            .collect();
        let all = async {
            let mut waits = Vec::with_capacity(TASKS);
            for t in tasks {
                waits.push(t.await.expect("task panicked"));
            }
            waits
        };
        tokio::time::timeout(WATCHDOG, all)
            .await
            .expect("the tasks hung: not all were served")
    });

    // Every task was served every cycle.
    assert_eq!(waits.len(), TASKS);
    let stats = pool.stats();
    let cycles = (TASKS * CYCLES) as u64;
    assert_eq!(
        stats.acquired_immediately + stats.acquired_after_wait,
        cycles,
        "{stats:?}"
    );
    assert!(
        stats.acquired_after_wait > 0,
        "no task ever waited: {stats:?}"
    );
    assert_eq!(stats.timeouts, 0);

    // The books balance: nothing checked out, nobody waiting, everything idle and accounted for.
    assert!(stats.size <= MAX, "{stats:?}");
    assert!(stats.size >= 1, "{stats:?}");
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(stats.waiting, 0, "{stats:?}");
    assert_eq!(stats.idle, stats.size, "{stats:?}");
    assert_eq!(
        stats.created - stats.destroyed.total() - stats.detached,
        stats.size as u64,
        "{stats:?}"
    );
    assert_eq!(live.load(Ordering::SeqCst), stats.size, "leaked resources");
    // The uses add up: every cycle touched exactly one resource.
    let mut uses = 0;
    let mut held = Vec::new();
    while let Some(conn) = pool.try_acquire() {
        uses += conn.uses;
        held.push(conn);
    }
    assert_eq!(held.len(), stats.size);
    assert_eq!(uses, cycles);
    drop(held);

    // Closing gives everything back.
    rt.block_on(pool.close());
    let after = pool.stats();
    assert_eq!(after.size, 0, "{after:?}");
    assert_eq!(after.created, after.destroyed.total() + after.detached);
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "resources alive after close"
    );

    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("bounds");
    for w in waits.iter().flatten() {
        hist.saturating_record(*w);
    }
    assert_eq!(hist.len(), cycles);
    println!(
        "scale: {TASKS} tasks x {CYCLES} cycles on max {MAX}, 2 workers: created {}, \
         waited {} of {cycles}; acquire wait p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        stats.created,
        stats.acquired_after_wait,
        hist.value_at_quantile(0.50) as f64 / 1e6,
        hist.value_at_quantile(0.99) as f64 / 1e6,
        hist.max() as f64 / 1e6,
    );
}
