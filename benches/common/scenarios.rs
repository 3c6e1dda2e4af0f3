//! The scenarios and their drivers: timed runs (for `compare`) and fixed-count runs (for
//! criterion's `iter_custom`).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;

use super::keyed::{self, DeadpoolMap, KeyedMutexBaseline, KeyedOutcome, KeyedShadowcat};
use super::load::LoadSample;
use super::pools::{
    BareQueue, Bb8, BenchPool, Deadpool, MutexBaseline, Res, Shadowcat, ShadowcatDefaults,
    ShadowcatNoSlots, SpawnDropBaseline,
};

/// Highest latency a histogram tracks (1 hour, in ns); longer values are clamped to it.
const HIST_HIGHEST_NS: u64 = 3_600_000_000_000;

/// An empty latency histogram in nanoseconds: 1 ns to 1 hour at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_HIGHEST_NS, 3).expect("constant bounds are valid")
}

/// A benchmark scenario (S1-S8, as `compare` names them; what each models is in `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Current-thread runtime, 1 task, max 16 (pre-warmed), tight acquire → drop loop.
    S1Hot,
    /// 2 workers, 2 tasks, max 16 (pre-warmed).
    S2Uncontended,
    /// 2 workers, 64 tasks, max 8 (pre-warmed); each task yields once while it holds.
    S3Oversubscribed,
    /// 2 workers, 512 tasks, max 4 (pre-warmed), the same body.
    S4Heavy,
    /// The S3 setup with every acquire timed.
    S5Fairness,
    /// An empty pool of max 8 whose create takes about 50 µs, hit by 64 tasks once each.
    S6Cold,
    /// The S3 setup while a plain OS thread outside the runtime burns a core
    /// ([`NoisyNeighbour`]): with 2 vCPUs, three runnable threads share two cores, so a waiter
    /// handed a resource may sit on a descheduled worker.
    S7Noisy,
    /// 256 tasks over 64 keys with Zipf-distributed demand, `max_per_key` 16 and `max_total` 64
    /// (every acquire timed): keyed pools only, see [`super::keyed`].
    S8Keyed,
}

/// What a scenario runs.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Concurrent tasks.
    pub tasks: usize,
    /// `max` of the pool.
    pub max: usize,
    /// Whether each task yields once while it holds the resource.
    pub yield_held: bool,
    /// Whether every acquire is timed.
    pub timed: bool,
    /// Multi-thread runtime with 2 workers (else current-thread).
    pub multi_thread: bool,
    /// Whether a [`NoisyNeighbour`] burns a core while the scenario runs.
    pub noisy: bool,
}

impl Scenario {
    /// The unkeyed scenarios, which every pool of [`PoolKind::ALL`] runs (the criterion benches
    /// iterate these).
    pub const ALL: [Scenario; 7] = [
        Scenario::S1Hot,
        Scenario::S2Uncontended,
        Scenario::S3Oversubscribed,
        Scenario::S4Heavy,
        Scenario::S5Fairness,
        Scenario::S6Cold,
        Scenario::S7Noisy,
    ];

    /// Every scenario `compare` runs, in report order: the unkeyed ones, then S8.
    pub const COMPARE: [Scenario; 8] = [
        Scenario::S1Hot,
        Scenario::S2Uncontended,
        Scenario::S3Oversubscribed,
        Scenario::S4Heavy,
        Scenario::S5Fairness,
        Scenario::S6Cold,
        Scenario::S7Noisy,
        Scenario::S8Keyed,
    ];

    /// The id used in reports.
    pub fn id(self) -> &'static str {
        match self {
            Scenario::S1Hot => "S1-hot",
            Scenario::S2Uncontended => "S2-uncontended",
            Scenario::S3Oversubscribed => "S3-oversubscribed",
            Scenario::S4Heavy => "S4-heavy",
            Scenario::S5Fairness => "S5-fairness",
            Scenario::S6Cold => "S6-cold",
            Scenario::S7Noisy => "S7-noisy-neighbour",
            Scenario::S8Keyed => "S8-keyed",
        }
    }

    /// Parses an id or its prefix (`S3`, `s3-oversubscribed`).
    pub fn parse(s: &str) -> Option<Scenario> {
        let s = s.to_ascii_lowercase();
        Scenario::COMPARE.into_iter().find(|sc| {
            let id = sc.id().to_ascii_lowercase();
            id == s || id.split('-').next() == Some(s.as_str())
        })
    }

    /// Tasks, max and body.
    pub fn shape(self) -> Shape {
        let (tasks, max, yield_held, timed, multi_thread) = match self {
            Scenario::S1Hot => (1, 16, false, false, false),
            Scenario::S2Uncontended => (2, 16, false, false, true),
            Scenario::S3Oversubscribed | Scenario::S7Noisy => (64, 8, true, false, true),
            Scenario::S4Heavy => (512, 4, true, false, true),
            Scenario::S5Fairness => (64, 8, true, true, true),
            Scenario::S6Cold => (64, 8, true, true, true),
            Scenario::S8Keyed => (keyed::TASKS, keyed::MAX_TOTAL, true, true, true),
        };
        Shape {
            tasks,
            max,
            yield_held,
            timed,
            multi_thread,
            noisy: self == Scenario::S7Noisy,
        }
    }
}

/// A pool under comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// This crate, configured like deadpool's defaults.
    Shadowcat,
    /// Fair semaphore + `parking_lot::Mutex<VecDeque>`, synchronous return.
    MutexBaseline,
    /// Semaphore + `tokio::sync::Mutex<VecDeque>`, return spawned on drop.
    SpawnDropBaseline,
    /// deadpool (managed).
    Deadpool,
    /// bb8.
    Bb8,
    /// The bare `ArrayQueue` pop + push lower bound (S1 and S2 only).
    BareQueue,
    /// The bare `ArrayQueue` behind the same async driver as the pools (S1 only): its checkout is
    /// an `async fn` that pops, its drop pushes. Against [`BareQueue`](Self::BareQueue)'s inline
    /// pop + push it shows what the driver itself costs per cycle.
    BareQueueAsync,
    /// This crate with its default options (opt-in).
    ShadowcatDefaults,
    /// This crate without hot slots, `worker_slots(0)` (opt-in: what the slots change).
    ShadowcatNoSlots,
}

impl PoolKind {
    /// The lower bounds `compare` adds to `scenario` by itself: the bare queue in S1 and S2 (no
    /// waiting, so a queue without accounting can stand in for a pool), and in S1 also the bare
    /// queue behind the async driver.
    pub fn lower_bounds(scenario: Scenario) -> &'static [PoolKind] {
        match scenario {
            Scenario::S1Hot => &[PoolKind::BareQueue, PoolKind::BareQueueAsync],
            Scenario::S2Uncontended => &[PoolKind::BareQueue],
            _ => &[],
        }
    }

    /// Whether this is one of the [`lower_bounds`](Self::lower_bounds), which are not pools.
    pub fn is_lower_bound(self) -> bool {
        matches!(self, PoolKind::BareQueue | PoolKind::BareQueueAsync)
    }

    /// Whether this pool runs in `scenario`. S8 runs the keyed pools: `shadowcat-pool` as this
    /// crate's `KeyedPool`, `mutex-baseline` as a map of mutex pools behind a lock with a
    /// global semaphore, `deadpool` as a map of deadpool pools; the others have no keyed form.
    pub fn runs_in(self, scenario: Scenario) -> bool {
        match scenario {
            Scenario::S8Keyed => matches!(
                self,
                PoolKind::Shadowcat | PoolKind::MutexBaseline | PoolKind::Deadpool
            ),
            Scenario::S1Hot => true,
            Scenario::S2Uncontended => self != PoolKind::BareQueueAsync,
            _ => !self.is_lower_bound(),
        }
    }

    /// The name shown for this pool in `scenario` (S8's keyed forms have their own).
    pub fn label(self, scenario: Scenario) -> &'static str {
        match (scenario, self) {
            (Scenario::S8Keyed, PoolKind::Shadowcat) => "KeyedPool",
            (Scenario::S8Keyed, PoolKind::MutexBaseline) => "keyed-mutex-baseline",
            (Scenario::S8Keyed, PoolKind::Deadpool) => "deadpool-map",
            _ => self.id(),
        }
    }

    /// The pools of a default comparison, in their forward order.
    pub const DEFAULT: [PoolKind; 5] = [
        PoolKind::Shadowcat,
        PoolKind::MutexBaseline,
        PoolKind::SpawnDropBaseline,
        PoolKind::Deadpool,
        PoolKind::Bb8,
    ];

    /// Every pool that can be named on the command line.
    pub const ALL: [PoolKind; 9] = [
        PoolKind::Shadowcat,
        PoolKind::MutexBaseline,
        PoolKind::SpawnDropBaseline,
        PoolKind::Deadpool,
        PoolKind::Bb8,
        PoolKind::BareQueue,
        PoolKind::BareQueueAsync,
        PoolKind::ShadowcatDefaults,
        PoolKind::ShadowcatNoSlots,
    ];

    /// The name used in reports.
    pub fn id(self) -> &'static str {
        match self {
            PoolKind::Shadowcat => "shadowcat-pool",
            PoolKind::MutexBaseline => "mutex-baseline",
            PoolKind::SpawnDropBaseline => "spawn-drop-baseline",
            PoolKind::Deadpool => "deadpool",
            PoolKind::Bb8 => "bb8",
            PoolKind::BareQueue => "bare-arrayqueue",
            PoolKind::BareQueueAsync => "bare-arrayqueue-async",
            PoolKind::ShadowcatDefaults => "shadowcat-defaults",
            PoolKind::ShadowcatNoSlots => "shadowcat-no-slots",
        }
    }

    /// Parses a name (or an unambiguous prefix such as `mutex`, `spawn`, `dead`).
    pub fn parse(s: &str) -> Option<PoolKind> {
        let s = s.to_ascii_lowercase();
        if let Some(k) = PoolKind::ALL.into_iter().find(|k| k.id() == s) {
            return Some(k);
        }
        if s == "shadowcat" || s == "ours" {
            return Some(PoolKind::Shadowcat);
        }
        let mut hits = PoolKind::ALL.into_iter().filter(|k| k.id().starts_with(&s));
        match (hits.next(), hits.next()) {
            (Some(k), None) => Some(k),
            _ => None,
        }
    }
}

/// Warm-up and measured wall time of one timed run.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Untimed run before the measurement.
    pub warmup: Duration,
    /// Measured wall time.
    pub measure: Duration,
}

/// What one timed run measured.
#[derive(Clone)]
pub struct RunResult {
    /// Completed cycles in the measured window (S6: tasks served).
    pub ops: u64,
    /// The measured window (S6: sum of the cold runs' times until all were served).
    pub elapsed: Duration,
    /// Cycles completed by each task in the window.
    pub per_task: Vec<u64>,
    /// Acquire waits (S5), or each task's time from start to served (S6).
    pub hist: Option<Histogram<u64>>,
    /// S6: each cold run's time until all 64 tasks were served, in ns.
    pub cold_runs: Vec<u64>,
    /// Resources created (S6: the most in any one cold run).
    pub created: u64,
    /// Machine load while it ran.
    pub load: LoadSample,
    /// S8: evictions, the least-served key, resources alive at the end.
    pub keyed: Option<KeyedOutcome>,
}

impl RunResult {
    /// Cycles per second (S6: tasks served per second of cold-run time).
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The 2-worker runtime of S2–S6.
pub fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The runtime a scenario runs on.
pub fn runtime_for(scenario: Scenario) -> tokio::runtime::Runtime {
    if scenario.shape().multi_thread {
        two_workers()
    } else {
        current_thread()
    }
}

/// A busy loop on a plain `std::thread` (not a tokio worker or blocking thread) that competes
/// with the runtime's workers for the cores while it lives. [`NoisyNeighbour::stop`], or
/// dropping it (also during a panic), stops the loop and joins the thread, so it never outlives
/// the run that started it.
pub struct NoisyNeighbour {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl NoisyNeighbour {
    /// Starts burning a core.
    pub fn start() -> NoisyNeighbour {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("noisy-neighbour".into())
            .spawn(move || {
                let mut spins = 0u64;
                // Relaxed: the flag carries no data; the join in `stop` orders everything else.
                while !flag.load(Ordering::Relaxed) {
                    spins = black_box(spins.wrapping_add(1));
                }
                spins
            })
            .expect("spawn the noisy-neighbour thread");
        NoisyNeighbour {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the loop, joins the thread and returns how many iterations it spun.
    pub fn stop(mut self) -> u64 {
        self.halt()
    }

    fn halt(&mut self) -> u64 {
        // Relaxed: only ends the loop; `join` below is the synchronisation.
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(0, |t| {
            t.join().expect("the noisy-neighbour loop cannot panic")
        })
    }
}

impl Drop for NoisyNeighbour {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Runs one timed run of `scenario` on `kind`. For S7 a [`NoisyNeighbour`] runs for the whole
/// pass (runtime start, pre-warm, warm-up, measurement and shutdown) and is stopped before this
/// returns.
pub fn run_timed(kind: PoolKind, scenario: Scenario, timing: Timing) -> RunResult {
    let noise = scenario.shape().noisy.then(NoisyNeighbour::start);
    let result = run_timed_quiet(kind, scenario, timing);
    if let Some(noise) = noise {
        let spins = noise.stop();
        assert!(spins > 0, "the noisy neighbour never ran");
    }
    result
}

fn run_timed_quiet(kind: PoolKind, scenario: Scenario, timing: Timing) -> RunResult {
    if scenario == Scenario::S8Keyed {
        return match kind {
            PoolKind::Shadowcat => keyed::run_keyed::<KeyedShadowcat>(timing),
            PoolKind::MutexBaseline => keyed::run_keyed::<KeyedMutexBaseline>(timing),
            PoolKind::Deadpool => keyed::run_keyed::<DeadpoolMap>(timing),
            other => panic!("{} has no keyed form (see PoolKind::runs_in)", other.id()),
        };
    }
    match kind {
        PoolKind::Shadowcat => run_timed_on::<Shadowcat>(scenario, timing),
        PoolKind::ShadowcatDefaults => run_timed_on::<ShadowcatDefaults>(scenario, timing),
        PoolKind::ShadowcatNoSlots => run_timed_on::<ShadowcatNoSlots>(scenario, timing),
        PoolKind::MutexBaseline => run_timed_on::<MutexBaseline>(scenario, timing),
        PoolKind::SpawnDropBaseline => run_timed_on::<SpawnDropBaseline>(scenario, timing),
        PoolKind::Deadpool => run_timed_on::<Deadpool>(scenario, timing),
        PoolKind::Bb8 => run_timed_on::<Bb8>(scenario, timing),
        PoolKind::BareQueue if scenario == Scenario::S1Hot => run_bare_queue(timing),
        PoolKind::BareQueue | PoolKind::BareQueueAsync => {
            run_timed_on::<BareQueue>(scenario, timing)
        }
    }
}

/// Builds a pool of `max` and fills it with `max` idle resources.
pub async fn prewarmed<P: BenchPool>(max: usize) -> Arc<P> {
    let pool = Arc::new(P::build(max, false));
    {
        let mut held = Vec::with_capacity(max);
        for _ in 0..max {
            held.push(pool.acquire().await);
        }
    }
    assert_eq!(
        pool.created(),
        max as u64,
        "pre-warm created a different count"
    );
    pool
}

/// One cycle: acquire, touch, (yield), drop.
#[inline(always)]
async fn cycle<P: BenchPool>(pool: &P, yield_held: bool) {
    let mut conn = pool.acquire().await;
    black_box(&mut *conn).n += 1;
    if yield_held {
        tokio::task::yield_now().await;
    }
    drop(conn);
}

pub(crate) const WARMUP: u8 = 0;
pub(crate) const MEASURE: u8 = 1;
pub(crate) const STOP: u8 = 2;

/// Runs the phases of a timed run from the driver thread, which is not a worker: it only sleeps
/// and flips `phase` (warm-up, then measured, then stop). Returns the measured wall time.
pub(crate) fn drive_phases(timing: &Timing, phase: &AtomicU8) -> Duration {
    std::thread::sleep(timing.warmup);
    phase.store(MEASURE, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(timing.measure);
    phase.store(STOP, Ordering::Relaxed);
    start.elapsed()
}

fn run_timed_on<P: BenchPool>(scenario: Scenario, timing: Timing) -> RunResult {
    let shape = scenario.shape();
    let rt = runtime_for(scenario);
    if scenario == Scenario::S6Cold {
        return run_cold::<P>(&rt, shape, timing);
    }
    let pool = rt.block_on(prewarmed::<P>(shape.max));
    let load = LoadSample::start();
    if !shape.multi_thread {
        // S1: one task on the current-thread runtime; the clock is read once per 1024 cycles.
        let (ops, elapsed) = rt.block_on(async {
            let end = Instant::now() + timing.warmup;
            while Instant::now() < end {
                for _ in 0..1024 {
                    cycle(&*pool, false).await;
                }
            }
            let start = Instant::now();
            let end = start + timing.measure;
            let mut ops = 0u64;
            loop {
                for _ in 0..1024 {
                    cycle(&*pool, false).await;
                }
                ops += 1024;
                let now = Instant::now();
                if now >= end {
                    return (ops, now - start);
                }
            }
        });
        return RunResult {
            ops,
            elapsed,
            per_task: vec![ops],
            hist: None,
            cold_runs: Vec::new(),
            created: pool.created(),
            load: load.finish(),
            keyed: None,
        };
    }
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let handles: Vec<_> = (0..shape.tasks)
        .map(|_| {
            let pool = pool.clone();
            let phase = phase.clone();
            rt.spawn(async move {
                let mut ops = 0u64;
                let mut hist = shape.timed.then(latency_histogram);
                loop {
                    let ph = phase.load(Ordering::Relaxed);
                    if ph == STOP {
                        break;
                    }
                    match (&mut hist, ph == MEASURE) {
                        (Some(h), true) => {
                            let t = Instant::now();
                            let mut conn = pool.acquire().await;
                            h.saturating_record(t.elapsed().as_nanos() as u64);
                            black_box(&mut *conn).n += 1;
                            if shape.yield_held {
                                tokio::task::yield_now().await;
                            }
                            drop(conn);
                        }
                        _ => cycle(&*pool, shape.yield_held).await,
                    }
                    if ph == MEASURE {
                        ops += 1;
                    }
                }
                (ops, hist)
            })
        })
        .collect();
    let elapsed = drive_phases(&timing, &phase);
    let load = load.finish();
    let (per_task, hists): (Vec<u64>, Vec<Option<Histogram<u64>>>) = rt.block_on(async {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.expect("task panicked"));
        }
        out.into_iter().unzip()
    });
    let hist = hists.into_iter().flatten().reduce(|mut a, b| {
        a.add(&b).expect("histograms share their bounds");
        a
    });
    RunResult {
        ops: per_task.iter().sum(),
        elapsed,
        per_task,
        hist,
        cold_runs: Vec::new(),
        created: pool.created(),
        load,
        keyed: None,
    }
}

/// One cold run: a fresh empty pool, `tasks` tasks each acquire once (and yield while holding).
/// Returns each task's time from the start to being served, and how many were created.
pub async fn cold_once<P: BenchPool>(shape: Shape) -> (Vec<u64>, u64) {
    let pool = Arc::new(P::build(shape.max, true));
    let start = Instant::now();
    let handles: Vec<_> = (0..shape.tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.acquire().await;
                let served = start.elapsed().as_nanos() as u64;
                black_box(&mut *conn).n += 1;
                tokio::task::yield_now().await;
                drop(conn);
                served
            })
        })
        .collect();
    let mut served = Vec::with_capacity(handles.len());
    for h in handles {
        served.push(h.await.expect("task panicked"));
    }
    (served, pool.created())
}

fn run_cold<P: BenchPool>(rt: &tokio::runtime::Runtime, shape: Shape, timing: Timing) -> RunResult {
    rt.block_on(async {
        let end = Instant::now() + timing.warmup;
        while Instant::now() < end {
            cold_once::<P>(shape).await;
        }
        let load = LoadSample::start();
        let mut hist = latency_histogram();
        let mut cold_runs = Vec::new();
        let mut created = 0;
        let mut busy = Duration::ZERO;
        let end = Instant::now() + timing.measure;
        while Instant::now() < end || cold_runs.len() < 3 {
            let (served, made) = cold_once::<P>(shape).await;
            let all = served.iter().copied().max().unwrap_or(0);
            for s in served {
                hist.saturating_record(s);
            }
            cold_runs.push(all);
            busy += Duration::from_nanos(all);
            created = created.max(made);
        }
        RunResult {
            ops: (cold_runs.len() * shape.tasks) as u64,
            elapsed: busy,
            per_task: Vec::new(),
            hist: Some(hist),
            cold_runs,
            created,
            load: load.finish(),
            keyed: None,
        }
    })
}

fn run_bare_queue(timing: Timing) -> RunResult {
    let q = ArrayQueue::new(16);
    for _ in 0..16 {
        let _ = q.push(Res::default());
    }
    let rt = current_thread();
    let load = LoadSample::start();
    // Inside the same kind of runtime and loop as S1, so only the pool differs.
    let (ops, elapsed) = rt.block_on(async {
        let bare = |q: &ArrayQueue<Res>| {
            let mut r = q.pop().expect("prefilled");
            black_box(&mut r).n += 1;
            let _ = q.push(r);
        };
        let end = Instant::now() + timing.warmup;
        while Instant::now() < end {
            for _ in 0..1024 {
                bare(black_box(&q));
            }
        }
        let start = Instant::now();
        let end = start + timing.measure;
        let mut ops = 0u64;
        loop {
            for _ in 0..1024 {
                bare(black_box(&q));
            }
            ops += 1024;
            let now = Instant::now();
            if now >= end {
                return (ops, now - start);
            }
        }
    });
    RunResult {
        ops,
        elapsed,
        per_task: vec![ops],
        hist: None,
        cold_runs: Vec::new(),
        created: 16,
        load: load.finish(),
        keyed: None,
    }
}

// ===== fixed-count drivers for criterion's iter_custom =====

/// S1: `iters` acquire → drop cycles on one task; returns their total time.
pub async fn hot_iters<P: BenchPool>(pool: &P, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        cycle(pool, false).await;
    }
    start.elapsed()
}

/// S2–S5: `tasks` tasks share `iters` cycles; returns the wall time scaled to exactly `iters`.
/// With `timed`, each acquire is also timed (its cost is part of the measurement, as in S5).
pub async fn tasks_iters<P: BenchPool>(pool: &Arc<P>, shape: Shape, iters: u64) -> Duration {
    let per_task = iters.div_ceil(shape.tasks as u64).max(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..shape.tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut worst = 0u64;
                for _ in 0..per_task {
                    if shape.timed {
                        let t = Instant::now();
                        let mut conn = pool.acquire().await;
                        worst = worst.max(t.elapsed().as_nanos() as u64);
                        black_box(&mut *conn).n += 1;
                        if shape.yield_held {
                            tokio::task::yield_now().await;
                        }
                    } else {
                        cycle(&*pool, shape.yield_held).await;
                    }
                }
                black_box(worst);
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task panicked");
    }
    let total = per_task * shape.tasks as u64;
    start.elapsed().mul_f64(iters as f64 / total as f64)
}
