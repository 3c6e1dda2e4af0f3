//! What the pool buys an HTTP proxy: a loopback load generator drives the reverse proxy of
//! `examples/support/proxy.rs` with each upstream strategy in turn, at fixed concurrency levels
//! for a fixed time, and reports requests/s and p50/p99 latency.
//!
//! ```text
//! cargo run --release --example proxy_bench
//! cargo run --release --example proxy_bench -- --secs 5 --concurrency 1,16,64 --strategies pool,legacy,per-request
//! ```
//!
//! Strategies: `pool` (shadowcat-pool's `KeyedPool` with the one upstream as its one key,
//! `max_per_key` = `--pool-max`, default 64, so it never limits), `pool8` (the same capped at 8
//! upstream connections), `legacy` (hyper-util's
//! legacy pooled `Client`, up to `--pool-max` idle connections, no cap on open ones) and
//! `per-request` (a new upstream connection per request, `Connection: close`).
//!
//! Every cell gets a fresh upstream and a fresh proxy, a warm-up (not measured), then `--secs` of
//! measurement. Each of `concurrency` clients holds one keep-alive connection to the proxy and
//! sends `GET`s back to back. Upstream, proxy and load generator share one tokio runtime with
//! 2 worker threads, so on a small machine the numbers are relative, not absolute.

#[allow(dead_code)]
#[path = "support/echo_upstream.rs"]
mod echo_upstream;
#[allow(dead_code)]
#[path = "support/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::builder::TypedValueParser as _;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use proxy::{Proxy, ProxyConfig};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the pool buys an HTTP proxy: requests/s and p50/p99 per upstream strategy.
#[derive(Parser, Debug, Clone)]
#[command(name = "proxy_bench")]
struct Args {
    /// Measured seconds per cell.
    #[arg(long, value_name = "SECS", default_value_t = 3.0, value_parser = positive_secs)]
    secs: f64,
    /// Warm-up seconds per cell (not measured).
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = positive_secs)]
    warmup_secs: f64,
    /// Comma-separated client counts.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "1,16,64",
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    concurrency: Vec<usize>,
    /// Comma-separated upstream strategies.
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          default_value = "pool,pool8,legacy,per-request",
          value_parser = ["pool", "pool8", "legacy", "per-request"])]
    strategies: Vec<String>,
    /// max_per_key of the `pool` strategy, and the legacy client's idle connections.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pool_max: usize,
}

fn positive_secs(v: &str) -> Result<f64, String> {
    let s: f64 = v.parse().map_err(|_| format!("not a number: {v}"))?;
    if !(s > 0.0 && s < 3600.0) {
        return Err(format!("out of range (0 < SECS < 3600): {v}"));
    }
    Ok(s)
}

/// One measured cell.
struct Cell {
    strategy: String,
    concurrency: usize,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    upstream_conns: u64,
}

fn main() {
    let args = Args::parse();
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
    println!(
        "proxy_bench: {} s per cell after {} s warm-up; {} CPUs available; tokio 2 workers",
        args.secs,
        args.warmup_secs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut cells = Vec::new();
    for &concurrency in &args.concurrency {
        for strategy in &args.strategies {
            let cell = measure(strategy, concurrency, &args).await?;
            eprintln!(
                "  {:<12} c={:<3} {:>9.0} req/s  p50 {:>8.1?}  p99 {:>8.1?}  errors {}  upstream conns {}",
                cell.strategy,
                cell.concurrency,
                cell.requests as f64 / cell.elapsed.as_secs_f64(),
                cell.p50,
                cell.p99,
                cell.errors,
                cell.upstream_conns
            );
            cells.push(cell);
        }
    }
    println!();
    println!(
        "| upstream strategy | concurrency | req/s | p50 | p99 | upstream TCP conns | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for c in &cells {
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} |",
            label(&c.strategy, args.pool_max),
            c.concurrency,
            c.requests as f64 / c.elapsed.as_secs_f64(),
            micros(c.p50),
            micros(c.p99),
            c.upstream_conns,
            c.errors
        );
    }
    Ok(())
}

fn label(strategy: &str, pool_max: usize) -> String {
    match strategy {
        "pool" => format!("shadowcat-pool KeyedPool, one route (max {pool_max})"),
        "pool8" => "shadowcat-pool KeyedPool, one route (max 8)".to_string(),
        "legacy" => "hyper-util legacy Client".to_string(),
        _ => "connect per request".to_string(),
    }
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

async fn measure(strategy: &str, concurrency: usize, args: &Args) -> Result<Cell, BoxError> {
    let (control, _entered) = echo_upstream::Control::new("up");
    let upstream = echo_upstream::start(TcpListener::bind("127.0.0.1:0").await?, control.clone());
    let mut config = ProxyConfig::new(upstream.addr);
    config.max_per_key = args.pool_max;
    config.acquire_timeout = Duration::from_secs(10);
    let proxy = match strategy {
        "pool" => Proxy::pooled(config)?,
        "pool8" => {
            config.max_per_key = 8;
            Proxy::pooled(config)?
        }
        "legacy" => Proxy::legacy(config),
        _ => Proxy::per_request(config),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = proxy.clone().serve(listener);

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup_secs);
    let until = measure_from + Duration::from_secs_f64(args.secs);
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        clients.push(tokio::spawn(client_loop(addr, measure_from, until)));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for c in clients {
        let (lat, errs) = c.await??;
        latencies.extend(lat);
        errors += errs;
    }
    let upstream_conns = control.accepts.load(Ordering::SeqCst);
    server.abort();
    if let Some(pool) = proxy.pool() {
        pool.close().await;
    }
    drop(proxy);
    upstream.shutdown().await;

    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(Duration::ZERO, |&ns| Duration::from_nanos(ns))
    };
    Ok(Cell {
        strategy: strategy.to_string(),
        concurrency,
        requests: latencies.len() as u64,
        errors,
        elapsed: until - measure_from,
        p50: pick(0.50),
        p99: pick(0.99),
        upstream_conns,
    })
}

/// One client: a keep-alive connection sending `GET`s back to back until `until`; records the
/// latency (ns) of the requests that start at or after `measure_from`.
async fn client_loop(
    addr: SocketAddr,
    measure_from: Instant,
    until: Instant,
) -> Result<(Vec<u64>, u64), BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let host = Arc::new(addr.to_string());
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let req = Request::get("/bench")
            .header("host", host.as_str())
            .body(Full::new(Bytes::new()))?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let ok = resp.status() == StatusCode::OK;
        let body = resp.into_body().collect().await?.to_bytes();
        if !ok || body.is_empty() {
            errors += 1;
        } else if started >= measure_from {
            latencies.push(started.elapsed().as_nanos() as u64);
        }
    }
    Ok((latencies, errors))
}
