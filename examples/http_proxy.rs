//! An HTTP/1.1 reverse proxy that routes by `Host` to several upstreams, whose connections live
//! in one `shadowcat_pool::KeyedPool`.
//!
//! ```text
//! cargo run --release --example http_proxy -- --demo
//! cargo run --release --example http_proxy -- --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000
//! cargo run --release --example http_proxy -- --route a.example=127.0.0.1:9001 \
//!     --route b.example=127.0.0.1:9002 --max-per-key 16 --max-total 24
//! cargo run --release --example http_proxy --features metrics -- --metrics-listen 127.0.0.1:9100
//! ```
//!
//! Every flag is optional; `--help` lists them with their defaults (taken from `ProxyConfig::new`).
//! `--route HOST=ADDR` (repeatable) sends requests for `HOST` to `ADDR`; `--upstream ADDR` is
//! where every other request goes (without it, and with no route, `127.0.0.1:9000`; with routes
//! but no `--upstream`, other hosts get `421`). `--demo` starts two local echo upstreams and the
//! proxy on ephemeral ports, sends requests to both hosts, prints what happened and exits.
//! `--metrics-listen ADDR` (loopback; needs the crate's `metrics` feature) serves the pool's
//! metrics as Prometheus text at `GET http://ADDR/metrics`; with `--demo` the demo also scrapes
//! it once and prints the pool's lines.
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
use std::sync::Arc;
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

/// Where requests go when neither `--upstream` nor `--route` is given.
const FALLBACK_UPSTREAM: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9000);

/// The flag defaults, from the proxy's own config.
fn defaults() -> ProxyConfig {
    ProxyConfig::new(FALLBACK_UPSTREAM)
}

/// An HTTP/1.1 reverse proxy that routes by Host to upstreams pooled in one KeyedPool.
#[derive(Parser, Debug)]
#[command(name = "http_proxy")]
struct Args {
    /// Where the proxy listens (loopback unless told otherwise).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The default route: where requests whose host has no --route go [default: 127.0.0.1:9000
    /// when no --route is given; otherwise none, and such requests get 421].
    #[arg(long, value_name = "ADDR")]
    upstream: Option<SocketAddr>,
    /// Send requests for HOST (a name, or name:port) to the upstream at ADDR; repeatable.
    #[arg(long = "route", value_name = "HOST=ADDR", value_parser = parse_route)]
    routes: Vec<(String, SocketAddr)>,
    /// Pooled connections to one upstream at most.
    #[arg(long, alias = "max-connections", value_name = "N", default_value_t = defaults().max_per_key,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    max_per_key: usize,
    /// Pooled connections across upstreams at most [default: --max-per-key times the number of
    /// upstreams]; when reached, an idle connection of another upstream is closed to make room.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    max_total: Option<usize>,
    /// Wait this long (ms) for a connection, then answer 503.
    #[arg(long, value_name = "MS", default_value_t = defaults().acquire_timeout.as_millis() as u64)]
    acquire_timeout_ms: u64,
    /// Connecting longer than this (ms) answers 502.
    #[arg(long, value_name = "MS", default_value_t = defaults().connect_timeout.as_millis() as u64)]
    connect_timeout_ms: u64,
    /// An upstream that sends no response head for this long (ms) gets the client a 504; one
    /// that sends no body data for this long mid-response has the client's connection aborted.
    /// Either way the upstream connection is closed, not reused.
    #[arg(long, value_name = "MS", default_value_t = defaults().response_timeout.as_millis() as u64)]
    response_timeout_ms: u64,
    /// Larger request bodies get 413.
    #[arg(long, value_name = "N", default_value_t = defaults().max_body_bytes)]
    max_body_bytes: usize,
    /// Start two local echo upstreams and the proxy on ephemeral ports, send requests to both
    /// hosts, print what happened, exit.
    #[arg(long)]
    demo: bool,
    /// Serve the pool's metrics as Prometheus text at GET http://ADDR/metrics (a loopback
    /// address: the endpoint has no authentication). Needs the crate's `metrics` feature.
    #[arg(long, value_name = "ADDR", value_parser = parse_loopback)]
    metrics_listen: Option<SocketAddr>,
}

fn parse_route(v: &str) -> Result<(String, SocketAddr), String> {
    let (host, addr) = v
        .split_once('=')
        .ok_or_else(|| format!("expected HOST=ADDR, got {v}"))?;
    if host.parse::<hyper::http::uri::Authority>().is_err() || host.is_empty() {
        return Err(format!("not a host name (or name:port): {host}"));
    }
    let addr = addr
        .parse()
        .map_err(|e| format!("not a socket address ({e}): {addr}"))?;
    Ok((host.to_string(), addr))
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
        let mut config = defaults();
        config.default_upstream = match (self.upstream, self.routes.is_empty()) {
            (Some(upstream), _) => Some(upstream),
            (None, true) => Some(FALLBACK_UPSTREAM),
            (None, false) => None,
        };
        config.routes = self.routes.clone();
        config.max_per_key = self.max_per_key;
        config.max_total = self.max_total;
        config.acquire_timeout = Duration::from_millis(self.acquire_timeout_ms);
        config.connect_timeout = Duration::from_millis(self.connect_timeout_ms);
        config.response_timeout = Duration::from_millis(self.response_timeout_ms);
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
    async fn start(self, proxy: &Arc<Proxy>) -> Result<SocketAddr, BoxError> {
        let scraped = metrics_endpoint::PoolMetrics::new(proxy.clone())
            .ok_or("--metrics-listen needs the pooled proxy")?;
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
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

    async fn start(self, _proxy: &Arc<Proxy>) -> Result<SocketAddr, BoxError> {
        match self {}
    }
}

async fn run(
    listen: SocketAddr,
    config: ProxyConfig,
    metrics: Option<Metrics>,
) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    let proxy = Proxy::pooled(config.clone())?;
    println!(
        "proxying http://{} (at most {} connections per upstream, {} in all)",
        listener.local_addr()?,
        config.max_per_key,
        proxy.pool().map_or(0, |p| p.stats().max_total)
    );
    for (host, addr) in &config.routes {
        println!("  Host {host} -> http://{addr}");
    }
    match config.default_upstream {
        Some(addr) => println!("  any other Host -> http://{addr}"),
        None => println!("  any other Host -> 421"),
    }
    if let Some(metrics) = metrics {
        println!("metrics at http://{}/metrics", metrics.start(&proxy).await?);
    }
    // Runs until the process is stopped.
    proxy.serve(listener).await?;
    Ok(())
}

/// A keep-alive client connection to the proxy.
async fn client(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one GET for `host` and returns the status and body.
async fn get(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: &str,
    path: &str,
) -> Result<(StatusCode, Bytes), BoxError> {
    let req = Request::get(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))?;
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

async fn demo(mut config: ProxyConfig, metrics: Option<Metrics>) -> Result<(), BoxError> {
    let (alpha_ctl, _alpha_entered) = echo_upstream::Control::new("alpha");
    let alpha = echo_upstream::start(TcpListener::bind("127.0.0.1:0").await?, alpha_ctl.clone());
    let (beta_ctl, _beta_entered) = echo_upstream::Control::new("beta");
    let beta = echo_upstream::start(TcpListener::bind("127.0.0.1:0").await?, beta_ctl.clone());
    config.default_upstream = None;
    config.routes = vec![
        ("alpha.demo".to_string(), alpha.addr),
        ("beta.demo".to_string(), beta.addr),
    ];
    config.max_per_key = config.max_per_key.min(4);
    config.max_total = Some(config.max_per_key + config.max_per_key / 2);
    config.max_body_bytes = 1024;
    let proxy = Proxy::pooled(config.clone())?;
    let pool = proxy
        .pool()
        .ok_or("the demo runs the pooled proxy")?
        .clone();
    let (alpha_key, beta_key) = (proxy.route_of("alpha.demo"), proxy.route_of("beta.demo"));
    let (alpha_key, beta_key) = (
        alpha_key.ok_or("alpha.demo has a route")?,
        beta_key.ok_or("beta.demo has a route")?,
    );
    let metrics_addr = match metrics {
        Some(metrics) => Some(metrics.start(&proxy).await?),
        None => None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = proxy.clone().serve(listener);
    println!("proxy on {addr}: Host alpha.demo -> {alpha_key}, beta.demo -> {beta_key}, other hosts -> 421");
    println!(
        "one KeyedPool: at most {} connections per upstream, {} in all",
        config.max_per_key,
        pool.stats().max_total
    );

    // 200s: 96 requests over 8 keep-alive client connections, alternating between the two hosts.
    let mut clients = Vec::new();
    for c in 0..8 {
        clients.push(tokio::spawn(async move {
            let mut sender = client(addr).await?;
            for i in 0..96 / 8 {
                let (host, name) = if (c + i) % 2 == 0 {
                    ("alpha.demo", "alpha")
                } else {
                    ("beta.demo", "beta")
                };
                let path = format!("/demo/{c}/{i}");
                let (status, body) = get(&mut sender, host, &path).await?;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body, echo_upstream::expected_body(name, "GET", &path, b""));
            }
            Ok::<_, BoxError>(())
        }));
    }
    for c in clients {
        c.await??;
    }
    let stats = pool.stats();
    println!(
        "96 GETs, half per host: alpha accepted {} upstream connections and answered {}, beta {} and {}",
        alpha_ctl.accepts.load(Ordering::SeqCst),
        alpha_ctl.requests.load(Ordering::SeqCst),
        beta_ctl.accepts.load(Ordering::SeqCst),
        beta_ctl.requests.load(Ordering::SeqCst),
    );
    println!(
        "pool: {} keys, {} connections alive (max_total {}), {} created, {} evicted to make room",
        stats.keys, stats.size, stats.max_total, stats.created, stats.destroyed.evicted
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

    // 421, 413 and 400.
    let unknown = raw(addr, "GET / HTTP/1.1\r\nhost: gamma.demo\r\n\r\n").await?;
    println!(
        "Host with no route             -> {}",
        status_line(&unknown)
    );
    let big = raw(
        addr,
        &format!(
            "POST /big HTTP/1.1\r\nhost: alpha.demo\r\ncontent-length: 4096\r\n\r\n{}",
            "x".repeat(4096)
        ),
    )
    .await?;
    println!("4 KiB body with a 1 KiB cap    -> {}", status_line(&big));
    let garbage = raw(addr, "THIS IS NOT HTTP\r\n\r\n").await?;
    println!(
        "garbage request                -> {}",
        status_line(&garbage)
    );
    let no_host = raw(addr, "GET / HTTP/1.1\r\n\r\n").await?;
    println!(
        "HTTP/1.1 without Host          -> {}",
        status_line(&no_host)
    );

    // Take beta down: its requests get 502 and its key drains; alpha carries on.
    let mut drained = proxy.drained_upstreams();
    beta.shutdown().await;
    let mut sender = client(addr).await?;
    let (status, _) = get(&mut sender, "beta.demo", "/gone").await?;
    println!("beta stopped: beta.demo        -> {status}");
    // The refusal started a drain (bounded: beta had at most max_per_key connections, none busy).
    match tokio::time::timeout(Duration::from_secs(10), drained.recv()).await {
        Ok(Ok(key)) => println!(
            "{key} drained: its key {}",
            match pool.key_stats(&beta_key) {
                None => "left the pool".to_string(),
                Some(s) => format!("holds {} connections", s.size),
            }
        ),
        _ => println!("{beta_key} was not drained (its key had already left the pool)"),
    }
    let (status, body) = get(&mut sender, "alpha.demo", "/still-here").await?;
    println!(
        "                alpha.demo      -> {status} {:?}",
        String::from_utf8_lossy(&body).lines().next().unwrap_or("")
    );

    server.abort();
    pool.close().await;
    println!("pool closed: {:?}", pool.stats());
    alpha.shutdown().await;
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
