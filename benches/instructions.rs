//! The workload of the instruction-count guard (`benches/perf-guard.sh`): runs one scenario for a
//! warm-up and then `N` cycles, on a current-thread runtime, with the comparison's pool options
//! (`max` 16, no timeouts, no ages; `benches/common/pools.rs`).
//!
//! ```text
//! cargo bench --bench instructions -- acquire 10000     # one scenario, 10,000 measured cycles
//! valgrind --tool=callgrind target/release/deps/instructions-* acquire 10000
//! ```
//!
//! The guard runs it under callgrind at two values of `N`, counting only inside [`measured`]
//! (process start and pool setup are not counted at all), and divides the difference of the
//! instruction totals by the difference of `N`, so the warm-up cancels out and what remains is
//! the cost of one cycle. With no scenario (as in
//! `cargo bench -- --test`) it runs each scenario briefly and checks that it works.
//!
//! Scenarios:
//! * `acquire`: an uncontended `acquire().await` of an idle resource, then drop (release);
//! * `try_acquire`: `try_acquire()` of an idle resource, then drop;
//! * `wait`: the wait path on a pool of one: an acquire parks behind the held resource, the holder
//!   drops it, the release hands it to the parked acquire, which completes;
//! * `keyed`: `KeyedPool::acquire(&key).await` of an idle resource, then drop, cycling over four
//!   keys (`max_per_key` 4, `max_total` 16): the keyed path's map lookup and per-key pool.
//! * `wait-mutex`: the `wait` cycle on the comparison's fair mutex baseline (a tokio `Semaphore`
//!   and a mutex over a `VecDeque`, `benches/common/pools.rs`), for reading the two wait paths
//!   side by side under callgrind. Not in the guard's baseline: it measures tokio, not this crate.

mod common;

use std::future::{poll_fn, Future};
use std::hint::black_box;
use std::pin::pin;
use std::task::Poll;

use clap::{Parser, ValueEnum};
use common::pools::{BenchPool, MutexBaseline, Shadowcat};

/// One measured cycle of the instruction-count guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Uncontended `acquire().await` + drop.
    Acquire,
    /// `try_acquire()` + drop.
    TryAcquire,
    /// Park behind a held resource, be handed it by its release.
    Wait,
    /// Keyed `acquire(&key).await` + drop over four keys.
    Keyed,
    /// The `wait` cycle on the fair mutex baseline.
    WaitMutex,
}

/// Runs SCENARIO for a warm-up and then CYCLES measured cycles (for callgrind).
#[derive(Parser, Debug)]
#[command(name = "instructions")]
struct Cli {
    /// The scenario; none: a short smoke run of each.
    #[arg(value_enum)]
    scenario: Option<Scenario>,
    /// Measured cycles after the warm-up.
    #[arg(default_value_t = 10_000)]
    cycles: u64,
    /// Warm-up cycles (not measured; the same in both runs of the guard).
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Passed by `cargo bench -- --test`; ignored (a run without a scenario is the smoke test).
    #[arg(long, hide = true)]
    test: bool,
}

/// Polls `fut` once with the task's context.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

/// Runs `fut` on `rt`: the measured cycles, and nothing else. The guard tells callgrind to count
/// only inside this function (`--toggle-collect`), so setup whose cost varies from run to run
/// (calibrating the time-stamp counter when the first pool is built) stays out of the totals.
#[inline(never)]
fn measured<F: Future>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output {
    rt.block_on(fut)
}

/// Runs `cycles` cycles of `scenario`; returns how many resources the pool created.
fn run(scenario: Scenario, cycles: u64) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match scenario {
        Scenario::Keyed => run_keyed(&rt, cycles),
        Scenario::WaitMutex => run_wait_mutex(&rt, cycles),
        _ => run_pool(&rt, scenario, cycles),
    }
}

/// The `Pool` scenarios.
fn run_pool(rt: &tokio::runtime::Runtime, scenario: Scenario, cycles: u64) -> u64 {
    let max = if scenario == Scenario::Wait { 1 } else { 16 };
    let sc = rt.block_on(async {
        let sc = Shadowcat::with_options(max, false, false);
        // Create the resources outside the measured cycles.
        let mut warm = Vec::new();
        for _ in 0..max {
            warm.push(sc.pool.acquire().await.expect("create"));
        }
        drop(warm);
        sc
    });
    let pool = &sc.pool;
    measured(rt, async {
        match scenario {
            Scenario::Acquire => {
                for _ in 0..cycles {
                    let mut conn = pool.acquire().await.expect("idle resource");
                    black_box(&mut *conn).n += 1;
                    drop(conn);
                }
            }
            Scenario::TryAcquire => {
                for _ in 0..cycles {
                    let mut conn = pool.try_acquire().expect("idle resource");
                    black_box(&mut *conn).n += 1;
                    drop(conn);
                }
            }
            // Unconstrained: the cycle polls one acquire twice by hand within one poll of the
            // task, so tokio's cooperative budget (which `acquire` spends) must not run out
            // between the two polls; a task that parks for real yields anyway.
            Scenario::Wait => {
                tokio::task::coop::unconstrained(async {
                    let mut held = pool.acquire().await.expect("the one resource");
                    for _ in 0..cycles {
                        let mut next = pin!(pool.acquire());
                        assert!(
                            poll_once(&mut next).await.is_pending(),
                            "the acquire did not park"
                        );
                        drop(held);
                        held = match poll_once(&mut next).await {
                            Poll::Ready(conn) => conn.expect("handed the released resource"),
                            Poll::Pending => panic!("the release did not hand the resource over"),
                        };
                        black_box(&mut *held).n += 1;
                    }
                    drop(held);
                })
                .await
            }
            Scenario::Keyed | Scenario::WaitMutex => unreachable!("run_keyed, run_wait_mutex"),
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0);
    assert_eq!(stats.size, max);
    stats.created
}

/// The `wait` cycle on the fair mutex baseline: a pool of one, an acquire parks behind the held
/// resource, the holder drops it (its permit goes to the parked acquire), the acquire completes.
fn run_wait_mutex(rt: &tokio::runtime::Runtime, cycles: u64) -> u64 {
    let pool = MutexBaseline::build(1, false);
    rt.block_on(async { drop(pool.acquire().await) });
    // Unconstrained, as in `wait`: the semaphore's acquire spends tokio's budget too.
    measured(
        rt,
        tokio::task::coop::unconstrained(async {
            let mut held = pool.acquire().await;
            for _ in 0..cycles {
                let mut next = pin!(pool.acquire());
                assert!(
                    poll_once(&mut next).await.is_pending(),
                    "the acquire did not park"
                );
                drop(held);
                held = match poll_once(&mut next).await {
                    Poll::Ready(conn) => conn,
                    Poll::Pending => panic!("the release did not hand the permit over"),
                };
                black_box(&mut *held).n += 1;
            }
            drop(held);
        }),
    );
    pool.created()
}

/// The keyed scenario: four keys, each with one idle resource, acquired in turn.
fn run_keyed(rt: &tokio::runtime::Runtime, cycles: u64) -> u64 {
    use shadowcat_pool::{keyed_fn, KeyedPoolOptions};
    const KEYS: [u16; 4] = [1, 2, 3, 4];
    let pool = rt.block_on(async {
        let pool = KeyedPoolOptions::new()
            .max_per_key(4)
            .max_total(16)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(None)
            .build(keyed_fn(|_key: &u16| async {
                Ok::<_, std::io::Error>(common::pools::Res::default())
            }))
            .expect("valid keyed options");
        for key in &KEYS {
            drop(pool.acquire(key).await.expect("create"));
        }
        pool
    });
    measured(rt, async {
        for i in 0..cycles {
            let key = &KEYS[(i & 3) as usize];
            let mut conn = pool.acquire(key).await.expect("idle resource");
            black_box(&mut *conn).n += 1;
            drop(conn);
        }
    });
    let stats = pool.stats();
    assert_eq!((stats.size, stats.idle), (4, 4), "{stats:?}");
    rt.block_on(pool.close());
    4
}

fn main() {
    let cli = Cli::parse();
    match cli.scenario {
        Some(sc) => {
            run(sc, cli.warmup + cli.cycles);
        }
        None => {
            for sc in Scenario::value_variants() {
                let created = run(*sc, 100);
                println!("instructions {sc:?}: 100 cycles ok ({created} created)");
            }
        }
    }
}
