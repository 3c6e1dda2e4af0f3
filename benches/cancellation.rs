//! Cancelling parked waiters costs O(1) each, in any order: 10,000 acquires park behind a held
//! resource, then are dropped oldest-first or newest-first. With a line that unlinks by scanning,
//! newest-first is quadratic; here both orders cost the same per waiter.
//!
//! `cargo bench --bench cancellation`; smoke pass: `cargo bench --bench cancellation -- --test`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use shadowcat_pool::{Error, Pool, PoolConnection, PoolOptions};

type Acquiring<'a> = Pin<Box<dyn Future<Output = Result<PoolConnection<u32>, Error>> + 'a>>;

/// Parks `n` acquires behind the pool's only resource.
fn park(pool: &Pool<u32>, n: usize) -> Vec<Acquiring<'_>> {
    let mut cx = Context::from_waker(Waker::noop());
    (0..n)
        .map(|_| {
            let mut acquiring: Acquiring<'_> = Box::pin(pool.acquire());
            assert!(acquiring.as_mut().poll(&mut cx).is_pending());
            acquiring
        })
        .collect()
}

fn cancellation(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let pool = PoolOptions::new()
        .max_connections(1)
        .acquire_timeout(None)
        .build_with(|| async { Ok::<_, std::io::Error>(7u32) })
        .unwrap();
    let held = rt.block_on(pool.acquire()).unwrap();

    let mut g = c.benchmark_group("cancel_parked");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2));
    const N: usize = 10_000;
    for order in ["oldest_first", "newest_first"] {
        g.bench_with_input(BenchmarkId::new(order, N), &order, |b, &order| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut parked = park(&pool, N);
                    let t = Instant::now();
                    if order == "newest_first" {
                        while let Some(acquiring) = parked.pop() {
                            drop(acquiring);
                        }
                    } else {
                        for acquiring in parked.drain(..) {
                            drop(acquiring);
                        }
                    }
                    total += t.elapsed();
                    assert_eq!(pool.stats().waiting, 0);
                }
                total
            })
        });
    }
    g.finish();
    drop(held);
}

criterion_group!(benches, cancellation);
criterion_main!(benches);
