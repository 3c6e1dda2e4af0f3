//! An HTTP/1.1 reverse proxy that routes each request by its `Host` to one of several upstreams,
//! with three upstream strategies:
//!
//! * [`Strategy::Pooled`]: upstream connections (`hyper::client::conn::http1` senders) of every
//!   upstream in ONE `shadowcat_pool::KeyedPool`, keyed by [`UpstreamKey`], with a cap per
//!   upstream (`max_per_key`) and one across upstreams (`max_total`).
//! * [`Strategy::Legacy`]: hyper-util's legacy pooled `Client`, what a proxy would otherwise use.
//! * [`Strategy::PerRequest`]: a new upstream connection for every request.
//!
//! Shared by `examples/http_proxy.rs`, `examples/proxy_bench.rs` and `tests/http_proxy.rs`.
//!
//! Routing: the request's authority (the absolute-form target's, else the `Host` header's) is
//! looked up in [`ProxyConfig::routes`], first whole (`name:port`), then by name alone; no match
//! goes to [`ProxyConfig::default_upstream`], or gets `421 Misdirected Request` when there is
//! none. The client's `Host` is forwarded unchanged.
//!
//! Status codes the proxy produces itself: `400` for a malformed request (hyper's parser answers
//! unparsable ones with `400` before the proxy sees them; the proxy adds a missing or invalid
//! `Host`, a `CONNECT`, a request target that is not origin- or absolute-form, and a broken
//! request body), `413` for a body over the cap, `421` for a host with no route, `502` when the
//! upstream cannot be reached or fails, `503` when no pooled connection frees up within
//! `acquire_timeout`, and `504` when the upstream sends no response head within
//! [`ProxyConfig::response_timeout`]. Nothing on the request path unwraps or panics.
//!
//! Slow upstreams, every strategy: the response head must arrive within `response_timeout` of
//! sending the request (else `504 Gateway Timeout`, like nginx's `proxy_read_timeout` or Envoy's
//! route timeout), and the response body may go no longer than `response_timeout` without a
//! frame (an idle limit, not a total one: long downloads that keep arriving are fine); a body
//! that stalls ends with an error, so the client's connection is aborted rather than left with a
//! truncated body that looks whole. The time the client takes to read does not count: the body
//! only times out while it waits on the upstream. Both are logged at `warn` with the upstream.
//!
//! The pooled strategy in detail:
//! * A connection is reused only if its sender is neither closed nor ready-less
//!   ([`KeyedManager::is_reusable`]). The response body holds the connection while it streams and
//!   gives it back only once hyper's connection task wants the next request (HTTP/1.1 answers in
//!   order, so handing out a sender mid-response would fail), like hyper-util's `delayed_eof`.
//! * After taking a connection from the pool the proxy checks `is_closed`/`is_ready` again and
//!   discards a stale one without sending on it.
//! * A connection idle for about as long as its upstream keeps idle connections open (the
//!   `Keep-Alive: timeout=N` the upstream last sent on it) is not reused: the upstream may close
//!   it just as a request goes out, which fails a non-idempotent request with `502`. This is the
//!   pool's `before_acquire` hook ([`within_upstream_keep_alive`]), which gets the upstream's key
//!   (for its log line) and the connection's idle time; the pool closes a rejected connection
//!   and the acquire moves on to another or opens a new one.
//! * An idempotent request that fails on a connection (before any response) is retried once, on
//!   a fresh connection: one opened after the failure. Older ones, likely broken by the same
//!   event (an upstream restart), are discarded until the pool hands out or creates a new one.
//! * A request whose response head does not arrive within `response_timeout` gets `504` and is
//!   not retried (the upstream is slow, not gone, and may still be processing it); its
//!   connection is destroyed, never pooled again, since the late response could still arrive on
//!   it and be read as the answer to the next request. A response body that stalls for
//!   `response_timeout` destroys its connection too: one with an unfinished body is never
//!   reused. Either way the upstream's capacity comes back at once, so a hung upstream costs
//!   `504`s, not a key whose every connection is stuck (and `503` for everyone after).
//! * An upstream that refuses a connection (or resets it, or has no route to it; not a connect
//!   that failed on the proxy's own side, such as running out of file descriptors:
//!   [`UpstreamError::means_upstream_down`]) is drained: `KeyedPool::close_key` destroys its idle
//!   connections (most likely dead too) and those in use as they come back, and until that is
//!   done its requests get `502` at once instead of trying each stale connection. Once drained,
//!   its key leaves the pool and the next request to it connects afresh. Other upstreams are
//!   untouched. Drains are counted and announced on [`Proxy::drained_upstreams`].

// Public so that `metrics_endpoint.rs` serves `/metrics` with the same accept loop (a second
// `#[path]` include of the file would compile it twice).
#[path = "http_serve.rs"]
pub mod http_serve;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
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
use hyper::http::uri::{Authority, Scheme};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use shadowcat_pool::{
    BoxError, Error as PoolError, KeyedConnection, KeyedManager, KeyedPool, KeyedPoolOptions,
    Metadata,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// What the proxy needs to know.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where requests whose host matches no route go; `None`: they get `421`.
    pub default_upstream: Option<SocketAddr>,
    /// `(host, upstream)` routes. `host` is a name (`a.example`, any port) or a name with a port
    /// (`a.example:8080`, that port only), matched without regard to case.
    pub routes: Vec<(String, SocketAddr)>,
    /// Pooled strategy: the most connections to one upstream at once (the legacy client: idle
    /// connections kept per upstream).
    pub max_per_key: usize,
    /// Pooled strategy: the most upstream connections at once across upstreams; `None`:
    /// `max_per_key` times the number of distinct upstreams (no cap beyond the per-upstream one).
    pub max_total: Option<usize>,
    /// Pooled strategy: how long a request waits for a connection before `503`.
    pub acquire_timeout: Duration,
    /// How long connecting to the upstream may take before `502`.
    pub connect_timeout: Duration,
    /// How long the upstream may take to answer: from sending the request until the response
    /// head arrives (then `504`), and between two frames of the response body (then the body
    /// ends with an error and the client's connection is aborted). An idle limit, not a total:
    /// a long download that keeps arriving is never cut off.
    pub response_timeout: Duration,
    /// Request bodies larger than this get `413`.
    pub max_body_bytes: usize,
}

impl ProxyConfig {
    /// Every request to `upstream` (the default route, no other route): 32 connections, 2 s
    /// acquire timeout, 1 s connect timeout, 30 s response timeout, 1 MiB bodies.
    pub fn new(upstream: SocketAddr) -> Self {
        ProxyConfig {
            default_upstream: Some(upstream),
            routes: Vec::new(),
            max_per_key: 32,
            max_total: None,
            acquire_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            // Between the defaults of nginx's `proxy_read_timeout` (60 s) and Envoy's route
            // timeout (15 s).
            response_timeout: Duration::from_secs(30),
            max_body_bytes: 1 << 20,
        }
    }

    /// Adds a route: requests for `host` go to `upstream`.
    pub fn route(mut self, host: &str, upstream: SocketAddr) -> Self {
        self.routes.push((host.to_string(), upstream));
        self
    }
}

/// What makes two upstream connections interchangeable, so the key of the keyed pool: a request
/// may reuse any pooled connection with an equal key. Here that is the scheme and the authority
/// connected to (the proxy speaks plaintext HTTP/1.1 and forwards the client's `Host` on every
/// request, so two hosts routed to one upstream share its connections). A TLS upstream would add
/// the server name and verification settings expected and any client certificate; a connection
/// through another proxy, that proxy and its credentials; see "What belongs in a key" in the
/// `KeyedPool` docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamKey {
    /// `http`.
    pub scheme: Scheme,
    /// Where connections go (`ip:port`).
    pub authority: Authority,
}

impl UpstreamKey {
    /// The key of a plaintext HTTP/1.1 upstream at `addr`.
    pub fn http(addr: SocketAddr) -> Self {
        UpstreamKey {
            scheme: Scheme::HTTP,
            authority: addr
                .to_string()
                .parse()
                .expect("a socket address is a valid authority"),
        }
    }
}

impl std::fmt::Display for UpstreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// The route table: lower-cased host (with or without port) to upstream.
#[derive(Debug)]
struct Routes {
    by_host: HashMap<String, UpstreamKey>,
    default: Option<UpstreamKey>,
}

impl Routes {
    fn new(config: &ProxyConfig) -> Self {
        Routes {
            by_host: config
                .routes
                .iter()
                .map(|(host, addr)| (host.to_ascii_lowercase(), UpstreamKey::http(*addr)))
                .collect(),
            default: config.default_upstream.map(UpstreamKey::http),
        }
    }

    /// The upstream for `authority` (`None`: no `Host`, as HTTP/1.0 allows).
    fn lookup(&self, authority: Option<&Authority>) -> Option<&UpstreamKey> {
        let found = authority.and_then(|a| {
            self.by_host
                .get(&a.as_str().to_ascii_lowercase())
                .or_else(|| self.by_host.get(&a.host().to_ascii_lowercase()))
        });
        found.or(self.default.as_ref())
    }

    /// Every distinct upstream.
    fn upstreams(&self) -> Vec<UpstreamKey> {
        let mut all: Vec<UpstreamKey> = self.by_host.values().cloned().collect();
        all.extend(self.default.clone());
        all.sort_by(|a, b| a.authority.as_str().cmp(b.authority.as_str()));
        all.dedup();
        all
    }
}

// ===== the pooled resource =====

/// A pooled upstream HTTP/1.1 connection.
#[derive(Debug)]
pub struct UpstreamConn {
    sender: SendRequest<Full<Bytes>>,
    /// Creation order across upstreams: connections opened after a failure have a higher number.
    seq: u64,
    /// Requests that got a response on this connection.
    served: u64,
    /// Set when a request failed on it: never reuse.
    broken: bool,
    /// How long the upstream keeps this connection open while idle, from the `Keep-Alive:
    /// timeout=N` of its last response (`None`: it did not say).
    keep_alive: Option<Duration>,
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

impl UpstreamError {
    /// Whether the error says the upstream itself is down or unreachable (it refused or reset
    /// the connection, or no route leads to it), which is when the proxy drains it. A connect
    /// that failed on the proxy's side (out of file descriptors or ephemeral ports, out of
    /// memory) says nothing about the upstream: draining a healthy upstream for it would throw
    /// away good connections, so it is only a `502`.
    pub fn means_upstream_down(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            UpstreamError::Connect(e) => matches!(
                e.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
            ),
            UpstreamError::Handshake(_) => false,
        }
    }
}

/// Opens a connection to `authority` and spawns its connection task.
async fn connect(
    authority: &Authority,
) -> Result<(SendRequest<Full<Bytes>>, JoinHandle<()>), UpstreamError> {
    let stream = TcpStream::connect(authority.as_str())
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

/// Opens [`UpstreamConn`]s to any upstream: one manager for every key.
#[derive(Debug)]
pub struct UpstreamManager {
    /// The next connection's `seq`; shared with the proxy, which reads it when a request fails.
    next_seq: Arc<AtomicU64>,
}

impl KeyedManager<UpstreamKey> for UpstreamManager {
    type Resource = UpstreamConn;
    type Error = UpstreamError;

    async fn create(&self, key: &UpstreamKey) -> Result<UpstreamConn, UpstreamError> {
        let (sender, task) = connect(&key.authority).await?;
        Ok(UpstreamConn {
            sender,
            // Relaxed: a unique, increasing number; nothing is published with it.
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            served: 0,
            broken: false,
            keep_alive: None,
            task,
        })
    }

    fn is_reusable(&self, _key: &UpstreamKey, conn: &mut UpstreamConn) -> bool {
        !conn.broken && !conn.sender.is_closed() && conn.sender.is_ready()
    }
}

/// The pool's `before_acquire` hook: reuse an idle connection only while it is safely within the
/// idle time its upstream announced (`Keep-Alive: timeout=N`), less a margin of a quarter of it,
/// at most 1 s, for the request to reach the upstream. Without an announced timeout, keep it
/// (`is_reusable` and the checks after checkout catch connections already closed).
pub fn within_upstream_keep_alive<'c>(
    upstream: &'c UpstreamKey,
    conn: &'c mut UpstreamConn,
    meta: Metadata,
) -> Pin<Box<dyn Future<Output = Result<bool, BoxError>> + Send + 'c>> {
    let keep = conn.keep_alive.is_none_or(|timeout| {
        let margin = (timeout / 4).min(Duration::from_secs(1));
        meta.idle_for + margin < timeout
    });
    if !keep {
        tracing::debug!(
            %upstream,
            idle = ?meta.idle_for,
            keep_alive = ?conn.keep_alive,
            "not reusing a connection idle about as long as its upstream keeps one open"
        );
    }
    Box::pin(std::future::ready(Ok(keep)))
}

/// The `timeout` of a `Keep-Alive` response header (`timeout=5, max=100`), if any.
fn keep_alive_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(HeaderName::from_static("keep-alive"))?
        .to_str()
        .ok()?;
    value.split(',').find_map(|param| {
        let (name, secs) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("timeout") {
            return None;
        }
        secs.trim().parse::<u64>().ok().map(Duration::from_secs)
    })
}

// ===== the proxy =====

/// The `pool` label of the keyed pool's metrics (`metrics` feature). `KeyedPool` reports the
/// events of every key under its per-key pools' name, `keyed`; the proxy's `/metrics` endpoint
/// sets the gauges under the same label from `KeyedPool::stats`.
pub const POOL_NAME: &str = "keyed";

/// The keyed pool of the pooled strategy.
pub type UpstreamPool = KeyedPool<UpstreamKey, UpstreamConn>;

/// A connection checked out of it.
pub type PooledConn = KeyedConnection<UpstreamKey, UpstreamConn>;

/// How the proxy reaches its upstreams.
pub enum Strategy {
    /// Connections of every upstream pooled in one `shadowcat_pool::KeyedPool`.
    Pooled(UpstreamPool),
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

/// What the proxy did, for tests and logs. All `Relaxed` tallies: nothing is published with them.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// Requests received.
    pub requests: AtomicU64,
    /// Connections taken from the pool (including stale ones then discarded).
    pub checkouts: AtomicU64,
    /// Idempotent requests retried on a fresh connection.
    pub retries: AtomicU64,
    /// Pooled connections found closed or not ready when taken, discarded unused.
    pub discarded_stale: AtomicU64,
    /// Upstreams drained after refusing a connection (`close_key` finished).
    pub drains: AtomicU64,
    /// `502` answers because the upstream was being drained (no connection tried).
    pub draining: AtomicU64,
    /// `400` answers.
    pub bad_request: AtomicU64,
    /// `413` answers.
    pub too_large: AtomicU64,
    /// `421` answers (no route for the host).
    pub misdirected: AtomicU64,
    /// `502` answers (including `draining`).
    pub bad_gateway: AtomicU64,
    /// `503` answers.
    pub unavailable: AtomicU64,
    /// `504` answers (no response head within `response_timeout`).
    pub gateway_timeout: AtomicU64,
}

/// The reverse proxy.
#[derive(Debug)]
pub struct Proxy {
    config: ProxyConfig,
    routes: Routes,
    strategy: Strategy,
    counters: Arc<ProxyCounters>,
    /// The pooled strategy's connection counter (see [`UpstreamConn`]'s `seq`).
    next_seq: Arc<AtomicU64>,
    /// Announces each upstream drained (see [`Proxy::drained_upstreams`]).
    drained: broadcast::Sender<UpstreamKey>,
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
        routes: Routes,
        strategy: Strategy,
        next_seq: Arc<AtomicU64>,
    ) -> Arc<Self> {
        Arc::new(Proxy {
            config,
            routes,
            strategy,
            counters: Arc::default(),
            next_seq,
            drained: broadcast::channel(64).0,
        })
    }

    /// A proxy whose upstream connections are pooled in one `KeyedPool`. Fails, naming the
    /// field, if `max_per_key` is 0 or `max_total` is below it.
    pub fn pooled(config: ProxyConfig) -> Result<Arc<Self>, shadowcat_pool::BuildError> {
        let routes = Routes::new(&config);
        let upstreams = routes.upstreams().len().max(1);
        let max_total = config
            .max_total
            .unwrap_or(config.max_per_key.saturating_mul(upstreams));
        let next_seq = Arc::new(AtomicU64::new(0));
        let pool = KeyedPoolOptions::new()
            .max_per_key(config.max_per_key)
            .max_total(max_total)
            .acquire_timeout(Some(config.acquire_timeout))
            .create_timeout(Some(config.connect_timeout))
            .before_acquire(within_upstream_keep_alive)
            .build(UpstreamManager {
                next_seq: next_seq.clone(),
            })?;
        Ok(Self::with_strategy(
            config,
            routes,
            Strategy::Pooled(pool),
            next_seq,
        ))
    }

    /// A proxy that uses hyper-util's legacy pooled `Client` (up to `max_per_key` idle
    /// connections per upstream).
    pub fn legacy(config: ProxyConfig) -> Arc<Self> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.max_per_key)
            .build(http);
        let routes = Routes::new(&config);
        Self::with_strategy(config, routes, Strategy::Legacy(client), Arc::default())
    }

    /// A proxy that opens a new upstream connection for every request.
    pub fn per_request(config: ProxyConfig) -> Arc<Self> {
        let routes = Routes::new(&config);
        Self::with_strategy(config, routes, Strategy::PerRequest, Arc::default())
    }

    /// The keyed pool, for the pooled strategy.
    pub fn pool(&self) -> Option<&UpstreamPool> {
        match &self.strategy {
            Strategy::Pooled(pool) => Some(pool),
            _ => None,
        }
    }

    /// The pool key requests for `host` go to (`None`: they get `421`).
    pub fn route_of(&self, host: &str) -> Option<UpstreamKey> {
        let authority = host.parse::<Authority>().ok();
        self.routes.lookup(authority.as_ref()).cloned()
    }

    /// Every distinct upstream, in authority order.
    pub fn upstreams(&self) -> Vec<UpstreamKey> {
        self.routes.upstreams()
    }

    /// What the proxy did so far.
    pub fn counters(&self) -> &ProxyCounters {
        &self.counters
    }

    /// Receives the key of each upstream the proxy drained (after it refused a connection),
    /// once `close_key` has destroyed every connection it had.
    pub fn drained_upstreams(&self) -> broadcast::Receiver<UpstreamKey> {
        self.drained.subscribe()
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
        // An absolute-form target's authority wins over `Host` (RFC 9112 section 3.2.2).
        let authority = match parts.uri.authority() {
            Some(authority) => Some(authority.clone()),
            None => match parts.headers.get(header::HOST) {
                None => None,
                Some(host) => match host.to_str().ok().and_then(|h| h.parse().ok()) {
                    Some(authority) => Some(authority),
                    None => return self.error(StatusCode::BAD_REQUEST, "invalid Host header"),
                },
            },
        };
        let Some(key) = self.routes.lookup(authority.as_ref()).cloned() else {
            return self.error(
                StatusCode::MISDIRECTED_REQUEST,
                "no upstream is configured for this host",
            );
        };
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
        // The upstream sees the host the request was routed by: an absolute-form target replaces
        // `Host` (RFC 9112 section 3.2.2; forwarding the client's would let `Host` name another
        // virtual host on a shared upstream than the route table chose), and a request without
        // one gets the upstream's authority.
        let host = match parts.uri.authority() {
            Some(target) => Some(target.as_str()),
            None if !headers.contains_key(header::HOST) => Some(key.authority.as_str()),
            None => None,
        };
        if let Some(host) = host {
            match HeaderValue::from_str(host) {
                Ok(host) => {
                    headers.insert(header::HOST, host);
                }
                Err(_) => return self.error(StatusCode::BAD_REQUEST, "invalid request target"),
            }
        }
        let head = Head {
            method: parts.method,
            path,
            headers,
        };
        match &self.strategy {
            Strategy::Pooled(pool) => self.via_pool(pool, &key, head, body).await,
            Strategy::Legacy(client) => self.via_legacy(client, &key, head, body).await,
            Strategy::PerRequest => self.per_connection(&key, head, body).await,
        }
    }

    async fn via_pool(
        &self,
        pool: &UpstreamPool,
        key: &UpstreamKey,
        mut head: Head,
        body: Bytes,
    ) -> Response<ProxyBody> {
        let idempotent = is_idempotent(&head.method);
        // `Some(n)` on the retry: only a connection opened after the failure (seq >= n) will do.
        let mut opened_after: Option<u64> = None;
        loop {
            let mut conn = match self.checkout(pool, key, opened_after).await {
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
            // Poisoned while in flight: if this future is dropped, or the wait for the response
            // times out, the connection is not reused.
            conn.broken = true;
            let limit = self.config.response_timeout;
            let answered = tokio::time::timeout(limit, conn.sender.send_request(req)).await;
            let Ok(answered) = answered else {
                // Still `broken`, so destroyed rather than pooled: the upstream may answer later
                // on this connection, and that response would be read as the next request's.
                // Destroying it also closes the socket, which tells the upstream to give up.
                drop(conn);
                // Not retried, even when idempotent: the upstream is slow, not gone (a broken
                // connection, which a retry is for, shows as an error: handled below), so a retry
                // would most likely time out too, doubling the client's wait and the upstream's
                // load while the first attempt may still be running there.
                tracing::warn!(
                    upstream = %key,
                    timeout = ?limit,
                    "upstream sent no response in time"
                );
                return self.error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream did not answer in time",
                );
            };
            match answered {
                Ok(resp) => {
                    conn.broken = false;
                    conn.served += 1;
                    let (mut parts, incoming) = resp.into_parts();
                    // Read before the hop-by-hop headers (this one among them) are stripped.
                    conn.keep_alive = keep_alive_timeout(&parts.headers);
                    strip_hop_by_hop(&mut parts.headers);
                    let body = PooledBody {
                        inner: incoming,
                        conn: Some(conn),
                        done: false,
                        idle: IdleTimer::new(limit),
                    };
                    return Response::from_parts(parts, ProxyBody::Pooled(body));
                }
                Err(e) => {
                    drop(conn); // broken: destroyed, not pooled
                    if idempotent && opened_after.is_none() {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, upstream = %key, "upstream request failed; retrying once on a fresh connection");
                        // Relaxed: connections numbered from here on were opened after the
                        // failure; an earlier one read as later only costs a retry's reuse.
                        opened_after = Some(self.next_seq.load(Ordering::Relaxed));
                        continue;
                    }
                    tracing::warn!(error = %e, upstream = %key, "upstream request failed");
                    return self.error(StatusCode::BAD_GATEWAY, "upstream request failed");
                }
            }
        }
    }

    /// Takes a usable connection to `key` from the pool; with `opened_after: Some(n)`, only one
    /// opened after a failure (`seq >= n`): older ones are discarded, as likely broken by the same
    /// event. At most `max_per_key` connections of the key are older, so a fresh one is reached
    /// within `max_per_key + 1` tries (each discard frees capacity to create one).
    async fn checkout(
        &self,
        pool: &UpstreamPool,
        key: &UpstreamKey,
        opened_after: Option<u64>,
    ) -> Result<PooledConn, Response<ProxyBody>> {
        for _ in 0..=self.config.max_per_key + 1 {
            let mut conn = match pool.acquire(key).await {
                Ok(conn) => conn,
                Err(e) => return Err(self.acquire_failed(pool, key, e)),
            };
            self.counters.checkouts.fetch_add(1, Ordering::Relaxed);
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

    /// The answer to a failed acquire; drains the upstream if it refused a connection.
    fn acquire_failed(
        &self,
        pool: &UpstreamPool,
        key: &UpstreamKey,
        error: PoolError,
    ) -> Response<ProxyBody> {
        match error {
            PoolError::Timeout(_) | PoolError::Saturated(_) => self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no upstream connection available",
            ),
            PoolError::Closed if pool.is_closed() => self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the proxy is shutting down",
            ),
            // Only `close_key` closes one key: ours, in `drain`.
            PoolError::Closed => {
                self.counters.draining.fetch_add(1, Ordering::Relaxed);
                self.error(
                    StatusCode::BAD_GATEWAY,
                    "upstream down: draining its connections",
                )
            }
            PoolError::Create(source) => {
                let refused = source
                    .downcast_ref::<UpstreamError>()
                    .is_some_and(UpstreamError::means_upstream_down);
                tracing::warn!(error = %source, upstream = %key, "no upstream connection");
                if refused {
                    self.drain(pool, key);
                }
                self.error(StatusCode::BAD_GATEWAY, "upstream unreachable")
            }
            other => {
                tracing::warn!(error = %other, upstream = %key, "no upstream connection");
                self.error(StatusCode::BAD_GATEWAY, "upstream unreachable")
            }
        }
    }

    /// Closes `key` in the background unless it is closing already or gone: its idle
    /// connections are destroyed now, those in use when they come back; then it leaves the pool.
    fn drain(&self, pool: &UpstreamPool, key: &UpstreamKey) {
        if pool.key_stats(key).is_none_or(|s| s.closed) {
            return;
        }
        let (pool, key) = (pool.clone(), key.clone());
        let (counters, drained) = (self.counters.clone(), self.drained.clone());
        tracing::warn!(upstream = %key, "upstream refused a connection: draining it");
        tokio::spawn(async move {
            if pool.close_key(&key).await {
                counters.drains.fetch_add(1, Ordering::Relaxed);
                tracing::info!(upstream = %key, "upstream drained");
                // No receiver is fine.
                let _ = drained.send(key);
            }
        });
    }

    async fn via_legacy(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        key: &UpstreamKey,
        head: Head,
        body: Bytes,
    ) -> Response<ProxyBody> {
        let uri = Uri::builder()
            .scheme(key.scheme.clone())
            .authority(key.authority.clone())
            .path_and_query(head.path)
            .build();
        let Ok(uri) = uri else {
            return self.error(StatusCode::BAD_REQUEST, "bad request target");
        };
        let request = client.request(build_request(head.method, uri, head.headers, body));
        // On timeout the request future is dropped, and hyper closes its connection.
        let result = tokio::time::timeout(self.config.response_timeout, request).await;
        self.relay(key, result)
    }

    async fn per_connection(
        &self,
        key: &UpstreamKey,
        mut head: Head,
        body: Bytes,
    ) -> Response<ProxyBody> {
        let connected =
            tokio::time::timeout(self.config.connect_timeout, connect(&key.authority)).await;
        let Ok(Ok((mut sender, _task))) = connected else {
            return self.error(StatusCode::BAD_GATEWAY, "upstream unreachable");
        };
        // The upstream closes after answering, so the TIME_WAIT lands on its side.
        head.headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        let request = sender.send_request(build_request(
            head.method,
            head.path.into(),
            head.headers,
            body,
        ));
        // On timeout the request future is dropped, and hyper closes the connection.
        let result = tokio::time::timeout(self.config.response_timeout, request).await;
        self.relay(key, result)
    }

    /// Relays an upstream response (minus hop-by-hop headers), or answers 502 (the request
    /// failed) or 504 (no response within `response_timeout`).
    fn relay<E: std::fmt::Display>(
        &self,
        key: &UpstreamKey,
        result: Result<Result<Response<Incoming>, E>, tokio::time::error::Elapsed>,
    ) -> Response<ProxyBody> {
        match result {
            Ok(Ok(resp)) => {
                let (mut parts, incoming) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let body = StreamedBody {
                    inner: incoming,
                    upstream: key.clone(),
                    done: false,
                    idle: IdleTimer::new(self.config.response_timeout),
                };
                Response::from_parts(parts, ProxyBody::Streamed(body))
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, upstream = %key, "upstream request failed");
                self.error(StatusCode::BAD_GATEWAY, "upstream request failed")
            }
            Err(_elapsed) => {
                let timeout = self.config.response_timeout;
                tracing::warn!(
                    upstream = %key,
                    ?timeout,
                    "upstream sent no response in time"
                );
                self.error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream did not answer in time",
                )
            }
        }
    }

    fn error(&self, status: StatusCode, message: &'static str) -> Response<ProxyBody> {
        let counter = match status {
            StatusCode::BAD_REQUEST => &self.counters.bad_request,
            StatusCode::PAYLOAD_TOO_LARGE => &self.counters.too_large,
            StatusCode::MISDIRECTED_REQUEST => &self.counters.misdirected,
            StatusCode::SERVICE_UNAVAILABLE => &self.counters.unavailable,
            StatusCode::GATEWAY_TIMEOUT => &self.counters.gateway_timeout,
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

/// The idle limit of a response body streaming from an upstream: expires once the upstream has
/// sent nothing for `limit` while the body waits on it. It runs only between a `Pending` from the
/// upstream and its next frame, so a client that reads slowly (hyper then stops polling the body)
/// never trips it, and a long download that keeps arriving is never cut off.
#[derive(Debug)]
struct IdleTimer {
    limit: Duration,
    /// Created at the first wait: a body already buffered when polled (most small ones) never
    /// allocates one nor touches the timer wheel.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A frame arrived since the deadline was set: the next wait starts a new idle period.
    rearm: bool,
}

impl IdleTimer {
    fn new(limit: Duration) -> Self {
        IdleTimer {
            limit,
            sleep: None,
            rearm: true,
        }
    }

    /// A frame arrived.
    fn progressed(&mut self) {
        self.rearm = true;
    }

    /// To be called when the upstream has nothing ready (and registered `cx`): `Ready` once it
    /// has been idle for `limit`.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let limit = self.limit;
        let mut fresh = false;
        let sleep = self.sleep.get_or_insert_with(|| {
            fresh = true;
            // Like `deadline_after`, `sleep` turns a huge limit into a far deadline, no panic.
            Box::pin(tokio::time::sleep(limit))
        });
        if self.rearm && !fresh {
            sleep.as_mut().reset(deadline_after(limit));
        }
        self.rearm = false;
        sleep.as_mut().poll(cx)
    }
}

/// What an upstream response body gave, polled under its idle limit.
enum Upstream {
    Frame(Frame<Bytes>),
    End,
    Failed(hyper::Error),
    /// Nothing arrived for the idle limit.
    Stalled,
}

impl IdleTimer {
    /// Polls `body` once: a frame (or the end) restarts the idle period, and a wait that has
    /// outlasted the limit is [`Upstream::Stalled`]. The one place both response bodies apply
    /// the limit.
    fn poll_body(&mut self, body: &mut Incoming, cx: &mut Context<'_>) -> Poll<Upstream> {
        match Pin::new(body).poll_frame(cx) {
            Poll::Pending => self.poll_expired(cx).map(|()| Upstream::Stalled),
            Poll::Ready(Some(Ok(frame))) => {
                self.progressed();
                Poll::Ready(Upstream::Frame(frame))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Upstream::Failed(e)),
            Poll::Ready(None) => {
                self.progressed();
                Poll::Ready(Upstream::End)
            }
        }
    }
}

/// `limit` from now; about 30 years from now if that overflows (as tokio's `sleep` does), so a
/// huge configured timeout means "never" instead of a panic.
fn deadline_after(limit: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(limit)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
}

/// How a response body ends when its upstream sends nothing for `response_timeout`: the client's
/// connection is then aborted (hyper closes it on a body error), so a client never takes a
/// truncated body for a whole one.
#[derive(Debug)]
pub struct UpstreamIdle {
    upstream: UpstreamKey,
    after: Duration,
}

impl std::fmt::Display for UpstreamIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "upstream {} sent no response body data for {:?}",
            self.upstream, self.after
        )
    }
}

impl std::error::Error for UpstreamIdle {}

impl UpstreamIdle {
    /// The error a body ends with when `upstream` sent nothing for `after`, logged at `warn`.
    fn logged(upstream: UpstreamKey, after: Duration) -> BoxError {
        tracing::warn!(
            %upstream,
            timeout = ?after,
            "upstream stalled mid-body: aborting the response"
        );
        Box::new(UpstreamIdle { upstream, after })
    }
}

/// A response body streaming from a pooled connection. It holds the connection until the body
/// is finished *and* hyper's connection task is ready for the next request, then returns it to
/// the pool (before reporting the end of the body). If the upstream goes idle mid-body for
/// `response_timeout`, the connection is destroyed (one with an unfinished body is never reused)
/// and the body ends with [`UpstreamIdle`].
pub struct PooledBody {
    inner: Incoming,
    conn: Option<PooledConn>,
    done: bool,
    idle: IdleTimer,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody")
            .field("holds_connection", &self.conn.is_some())
            .field("done", &self.done)
            .finish()
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if !this.done {
            match std::task::ready!(this.idle.poll_body(&mut this.inner, cx)) {
                Upstream::Frame(frame) => return Poll::Ready(Some(Ok(frame))),
                Upstream::End => this.done = true,
                Upstream::Failed(e) => {
                    this.done = true;
                    if let Some(conn) = this.conn.as_mut() {
                        conn.broken = true;
                    }
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Upstream::Stalled => {
                    this.done = true;
                    let Some(mut conn) = this.conn.take() else {
                        // Unreachable: the connection is held until the body is done.
                        return Poll::Ready(None);
                    };
                    // Destroyed, not pooled, before the client hears of it: the rest of the body
                    // may still come, and would be read as the next response on it.
                    conn.broken = true;
                    let error = UpstreamIdle::logged(conn.key().clone(), this.idle.limit);
                    drop(conn);
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
        if let Some(conn) = this.conn.as_mut() {
            match conn.sender.poll_ready(cx) {
                Poll::Pending => {
                    // Normally ready at once once the body is read; if hyper's connection task
                    // is not, within the same limit, give up on reusing the connection. The
                    // client has its whole body, so it still ends normally.
                    if this.idle.poll_expired(cx).is_pending() {
                        return Poll::Pending;
                    }
                    conn.broken = true;
                }
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

/// A response body streaming from the legacy client or a one-off connection, with the same idle
/// limit as [`PooledBody`] (the connection is hyper's to close once the body is dropped).
#[derive(Debug)]
pub struct StreamedBody {
    inner: Incoming,
    /// For the log line and the error.
    upstream: UpstreamKey,
    done: bool,
    idle: IdleTimer,
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let polled = std::task::ready!(this.idle.poll_body(&mut this.inner, cx));
        this.done = !matches!(polled, Upstream::Frame(_));
        Poll::Ready(match polled {
            Upstream::Frame(frame) => Some(Ok(frame)),
            Upstream::End => None,
            Upstream::Failed(e) => Some(Err(e.into())),
            Upstream::Stalled => Some(Err(UpstreamIdle::logged(
                this.upstream.clone(),
                this.idle.limit,
            ))),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Every response body the proxy sends.
#[derive(Debug)]
pub enum ProxyBody {
    /// Streaming from a pooled connection.
    Pooled(PooledBody),
    /// Streaming from the legacy client or a one-off connection.
    Streamed(StreamedBody),
    /// Generated by the proxy (errors).
    Full(Full<Bytes>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    /// A `hyper::Error` from the upstream, or [`UpstreamIdle`].
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
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
