//! An HTTP/1.1 reverse proxy whose upstream connections live in `shadowcat-pool`.
//!
//! ```text
//! cargo run --release --example http_proxy -- --demo
//! cargo run --release --example http_proxy -- --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000
//! ```
//!
//! Flags (all optional):
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--listen ADDR` | `127.0.0.1:8080` | where the proxy listens (loopback unless told otherwise) |
//! | `--upstream ADDR` | `127.0.0.1:9000` | the one upstream every request goes to |
//! | `--max-connections N` | 32 | pooled upstream connections at most |
//! | `--acquire-timeout-ms MS` | 2000 | wait this long for a connection, then answer `503` |
//! | `--connect-timeout-ms MS` | 1000 | connecting longer than this answers `502` |
//! | `--max-body-bytes N` | 1048576 | larger request bodies get `413` |
//! | `--demo` | | start a local echo upstream and the proxy on ephemeral ports, send a few requests, print what happened, exit |
//!
//! The proxy logic is in `examples/support/proxy.rs` (shared with the tests and `proxy_bench`).

#[allow(dead_code)]
#[path = "support/echo_upstream.rs"]
mod echo_upstream;
#[allow(dead_code)]
#[path = "support/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: http_proxy [--listen ADDR] [--upstream ADDR] [--max-connections N] \
[--acquire-timeout-ms MS] [--connect-timeout-ms MS] [--max-body-bytes N] [--demo]";

struct Args {
    listen: SocketAddr,
    config: ProxyConfig,
    demo: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut listen: SocketAddr = "127.0.0.1:8080".parse().expect("literal");
    let mut config = ProxyConfig::new("127.0.0.1:9000".parse().expect("literal"));
    let mut demo = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--demo" {
            demo = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        const WITH_VALUE: [&str; 6] = [
            "--listen",
            "--upstream",
            "--max-connections",
            "--acquire-timeout-ms",
            "--connect-timeout-ms",
            "--max-body-bytes",
        ];
        if !WITH_VALUE.contains(&flag.as_str()) {
            return Err(format!("unknown flag {flag}\n{USAGE}"));
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("bad value for {flag}: {e}\n{USAGE}");
        match flag.as_str() {
            "--listen" => listen = value.parse().map_err(|e| bad(&e))?,
            "--upstream" => config.upstream = value.parse().map_err(|e| bad(&e))?,
            "--max-connections" => config.max_connections = value.parse().map_err(|e| bad(&e))?,
            "--acquire-timeout-ms" => {
                config.acquire_timeout = Duration::from_millis(value.parse().map_err(|e| bad(&e))?)
            }
            "--connect-timeout-ms" => {
                config.connect_timeout = Duration::from_millis(value.parse().map_err(|e| bad(&e))?)
            }
            "--max-body-bytes" => config.max_body_bytes = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    Ok(Args {
        listen,
        config,
        demo,
    })
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        if args.demo {
            demo(args.config).await
        } else {
            run(args.listen, args.config).await
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(listen: SocketAddr, config: ProxyConfig) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    println!(
        "proxying http://{} -> http://{} (max {} upstream connections)",
        listener.local_addr()?,
        config.upstream,
        config.max_connections
    );
    // Runs until the process is stopped.
    Proxy::pooled(config)?.serve(listener).await?;
    Ok(())
}

async fn demo(mut config: ProxyConfig) -> Result<(), BoxError> {
    let (control, _entered) = echo_upstream::Control::new("upstream");
    let upstream = echo_upstream::start(TcpListener::bind("127.0.0.1:0").await?, control.clone());
    config.upstream = upstream.addr;
    config.max_body_bytes = 1024;
    let proxy = Proxy::pooled(config.clone())?;
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
