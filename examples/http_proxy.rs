//! An HTTP/1.1 reverse proxy whose upstream connections live in `shadowcat-pool`.
//!
//! ```text
//! cargo run --release --example http_proxy -- --demo
//! cargo run --release --example http_proxy -- --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000
//! cargo run --release --example http_proxy --features metrics -- --metrics-listen 127.0.0.1:9100
//! ```
//!
//! Every flag is optional; `--help` lists them with their defaults (taken from `ProxyConfig::new`).
//! `--demo` starts a local echo upstream and the proxy on ephemeral ports, sends a few requests,
//! prints what happened and exits. `--metrics-listen ADDR` (loopback; needs the crate's `metrics`
//! feature) serves the pool's metrics as Prometheus text at `GET http://ADDR/metrics`; with
//! `--demo` the demo also scrapes it once and prints the pool's lines.
//!
//! The proxy logic is in `examples/support/proxy.rs` (shared with the tests and `proxy_bench`).

#[allow(dead_code)]
#[path = "support/echo_upstream.rs"]
mod echo_upstream;
#[cfg(feature = "metrics")]
#[path = "support/metrics_endpoint.rs"]
mod metrics_endpoint;
#[allow(dead_code)]
#[path = "support/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use clap::builder::TypedValueParser as _;
use clap::{CommandFactory, Parser};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The flag defaults, from the proxy's own config.
fn defaults() -> ProxyConfig {
    ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 9000)))
}

/// An HTTP/1.1 reverse proxy whose upstream connections live in shadowcat-pool.
#[derive(Parser, Debug)]
#[command(name = "http_proxy")]
struct Args {
    /// Where the proxy listens (loopback unless told otherwise).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The one upstream every request goes to.
    #[arg(long, value_name = "ADDR", default_value_t = defaults().upstream)]
    upstream: SocketAddr,
    /// Pooled upstream connections at most.
    #[arg(long, value_name = "N", default_value_t = defaults().max_connections,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    max_connections: usize,
    /// Wait this long (ms) for a connection, then answer 503.
    #[arg(long, value_name = "MS", default_value_t = defaults().acquire_timeout.as_millis() as u64)]
    acquire_timeout_ms: u64,
    /// Connecting longer than this (ms) answers 502.
    #[arg(long, value_name = "MS", default_value_t = defaults().connect_timeout.as_millis() as u64)]
    connect_timeout_ms: u64,
    /// Larger request bodies get 413.
    #[arg(long, value_name = "N", default_value_t = defaults().max_body_bytes)]
    max_body_bytes: usize,
    /// Start a local echo upstream and the proxy on ephemeral ports, send a few requests, print
    /// what happened, exit.
    #[arg(long)]
    demo: bool,
    /// Serve the pool's metrics as Prometheus text at GET http://ADDR/metrics (a loopback
    /// address: the endpoint has no authentication). Needs the crate's `metrics` feature.
    #[arg(long, value_name = "ADDR", value_parser = parse_loopback)]
    metrics_listen: Option<SocketAddr>,
}

fn parse_loopback(v: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = v
        .parse()
        .map_err(|e| format!("not a socket address ({e}): {v}"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!("not a loopback address: {v}"))
    }
}

impl Args {
    fn config(&self) -> ProxyConfig {
        let mut config = ProxyConfig::new(self.upstream);
        config.max_connections = self.max_connections;
        config.acquire_timeout = Duration::from_millis(self.acquire_timeout_ms);
        config.connect_timeout = Duration::from_millis(self.connect_timeout_ms);
        config.max_body_bytes = self.max_body_bytes;
        config
    }
}

fn main() {
    let args = Args::parse();
    let config = args.config();
    // Before the pool is built: the pool registers its metric handles with the recorder then.
    let metrics = args.metrics_listen.map(Metrics::install);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        if args.demo {
            demo(config, metrics).await
        } else {
            run(args.listen, config, metrics).await
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The `--metrics-listen` endpoint, ready to start once the pool exists.
#[cfg(feature = "metrics")]
struct Metrics {
    listen: SocketAddr,
    handle: metrics_exporter_prometheus::PrometheusHandle,
}

#[cfg(feature = "metrics")]
impl Metrics {
    /// Installs the Prometheus recorder as the global `metrics` recorder.
    fn install(listen: SocketAddr) -> Metrics {
        match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Metrics { listen, handle },
            Err(e) => Args::command()
                .error(
                    clap::error::ErrorKind::Io,
                    format!("--metrics-listen: cannot install the Prometheus recorder: {e}"),
                )
                .exit(),
        }
    }

    /// Serves `/metrics` for the proxy's pool; returns the bound address.
    async fn start(self, proxy: &Proxy) -> Result<SocketAddr, BoxError> {
        let pool = proxy
            .pool()
            .ok_or("--metrics-listen needs the pooled proxy")?;
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let scraped = metrics_endpoint::PoolMetrics::new(pool.clone(), proxy::POOL_NAME);
        metrics_endpoint::serve(listener, self.handle.clone(), scraped);
        // Upkeep drains histogram samples between scrapes, so they do not pile up when nobody
        // scrapes for a while (the exporter leaves scheduling it to the caller).
        let handle = self.handle;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        });
        Ok(addr)
    }
}

/// Without the `metrics` feature there is nothing to serve: `--metrics-listen` is refused.
#[cfg(not(feature = "metrics"))]
enum Metrics {}

#[cfg(not(feature = "metrics"))]
impl Metrics {
    fn install(_listen: SocketAddr) -> Metrics {
        Args::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--metrics-listen: the `metrics` feature is off in this build; run with \
                 `cargo run --example http_proxy --features metrics -- --metrics-listen ADDR`",
            )
            .exit()
    }

    async fn start(self, _proxy: &Proxy) -> Result<SocketAddr, BoxError> {
        match self {}
    }
}

async fn run(
    listen: SocketAddr,
    config: ProxyConfig,
    metrics: Option<Metrics>,
) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    println!(
        "proxying http://{} -> http://{} (max {} upstream connections)",
        listener.local_addr()?,
        config.upstream,
        config.max_connections
    );
    let proxy = Proxy::pooled(config)?;
    if let Some(metrics) = metrics {
        println!("metrics at http://{}/metrics", metrics.start(&proxy).await?);
    }
    // Runs until the process is stopped.
    proxy.serve(listener).await?;
    Ok(())
}

async fn demo(mut config: ProxyConfig, metrics: Option<Metrics>) -> Result<(), BoxError> {
    let (control, _entered) = echo_upstream::Control::new("upstream");
    let upstream = echo_upstream::start(TcpListener::bind("127.0.0.1:0").await?, control.clone());
    config.upstream = upstream.addr;
    config.max_body_bytes = 1024;
    let proxy = Proxy::pooled(config.clone())?;
    let metrics_addr = match metrics {
        Some(metrics) => Some(metrics.start(&proxy).await?),
        None => None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = proxy.clone().serve(listener);
    println!("upstream on {}, proxy on {addr}", upstream.addr);

    // 200s: 100 requests over 8 keep-alive client connections share a few upstream connections.
    let mut clients = Vec::new();
    for c in 0..8 {
        clients.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            for i in 0..100 / 8 {
                let path = format!("/demo/{c}/{i}");
                let req = Request::get(&path)
                    .header("host", "demo")
                    .body(Full::new(Bytes::new()))?;
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                assert_eq!(resp.status(), StatusCode::OK);
                let body = resp.into_body().collect().await?.to_bytes();
                assert_eq!(
                    body,
                    echo_upstream::expected_body("upstream", "GET", &path, b"")
                );
            }
            Ok::<_, BoxError>(())
        }));
    }
    for c in clients {
        c.await??;
    }
    println!(
        "96 GETs through the proxy: {} upstream TCP connections accepted; pool {:?}",
        control.accepts.load(Ordering::SeqCst),
        proxy.pool().map(|p| (p.stats().size, p.stats().created))
    );
    if let Some(metrics_addr) = metrics_addr {
        let mut stream = TcpStream::connect(metrics_addr).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n\r\n")
            .await?;
        let mut scrape = String::new();
        stream.read_to_string(&mut scrape).await?;
        println!(
            "GET http://{metrics_addr}/metrics -> {}",
            status_line(&scrape)
        );
        for line in scrape.lines().filter(|l| {
            (l.starts_with("shadowcat_pool_") || l.starts_with("http_proxy_"))
                && !l.contains("quantile")
        }) {
            println!("  {line}");
        }
    }

    // 413, 400 and 502.
    let big = raw(
        addr,
        &format!(
            "POST /big HTTP/1.1\r\nhost: demo\r\ncontent-length: 4096\r\n\r\n{}",
            "x".repeat(4096)
        ),
    )
    .await?;
    println!("4 KiB body with a 1 KiB cap -> {}", status_line(&big));
    let garbage = raw(addr, "THIS IS NOT HTTP\r\n\r\n").await?;
    println!("garbage request               -> {}", status_line(&garbage));
    let no_host = raw(addr, "GET / HTTP/1.1\r\n\r\n").await?;
    println!("HTTP/1.1 without Host         -> {}", status_line(&no_host));
    upstream.shutdown().await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(TcpStream::connect(addr).await?))
            .await?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            Request::get("/gone")
                .header("host", "demo")
                .body(Full::new(Bytes::new()))?,
        )
        .await?;
    println!("upstream stopped              -> {}", resp.status());

    server.abort();
    if let Some(pool) = proxy.pool() {
        pool.close().await;
        println!("pool closed: {:?}", pool.stats());
    }
    Ok(())
}

/// Sends raw bytes, reads until the proxy closes or 64 KiB arrived.
async fn raw(addr: SocketAddr, request: &str) -> Result<String, BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 65536];
    let n = stream.read(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("(no response)")
}
