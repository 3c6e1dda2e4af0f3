//! An HTTP/1.1 reverse proxy to one upstream, with three upstream strategies:
//!
//! * [`Strategy::Pooled`]: upstream connections (`hyper::client::conn::http1` senders) pooled
//!   in `shadowcat-pool`.
//! * [`Strategy::Legacy`]: hyper-util's legacy pooled `Client`, what a proxy would otherwise use.
//! * [`Strategy::PerRequest`]: a new upstream connection for every request.
//!
//! Shared by `examples/http_proxy.rs`, `examples/proxy_bench.rs` and `tests/http_proxy.rs`.
//!
//! Status codes the proxy produces itself: `400` for a malformed request (hyper's parser answers
//! unparsable ones with `400` before the proxy sees them; the proxy adds a missing `Host`, a
//! `CONNECT`, a request target that is not origin- or absolute-form, and a broken request body),
//! `413` for a body over the cap, `502` when the upstream cannot be reached or fails, and `503`
//! when no pooled connection frees up within `acquire_timeout`. Nothing on the request path
//! unwraps or panics.
//!
//! The pooled strategy in detail:
//! * A connection is reused only if its sender is neither closed nor ready-less
//!   ([`Manager::is_reusable`]). The response body holds the connection while it streams and
//!   gives it back only once hyper's connection task wants the next request (HTTP/1.1 answers in
//!   order, so handing out a sender mid-response would fail), like hyper-util's `delayed_eof`.
//! * After taking a connection from the pool the proxy checks `is_closed`/`is_ready` again and
//!   discards a stale one without sending on it.
//! * An idempotent request that fails on a connection (before any response) is retried once, on
//!   a fresh connection: one opened after the failure. Older ones, likely broken by the same
//!   event (an upstream restart), are discarded until the pool hands out or creates a new one.

// Public so that `metrics_endpoint.rs` serves `/metrics` with the same accept loop (a second
// `#[path]` include of the file would compile it twice).
#[path = "http_serve.rs"]
pub mod http_serve;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use shadowcat_pool::{Error as PoolError, Manager, Pool, PoolConnection, PoolOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy needs to know.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The one upstream every request goes to.
    pub upstream: SocketAddr,
    /// Pooled strategy: the most upstream connections at once.
    pub max_connections: usize,
    /// Pooled strategy: how long a request waits for a connection before `503`.
    pub acquire_timeout: Duration,
    /// How long connecting to the upstream may take before `502`.
    pub connect_timeout: Duration,
    /// Request bodies larger than this get `413`.
    pub max_body_bytes: usize,
}

impl ProxyConfig {
    /// Defaults for `upstream`: 32 connections, 2 s acquire timeout, 1 s connect timeout, 1 MiB
    /// bodies.
    pub fn new(upstream: SocketAddr) -> Self {
        ProxyConfig {
            upstream,
            max_connections: 32,
            acquire_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            max_body_bytes: 1 << 20,
        }
    }
}

// ===== the pooled resource =====

/// A pooled upstream HTTP/1.1 connection.
#[derive(Debug)]
pub struct UpstreamConn {
    sender: SendRequest<Full<Bytes>>,
    /// Creation order: connections opened after a failure have a higher number.
    seq: u64,
    /// Requests that got a response on this connection.
    served: u64,
    /// Set when a request failed on it: never reuse.
    broken: bool,
    /// Drives the connection; aborted (closing the socket) when the resource is dropped.
    task: JoinHandle<()>,
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why opening an upstream connection failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// The TCP connect failed.
    Connect(std::io::Error),
    /// The HTTP/1.1 handshake failed.
    Handshake(hyper::Error),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect(e) => write!(f, "connecting to the upstream failed: {e}"),
            UpstreamError::Handshake(e) => write!(f, "upstream handshake failed: {e}"),
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::Connect(e) => Some(e),
            UpstreamError::Handshake(e) => Some(e),
        }
    }
}

/// Opens a connection to `addr` and spawns its connection task.
async fn connect(
    addr: SocketAddr,
) -> Result<(SendRequest<Full<Bytes>>, JoinHandle<()>), UpstreamError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(UpstreamError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Handshake)?;
    let task = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok((sender, task))
}

/// Opens [`UpstreamConn`]s to one upstream.
#[derive(Debug)]
pub struct UpstreamManager {
    addr: SocketAddr,
    /// The next connection's `seq`; shared with the proxy, which reads it when a request fails.
    next_seq: Arc<AtomicU64>,
}

impl Manager for UpstreamManager {
    type Resource = UpstreamConn;
    type Error = UpstreamError;

    async fn create(&self) -> Result<UpstreamConn, UpstreamError> {
        let (sender, task) = connect(self.addr).await?;
        Ok(UpstreamConn {
            sender,
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            served: 0,
            broken: false,
            task,
        })
    }

    fn is_reusable(&self, conn: &mut UpstreamConn) -> bool {
        !conn.broken && !conn.sender.is_closed() && conn.sender.is_ready()
    }
}

// ===== the proxy =====

/// The pooled strategy's pool name: the `pool` label of its metrics (`metrics` feature).
pub const POOL_NAME: &str = "upstream";

/// How the proxy reaches its upstream.
pub enum Strategy {
    /// Connections pooled in `shadowcat-pool`.
    Pooled(Pool<UpstreamConn>),
    /// hyper-util's legacy pooled client.
    Legacy(Client<HttpConnector, Full<Bytes>>),
    /// A new connection per request (`Connection: close`).
    PerRequest,
}

impl std::fmt::Debug for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::Pooled(_) => "Pooled",
            Strategy::Legacy(_) => "Legacy",
            Strategy::PerRequest => "PerRequest",
        })
    }
}

/// What the proxy did, for tests and logs.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Requests received.
    pub requests: AtomicU64,
    /// Idempotent requests retried on a fresh connection.
    pub retries: AtomicU64,
    /// Pooled connections found closed or not ready when taken, discarded unused.
    pub discarded_stale: AtomicU64,
    /// `400` answers.
    pub bad_request: AtomicU64,
    /// `413` answers.
    pub too_large: AtomicU64,
    /// `502` answers.
    pub bad_gateway: AtomicU64,
    /// `503` answers.
    pub unavailable: AtomicU64,
}

/// The reverse proxy.
#[derive(Debug)]
pub struct Proxy {
    config: ProxyConfig,
    strategy: Strategy,
    counters: ProxyCounters,
    /// `Host` for requests that came without one (HTTP/1.0), and the legacy client's authority.
    authority: hyper::http::uri::Authority,
    host: HeaderValue,
    /// The pooled strategy's connection counter (see [`UpstreamConn`]'s `seq`).
    next_seq: Arc<AtomicU64>,
}

/// The parts of a client request that are forwarded.
struct Head {
    method: Method,
    path: hyper::http::uri::PathAndQuery,
    headers: HeaderMap,
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1): never forwarded.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

impl Proxy {
    fn with_strategy(
        config: ProxyConfig,
        strategy: Strategy,
        next_seq: Arc<AtomicU64>,
    ) -> Arc<Self> {
        let authority: hyper::http::uri::Authority = config
            .upstream
            .to_string()
            .parse()
            .expect("a socket address is a valid authority");
        let host = HeaderValue::from_str(authority.as_str()).expect("a valid header value");
        Arc::new(Proxy {
            config,
            strategy,
            counters: ProxyCounters::default(),
            authority,
            host,
            next_seq,
        })
    }

    /// A proxy whose upstream connections are pooled in `shadowcat-pool`.
    pub fn pooled(config: ProxyConfig) -> Result<Arc<Self>, shadowcat_pool::BuildError> {
        let next_seq = Arc::new(AtomicU64::new(0));
        let pool = PoolOptions::new()
            .name(POOL_NAME)
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .create_timeout(config.connect_timeout)
            .build(UpstreamManager {
                addr: config.upstream,
                next_seq: next_seq.clone(),
            })?;
        Ok(Self::with_strategy(
            config,
            Strategy::Pooled(pool),
            next_seq,
        ))
    }

    /// A proxy that uses hyper-util's legacy pooled `Client` (up to `max_connections` idle).
    pub fn legacy(config: ProxyConfig) -> Arc<Self> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.max_connections)
            .build(http);
        Self::with_strategy(config, Strategy::Legacy(client), Arc::default())
    }

    /// A proxy that opens a new upstream connection for every request.
    pub fn per_request(config: ProxyConfig) -> Arc<Self> {
        Self::with_strategy(config, Strategy::PerRequest, Arc::default())
    }

    /// The pool, for the pooled strategy.
    pub fn pool(&self) -> Option<&Pool<UpstreamConn>> {
        match &self.strategy {
            Strategy::Pooled(pool) => Some(pool),
            _ => None,
        }
    }

    /// What the proxy did so far.
    pub fn counters(&self) -> &ProxyCounters {
        &self.counters
    }

    /// Serves HTTP/1.1 on `listener` until the returned task is aborted.
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> JoinHandle<()> {
        http_serve::serve(listener, move |req| {
            let proxy = self.clone();
            async move { proxy.handle(req).await }
        })
    }

    /// Answers one client request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let (parts, body) = req.into_parts();
        if parts.method == Method::CONNECT {
            return self.error(StatusCode::BAD_REQUEST, "CONNECT is not supported");
        }
        // Origin-form (`/path?q`) or absolute-form (`http://host/path?q`): forward the path.
        let Some(path) = parts.uri.path_and_query().cloned() else {
            return self.error(StatusCode::BAD_REQUEST, "the request target has no path");
        };
        if parts.version == Version::HTTP_11 && !parts.headers.contains_key(header::HOST) {
            return self.error(StatusCode::BAD_REQUEST, "HTTP/1.1 request without Host");
        }
        let limit = self.config.max_body_bytes;
        if content_length(&parts.headers).is_some_and(|len| len > limit as u64) {
            return self.error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        let body = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return self.error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            }
            Err(_) => return self.error(StatusCode::BAD_REQUEST, "malformed request body"),
        };
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        if !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, self.host.clone());
        }
        let head = Head {
            method: parts.method,
            path,
            headers,
        };
        match &self.strategy {
            Strategy::Pooled(pool) => self.via_pool(pool, head, body).await,
            Strategy::Legacy(client) => self.via_legacy(client, head, body).await,
            Strategy::PerRequest => self.per_connection(head, body).await,
        }
    }

    async fn via_pool(
        &self,
        pool: &Pool<UpstreamConn>,
        mut head: Head,
        body: Bytes,
    ) -> Response<ProxyBody> {
        let idempotent = is_idempotent(&head.method);
        // `Some(n)` on the retry: only a connection opened after the failure (seq >= n) will do.
        let mut opened_after: Option<u64> = None;
        loop {
            let mut conn = match self.checkout(pool, opened_after).await {
                Ok(conn) => conn,
                Err(response) => return response,
            };
            // Keep the headers for a possible retry only when one may follow.
            let headers = if idempotent && opened_after.is_none() {
                head.headers.clone()
            } else {
                std::mem::take(&mut head.headers)
            };
            let req = build_request(
                head.method.clone(),
                head.path.clone().into(),
                headers,
                body.clone(),
            );
            // Poisoned while in flight: if this future is dropped, the connection is not reused.
            conn.broken = true;
            match conn.sender.send_request(req).await {
                Ok(resp) => {
                    conn.broken = false;
                    conn.served += 1;
                    let (mut parts, incoming) = resp.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    let body = PooledBody {
                        inner: incoming,
                        conn: Some(conn),
                        done: false,
                    };
                    return Response::from_parts(parts, ProxyBody::Pooled(body));
                }
                Err(e) => {
                    drop(conn); // broken: destroyed, not pooled
                    if idempotent && opened_after.is_none() {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, "upstream request failed; retrying once on a fresh connection");
                        opened_after = Some(self.next_seq.load(Ordering::Relaxed));
                        continue;
                    }
                    tracing::warn!(error = %e, "upstream request failed");
                    return self.error(StatusCode::BAD_GATEWAY, "upstream request failed");
                }
            }
        }
    }

    /// Takes a usable connection from the pool; with `opened_after: Some(n)`, only one opened
    /// after a failure (`seq >= n`): older ones are discarded, as likely broken by the same
    /// event. At most `max_connections` connections are older, so a fresh one is reached within
    /// `max_connections + 1` tries (each discard frees capacity to create one).
    async fn checkout(
        &self,
        pool: &Pool<UpstreamConn>,
        opened_after: Option<u64>,
    ) -> Result<PoolConnection<UpstreamConn>, Response<ProxyBody>> {
        for _ in 0..=self.config.max_connections + 1 {
            let mut conn = match pool.acquire().await {
                Ok(conn) => conn,
                Err(PoolError::Timeout(_)) => {
                    return Err(self.error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no upstream connection available",
                    ))
                }
                Err(PoolError::Closed) => {
                    return Err(self.error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the proxy is shutting down",
                    ))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no upstream connection");
                    return Err(self.error(StatusCode::BAD_GATEWAY, "upstream unreachable"));
                }
            };
            // A new sender may take its first request before its connection task has run.
            let stale = conn.broken
                || conn.sender.is_closed()
                || (conn.served > 0 && !conn.sender.is_ready());
            if stale {
                self.counters
                    .discarded_stale
                    .fetch_add(1, Ordering::Relaxed);
            }
            if stale || opened_after.is_some_and(|n| conn.seq < n) {
                conn.broken = true;
                continue;
            }
            return Ok(conn);
        }
        Err(self.error(StatusCode::BAD_GATEWAY, "no usable upstream connection"))
    }

    async fn via_legacy(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        head: Head,
        body: Bytes,
    ) -> Response<ProxyBody> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(head.path)
            .build();
        let Ok(uri) = uri else {
            return self.error(StatusCode::BAD_REQUEST, "bad request target");
        };
        let result = client
            .request(build_request(head.method, uri, head.headers, body))
            .await;
        self.relay(result)
    }

    async fn per_connection(&self, mut head: Head, body: Bytes) -> Response<ProxyBody> {
        let connected =
            tokio::time::timeout(self.config.connect_timeout, connect(self.config.upstream)).await;
        let Ok(Ok((mut sender, _task))) = connected else {
            return self.error(StatusCode::BAD_GATEWAY, "upstream unreachable");
        };
        // The upstream closes after answering, so the TIME_WAIT lands on its side.
        head.headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        let result = sender
            .send_request(build_request(
                head.method,
                head.path.into(),
                head.headers,
                body,
            ))
            .await;
        self.relay(result)
    }

    /// Relays an upstream response (minus hop-by-hop headers), or answers 502.
    fn relay<E: std::fmt::Display>(
        &self,
        result: Result<Response<Incoming>, E>,
    ) -> Response<ProxyBody> {
        match result {
            Ok(resp) => {
                let (mut parts, incoming) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, ProxyBody::Streamed(incoming))
            }
            Err(e) => {
                tracing::warn!(error = %e, "upstream request failed");
                self.error(StatusCode::BAD_GATEWAY, "upstream request failed")
            }
        }
    }

    fn error(&self, status: StatusCode, message: &'static str) -> Response<ProxyBody> {
        let counter = match status {
            StatusCode::BAD_REQUEST => &self.counters.bad_request,
            StatusCode::PAYLOAD_TOO_LARGE => &self.counters.too_large,
            StatusCode::SERVICE_UNAVAILABLE => &self.counters.unavailable,
            _ => &self.counters.bad_gateway,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut response = Response::new(ProxyBody::Full(Full::new(Bytes::from_static(
            message.as_bytes(),
        ))));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

fn build_request(
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    req
}

/// RFC 9110 section 9.2.2.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(listed) = headers.get(header::CONNECTION) {
        let names: Vec<HeaderName> = listed
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in names {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

// ===== response bodies =====

/// A response body streaming from a pooled connection. It holds the connection until the body
/// is finished *and* hyper's connection task is ready for the next request, then returns it to
/// the pool (before reporting the end of the body).
#[derive(Debug)]
pub struct PooledBody {
    inner: Incoming,
    conn: Option<PoolConnection<UpstreamConn>>,
    done: bool,
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if !this.done {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => return Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    if let Some(conn) = this.conn.as_mut() {
                        conn.broken = true;
                    }
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => this.done = true,
            }
        }
        if let Some(conn) = this.conn.as_mut() {
            match conn.sender.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => conn.broken = true,
            }
            // Back to the pool (or destroyed if broken), synchronously.
            this.conn = None;
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        // While it holds the connection it must be polled once more, to give it back.
        self.conn.is_none() && (self.done || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !(self.done || self.inner.is_end_stream()) {
            // Dropped mid-body (the client went away): the connection is in an unknown state.
            conn.broken = true;
            return;
        }
        if conn.sender.is_ready() || conn.sender.is_closed() {
            return; // released (or destroyed) right here
        }
        // Finished but not yet ready (a HEAD or a 204, whose body hyper never polls): give it
        // back once it is ready, as hyper-util's client does.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let ready = tokio::time::timeout(Duration::from_secs(1), conn.sender.ready()).await;
                if !matches!(ready, Ok(Ok(()))) {
                    conn.broken = true;
                }
            });
        }
    }
}

/// Every response body the proxy sends.
#[derive(Debug)]
pub enum ProxyBody {
    /// Streaming from a pooled connection.
    Pooled(PooledBody),
    /// Streaming from the legacy client or a one-off connection.
    Streamed(Incoming),
    /// Generated by the proxy (errors).
    Full(Full<Bytes>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Pooled(body) => Pin::new(body).poll_frame(cx),
            ProxyBody::Streamed(body) => Pin::new(body).poll_frame(cx),
            ProxyBody::Full(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never: Infallible| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Pooled(body) => body.is_end_stream(),
            ProxyBody::Streamed(body) => body.is_end_stream(),
            ProxyBody::Full(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Pooled(body) => body.size_hint(),
            ProxyBody::Streamed(body) => body.size_hint(),
            ProxyBody::Full(body) => body.size_hint(),
        }
    }
}
