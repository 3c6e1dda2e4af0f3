//! Micro-benchmarks of the engine's hot paths: `try_acquire`, release (dropping a
//! `PoolConnection`), and an uncontended `acquire().await`, plus the costs of the pieces the hot
//! path is made of (an `Arc` clone, a `Relaxed` counter, a clock read).
//!
//! `cargo bench --bench engine`; smoke pass: `cargo bench --bench engine -- --test`.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pools::{Res, Shadowcat};
use criterion::{criterion_group, criterion_main, Criterion};
use shadowcat_pool::PoolConnection;

const BATCH: usize = 16;

/// Times `BATCH` try_acquires and `BATCH` drops separately; returns (acquire time, release time)
/// for `iters` of each.
fn batched(pool: &shadowcat_pool::Pool<Res>, iters: u64) -> (Duration, Duration) {
    let mut held: Vec<PoolConnection<Res>> = Vec::with_capacity(BATCH);
    let (mut acq, mut rel) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(BATCH as u64) as usize;
        let t = Instant::now();
        for _ in 0..n {
            held.push(pool.try_acquire().expect("idle resource"));
        }
        acq += t.elapsed();
        let t = Instant::now();
        held.clear();
        rel += t.elapsed();
        done += n as u64;
    }
    (acq, rel)
}

fn engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("engine");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));

    for (label, defaults) in [("", false), ("-defaults", true)] {
        let sc = rt.block_on(async {
            let sc = Shadowcat::with_options(BATCH, false, defaults);
            let held: Vec<_> = futures_prewarm(&sc).await;
            drop(held);
            sc
        });
        g.bench_function(format!("try_acquire{label}"), |b| {
            b.iter_custom(|iters| batched(&sc.pool, iters).0)
        });
        g.bench_function(format!("release{label}"), |b| {
            b.iter_custom(|iters| batched(&sc.pool, iters).1)
        });
        g.bench_function(format!("try_acquire+release{label}"), |b| {
            b.iter(|| drop(black_box(sc.pool.try_acquire().expect("idle resource"))))
        });
        g.bench_function(format!("acquire_uncontended{label}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for _ in 0..iters {
                        let mut conn = sc.pool.acquire().await.expect("acquire");
                        black_box(&mut *conn).n += 1;
                    }
                    t.elapsed()
                })
            })
        });
    }
    g.finish();

    // What the pieces of a cycle cost on this machine, single-threaded.
    let mut g = c.benchmark_group("pieces");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let arc = Arc::new(0u64);
    g.bench_function("arc_clone+drop", |b| {
        b.iter(|| drop(black_box(arc.clone())))
    });
    let counters = [AtomicU64::new(0), AtomicU64::new(0)];
    g.bench_function("two_relaxed_fetch_add", |b| {
        b.iter(|| {
            black_box(&counters[0]).fetch_add(1, Ordering::Relaxed);
            black_box(&counters[1]).fetch_add(1, Ordering::Relaxed);
        })
    });
    g.bench_function("std_instant_now", |b| b.iter(|| black_box(Instant::now())));
    rt.block_on(async {
        g.bench_function("tokio_instant_now", |b| {
            b.iter(|| black_box(tokio::time::Instant::now()))
        });
    });
    g.finish();
}

async fn futures_prewarm(sc: &Shadowcat) -> Vec<PoolConnection<Res>> {
    let mut held = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        held.push(sc.pool.acquire().await.expect("acquire"));
    }
    held
}

criterion_group!(benches, engine);
criterion_main!(benches);
