//! Criterion benchmarks of the comparison scenarios: one group per scenario, one function per
//! pool. `cargo bench --bench scenarios`; smoke pass: `cargo bench --bench scenarios -- --test`.
//!
//! For the side-by-side table with medians, fairness and latency percentiles use
//! `cargo run --release --example compare`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pools::{
    BareQueue, Bb8, BenchPool, Deadpool, MutexBaseline, Res, Shadowcat, SpawnDropBaseline,
};
use common::scenarios::{
    cold_once, hot_iters, prewarmed, runtime_for, tasks_iters, NoisyNeighbour, Scenario,
};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use crossbeam_queue::ArrayQueue;

fn bench_pool<P: BenchPool>(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    sc: Scenario,
) {
    let shape = sc.shape();
    let rt = runtime_for(sc);
    match sc {
        Scenario::S1Hot => {
            let pool = rt.block_on(prewarmed::<P>(shape.max));
            g.bench_function(name, |b| {
                b.iter_custom(|iters| rt.block_on(hot_iters(&*pool, iters)))
            });
        }
        Scenario::S6Cold => {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (served, created) = rt.block_on(cold_once::<P>(shape));
                        assert!(
                            created <= shape.max as u64,
                            "{name} created {created} > max"
                        );
                        total += Duration::from_nanos(served.into_iter().max().unwrap_or(0));
                    }
                    total
                })
            });
        }
        _ => {
            let pool: Arc<P> = rt.block_on(prewarmed::<P>(shape.max));
            // S7: a busy thread outside the runtime while this pool is measured, stopped after.
            let _noise = shape.noisy.then(NoisyNeighbour::start);
            g.bench_function(name, |b| {
                b.iter_custom(|iters| rt.block_on(tasks_iters(&pool, shape, iters)))
            });
        }
    }
}

fn scenarios(c: &mut Criterion) {
    for sc in Scenario::ALL {
        let mut g = c.benchmark_group(sc.id());
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        bench_pool::<Shadowcat>(&mut g, "shadowcat-pool", sc);
        bench_pool::<MutexBaseline>(&mut g, "mutex-baseline", sc);
        bench_pool::<SpawnDropBaseline>(&mut g, "spawn-drop-baseline", sc);
        bench_pool::<Deadpool>(&mut g, "deadpool", sc);
        bench_pool::<Bb8>(&mut g, "bb8", sc);
        if sc == Scenario::S1Hot {
            // The lower bound: a bare ArrayQueue pop + push.
            let q = ArrayQueue::new(16);
            for _ in 0..16 {
                let _ = q.push(Res::default());
            }
            g.bench_function("bare-arrayqueue", |b| {
                b.iter(|| {
                    let mut r = q.pop().expect("prefilled");
                    std::hint::black_box(&mut r).n += 1;
                    let _ = q.push(r);
                })
            });
        }
        if sc == Scenario::S2Uncontended {
            // The lower bound with two workers: two tasks popping and pushing one ArrayQueue.
            bench_pool::<BareQueue>(&mut g, "bare-arrayqueue", sc);
        }
        g.finish();
    }
}

criterion_group!(benches, scenarios);
criterion_main!(benches);
