#![cfg(not(shadowcat_loom))]
//! The keyed `before_acquire` hook in real use: the reverse proxy of
//! `examples/support/proxy.rs` does not reuse an upstream connection idle about as long as the
//! upstream said it keeps one open (`Keep-Alive: timeout=N`), and reuses it otherwise.
//!
//! One connection per upstream (`max_per_key` 1), so every request after the first is served by
//! the one connection or, once the hook rejected it, by a new one: no timing decides which.

#[allow(dead_code)]
#[path = "../examples/support/echo_upstream.rs"]
mod echo_upstream;
#[allow(dead_code)]
#[path = "../examples/support/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use echo_upstream::{expected_body, Control};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use proxy::{Proxy, ProxyConfig};
use tokio::net::{TcpListener, TcpStream};

/// Turns a hang into a failure. Far above anything a passing test needs.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
}

/// Sends `requests` GETs of `path` through a proxy with one connection to one echo upstream
/// (over one keep-alive client connection); returns the pool's stats and the upstream's accepts.
async fn run(path: &str, requests: usize) -> (shadowcat_pool::KeyedPoolStats, u64) {
    let (control, _entered) = Control::new("up");
    let upstream = echo_upstream::start(loopback().await, control.clone());
    let mut config = ProxyConfig::new(upstream.addr);
    config.max_per_key = 1;
    config.acquire_timeout = HANG_GUARD;
    let proxy = Proxy::pooled(config).expect("valid config");
    let listener = loopback().await;
    let addr: SocketAddr = listener.local_addr().expect("bound");
    let server = proxy.clone().serve(listener);

    let stream = TcpStream::connect(addr).await.expect("connect to proxy");
    let (mut client, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("client handshake");
    tokio::spawn(conn);
    for _ in 0..requests {
        let req = Request::get(path)
            .header("host", "proxy.test")
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        client.ready().await.expect("client connection ready");
        let resp = client.send_request(req).await.expect("response from proxy");
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(body, expected_body("up", "GET", path, b""));
    }
    let stats = proxy.pool().expect("pooled proxy").stats();
    server.abort();
    let accepts = control.accepts.load(std::sync::atomic::Ordering::SeqCst);
    upstream.shutdown().await;
    (stats, accepts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_its_upstreams_keep_alive_is_not_reused() {
    tokio::time::timeout(HANG_GUARD, async {
        // `timeout=0`: any idle time is past it, so every reuse is refused.
        let (stats, accepts) = run("/keep-alive/0", 4).await;
        assert_eq!(stats.created, 4, "{stats:?}");
        assert_eq!(stats.destroyed.hook_rejected, 3, "{stats:?}");
        assert_eq!(accepts, 4);
    })
    .await
    .expect("hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_within_its_upstreams_keep_alive_is_reused() {
    tokio::time::timeout(HANG_GUARD, async {
        for path in ["/keep-alive/60", "/no-keep-alive-header"] {
            let (stats, accepts) = run(path, 4).await;
            assert_eq!(stats.created, 1, "{path}: {stats:?}");
            assert_eq!(stats.destroyed.hook_rejected, 0, "{path}: {stats:?}");
            assert_eq!(accepts, 1, "{path}");
        }
    })
    .await
    .expect("hung");
}
