//! What pooling buys an MCP proxy, measured against the real reference server
//! (`@modelcontextprotocol/server-everything`, pinned; installed from npm into `.cache/`).
//!
//! ```text
//! cargo run --release --example mcp_bench                      # about 2-3 minutes
//! cargo run --release --example mcp_bench -- --secs 1 --concurrency 1,16   # a quick look
//! ```
//!
//! Each cell starts a fresh proxy (`examples/support/mcp_proxy.rs`) on loopback with one upstream
//! strategy, opens `concurrency` MCP clients (each `initialize`s its own session), warms up, then
//! has every client send `tools/call echo` back to back for `--secs` seconds (a call started
//! before the deadline is measured to its end). Every reply is checked against its request. The
//! strategies:
//!
//! * `pooled`: a `Pool` of at most `--pool-max` initialized servers shared by all clients;
//! * `dedicated`: one server per client session, spawned at `initialize` (skipped above
//!   `--dedicated-max` clients);
//! * `per-request`: a server spawned and initialized for every call and torn down after it, what
//!   Shadowcat did before it pooled.
//!
//! For the pooled strategy the proxy also reports the time spent inside the pool: `acquire` less
//! the pool's recorded wait time, plus the release in `Drop`, as a share of the mean end-to-end
//! latency. With one client nothing parks and this is the whole cost of pooling; for an acquire
//! that parked, the recorded wait runs until the acquire returns (wake-up and hand-out checks
//! included), so with many clients it is a lower bound.
//!
//! Proxy, load generator and servers share the machine; the numbers include the node servers'
//! own CPU time, which dominates.

#[allow(dead_code)]
#[path = "support/mcp_proxy.rs"]
mod mcp_proxy;
#[allow(dead_code)]
#[path = "support/mcp_upstream.rs"]
mod mcp_upstream;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use mcp_proxy::{McpHttpClient, McpProxy, ProxyConfig, StrategyKind};
use mcp_upstream::ServerInstall;
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// MCP proxy benchmark: pooled upstreams vs one per client vs one per request.
#[derive(Debug, Parser)]
#[command(name = "mcp_bench")]
struct Args {
    /// Measured seconds per cell.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Warm-up seconds per cell (pooled and dedicated).
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
    /// Concurrent clients, one cell each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,100")]
    concurrency: Vec<usize>,
    /// Strategies to compare.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pooled,dedicated,per-request"
    )]
    strategies: Vec<Strategy>,
    /// Pooled: upstream servers at most.
    #[arg(long, default_value_t = 4)]
    pool_max: usize,
    /// Dedicated: skip cells with more clients than this (one server each).
    #[arg(long, default_value_t = 100)]
    dedicated_max: usize,
    /// Pooled: send MCP `ping` to each idle session before handing it out (one more upstream
    /// round trip per call).
    #[arg(long)]
    test_before_acquire: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Strategy {
    Pooled,
    Dedicated,
    PerRequest,
}

impl Strategy {
    fn kind(self) -> StrategyKind {
        match self {
            Strategy::Pooled => StrategyKind::Pooled,
            Strategy::Dedicated => StrategyKind::Dedicated,
            Strategy::PerRequest => StrategyKind::PerRequest,
        }
    }

    fn label(self, pool_max: usize, ping: bool) -> String {
        match self {
            Strategy::Pooled if ping => format!("pooled (max {pool_max}), ping before acquire"),
            Strategy::Pooled => format!("pooled (max {pool_max})"),
            Strategy::Dedicated => "dedicated (one per client)".into(),
            Strategy::PerRequest => "spawn per request".into(),
        }
    }
}

/// One cell's results.
struct Cell {
    calls: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    spawned: u64,
    /// Pooled: mean time inside the pool per call (acquire less waiting in line, plus release).
    pool_time: Option<Duration>,
    /// Pooled: mean time parked in the waiter line per call.
    waited: Option<Duration>,
}

fn main() {
    let args = Args::parse();
    if args.secs <= 0.0 || args.warmup_secs < 0.0 || args.pool_max == 0 {
        eprintln!("--secs must be > 0, --warmup-secs >= 0 and --pool-max >= 1");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let install = tokio::task::spawn_blocking(ServerInstall::ensure).await??;
    println!(
        "mcp_bench: {} {} via `node {} stdio` ({}); {} s measured per cell, {} s warm-up",
        mcp_upstream::SERVER_PACKAGE,
        mcp_upstream::SERVER_VERSION,
        install.entry_point().display(),
        node_version(),
        args.secs,
        args.warmup_secs
    );
    println!();
    println!("| upstream strategy | clients | calls | calls/s | p50 | p95 | p99 | mean | servers spawned | pool time per call (share of mean) | waiting in line per call | load |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &concurrency in &args.concurrency {
        for &strategy in &args.strategies {
            if strategy == Strategy::Dedicated && concurrency > args.dedicated_max {
                println!(
                    "| {} | {concurrency} | skipped (--dedicated-max {}) | | | | | | | | | |",
                    strategy.label(args.pool_max, args.test_before_acquire),
                    args.dedicated_max
                );
                continue;
            }
            let cell = run_cell(&install, &args, strategy, concurrency).await?;
            print_row(
                strategy.label(args.pool_max, args.test_before_acquire),
                concurrency,
                &cell,
            );
        }
    }
    Ok(())
}

fn node_version() -> String {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .map(|o| format!("node {}", String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| "node ?".into())
}

async fn run_cell(
    install: &ServerInstall,
    args: &Args,
    strategy: Strategy,
    concurrency: usize,
) -> Result<Cell, BoxError> {
    let config = ProxyConfig {
        max_upstreams: args.pool_max,
        acquire_timeout: Duration::from_secs(120),
        create_timeout: Duration::from_secs(120),
        request_timeout: Duration::from_secs(120),
        test_before_acquire: args.test_before_acquire,
        ..ProxyConfig::default()
    };
    let proxy = McpProxy::new(install.manager(), config, strategy.kind())?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = proxy.clone().serve(listener);

    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(McpHttpClient::connect(addr).await?);
    }
    // `initialize` concurrently (the dedicated strategy spawns a server for each).
    let mut inits = Vec::new();
    for mut client in clients {
        inits.push(tokio::spawn(async move {
            client.initialize().await?;
            Ok::<_, BoxError>(client)
        }));
    }
    let mut clients = Vec::with_capacity(concurrency);
    for init in inits {
        clients.push(init.await??);
    }

    // The pool starts its servers before the clock runs, as the dedicated strategy does at
    // `initialize`: as many sessions as can be busy at once are created and given back.
    if let Some(pool) = proxy.pool() {
        let mut held = Vec::new();
        for _ in 0..args.pool_max.min(concurrency) {
            held.push(pool.acquire().await?);
        }
    }
    // Warm-up: every server answers a few calls.
    let warmup = match strategy {
        Strategy::PerRequest => Duration::ZERO,
        _ => Duration::from_secs_f64(args.warmup_secs),
    };
    let clients = drive(clients, warmup, true).await?.0;

    let pool_before = proxy.pool().map(|p| p.stats());
    let counters = proxy.counters();
    let (acq0, rel0) = (
        counters.acquire_nanos.load(Ordering::SeqCst),
        counters.release_nanos.load(Ordering::SeqCst),
    );
    let started = Instant::now();
    let (mut clients, latencies) =
        drive(clients, Duration::from_secs_f64(args.secs), false).await?;
    let elapsed = started.elapsed();
    let calls = latencies.len();
    let (pool_time, waited) = match (proxy.pool(), pool_before) {
        (Some(pool), Some(before)) => {
            let after = pool.stats();
            let acquire = counters.acquire_nanos.load(Ordering::SeqCst) - acq0;
            let release = counters.release_nanos.load(Ordering::SeqCst) - rel0;
            let wait = (after.total_wait - before.total_wait).as_nanos() as u64;
            let per_call = |n: u64| Duration::from_nanos(n / calls.max(1) as u64);
            (
                Some(per_call(acquire.saturating_sub(wait) + release)),
                Some(per_call(wait)),
            )
        }
        _ => (None, None),
    };

    for client in &mut clients {
        let _ = client.close().await;
    }
    server.abort();
    if !proxy.shutdown(Duration::from_secs(60)).await {
        eprintln!("warning: some upstream servers were not reaped within 60 s");
    }
    Ok(Cell {
        calls,
        elapsed,
        latencies,
        spawned: proxy.upstream_counts().spawned.load(Ordering::SeqCst),
        pool_time,
        waited,
    })
}

/// Every client sends echo calls back to back until `length` has passed (at least one each
/// unless `length` is zero and `warmup`); returns the clients and the latencies.
async fn drive(
    clients: Vec<McpHttpClient>,
    length: Duration,
    warmup: bool,
) -> Result<(Vec<McpHttpClient>, Vec<Duration>), BoxError> {
    if warmup && length.is_zero() {
        return Ok((clients, Vec::new()));
    }
    let deadline = Instant::now() + length;
    let mut tasks = Vec::new();
    for (c, mut client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            loop {
                let message = format!("client {c} call {i}");
                let sent = Instant::now();
                let echoed = client.echo(&message).await?;
                latencies.push(sent.elapsed());
                if echoed != message {
                    return Err::<_, BoxError>(format!("{echoed:?} for {message:?}").into());
                }
                i += 1;
                if Instant::now() >= deadline {
                    break;
                }
            }
            Ok((client, latencies))
        }));
    }
    let mut clients = Vec::new();
    let mut all = Vec::new();
    for t in tasks {
        let (client, latencies) = t.await??;
        clients.push(client);
        all.extend(latencies);
    }
    Ok((clients, all))
}

fn print_row(label: String, concurrency: usize, cell: &Cell) {
    let mut sorted = cell.latencies.clone();
    sorted.sort_unstable();
    let pct = |p: f64| -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    };
    let mean = if sorted.is_empty() {
        Duration::ZERO
    } else {
        sorted.iter().sum::<Duration>() / sorted.len() as u32
    };
    let pool = match cell.pool_time {
        Some(t) => format!(
            "{} ({:.3}%)",
            fmt(t),
            100.0 * t.as_secs_f64() / mean.as_secs_f64().max(f64::MIN_POSITIVE)
        ),
        None => "-".into(),
    };
    let waited = cell.waited.map_or("-".into(), fmt);
    println!(
        "| {label} | {concurrency} | {} | {:.0} | {} | {} | {} | {} | {} | {pool} | {waited} | {} |",
        cell.calls,
        cell.calls as f64 / cell.elapsed.as_secs_f64(),
        fmt(pct(50.0)),
        fmt(pct(95.0)),
        fmt(pct(99.0)),
        fmt(mean),
        cell.spawned,
        load_average(),
    );
}

/// The 1-minute load average: runnable tasks on the machine (2 cores), ours included.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}
