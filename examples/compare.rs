//! Compares shadowcat-pool with a fair mutex pool, Shadowcat's old spawn-on-drop pool, deadpool
//! and bb8, side by side in one process, and prints a table. S8 compares `KeyedPool` with keyed
//! forms of the mutex pool and of deadpool (see `benches/common/keyed.rs`).
//!
//! ```text
//! cargo run --release --example compare                 # every scenario, every pool (~2 min)
//! cargo run --release --example compare -- --quick      # shorter runs (< 90 s on 2 cores)
//! cargo run --release --example compare -- --scenarios S1,S3 --pools shadowcat-pool,deadpool
//! cargo run --release --example compare -- --scenarios S3,S7  # the noisy neighbour beside S3
//! cargo run --release --example compare -- --scenarios S8     # keyed: KeyedPool vs maps of pools
//! cargo run --release --example compare -- --help
//! ```
//!
//! Each scenario runs every pool for a fixed wall time after a warm-up, repeated (3 times by
//! default) with the pool order reversed on every other repeat (A B C, C B A, A B C), so that
//! machine drift shows as spread rather than bias. The table shows medians of the repeats. It
//! writes `target/compare/report.json`, `target/compare/report.md` and `target/compare/report.svg`.

#[path = "../benches/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use clap::{CommandFactory, Parser};
use common::scenarios::{latency_histogram, run_timed, PoolKind, RunResult, Scenario, Timing};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Another process using more than this many cores during a run flags the run as busy.
const BUSY_CORES: f64 = 0.25;

/// shadowcat-pool against the fair mutex baseline, the spawn-on-drop baseline, deadpool and bb8.
#[derive(Parser, Debug)]
#[command(
    name = "compare",
    override_usage = "cargo run --release --example compare -- [OPTIONS]"
)]
struct Cli {
    /// Short runs (warm-up 0.1 s, 0.3 s measured): under 90 s on 2 cores.
    #[arg(long)]
    quick: bool,
    /// Comma-separated ids or prefixes (default: all):
    /// S1-hot,S2-uncontended,S3-oversubscribed,S4-heavy,S5-fairness,S6-cold,S7-noisy-neighbour,
    /// S8-keyed (S7: S3 while a thread outside the runtime burns a core; S8: 64 keys with Zipf
    /// demand, max_per_key 16, max_total 64).
    #[arg(short = 's', long, visible_alias = "scenario", value_name = "LIST", value_delimiter = ',', value_parser = parse_scenario)]
    scenarios: Vec<Scenario>,
    /// Comma-separated (default: these five):
    /// shadowcat-pool,mutex-baseline,spawn-drop-baseline,deadpool,bb8; also shadowcat-defaults (the crate's default options, opt-in) and shadowcat-no-slots (worker_slots(0), opt-in);
    /// bare-arrayqueue is always added to S1 and S2, and bare-arrayqueue-async (the same queue
    /// behind the pools' async driver) to S1. S8 runs only shadowcat-pool (as KeyedPool),
    /// mutex-baseline (as a map of mutex pools with a global semaphore) and deadpool (as a map of
    /// deadpool pools).
    #[arg(short = 'p', long, visible_alias = "pool", value_name = "LIST", value_delimiter = ',', value_parser = parse_pool)]
    pools: Vec<PoolKind>,
    /// Repeats per pool and scenario; the table shows medians.
    #[arg(short = 'r', long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    repeats: u64,
    /// Measured wall time per run in seconds (default 1.0, or 0.3 with --quick).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    measure: Option<Duration>,
    /// Warm-up per run in seconds (default 0.3, or 0.1 with --quick).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    warmup: Option<Duration>,
    /// Where to write report.json/.md/.svg (default: target/compare).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    Scenario::parse(s.trim()).ok_or_else(|| format!("unknown scenario: {s}"))
}

fn parse_pool(s: &str) -> Result<PoolKind, String> {
    PoolKind::parse(s.trim()).ok_or_else(|| format!("unknown pool: {s}"))
}

fn parse_secs(v: &str) -> Result<Duration, String> {
    let s: f64 = v.parse().map_err(|_| format!("not a number: {v}"))?;
    if !(s > 0.0 && s < 3600.0) {
        return Err(format!("out of range (0 < SECS < 3600): {v}"));
    }
    Ok(Duration::from_secs_f64(s))
}

struct Args {
    scenarios: Vec<Scenario>,
    pools: Vec<PoolKind>,
    repeats: usize,
    timing: Timing,
    out: PathBuf,
    progress: bool,
    quick: bool,
}

impl Args {
    /// Applies the defaults that depend on other flags, and deduplicates the lists.
    fn from_cli(cli: Cli) -> Args {
        let timing = if cli.quick {
            Timing {
                warmup: Duration::from_millis(100),
                measure: Duration::from_millis(300),
            }
        } else {
            Timing {
                warmup: Duration::from_millis(300),
                measure: Duration::from_millis(1000),
            }
        };
        let mut scenarios = if cli.scenarios.is_empty() {
            Scenario::COMPARE.to_vec()
        } else {
            cli.scenarios
        };
        scenarios.dedup();
        let mut pools = if cli.pools.is_empty() {
            PoolKind::DEFAULT.to_vec()
        } else {
            cli.pools
        };
        pools.retain(|p| !p.is_lower_bound());
        let mut seen = Vec::new();
        pools.retain(|p| {
            let new = !seen.contains(p);
            seen.push(*p);
            new
        });
        Args {
            scenarios,
            pools,
            repeats: cli.repeats as usize,
            timing: Timing {
                warmup: cli.warmup.unwrap_or(timing.warmup),
                measure: cli.measure.unwrap_or(timing.measure),
            },
            out: cli.out.unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("target")
                    .join("compare")
            }),
            progress: !cli.no_progress,
            quick: cli.quick,
        }
    }
}

/// One row of `report.json` (exactly these fields).
#[derive(Serialize, Clone)]
struct Row {
    scenario: &'static str,
    pool: &'static str,
    ops_per_sec: f64,
    ns_per_op: f64,
    p50_ns: Option<u64>,
    p99_ns: Option<u64>,
    p999_ns: Option<u64>,
    max_ns: Option<u64>,
    fairness: Option<f64>,
    min_task_ops: Option<u64>,
    created: u64,
    /// S8: idle resources evicted for another key (median of repeats; none if the pool never
    /// evicts).
    evicted: Option<u64>,
    /// S8: the least-served key (0 is the hottest) of the worst repeat, and its service over its
    /// max-min fair share there.
    least_key: Option<u32>,
    least_key_share: Option<f64>,
    /// S8: the keys' demand (each capped at max_per_key) over the pool's total cap (median).
    demand_over_supply: Option<f64>,
    /// S8: resources alive across keys when a run stopped (the most of any repeat).
    alive_at_end: Option<usize>,
    /// S8: tasks whose acquire still waited 2 s after the stop (the most of any repeat).
    stalled: Option<usize>,
}

/// A row plus what the table shows beside it.
struct Summary {
    row: Row,
    scenario: Scenario,
    kind: PoolKind,
    /// ops/s of each repeat.
    repeats: Vec<f64>,
    /// Cores used by other processes, per repeat.
    load: Vec<f64>,
    /// Pooled latency histogram (S5 and S8 waits, S6 time to served).
    hist: Option<Histogram<u64>>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Per-repeat (ops/s, ns/op, fairness, min task ops).
fn repeat_metrics(sc: Scenario, r: &RunResult) -> (f64, f64, Option<f64>, Option<u64>) {
    if sc == Scenario::S6Cold {
        // The headline of S6 is the time until all tasks are served (median over the cold runs).
        let ns = median(r.cold_runs.iter().map(|&n| n as f64).collect());
        let tasks = sc.shape().tasks as f64;
        return (tasks * 1e9 / ns, ns, None, None);
    }
    let ops_s = r.ops_per_sec();
    let ns = 1e9 / ops_s;
    if r.per_task.len() < 2 {
        return (ops_s, ns, None, None);
    }
    let min = r.per_task.iter().copied().min().unwrap_or(0);
    let max = r.per_task.iter().copied().max().unwrap_or(0);
    let fairness = (min > 0).then(|| max as f64 / min as f64);
    (ops_s, ns, fairness, Some(min))
}

fn summarize(sc: Scenario, kind: PoolKind, runs: &[RunResult]) -> Summary {
    let metrics: Vec<_> = runs.iter().map(|r| repeat_metrics(sc, r)).collect();
    let ops: Vec<f64> = metrics.iter().map(|m| m.0).collect();
    let fair: Vec<f64> = metrics.iter().filter_map(|m| m.2).collect();
    let starved = metrics.iter().any(|m| m.3 == Some(0));
    let mut hist: Option<Histogram<u64>> = None;
    for r in runs {
        if let Some(h) = &r.hist {
            hist.get_or_insert_with(latency_histogram)
                .add(h)
                .expect("histograms share their bounds");
        }
    }
    let q = |p: f64| hist.as_ref().map(|h| h.value_at_quantile(p));
    let keyed: Vec<_> = runs.iter().filter_map(|r| r.keyed).collect();
    let evicted: Vec<f64> = keyed
        .iter()
        .filter_map(|k| k.evicted.map(|e| e as f64))
        .collect();
    let least = keyed
        .iter()
        .filter_map(|k| k.least)
        .min_by(|a, b| a.share.total_cmp(&b.share));
    let demand: Vec<f64> = keyed
        .iter()
        .filter_map(|k| k.least.map(|l| l.demand_over_supply))
        .collect();
    let row = Row {
        scenario: sc.id(),
        pool: kind.label(sc),
        ops_per_sec: median(ops.clone()),
        ns_per_op: median(metrics.iter().map(|m| m.1).collect()),
        p50_ns: q(0.50),
        p99_ns: q(0.99),
        p999_ns: q(0.999),
        max_ns: hist.as_ref().map(Histogram::max),
        // A repeat in which some task completed nothing has no finite ratio: report none.
        fairness: (!fair.is_empty() && !starved).then(|| median(fair)),
        min_task_ops: metrics.iter().filter_map(|m| m.3).min(),
        created: runs.iter().map(|r| r.created).max().unwrap_or(0),
        evicted: (!evicted.is_empty()).then(|| median(evicted) as u64),
        least_key: least.map(|l| l.key),
        least_key_share: least.map(|l| l.share),
        demand_over_supply: (!demand.is_empty()).then(|| median(demand)),
        alive_at_end: keyed.iter().map(|k| k.alive).max(),
        stalled: keyed.iter().map(|k| k.stalled).max(),
    };
    Summary {
        row,
        scenario: sc,
        kind,
        repeats: ops,
        load: runs.iter().map(|r| r.load.others).collect(),
        hist,
    }
}

fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "-".into()
    } else if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn opt_ns(v: Option<u64>) -> String {
    v.map_or("-".into(), |n| fmt_ns(n as f64))
}

/// The headline number of a row: ns per cycle (S1), time until all served (S6), Mops/s.
fn headline(s: &Summary) -> String {
    match s.scenario {
        Scenario::S1Hot => format!(
            "{:.2} Mops/s ({:.1} ns/cycle)",
            s.row.ops_per_sec / 1e6,
            s.row.ns_per_op
        ),
        Scenario::S6Cold => format!("all served in {}", fmt_ns(s.row.ns_per_op)),
        _ => format!("{:.3} Mops/s", s.row.ops_per_sec / 1e6),
    }
}

fn table(summaries: &[Summary], markdown: bool) -> String {
    let mutex: HashMap<Scenario, f64> = summaries
        .iter()
        .filter(|s| s.kind == PoolKind::MutexBaseline)
        .map(|s| (s.scenario, s.row.ops_per_sec))
        .collect();
    let header = [
        "scenario",
        "pool",
        "throughput",
        "vs mutex",
        "spread",
        "p50",
        "p99",
        "p99.9",
        "max",
        "fairness",
        "min task ops",
        "created",
        "evicted",
        "least key",
        "load",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for s in summaries {
        let lo = s.repeats.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = s.repeats.iter().copied().fold(0.0, f64::max);
        let spread = if s.repeats.len() > 1 {
            format!("±{:.0}%", (hi - lo) / 2.0 / s.row.ops_per_sec * 100.0)
        } else {
            "-".into()
        };
        let load = s.load.iter().copied().fold(0.0, f64::max);
        rows.push(vec![
            s.row.scenario.to_string(),
            s.row.pool.to_string(),
            headline(s),
            mutex
                .get(&s.scenario)
                .map_or("-".into(), |m| format!("{:.2}×", s.row.ops_per_sec / m)),
            spread,
            opt_ns(s.row.p50_ns),
            opt_ns(s.row.p99_ns),
            opt_ns(s.row.p999_ns),
            opt_ns(s.row.max_ns),
            match (s.row.fairness, s.row.min_task_ops) {
                (Some(f), _) => format!("{f:.2}"),
                (None, Some(0)) => "starved".into(),
                _ => "-".into(),
            },
            s.row.min_task_ops.map_or("-".into(), |n| n.to_string()),
            s.row.created.to_string(),
            match (s.scenario, s.row.evicted) {
                (Scenario::S8Keyed, None) => "never".into(),
                (_, e) => e.map_or("-".into(), |e| e.to_string()),
            },
            match (s.row.least_key, s.row.least_key_share) {
                (Some(k), Some(share)) => format!("#{k} {share:.2}×"),
                _ => "-".into(),
            },
            format!("{load:.2}{}", if load > BUSY_CORES { " BUSY" } else { "" }),
        ]);
    }
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let aligns: Vec<&str> = header
            .iter()
            .enumerate()
            .map(|(i, _)| if i < 2 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "|{}|", aligns.join("|"));
        for r in &rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        return out;
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            if i < 2 {
                let _ = write!(l, "{c}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(l, "{}{c}  ", " ".repeat(pad));
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    let mut last = "";
    for (r, s) in rows.iter().zip(summaries) {
        if s.row.scenario != last && !last.is_empty() {
            out.push('\n');
        }
        last = s.row.scenario;
        let _ = writeln!(out, "{}", line(r));
    }
    out
}

/// Checks the issue's targets and says by how much each is met or missed.
fn targets(summaries: &[Summary]) -> String {
    let get = |sc: Scenario, k: PoolKind| {
        summaries
            .iter()
            .find(|s| s.scenario == sc && s.kind == k)
            .map(|s| &s.row)
    };
    let mut out = String::new();
    // Ratios without a target, printed after the checks.
    let mut notes: Vec<String> = Vec::new();
    let mut check = |ok: bool, text: String| {
        let _ = writeln!(out, "  {}  {text}", if ok { "met   " } else { "MISSED" });
    };
    use PoolKind::*;
    for sc in Scenario::COMPARE {
        let Some(us) = get(sc, Shadowcat) else {
            continue;
        };
        let ratio = |k: PoolKind| get(sc, k).map(|o| us.ops_per_sec / o.ops_per_sec);
        match sc {
            Scenario::S1Hot => {
                if let Some(bare) = get(sc, BareQueue) {
                    let r = us.ns_per_op / bare.ns_per_op;
                    check(
                        r <= 2.0,
                        format!(
                            "S1 cycle {:.1} ns = {r:.2}× the bare ArrayQueue pop+push ({:.1} ns); target ≤ 2×",
                            us.ns_per_op, bare.ns_per_op
                        ),
                    );
                }
                if let (Some(bare), Some(driven)) = (get(sc, BareQueue), get(sc, BareQueueAsync)) {
                    notes.push(format!(
                        "S1 cycle = {:.2}× the bare ArrayQueue behind the same async driver ({:.1} ns; the driver adds {:.1} ns to the inline pop+push)",
                        us.ns_per_op / driven.ns_per_op,
                        driven.ns_per_op,
                        driven.ns_per_op - bare.ns_per_op
                    ));
                }
                if let Some(r) = ratio(MutexBaseline) {
                    check(
                        r >= 3.0,
                        format!("S1 {r:.2}× the mutex baseline; target ≥ 3×"),
                    );
                }
                for k in [Deadpool, Bb8] {
                    if let Some(r) = ratio(k) {
                        check(r >= 4.0, format!("S1 {r:.2}× {}; target ≥ 4×", k.id()));
                    }
                }
            }
            Scenario::S2Uncontended => {
                for k in [Deadpool, Bb8] {
                    if let Some(r) = ratio(k) {
                        check(r >= 1.5, format!("S2 {r:.2}× {}; target ≥ 1.5×", k.id()));
                    }
                }
                if let Some(r) = ratio(MutexBaseline) {
                    check(
                        r >= 4.0,
                        format!("S2 {r:.2}× the mutex baseline; target ≥ 4×"),
                    );
                }
                if let Some(bare) = get(sc, BareQueue) {
                    let r = us.ops_per_sec / bare.ops_per_sec;
                    check(
                        r >= 2.0,
                        format!(
                            "S2 {:.3} Mops/s = {r:.2}× the bare ArrayQueue pop+push with two workers ({:.3} Mops/s); target ≥ 2×",
                            us.ops_per_sec / 1e6,
                            bare.ops_per_sec / 1e6
                        ),
                    );
                }
            }
            Scenario::S3Oversubscribed | Scenario::S4Heavy | Scenario::S5Fairness => {
                let id = &sc.id()[..2];
                let best = [Deadpool, Bb8]
                    .into_iter()
                    .filter_map(|k| get(sc, k).map(|o| (k, o.ops_per_sec)))
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                if let Some((k, best)) = best {
                    let r = us.ops_per_sec / best;
                    check(
                        r >= 1.15,
                        format!(
                            "{id} {r:.2}× the better of deadpool/bb8 ({}); target ≥ 1.15×",
                            k.id()
                        ),
                    );
                }
                if let Some(r) = ratio(MutexBaseline) {
                    check(
                        r >= 1.0,
                        format!("{id} {r:.2}× the mutex baseline; target ≥ 1×"),
                    );
                }
                if let Some(r) = ratio(SpawnDropBaseline) {
                    check(
                        r >= 1.25,
                        format!("{id} {r:.2}× the spawn-drop baseline; target ≥ 1.25×"),
                    );
                }
                match us.fairness {
                    Some(f) => check(
                        f <= 1.15,
                        format!("{id} fairness (max/min cycles per task) {f:.3}; target ≤ 1.15"),
                    ),
                    None => check(false, format!("{id} some task completed no cycle")),
                }
                if let Some(min) = us.min_task_ops {
                    check(
                        min > 0,
                        format!("{id} every task made progress (least: {min} cycles)"),
                    );
                }
                if sc == Scenario::S5Fairness {
                    if let (Some(ours), Some(theirs)) =
                        (us.p999_ns, get(sc, MutexBaseline).and_then(|m| m.p999_ns))
                    {
                        let r = ours as f64 / theirs as f64;
                        check(
                            r <= 1.2,
                            format!(
                                "S5 p99.9 wait {} = {r:.2}× the mutex baseline's ({}); target ≤ 1.2×",
                                fmt_ns(ours as f64),
                                fmt_ns(theirs as f64)
                            ),
                        );
                    }
                }
            }
            Scenario::S6Cold => {
                let max = sc.shape().max as u64;
                check(
                    us.created <= max,
                    format!("S6 created {} resources; must be ≤ max {max}", us.created),
                );
            }
            Scenario::S7Noisy => {
                if let Some(r) = ratio(MutexBaseline) {
                    check(
                        r >= 0.9,
                        format!("S7 {r:.2}× the mutex baseline with a core taken; target ≥ 0.9×"),
                    );
                }
                // What the busy core cost each pool: its S7 throughput over its S3 throughput
                // (both from this run; only when S3 ran too).
                let kept = |k: PoolKind| {
                    let s3 = get(Scenario::S3Oversubscribed, k)?.ops_per_sec;
                    Some((k, get(sc, k)?.ops_per_sec / s3))
                };
                let kept: Vec<String> = [Shadowcat, MutexBaseline, Deadpool, Bb8]
                    .into_iter()
                    .filter_map(kept)
                    .map(|(k, r)| format!("{} {r:.2}×", k.id()))
                    .collect();
                if !kept.is_empty() {
                    notes.push(format!(
                        "S7 throughput kept from S3 under the noisy neighbour: {}",
                        kept.join(", ")
                    ));
                }
                notes.push(match (us.fairness, us.min_task_ops) {
                    (Some(f), Some(min)) => format!(
                        "S7 fairness (max/min cycles per task) {f:.3}; least task {min} cycles"
                    ),
                    _ => "S7 some task completed no cycle".into(),
                });
            }
            Scenario::S8Keyed => {
                if let Some(r) = ratio(MutexBaseline) {
                    check(
                        r >= 1.5,
                        format!("S8 {r:.2}× the keyed mutex baseline; target ≥ 1.5×"),
                    );
                }
                if let (Some(ours), Some(theirs)) =
                    (us.p99_ns, get(sc, MutexBaseline).and_then(|m| m.p99_ns))
                {
                    let r = ours as f64 / theirs as f64;
                    check(
                        r <= 1.0,
                        format!(
                            "S8 p99 wait {} = {r:.2}× the keyed mutex baseline's ({}); target ≤ 1×",
                            fmt_ns(ours as f64),
                            fmt_ns(theirs as f64)
                        ),
                    );
                }
                match (us.least_key, us.least_key_share, us.demand_over_supply) {
                    (Some(k), Some(share), Some(d)) => check(
                        share >= 0.5,
                        format!(
                            "S8 least-served key #{k} got {share:.2}× its max-min fair share \
                             (worst repeat; demand {d:.2}× supply); target ≥ 0.5×"
                        ),
                    ),
                    _ => check(false, "S8 no key was served".into()),
                }
                if let Some(n) = us.stalled {
                    check(
                        n == 0,
                        format!(
                            "S8 no acquire still waiting 2 s after the stop (worst repeat: {n} tasks)"
                        ),
                    );
                }
                // Per pool: evictions, the least-served key, and what was alive at the end.
                for k in [Shadowcat, MutexBaseline, Deadpool] {
                    let Some(row) = get(sc, k) else {
                        continue;
                    };
                    let evicted = row
                        .evicted
                        .map_or("never evicts".into(), |e| format!("{e} evicted"));
                    let least = match (row.least_key, row.least_key_share) {
                        (Some(key), Some(share)) => {
                            format!("least-served key #{key} at {share:.2}× its fair share")
                        }
                        _ => "no key served".into(),
                    };
                    let cap = if k == Deadpool {
                        "; no total cap (deadpool has none): fair shares against 1024, the sum \
                         of the per-key caps"
                            .to_string()
                    } else {
                        String::new()
                    };
                    notes.push(format!(
                        "S8 {}: {evicted} per run, {least}, {} alive at the end, {} tasks stalled after the stop{cap}",
                        row.pool,
                        row.alive_at_end.unwrap_or(0),
                        row.stalled.unwrap_or(0)
                    ));
                }
            }
        }
    }
    for n in notes {
        let _ = writeln!(out, "  note    {n}");
    }
    out
}

fn utc_date() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    // Civil from days (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{cpus} vCPUs, {model}, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn main() {
    let args = Args::from_cli(Cli::parse());
    if args.pools.is_empty() {
        Cli::command()
            .error(
                clap::error::ErrorKind::InvalidValue,
                "no pool selected (bare-arrayqueue is added by itself)",
            )
            .exit();
    }
    // The plan: per scenario, `repeats` passes over the pools, reversing the order every other
    // pass. S1 and S2 also run the bare queue bound in the same passes.
    let mut plan = Vec::new();
    for &sc in &args.scenarios {
        let mut pools = args.pools.clone();
        pools.extend_from_slice(PoolKind::lower_bounds(sc));
        pools.retain(|k| k.runs_in(sc));
        for r in 0..args.repeats {
            let mut order = pools.clone();
            if r % 2 == 1 {
                order.reverse();
            }
            for k in order {
                plan.push((sc, r, k));
            }
        }
    }
    let started = Instant::now();
    let bar = if args.progress {
        let bar = ProgressBar::new(plan.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30.cyan/blue} {pos}/{len} runs, {elapsed} elapsed, ~{eta} left  {msg}",
            )
            .expect("template")
            .progress_chars("##-"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut results: HashMap<(Scenario, PoolKind), Vec<RunResult>> = HashMap::new();
    for &(sc, r, kind) in &plan {
        bar.set_message(format!("{} {} (repeat {})", sc.id(), kind.id(), r + 1));
        let res = run_timed(kind, sc, args.timing);
        results.entry((sc, kind)).or_default().push(res);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let took = started.elapsed();

    let mut summaries = Vec::new();
    for &sc in &args.scenarios {
        let mut pools = args.pools.clone();
        pools.extend_from_slice(PoolKind::lower_bounds(sc));
        for k in pools {
            if let Some(runs) = results.get(&(sc, k)) {
                summaries.push(summarize(sc, k, runs));
            }
        }
    }
    let loads: Vec<f64> = results.values().flatten().map(|r| r.load.others).collect();
    let busy = loads.iter().filter(|&&l| l > BUSY_CORES).count();
    let steal = results
        .values()
        .flatten()
        .map(|r| r.load.steal)
        .fold(0.0, f64::max);
    let quiet = if busy == 0 { "quiet" } else { "BUSY" };

    let mut header = String::new();
    let _ = writeln!(
        header,
        "shadowcat-pool comparison, {} ({})",
        utc_date(),
        machine()
    );
    let _ = writeln!(
        header,
        "{} runs in {:.0} s: {} repeats (median; pool order reversed on alternate repeats), {:.1} s warm-up + {:.1} s measured per run{}",
        plan.len(),
        took.as_secs_f64(),
        args.repeats,
        args.timing.warmup.as_secs_f64(),
        args.timing.measure.as_secs_f64(),
        if args.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        header,
        "load from other processes: median {:.2}, max {:.2} cores; {busy} of {} runs busy (> {BUSY_CORES} cores) -> {quiet}; max steal {:.2} cores",
        median(loads.clone()),
        loads.iter().copied().fold(0.0, f64::max),
        loads.len(),
        steal
    );
    let _ = writeln!(
        header,
        "config: same max everywhere, pre-warmed except S6; shadowcat-pool with idle_timeout(None), max_lifetime(None), \
         acquire_timeout(None) (deadpool's defaults: no clock read on release); deadpool defaults; bb8 with \
         test_on_check_out(false), no idle timeout or lifetime (its 30 s connection_timeout stays)"
    );
    if args.scenarios.contains(&Scenario::S8Keyed) {
        let _ = writeln!(
            header,
            "S8: 256 tasks, each cycle a key drawn from Zipf(s = 1) over 64 keys, max_per_key 16, max_total 64 (not pre-warmed); \
             KeyedPool with Saturation::Evict and the options above; keyed-mutex-baseline: a HashMap of mutex pools behind a \
             lock, a global Semaphore of 64, evicting the LRU idle resource as KeyedPool does; deadpool-map: a HashMap of \
             deadpool pools behind a lock, no total cap. Least key: the key served least relative to its max-min fair share \
             of held resources (worst repeat; #0 is the hottest key)."
        );
    }
    let _ = writeln!(
        header,
        "S2-S5 and S7 depend on vCPU placement and load: compare pools within one run, as ratios. S6: time until all 64 tasks are \
         served (median of cold runs); its percentiles are each task's time to be served. S7: S3 while a thread of this \
         process outside the runtime burns a core (not counted as outside load)."
    );

    println!("{header}");
    print!("{}", table(&summaries, false));
    println!("\ntargets (shadowcat-pool, medians of this run):");
    print!("{}", targets(&summaries));

    let rows: Vec<Row> = summaries.iter().map(|s| s.row.clone()).collect();
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("cannot create {}: {e}", args.out.display());
        std::process::exit(1);
    }
    let json = args.out.join("report.json");
    let md = args.out.join("report.md");
    let svg = args.out.join("report.svg");
    let write = |path: &PathBuf, text: String| {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("cannot write {}: {e}", path.display());
        }
    };
    write(
        &json,
        serde_json::to_string_pretty(&rows).expect("serializable") + "\n",
    );
    let mut markdown = String::new();
    for l in header.lines() {
        let _ = writeln!(markdown, "{l}  ");
    }
    markdown.push('\n');
    markdown.push_str(&table(&summaries, true));
    markdown.push_str("\nTargets:\n\n```text\n");
    markdown.push_str(&targets(&summaries));
    markdown.push_str("```\n");
    write(&md, markdown);
    match plot::draw(&svg, &summaries) {
        Ok(()) => {}
        Err(e) => eprintln!("cannot draw {}: {e}", svg.display()),
    }
    println!(
        "\nwrote {}, {} and {}",
        json.display(),
        md.display(),
        svg.display()
    );
}

mod plot {
    //! The SVG: throughput per scenario (one bar per pool) and S5's wait distribution.

    use super::{fmt_ns, Summary};
    use crate::common::scenarios::{PoolKind, Scenario};
    use plotters::prelude::*;

    fn color(k: PoolKind) -> RGBColor {
        match k {
            PoolKind::Shadowcat => RGBColor(214, 39, 40),
            PoolKind::MutexBaseline => RGBColor(31, 119, 180),
            PoolKind::SpawnDropBaseline => RGBColor(148, 103, 189),
            PoolKind::Deadpool => RGBColor(44, 160, 44),
            PoolKind::Bb8 => RGBColor(255, 127, 14),
            PoolKind::BareQueue => RGBColor(127, 127, 127),
            PoolKind::BareQueueAsync => RGBColor(199, 199, 199),
            PoolKind::ShadowcatDefaults => RGBColor(227, 119, 194),
            PoolKind::ShadowcatNoSlots => RGBColor(188, 189, 34),
        }
    }

    type Res = Result<(), Box<dyn std::error::Error>>;

    pub fn draw(path: &std::path::Path, summaries: &[Summary]) -> Res {
        let root = SVGBackend::new(path, (1440, 1040)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(600);
        let top = top.titled(
            "Throughput per scenario (median of repeats; S6: cold pool, 64 tasks; S7: S3 with a core taken; S8: keyed)",
            ("sans-serif", 22),
        )?;
        let mut scenarios: Vec<Scenario> = Vec::new();
        for s in summaries {
            if !scenarios.contains(&s.scenario) {
                scenarios.push(s.scenario);
            }
        }
        let mut kinds: Vec<PoolKind> = Vec::new();
        for s in summaries {
            if !kinds.contains(&s.kind) {
                kinds.push(s.kind);
            }
        }
        // Legend row.
        let (legend, grid) = top.split_vertically(30);
        for (i, k) in kinds.iter().enumerate() {
            let x = 20 + i as i32 * 175;
            legend.draw(&Rectangle::new([(x, 8), (x + 14, 22)], color(*k).filled()))?;
            legend.draw(&Text::new(k.id(), (x + 20, 8), ("sans-serif", 14)))?;
        }
        let cells = grid.split_evenly((2, 4));
        for (cell, sc) in cells.iter().zip(&scenarios) {
            let bars: Vec<&Summary> = summaries.iter().filter(|s| s.scenario == *sc).collect();
            let (unit, scale, label): (&str, f64, fn(&Summary) -> String) = match sc {
                Scenario::S1Hot => ("Mops/s", 1e-6, |s| format!("{:.0}ns", s.row.ns_per_op)),
                Scenario::S6Cold => ("served/ms", 1e-3, |s| fmt_ns(s.row.ns_per_op)),
                _ => ("Mops/s", 1e-6, |s| {
                    format!("{:.2}", s.row.ops_per_sec / 1e6)
                }),
            };
            let top_y = bars
                .iter()
                .map(|s| s.row.ops_per_sec * scale)
                .fold(0.0, f64::max)
                * 1.2;
            let mut chart = ChartBuilder::on(cell)
                .caption(
                    if *sc == Scenario::S8Keyed {
                        "S8-keyed (keyed forms of the pools)"
                    } else {
                        sc.id()
                    },
                    ("sans-serif", 16),
                )
                .margin(8)
                .x_label_area_size(8)
                .y_label_area_size(48)
                .build_cartesian_2d(0f64..bars.len() as f64, 0f64..top_y.max(1e-9))?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .disable_x_axis()
                .y_desc(unit)
                .y_labels(6)
                .draw()?;
            for (i, s) in bars.iter().enumerate() {
                let v = s.row.ops_per_sec * scale;
                let x = i as f64;
                chart.draw_series([Rectangle::new(
                    [(x + 0.12, 0.0), (x + 0.88, v)],
                    color(s.kind).filled(),
                )])?;
                chart.draw_series([Text::new(
                    label(s),
                    (x + 0.1, v + top_y * 0.07),
                    ("sans-serif", 11),
                )])?;
            }
        }
        // S5 (or S6) latency distribution: percentile spectrum on log axes.
        let lat: Vec<&Summary> = {
            let s5: Vec<&Summary> = summaries
                .iter()
                .filter(|s| s.scenario == Scenario::S5Fairness && s.hist.is_some())
                .collect();
            if s5.is_empty() {
                summaries
                    .iter()
                    .filter(|s| s.scenario == Scenario::S6Cold && s.hist.is_some())
                    .collect()
            } else {
                s5
            }
        };
        let Some(first) = lat.first() else {
            root.present()?;
            return Ok(());
        };
        let title = if first.scenario == Scenario::S5Fairness {
            "S5-fairness: acquire wait by percentile (all repeats pooled)"
        } else {
            "S6-cold: time to be served by percentile"
        };
        let max_ns = lat
            .iter()
            .filter_map(|s| s.hist.as_ref().map(|h| h.max()))
            .max()
            .unwrap_or(1) as f64;
        let min_ns = lat
            .iter()
            .filter_map(|s| s.hist.as_ref().map(|h| h.min().max(1)))
            .min()
            .unwrap_or(1) as f64;
        // x = nines: 0 → p0, 1 → p90, 2 → p99, 3 → p99.9, 4 → p99.99.
        let mut chart = ChartBuilder::on(&bottom)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..4.5f64, (min_ns * 0.8..max_ns * 1.5).log_scale())?;
        chart
            .configure_mesh()
            .x_labels(5)
            .x_label_formatter(&|x| {
                let p = 100.0 * (1.0 - 10f64.powf(-*x));
                if p >= 99.0 {
                    format!(
                        "p{}",
                        format!("{p:.3}")
                            .trim_end_matches('0')
                            .trim_end_matches('.')
                    )
                } else {
                    format!("p{p:.0}")
                }
            })
            .y_label_formatter(&|y| fmt_ns(*y))
            .y_desc("wait")
            .draw()?;
        for s in &lat {
            let h = s.hist.as_ref().expect("filtered");
            let pts: Vec<(f64, f64)> = (0..=90)
                .map(|i| {
                    let x = i as f64 * 0.05;
                    let q = 1.0 - 10f64.powf(-x);
                    (x, h.value_at_quantile(q).max(1) as f64)
                })
                .collect();
            let c = color(s.kind);
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                .label(s.kind.id())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    }
}
