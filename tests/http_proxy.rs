#![cfg(not(shadowcat_loom))]
//! End to end: real upstream hyper servers on ephemeral loopback ports, the pooled reverse proxy
//! of `examples/support/proxy.rs` (one `KeyedPool` over every upstream) in front of them, and
//! real HTTP/1.1 clients. Most tests run one upstream as the default route; the routing test runs
//! three, by `Host`, and takes one down mid-run.
//!
//! Synchronisation is by events only: the upstream reports when a slow request arrives and
//! waits for a permit from the test; capacity is checked by acquiring it; phases of the routing
//! test are started by the test's coordinator over channels. The only timeouts relied on are
//! the mechanisms under test: `acquire_timeout` producing `503`, and `response_timeout`
//! producing `504` or an aborted body (against scripted raw-TCP upstreams that report each
//! request and each connection the proxy closes).

#[allow(dead_code)]
#[path = "../examples/support/echo_upstream.rs"]
mod echo_upstream;
#[cfg(feature = "metrics")]
#[path = "../examples/support/metrics_endpoint.rs"]
mod metrics_endpoint;
#[allow(dead_code)]
#[path = "../examples/support/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use echo_upstream::{expected_body, Control, RunningUpstream, ECHO_HOST};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use proxy::{Proxy, ProxyConfig, UpstreamError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Turns a hang into a failure. Far above anything a passing test needs.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
}

async fn upstream(name: &str) -> (RunningUpstream, mpsc::UnboundedReceiver<()>) {
    let (control, entered) = Control::new(name);
    (echo_upstream::start(loopback().await, control), entered)
}

/// A proxy serving on an ephemeral loopback port; stopped when dropped.
struct Running {
    proxy: Arc<Proxy>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start(proxy: Arc<Proxy>) -> Running {
    let listener = loopback().await;
    let addr = listener.local_addr().expect("bound");
    let server = proxy.clone().serve(listener);
    Running {
        proxy,
        addr,
        server,
    }
}

fn config(upstream: SocketAddr, max: usize, acquire_timeout: Duration) -> ProxyConfig {
    let mut config = ProxyConfig::new(upstream);
    config.max_per_key = max;
    config.acquire_timeout = acquire_timeout;
    config
}

/// A keep-alive client connection to the proxy.
async fn client(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect to proxy");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("client handshake");
    tokio::spawn(conn);
    sender
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    method: Method,
    path: &str,
    body: &'static [u8],
) -> (StatusCode, Bytes) {
    send_to(sender, "proxy.test", method, path, body).await
}

async fn send_to(
    sender: &mut SendRequest<Full<Bytes>>,
    host: &str,
    method: Method,
    path: &str,
    body: &'static [u8],
) -> (StatusCode, Bytes) {
    let (status, _, body) = exchange(sender, host, method, path, body).await;
    (status, body)
}

/// [`send_to`] with the response's headers; `target` may be a path or an absolute URI.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    host: &str,
    method: Method,
    target: &str,
    body: &'static [u8],
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let resp = response_head(sender, host, method, target, body).await;
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, body)
}

/// Sends one request and returns the response with its body unread.
async fn response_head(
    sender: &mut SendRequest<Full<Bytes>>,
    host: &str,
    method: Method,
    target: &str,
    body: &'static [u8],
) -> hyper::Response<hyper::body::Incoming> {
    let req = Request::builder()
        .method(method)
        .uri(target)
        .header("host", host)
        .body(Full::new(Bytes::from_static(body)))
        .expect("valid request");
    sender.ready().await.expect("client connection ready");
    sender.send_request(req).await.expect("response from proxy")
}

/// One request on its own connection.
async fn once(addr: SocketAddr, method: Method, path: &str) -> (StatusCode, Bytes) {
    send(&mut client(addr).await, method, path, b"").await
}

/// Sends raw bytes and returns the status line of the reply.
async fn raw_status_line(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    text.lines().next().unwrap_or_default().to_string()
}

/// Waits until every unit of the default route's capacity can be checked out at once, which
/// proves none is leaked or stuck, then gives them back. Re-waits on `Timeout` (the pool's own
/// fair queue wakes us on each release), so it does not depend on how fast releases happen.
async fn assert_capacity_returned(proxy: &Proxy) {
    let pool = proxy.pool().expect("pooled proxy");
    let key = proxy.route_of("proxy.test").expect("a default route");
    let max = pool.stats().max_per_key;
    let mut held = Vec::new();
    while held.len() < max {
        match pool.acquire(&key).await {
            Ok(conn) => held.push(conn),
            Err(shadowcat_pool::Error::Timeout(_)) => continue,
            Err(e) => panic!("acquire failed: {e}"),
        }
    }
    assert_eq!(pool.stats().in_use, max);
    drop(held);
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(stats.waiting, 0, "{stats:?}");
    assert_eq!(stats.idle, stats.size, "{stats:?}");
}

/// The `response_timeout` of the tests of slow upstreams: short, since each of them waits it out.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(300);

/// What a [`scripted_upstream`] does with the requests of one connection.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Reads the request and never answers.
    Silent,
    /// Sends a response head with `Content-Length: 100` and 40 bytes of the body, then nothing.
    StallMidBody,
    /// Answers every request `200` with the body `fine`.
    Answer,
}

const STALLED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n";
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfine";

/// What a [`scripted_upstream`] reports, by connection (numbered in accept order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    /// A request head arrived.
    Request(usize),
    /// The proxy closed the connection.
    Closed(usize),
}

/// A raw TCP upstream that plays `scripts[n]` on its `n`-th connection (the last script on any
/// later one), holds every connection open until the proxy closes it, and reports on the
/// returned channel. Stopped when the returned task is aborted.
async fn scripted_upstream(
    scripts: Vec<Script>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>, JoinHandle<()>) {
    let listener = loopback().await;
    let addr = listener.local_addr().expect("bound");
    let (seen, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        for n in 0.. {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let script = scripts[n.min(scripts.len() - 1)];
            tokio::spawn(play(stream, n, script, seen.clone()));
        }
    });
    (addr, events, task)
}

async fn play(mut stream: TcpStream, n: usize, script: Script, seen: mpsc::UnboundedSender<Seen>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // The next request head (the proxy sends no request bodies here); EOF: closed.
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    let _ = seen.send(Seen::Closed(n));
                    return;
                }
                Ok(read) => buf.extend_from_slice(&chunk[..read]),
            }
        };
        buf.drain(..end);
        let _ = seen.send(Seen::Request(n));
        match script {
            Script::Answer => {
                if stream.write_all(ANSWER).await.is_err() {
                    let _ = seen.send(Seen::Closed(n));
                    return;
                }
            }
            Script::Silent | Script::StallMidBody => {
                if matches!(script, Script::StallMidBody) {
                    let mut partial = STALLED_HEAD.to_vec();
                    partial.extend_from_slice(&[b'x'; 40]);
                    let _ = stream.write_all(&partial).await;
                }
                // Never another byte: wait for the proxy to close the connection.
                while matches!(stream.read(&mut chunk).await, Ok(read) if read > 0) {}
                let _ = seen.send(Seen::Closed(n));
                return;
            }
        }
    }
}

/// The next `count` reports, sorted (connections run concurrently, so their reports interleave).
async fn next_seen(events: &mut mpsc::UnboundedReceiver<Seen>, count: usize) -> Vec<Seen> {
    let mut got = Vec::new();
    for _ in 0..count {
        got.push(events.recv().await.expect("upstream alive"));
    }
    got.sort();
    got
}

fn slow_upstream_config(upstream: SocketAddr) -> ProxyConfig {
    // One connection: a request whose connection was not given back waits out the acquire
    // timeout (generous, so no release is raced) and gets `503`.
    let mut config = config(upstream, 1, Duration::from_secs(10));
    config.response_timeout = RESPONSE_TIMEOUT;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_requests_from_64_clients_use_at_most_8_upstream_connections() {
    tokio::time::timeout(HANG_GUARD, async {
        let (up, _entered) = upstream("up").await;
        let proxy =
            start(Proxy::pooled(config(up.addr, 8, Duration::from_secs(30))).unwrap()).await;
        const CLIENTS: usize = 64;
        const REQUESTS: usize = 2_000;
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let addr = proxy.addr;
            tasks.push(tokio::spawn(async move {
                let mut sender = client(addr).await;
                let n = REQUESTS / CLIENTS + usize::from(c < REQUESTS % CLIENTS);
                for i in 0..n {
                    let path = format!("/c{c}/r{i}");
                    let (method, body): (Method, &'static [u8]) = if i % 3 == 0 {
                        (Method::POST, b"a request body")
                    } else {
                        (Method::GET, b"")
                    };
                    let (status, got) = send(&mut sender, method.clone(), &path, body).await;
                    assert_eq!(status, StatusCode::OK);
                    assert_eq!(got, expected_body("up", method.as_str(), &path, body));
                }
                n
            }));
        }
        let mut done = 0;
        for t in tasks {
            done += t.await.expect("client task");
        }
        assert_eq!(done, REQUESTS);
        assert_eq!(up.control.requests.load(Ordering::SeqCst), REQUESTS as u64);
        let accepts = up.control.accepts.load(Ordering::SeqCst);
        assert!(accepts <= 8, "{accepts} upstream connections");
        let stats = proxy.proxy.pool().unwrap().stats();
        assert!(stats.created <= 8, "{stats:?}");
        assert_eq!(stats.destroyed.total(), 0, "{stats:?}");
        assert_eq!(proxy.proxy.counters().retries.load(Ordering::SeqCst), 0);
        assert_capacity_returned(&proxy.proxy).await;
    })
    .await
    .expect("test hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_request_is_retried_once_on_a_fresh_connection() {
    tokio::time::timeout(HANG_GUARD, async {
        let (up, _entered) = upstream("up").await;
        let proxy =
            start(Proxy::pooled(config(up.addr, 4, Duration::from_secs(30))).unwrap()).await;
        let counters = proxy.proxy.counters();
        let mut c = client(proxy.addr).await;
        for i in 0..5 {
            let path = format!("/warm/{i}");
            let (status, body) = send(&mut c, Method::GET, &path, b"").await;
            assert_eq!(
                (status, body),
                (StatusCode::OK, expected_body("up", "GET", &path, b""))
            );
        }
        assert_eq!(up.control.accepts.load(Ordering::SeqCst), 1);

        // The pooled connection now dies as the next request arrives on it (no response).
        up.control.restart_epoch.store(1, Ordering::SeqCst);
        let (status, body) = send(&mut c, Method::GET, "/after", b"").await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, expected_body("up", "GET", "/after", b""))
        );
        assert_eq!(counters.retries.load(Ordering::SeqCst), 1);
        assert_eq!(
            up.control.accepts.load(Ordering::SeqCst),
            2,
            "retried on a new connection"
        );

        // Not idempotent: not retried, 502.
        up.control.restart_epoch.store(2, Ordering::SeqCst);
        let (status, _) = send(&mut c, Method::POST, "/post", b"once only").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(counters.retries.load(Ordering::SeqCst), 1);

        // And the proxy carries on.
        let (status, _) = send(&mut c, Method::GET, "/later", b"").await;
        assert_eq!(status, StatusCode::OK);
        let stats = proxy.proxy.pool().unwrap().stats();
        assert_eq!(stats.destroyed.broken, 2, "{stats:?}");
        assert_capacity_returned(&proxy.proxy).await;
    })
    .await
    .expect("test hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_restart_is_survived() {
    tokio::time::timeout(HANG_GUARD, async {
        let (first, mut entered) = upstream("first").await;
        let addr = first.addr;
        let proxy = start(Proxy::pooled(config(addr, 4, Duration::from_secs(30))).unwrap()).await;
        let counters = proxy.proxy.counters();

        // Fill the pool with 4 connections: 4 slow requests held at the upstream together.
        let mut slow = Vec::new();
        for _ in 0..4 {
            let addr = proxy.addr;
            slow.push(tokio::spawn(async move {
                once(addr, Method::GET, "/slow").await
            }));
        }
        for _ in 0..4 {
            entered.recv().await.expect("slow request arrived");
        }
        first.control.gate.add_permits(4);
        for s in slow {
            assert_eq!(s.await.unwrap().0, StatusCode::OK);
        }
        assert_eq!(first.control.accepts.load(Ordering::SeqCst), 4);

        // Restart: every connection and the listener close; a new server binds the same port.
        first.shutdown().await;
        let (control, _entered2) = Control::new("second");
        let second = echo_upstream::start(TcpListener::bind(addr).await.expect("rebind"), control);

        // 16 concurrent GETs, then 10 sequential ones: all succeed, all from the new server.
        let mut tasks = Vec::new();
        for i in 0..16 {
            let addr = proxy.addr;
            tasks.push(tokio::spawn(async move {
                let path = format!("/concurrent/{i}");
                (once(addr, Method::GET, &path).await, path)
            }));
        }
        for t in tasks {
            let ((status, body), path) = t.await.unwrap();
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, expected_body("second", "GET", &path, b""));
        }
        let mut c = client(proxy.addr).await;
        for i in 0..10 {
            let path = format!("/sequential/{i}");
            let (status, body) = send(&mut c, Method::GET, &path, b"").await;
            assert_eq!(
                (status, body),
                (StatusCode::OK, expected_body("second", "GET", &path, b""))
            );
        }

        // The 4 broken connections were discarded: found closed when taken, or failed and the
        // request was retried. (A retry may also discard a connection that was opened after
        // the restart but before its own failure, so `broken` can exceed 4.)
        let stats = proxy.proxy.pool().unwrap().stats();
        assert!(stats.destroyed.broken >= 4, "{stats:?}");
        let discarded = counters.discarded_stale.load(Ordering::SeqCst);
        let retries = counters.retries.load(Ordering::SeqCst);
        assert!(
            discarded + retries >= 4,
            "discarded {discarded}, retried {retries}"
        );
        assert!(retries <= 26, "at most one retry per request");
        assert!(second.control.accepts.load(Ordering::SeqCst) >= 1);
        assert_eq!(counters.bad_gateway.load(Ordering::SeqCst), 0);
        assert_capacity_returned(&proxy.proxy).await;
        second.shutdown().await;
    })
    .await
    .expect("test hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_and_small_acquire_timeout_give_503_and_capacity_returns() {
    tokio::time::timeout(HANG_GUARD, async {
        let (up, mut entered) = upstream("up").await;
        let proxy =
            start(Proxy::pooled(config(up.addr, 2, Duration::from_millis(300))).unwrap()).await;

        // Two slow requests hold both connections.
        let mut slow = Vec::new();
        for _ in 0..2 {
            let addr = proxy.addr;
            slow.push(tokio::spawn(async move {
                once(addr, Method::GET, "/slow").await
            }));
        }
        for _ in 0..2 {
            entered.recv().await.expect("slow request arrived");
        }

        // Everyone else times out waiting for a connection: 503, not a hang.
        let mut waiting = Vec::new();
        for i in 0..5 {
            let addr = proxy.addr;
            waiting.push(tokio::spawn(async move {
                once(addr, Method::GET, &format!("/fast/{i}")).await
            }));
        }
        for w in waiting {
            let (status, body) = w.await.unwrap();
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                body,
                Bytes::from_static(b"no upstream connection available")
            );
        }
        let pool = proxy.proxy.pool().unwrap();
        assert_eq!(pool.stats().timeouts, 5);
        assert_eq!(proxy.proxy.counters().unavailable.load(Ordering::SeqCst), 5);

        // Let the slow ones finish; all capacity comes back.
        up.control.gate.add_permits(2);
        for s in slow {
            assert_eq!(
                s.await.unwrap(),
                (StatusCode::OK, expected_body("up", "GET", "/slow", b""))
            );
        }
        assert_capacity_returned(&proxy.proxy).await;
        let stats = pool.stats();
        assert_eq!(stats.size, 2, "{stats:?}");
        assert_eq!(stats.destroyed.total(), 0, "{stats:?}");
        assert_eq!(
            once(proxy.addr, Method::GET, "/now").await.0,
            StatusCode::OK
        );
    })
    .await
    .expect("test hung");
}

/// An upstream that takes a request and never answers: the client gets `504` after
/// `response_timeout`, the request is not retried, and the connection is closed rather than
/// pooled. With one connection per upstream, the next request therefore gets a new connection
/// (and its own `504`), not a `503` after waiting for the first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_never_answers_gives_504_and_capacity_returns() {
    tokio::time::timeout(HANG_GUARD, async {
        let (up, mut seen, up_task) = scripted_upstream(vec![Script::Silent]).await;
        let proxy = start(Proxy::pooled(slow_upstream_config(up)).unwrap()).await;
        let mut c = client(proxy.addr).await;
        for path in ["/hang/1", "/hang/2"] {
            let (status, body) = send(&mut c, Method::GET, path, b"").await;
            assert_eq!(
                (status, body),
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    Bytes::from_static(b"upstream did not answer in time")
                ),
                "{path}"
            );
        }
        // Each request reached the upstream on a connection of its own, which the proxy closed.
        assert_eq!(
            next_seen(&mut seen, 4).await,
            [
                Seen::Request(0),
                Seen::Request(1),
                Seen::Closed(0),
                Seen::Closed(1)
            ]
        );
        let counters = proxy.proxy.counters();
        assert_eq!(counters.gateway_timeout.load(Ordering::SeqCst), 2);
        assert_eq!(counters.unavailable.load(Ordering::SeqCst), 0);
        assert_eq!(counters.retries.load(Ordering::SeqCst), 0, "not retried");
        let stats = proxy.proxy.pool().unwrap().stats();
        assert_eq!(stats.destroyed.broken, 2, "{stats:?}");
        assert_capacity_returned(&proxy.proxy).await;
        up_task.abort();
    })
    .await
    .expect("test hung");
}

/// An upstream that sends a response head and part of the body, then stalls: after
/// `response_timeout` without body data the proxy aborts the client's connection (its body read
/// fails rather than hanging or looking complete) and closes the upstream connection rather than
/// pooling it, so the next request, on a new connection, is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_that_stalls_mid_body_aborts_the_response_and_capacity_returns() {
    tokio::time::timeout(HANG_GUARD, async {
        let scripts = vec![Script::StallMidBody, Script::Answer];
        let (up, mut seen, up_task) = scripted_upstream(scripts).await;
        let proxy = start(Proxy::pooled(slow_upstream_config(up)).unwrap()).await;
        let mut c = client(proxy.addr).await;
        let resp = response_head(&mut c, "proxy.test", Method::GET, "/stall", b"").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get(hyper::header::CONTENT_LENGTH)
                .map(|v| v.as_bytes()),
            Some(&b"100"[..])
        );
        let body = resp.into_body().collect().await;
        assert!(body.is_err(), "the body must fail, not end: {body:?}");
        assert_eq!(
            next_seen(&mut seen, 2).await,
            [Seen::Request(0), Seen::Closed(0)]
        );

        let (status, body) = once(proxy.addr, Method::GET, "/after").await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, Bytes::from_static(b"fine"))
        );
        assert_eq!(next_seen(&mut seen, 1).await, [Seen::Request(1)]);
        let stats = proxy.proxy.pool().unwrap().stats();
        assert_eq!(stats.destroyed.broken, 1, "{stats:?}");
        assert_eq!(stats.size, 1, "{stats:?}");
        assert_capacity_returned(&proxy.proxy).await;
        up_task.abort();
    })
    .await
    .expect("test hung");
}

/// The other two strategies keep the same limits: `504` for a missing response head, an
/// aborted body for one that stalls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_and_per_request_strategies_also_time_out_slow_upstreams() {
    tokio::time::timeout(HANG_GUARD, async {
        for strategy in ["legacy", "per_request"] {
            let scripts = vec![Script::Silent, Script::StallMidBody];
            let (up, mut seen, up_task) = scripted_upstream(scripts).await;
            let config = slow_upstream_config(up);
            let proxy = start(match strategy {
                "legacy" => Proxy::legacy(config),
                _ => Proxy::per_request(config),
            })
            .await;
            let (status, _) = once(proxy.addr, Method::GET, "/hang").await;
            assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{strategy}");
            assert_eq!(
                next_seen(&mut seen, 2).await,
                [Seen::Request(0), Seen::Closed(0)],
                "{strategy}"
            );

            let mut c = client(proxy.addr).await;
            let resp = response_head(&mut c, "proxy.test", Method::GET, "/stall", b"").await;
            assert_eq!(resp.status(), StatusCode::OK, "{strategy}");
            let body = resp.into_body().collect().await;
            assert!(body.is_err(), "{strategy}: the body must fail: {body:?}");
            assert_eq!(
                next_seen(&mut seen, 2).await,
                [Seen::Request(1), Seen::Closed(1)],
                "{strategy}"
            );
            assert_eq!(
                proxy
                    .proxy
                    .counters()
                    .gateway_timeout
                    .load(Ordering::SeqCst),
                1,
                "{strategy}"
            );
            up_task.abort();
        }
    })
    .await
    .expect("test hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_unreachable_get_400_413_502() {
    tokio::time::timeout(HANG_GUARD, async {
        let (up, _entered) = upstream("up").await;
        let mut cfg = config(up.addr, 2, Duration::from_secs(30));
        cfg.max_body_bytes = 1024;
        let proxy = start(Proxy::pooled(cfg).unwrap()).await;
        let a = proxy.addr;

        assert_eq!(
            raw_status_line(a, b"THIS IS NOT HTTP\r\n\r\n").await,
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(
            raw_status_line(a, b"GET / HTTP/1.1\r\n\r\n").await,
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(
            raw_status_line(
                a,
                b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n"
            )
            .await,
            "HTTP/1.1 400 Bad Request"
        );
        // Over the cap, announced by Content-Length or discovered while reading a chunked body.
        assert_eq!(
            raw_status_line(
                a,
                b"POST /big HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n"
            )
            .await,
            "HTTP/1.1 413 Payload Too Large"
        );
        let mut chunked =
            b"POST /big HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..3 {
            chunked.extend_from_slice(b"200\r\n");
            chunked.extend_from_slice(&[b'x'; 0x200]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(
            raw_status_line(a, &chunked).await,
            "HTTP/1.1 413 Payload Too Large"
        );
        // Under the cap is fine.
        let (status, body) = send(&mut client(a).await, Method::POST, "/small", b"tiny").await;
        assert_eq!(
            (status, body),
            (
                StatusCode::OK,
                expected_body("up", "POST", "/small", b"tiny")
            )
        );

        // An upstream nobody listens on: 502, and the proxy keeps serving.
        let closed = loopback().await;
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let unreachable =
            start(Proxy::pooled(config(dead, 2, Duration::from_secs(30))).unwrap()).await;
        for _ in 0..3 {
            let (status, _) = once(unreachable.addr, Method::GET, "/").await;
            assert_eq!(status, StatusCode::BAD_GATEWAY);
        }
        // Each request either tried to connect (and the refusal started a drain of the
        // upstream) or arrived while that drain ran and got its 502 at once.
        let stats = unreachable.proxy.pool().unwrap().stats();
        let uc = unreachable.proxy.counters();
        assert!(stats.create_failed >= 1, "{stats:?}");
        assert_eq!(
            stats.create_failed + uc.draining.load(Ordering::SeqCst),
            3,
            "{stats:?}"
        );
        assert_eq!(stats.size, 0, "{stats:?}");
        assert_eq!(uc.bad_gateway.load(Ordering::SeqCst), 3);

        let c = proxy.proxy.counters();
        assert_eq!(
            c.bad_request.load(Ordering::SeqCst),
            2,
            "one 400 came from hyper's parser"
        );
        assert_eq!(c.too_large.load(Ordering::SeqCst), 2);
        assert_capacity_returned(&proxy.proxy).await;
    })
    .await
    .expect("test hung");
}

/// Routes matched by name (any port) or by `name:port`, case-insensitively; an absolute-form
/// target's authority wins over `Host`; a host with no route and no default gets `421`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_routed_by_host_and_unknown_hosts_get_421() {
    tokio::time::timeout(HANG_GUARD, async {
        let (a, _a_entered) = upstream("a").await;
        let (b, _b_entered) = upstream("b").await;
        let mut cfg = config(a.addr, 2, Duration::from_secs(30))
            .route("A.test", a.addr)
            .route("b.test:8080", b.addr);
        cfg.default_upstream = None;
        let proxy = start(Proxy::pooled(cfg).unwrap()).await;
        let mut c = client(proxy.addr).await;
        for (host, want) in [
            ("a.test", Some("a")),
            ("a.TEST:1234", Some("a")),
            ("b.test:8080", Some("b")),
            ("b.test", None),
            ("c.test", None),
        ] {
            let (status, body) = send_to(&mut c, host, Method::GET, "/r", b"").await;
            match want {
                Some(name) => assert_eq!(
                    (status, body),
                    (StatusCode::OK, expected_body(name, "GET", "/r", b"")),
                    "{host}"
                ),
                None => assert_eq!(
                    (status, body),
                    (
                        StatusCode::MISDIRECTED_REQUEST,
                        Bytes::from_static(b"no upstream is configured for this host")
                    ),
                    "{host}"
                ),
            }
        }
        // Absolute-form: the target's authority routes, not `Host`, and replaces `Host` on the
        // way to the upstream (RFC 9112 section 3.2.2), so the upstream sees the host it was
        // chosen for.
        let (status, headers, body) =
            exchange(&mut c, "c.test", Method::GET, "http://b.test:8080/abs", b"").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers.get(ECHO_HOST).map(|h| h.as_bytes()),
            Some(&b"b.test:8080"[..]),
            "the Host the upstream saw"
        );
        assert_eq!(body, expected_body("b", "GET", "/abs", b""));
        // Origin-form: the client's `Host` goes through as sent.
        let (status, headers, _) =
            exchange(&mut c, "a.TEST:1234", Method::GET, "/origin", b"").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers.get(ECHO_HOST).map(|h| h.as_bytes()),
            Some(&b"a.TEST:1234"[..])
        );

        let counters = proxy.proxy.counters();
        assert_eq!(counters.misdirected.load(Ordering::SeqCst), 2);
        // One pool, one key per upstream.
        let stats = proxy.proxy.pool().unwrap().stats();
        assert_eq!(stats.keys, 2, "{stats:?}");
        assert_eq!(proxy.proxy.upstreams().len(), 2);
    })
    .await
    .expect("test hung");
}

/// One client's answer, reported to the coordinator of the routing test.
struct Answer {
    batch: usize,
    host: usize,
    path: String,
    status: StatusCode,
    body: Bytes,
}

/// Issue 12's end-to-end test: three upstreams behind one `KeyedPool` (4 per key, 8 in all),
/// 24 clients with keep-alive connections sending requests spread evenly over the three hosts
/// in batches started by the coordinator. First every key is saturated with slow requests: the
/// total reaches `max_total` and no further. Mid-run (as the first answer of batch 5 arrives,
/// with the rest of the batch in flight) upstream `c` is taken down: its listener closes and its
/// connections drop. From the next batch on, every request to `c.test` gets `502` (not a `503`
/// after waiting out `acquire_timeout`: 30 s here), the proxy drains its key, and `a.test` and
/// `b.test` never see a failed request. The keyed pool's stats are sampled after every answer:
/// the total never exceeds `max_total`, nor a key `max_per_key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_upstreams_one_keyed_pool_one_taken_down_mid_run() {
    tokio::time::timeout(HANG_GUARD, async {
        const MAX_PER_KEY: usize = 4;
        const MAX_TOTAL: usize = 8;
        const CLIENTS: usize = 24;
        const BATCHES: usize = 12;
        const TAKE_DOWN_IN: usize = 5;
        const NAMES: [&str; 3] = ["a", "b", "c"];
        const HOSTS: [&str; 3] = ["a.test", "b.test", "c.test"];
        const C: usize = 2;

        let (entered_tx, mut entered) = mpsc::unbounded_channel();
        let mut ups = Vec::new();
        for name in NAMES {
            let control = Control::reporting_to(name, entered_tx.clone());
            ups.push(Some(echo_upstream::start(loopback().await, control)));
        }
        let addr_of = |i: usize| ups[i].as_ref().unwrap().addr;
        let mut cfg = config(addr_of(0), MAX_PER_KEY, Duration::from_secs(30));
        cfg.default_upstream = None;
        cfg.max_total = Some(MAX_TOTAL);
        for (i, host) in HOSTS.iter().enumerate() {
            cfg = cfg.route(host, addr_of(i));
        }
        let controls: Vec<Arc<Control>> = ups
            .iter()
            .map(|u| u.as_ref().unwrap().control.clone())
            .collect();
        let proxy = start(Proxy::pooled(cfg).unwrap()).await;
        let pool = proxy.proxy.pool().unwrap().clone();
        let keys: Vec<_> = HOSTS
            .iter()
            .map(|h| proxy.proxy.route_of(h).expect("routed"))
            .collect();
        let mut drained = proxy.proxy.drained_upstreams();
        let mut samples = 0usize;
        let mut max_seen = 0usize;
        let mut sample_caps = || {
            let stats = pool.stats();
            assert!(stats.size <= MAX_TOTAL, "max_total exceeded: {stats:?}");
            for key in &keys {
                if let Some(k) = pool.key_stats(key) {
                    assert!(
                        k.size <= MAX_PER_KEY,
                        "max_per_key exceeded at {key}: {k:?}"
                    );
                }
            }
            samples += 1;
            max_seen = max_seen.max(stats.size);
        };

        // Phase 1: 4 slow requests per host, 12 > max_total. Exactly 8 reach the upstreams and
        // wait there for permits; the pool is then at its total with every connection in use.
        let mut slow = Vec::new();
        for (i, host) in HOSTS.iter().enumerate() {
            for _ in 0..MAX_PER_KEY {
                let addr = proxy.addr;
                slow.push(tokio::spawn(async move {
                    let mut c = client(addr).await;
                    (i, send_to(&mut c, host, Method::GET, "/slow", b"").await)
                }));
            }
        }
        for _ in 0..MAX_TOTAL {
            entered.recv().await.expect("a slow request arrived");
        }
        sample_caps();
        let stats = pool.stats();
        assert_eq!(
            (stats.size, stats.in_use),
            (MAX_TOTAL, MAX_TOTAL),
            "{stats:?}"
        );
        for control in &controls {
            control.gate.add_permits(MAX_PER_KEY);
        }
        for s in slow {
            let (i, (status, body)) = s.await.unwrap();
            assert_eq!(
                (status, body),
                (StatusCode::OK, expected_body(NAMES[i], "GET", "/slow", b""))
            );
            sample_caps();
        }

        // Phase 2: batches. Client `c` sends batch `b`'s request to host (c + b) % 3, so every
        // batch sends 8 requests to each host.
        let (go, go_rx) = tokio::sync::watch::channel(0usize);
        let (report, mut answers) = mpsc::unbounded_channel::<Answer>();
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (addr, mut go_rx, report) = (proxy.addr, go_rx.clone(), report.clone());
            clients.push(tokio::spawn(async move {
                let mut sender = client(addr).await;
                for batch in 1..=BATCHES {
                    go_rx
                        .wait_for(|b| *b >= batch)
                        .await
                        .expect("coordinator alive");
                    let host = (c + batch) % 3;
                    let path = format!("/b{batch}/c{c}");
                    let (status, body) =
                        send_to(&mut sender, HOSTS[host], Method::GET, &path, b"").await;
                    let answer = Answer {
                        batch,
                        host,
                        path,
                        status,
                        body,
                    };
                    report.send(answer).expect("coordinator alive");
                }
            }));
        }
        drop(report);
        let mut ok = [0usize; 3];
        let mut bad_gateway_c = 0usize;
        for batch in 1..=BATCHES {
            go.send(batch).expect("clients alive");
            for n in 0..CLIENTS {
                let a = answers.recv().await.expect("an answer");
                assert_eq!(a.batch, batch);
                sample_caps();
                if batch == TAKE_DOWN_IN && n == 0 {
                    // The rest of this batch is in flight.
                    ups[C].take().unwrap().shutdown().await;
                }
                let healthy = a.host != C || batch < TAKE_DOWN_IN;
                if healthy {
                    assert_eq!(
                        (a.status, &a.body),
                        (
                            StatusCode::OK,
                            &expected_body(NAMES[a.host], "GET", &a.path, b"")
                        ),
                        "{} failed in batch {batch}",
                        HOSTS[a.host]
                    );
                    ok[a.host] += 1;
                } else if batch == TAKE_DOWN_IN && a.status == StatusCode::OK {
                    // Answered before the take-down reached it.
                    assert_eq!(a.body, expected_body("c", "GET", &a.path, b""));
                } else {
                    assert_eq!(
                        a.status,
                        StatusCode::BAD_GATEWAY,
                        "{} in batch {batch}: {:?}",
                        a.path,
                        a.body
                    );
                    if batch > TAKE_DOWN_IN {
                        bad_gateway_c += 1;
                    }
                }
            }
        }
        for c in clients {
            c.await.expect("client task");
        }
        let per_host_per_batch = CLIENTS / 3;
        assert_eq!(ok[0], BATCHES * per_host_per_batch);
        assert_eq!(ok[1], BATCHES * per_host_per_batch);
        assert!(ok[C] >= (TAKE_DOWN_IN - 1) * per_host_per_batch);
        assert_eq!(bad_gateway_c, (BATCHES - TAKE_DOWN_IN) * per_host_per_batch);
        assert_eq!(max_seen, MAX_TOTAL);
        assert!(samples > BATCHES * CLIENTS, "{samples} samples");

        // The proxy drained c's key on its own, and only c's.
        let first = loop {
            match drained.recv().await {
                Ok(key) => break key,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("drain announcements closed: {e}"),
            }
        };
        assert_eq!(first, keys[C]);
        while let Ok(key) = drained.try_recv() {
            assert_eq!(key, keys[C]);
        }
        let counters = proxy.proxy.counters();
        assert!(counters.drains.load(Ordering::SeqCst) >= 1);
        assert_eq!(counters.unavailable.load(Ordering::SeqCst), 0, "no 503");
        assert_eq!(counters.misdirected.load(Ordering::SeqCst), 0);

        // No request is in flight now: c holds nothing, the total is a's plus b's.
        let stats = pool.stats();
        let size = |i: usize| pool.key_stats(&keys[i]).map_or(0, |s| s.size);
        assert_eq!(size(C), 0, "{:?}", pool.key_stats(&keys[C]));
        assert!(size(0) >= 1 && size(1) >= 1, "{stats:?}");
        assert_eq!(stats.size, size(0) + size(1), "{stats:?}");
        assert!(stats.size <= MAX_TOTAL, "{stats:?}");
        assert!(controls[C].accepts.load(Ordering::SeqCst) >= 1);
        for i in [0, 1] {
            let served = controls[i].requests.load(Ordering::SeqCst) as usize;
            assert_eq!(served, MAX_PER_KEY + BATCHES * per_host_per_batch);
        }
        eprintln!(
            "{samples} samples, max size {max_seen}; c: {} ok, {bad_gateway_c} 502 after the \
             take-down, {} drains, {} answered while draining; evicted {}; {stats:?}",
            ok[C],
            counters.drains.load(Ordering::SeqCst),
            counters.draining.load(Ordering::SeqCst),
            stats.destroyed.evicted
        );
        for up in ups.into_iter().flatten() {
            up.shutdown().await;
        }
    })
    .await
    .expect("test hung");
}

/// `--metrics-listen` end to end: real requests through the proxy, then a scrape of `/metrics`
/// (run by `.ci/run` as part of `cargo test --features metrics --test http_proxy`).
#[cfg(feature = "metrics")]
mod metrics_scrape {
    use std::collections::BTreeMap;

    use super::metrics_endpoint::{self, PoolMetrics, CHECKOUTS, CONTENT_TYPE};
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;
    use shadowcat_pool::DestroyReason;

    /// One sample of the text exposition: name, labels (sorted) and value.
    type Series = (String, BTreeMap<String, String>, f64);

    /// Parses the sample lines of a Prometheus text exposition (`name{k="v",...} value`).
    fn parse(text: &str) -> Vec<Series> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("sample line: series value");
                let value: f64 = value.parse().expect("numeric sample value");
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => {
                        let body = rest.strip_suffix('}').expect("labels end with }");
                        let labels = body
                            .split(',')
                            .filter(|kv| !kv.is_empty())
                            .map(|kv| {
                                let (k, v) = kv.split_once('=').expect("label k=v");
                                (k.to_string(), v.trim_matches('"').to_string())
                            })
                            .collect();
                        (name.to_string(), labels)
                    }
                    None => (series.to_string(), BTreeMap::new()),
                };
                (name, labels, value)
            })
            .collect()
    }

    /// The value of `name` with exactly `labels`; panics, showing the scrape, if absent.
    fn sample(all: &[Series], text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.iter()
            .find(|(n, l, _)| n == name && *l == want)
            .unwrap_or_else(|| panic!("{name} {labels:?} not in the scrape:\n{text}"))
            .2
    }

    /// `GET`s (or `method`s) `path` on the metrics endpoint: status, content type, body.
    async fn scrape(addr: SocketAddr, method: Method, path: &str) -> (StatusCode, String, String) {
        let mut sender = client(addr).await;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "metrics.test")
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        sender.ready().await.expect("metrics connection ready");
        let resp = sender.send_request(req).await.expect("metrics response");
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("ascii content type").to_string())
            .unwrap_or_default();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).expect("UTF-8 exposition"),
        )
    }

    /// Everything (upstream, proxy, clients, endpoint) runs on one current-thread runtime
    /// inside `with_local_recorder`: the keyed pool registers a key's metric handles when the
    /// key is first used, on whatever thread runs that acquire, so the test's own recorder (not
    /// the global one, which other tests in this binary would share) must be in effect there.
    #[test]
    fn scrape_after_traffic_reports_the_pools_gauges_and_counters() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        metrics::with_local_recorder(&recorder, || {
            runtime
                .block_on(async { tokio::time::timeout(HANG_GUARD, scrape_scenario(handle)).await })
        })
        .expect("test hung");
    }

    async fn scrape_scenario(handle: metrics_exporter_prometheus::PrometheusHandle) {
        const MAX: usize = 4;
        const CLIENTS: usize = 16;
        const PER_CLIENT: usize = 25;
        const REQUESTS: usize = CLIENTS * PER_CLIENT;
        let (up, _entered) = upstream("up").await;
        let pooled =
            Proxy::pooled(config(up.addr, MAX, Duration::from_secs(30))).expect("valid config");
        let key = pooled.route_of("proxy.test").expect("default route");
        let scraped = PoolMetrics::new(pooled.clone()).expect("pooled");
        let proxy = start(pooled).await;
        let listener = loopback().await;
        let metrics_addr = listener.local_addr().expect("bound");
        let endpoint = metrics_endpoint::serve(listener, handle, scraped);

        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let addr = proxy.addr;
            tasks.push(tokio::spawn(async move {
                let mut sender = client(addr).await;
                for i in 0..PER_CLIENT {
                    let path = format!("/m{c}/{i}");
                    let (status, body) = send(&mut sender, Method::GET, &path, b"").await;
                    assert_eq!(status, StatusCode::OK);
                    assert_eq!(body, expected_body("up", "GET", &path, b""));
                }
            }));
        }
        for t in tasks {
            t.await.expect("client task");
        }
        assert_eq!(up.control.requests.load(Ordering::SeqCst), REQUESTS as u64);
        // Every connection is back in the pool, so the gauges below have one right value.
        assert_capacity_returned(&proxy.proxy).await;

        let (status, content_type, text) = scrape(metrics_addr, Method::GET, "/metrics").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(content_type, CONTENT_TYPE);
        let pool = proxy.proxy.pool().expect("pooled");
        let stats = pool.stats();
        let all = parse(&text);
        let labels = [("pool", proxy::POOL_NAME)];
        let get = |name: &str| sample(&all, &text, name, &labels);

        // Counters: the pool's, reported by the keyed pool as they happened.
        let accepts = up.control.accepts.load(Ordering::SeqCst);
        let creates = get("shadowcat_pool_creates_total");
        assert!(
            (1.0..=MAX as f64).contains(&creates),
            "{creates} creates for max {MAX}"
        );
        assert_eq!(creates, stats.created as f64);
        assert_eq!(
            creates, accepts as f64,
            "one upstream connection per create"
        );
        // The proxy's: every checkout it made (the capacity check above acquires directly).
        let checkouts = get(CHECKOUTS);
        assert!(
            checkouts >= REQUESTS as f64,
            "{checkouts} checkouts for {REQUESTS} requests"
        );
        assert_eq!(
            checkouts,
            proxy.proxy.counters().checkouts.load(Ordering::SeqCst) as f64
        );
        for name in [
            "shadowcat_pool_create_failures_total",
            "shadowcat_pool_acquire_timeouts_total",
            "shadowcat_pool_rejected_waiters_total",
        ] {
            assert_eq!(get(name), 0.0, "{name}");
        }
        for reason in DestroyReason::ALL {
            let labels = [("pool", proxy::POOL_NAME), ("reason", reason.as_str())];
            assert_eq!(
                sample(&all, &text, "shadowcat_pool_destroys_total", &labels),
                0.0,
                "{reason:?}"
            );
        }
        // Histograms (a summary each): every create timed; at most one wait sample per
        // acquire (only parked ones record one).
        assert_eq!(get("shadowcat_pool_create_seconds_count"), creates);
        let waits = get("shadowcat_pool_wait_seconds_count");
        assert!(waits <= checkouts + MAX as f64, "{waits} waits");

        // Gauges, set by the scrape through KeyedPool::record_metrics: all capacity idle, nobody
        // waiting, one key; and the upstream's own gauge, set by the endpoint.
        assert_eq!(get("shadowcat_pool_size"), creates);
        assert_eq!(get("shadowcat_pool_idle"), creates);
        assert_eq!(get("shadowcat_pool_in_use"), 0.0);
        assert_eq!(get("shadowcat_pool_waiting"), 0.0);
        assert_eq!(get("shadowcat_pool_keys"), 1.0);
        let upstream = key.to_string();
        let per_upstream = [("upstream", upstream.as_str())];
        assert_eq!(
            sample(&all, &text, metrics_endpoint::CONNECTIONS, &per_upstream),
            creates
        );

        // A connection held across a scrape shows in the gauges at once.
        let held = pool.acquire(&key).await.expect("an idle connection");
        let (_, _, text) = scrape(metrics_addr, Method::GET, "/metrics").await;
        let all = parse(&text);
        assert_eq!(sample(&all, &text, "shadowcat_pool_in_use", &labels), 1.0);
        assert_eq!(
            sample(&all, &text, "shadowcat_pool_idle", &labels),
            creates - 1.0
        );
        drop(held);

        // Only GET/HEAD /metrics.
        assert_eq!(
            scrape(metrics_addr, Method::GET, "/other").await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            scrape(metrics_addr, Method::POST, "/metrics").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        endpoint.abort();
    }
}

#[test]
fn only_a_connect_error_on_the_upstreams_side_drains_it() {
    use std::io::{Error, ErrorKind};
    let connect = |e: Error| UpstreamError::Connect(e).means_upstream_down();
    for kind in [
        ErrorKind::ConnectionRefused,
        ErrorKind::ConnectionReset,
        ErrorKind::HostUnreachable,
        ErrorKind::NetworkUnreachable,
    ] {
        assert!(connect(Error::from(kind)), "{kind:?} should drain");
    }
    // The proxy's own trouble says nothing about the upstream: out of file descriptors (EMFILE
    // and ENFILE on Linux), out of ephemeral ports, out of memory.
    #[cfg(target_os = "linux")]
    for errno in [24, 23] {
        assert!(!connect(Error::from_raw_os_error(errno)), "errno {errno}");
    }
    for kind in [ErrorKind::AddrNotAvailable, ErrorKind::OutOfMemory] {
        assert!(!connect(Error::from(kind)), "{kind:?} drained the upstream");
    }
}
