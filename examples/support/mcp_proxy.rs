//! A small MCP reverse proxy: MCP's Streamable HTTP transport in front, stdio MCP servers
//! behind ([`mcp_upstream`](super::mcp_upstream)), and a Streamable HTTP client for tests and
//! benchmarks.
//!
//! Shared by `examples/mcp_proxy.rs`, `examples/mcp_bench.rs` and `tests/mcp_proxy.rs`.
//!
//! **Front.** `POST /mcp` takes one JSON-RPC message. A request gets a JSON response
//! (`application/json`; no request here needs a stream), a notification or response gets `202`.
//! `initialize` opens a client session (`Mcp-Session-Id` header); later requests must carry it
//! (`400` without, `404` for an unknown or closed one), and an `MCP-Protocol-Version` header other
//! than the version agreed at `initialize` is `400`. `DELETE /mcp` closes a session, and so
//! does `session_idle_timeout` without a request (10 minutes by default), `GET /mcp`
//! (a server-to-client stream) is `405`. A browser `Origin` that is not loopback gets `403`
//! (DNS rebinding). Batches (arrays) are refused, as in protocol version 2025-06-18.
//!
//! **Back.** Three strategies: [`Strategy::Pooled`] (the point of this example: a
//! `Pool<McpSession>` of initialized servers shared by all clients), [`Strategy::PerRequest`] (a
//! server spawned and initialized for every request, what Shadowcat did before it pooled) and
//! [`Strategy::Dedicated`] (one server per client session, spawned at `initialize`, replaced
//! when it breaks: after the failed request, or before the next one if a client went away in
//! the middle of a request).
//!
//! The proxy answers `initialize` itself, from the upstream's `initialize` result: the same
//! protocol version, `serverInfo` and `instructions`, and the capabilities it can serve through
//! a pool (tools, resources and prompts without `listChanged`/`subscribe`, completions; no
//! logging or tasks, whose state would live in one upstream session). It forwards the stateless
//! methods in [`FORWARDED`]; any other request gets `-32601`.
//!
//! **Retries.** A request whose upstream failed before replying (the process died, a write hit
//! a closed pipe, the reply was malformed) is retried once, on another session, if repeating it
//! is safe: every forwarded method except `tools/call`, and `tools/call` of a tool whose
//! annotations say `readOnlyHint` or `idempotentHint` (learned from `tools/list`, which the first
//! `initialize` asks for under `request_timeout`: if it fails, no tool counts as safe). Anything else
//! gets a JSON-RPC error with HTTP `502`. No session within `acquire_timeout` is `503`; an
//! upstream that does not answer within `request_timeout` is `504` (not retried).

#[path = "http_serve.rs"]
mod http_serve;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use shadowcat_pool::{Error as PoolError, Manager, Pool, PoolOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::mcp_upstream::{
    McpManager, McpSession, Reply, RpcError, SessionError, UpstreamCounts, UpstreamInfo,
};

/// The methods the proxy forwards to an upstream; all are stateless, so any pooled session can
/// serve them.
pub const FORWARDED: [&str; 9] = [
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// The endpoint path.
pub const ENDPOINT: &str = "/mcp";

const SESSION_HEADER: &str = "mcp-session-id";

/// What the proxy needs to know.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Pooled strategy: the most upstream servers at once.
    pub max_upstreams: usize,
    /// Pooled strategy: how long a request waits for a session before `503`.
    pub acquire_timeout: Duration,
    /// How long spawning and initializing a server may take.
    pub create_timeout: Duration,
    /// How long an upstream may take to answer a request before `504`.
    pub request_timeout: Duration,
    /// Pooled strategy: `ping` each idle session before handing it out.
    pub test_before_acquire: bool,
    /// Request bodies larger than this get `413`.
    pub max_body_bytes: usize,
    /// A client session with no request for this long is closed, as `DELETE` would close it
    /// (its dedicated server, if any, is torn down; the client's next request gets `404` and it
    /// initializes again, as Streamable HTTP prescribes). A session with a request in flight is
    /// never idle. `None`: sessions live until `DELETE` or shutdown.
    pub session_idle_timeout: Option<Duration>,
}

impl Default for ProxyConfig {
    /// 4 upstreams, 5 s acquire timeout, 10 s create timeout, 30 s request timeout, no ping
    /// before acquire, 1 MiB bodies, sessions closed after 10 minutes idle.
    fn default() -> Self {
        ProxyConfig {
            max_upstreams: 4,
            acquire_timeout: Duration::from_secs(5),
            create_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            test_before_acquire: false,
            max_body_bytes: 1 << 20,
            session_idle_timeout: Some(Duration::from_secs(600)),
        }
    }
}

/// How the proxy reaches its upstream servers.
pub enum Strategy {
    /// Initialized sessions pooled in `shadowcat-pool`.
    Pooled(Pool<McpSession>),
    /// A server spawned and initialized for every request, torn down after it.
    PerRequest(McpManager),
    /// One server per client session.
    Dedicated(McpManager),
}

impl std::fmt::Debug for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::Pooled(_) => "Pooled",
            Strategy::PerRequest(_) => "PerRequest",
            Strategy::Dedicated(_) => "Dedicated",
        })
    }
}

/// Which [`Strategy`] to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    /// [`Strategy::Pooled`].
    Pooled,
    /// [`Strategy::PerRequest`].
    PerRequest,
    /// [`Strategy::Dedicated`].
    Dedicated,
}

/// What the proxy did, for tests, logs and the benchmark.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// JSON-RPC requests received.
    pub requests: AtomicU64,
    /// Requests forwarded to an upstream (retries count again).
    pub forwarded: AtomicU64,
    /// Requests retried on another session after their upstream failed.
    pub retries: AtomicU64,
    /// Requests that failed because their upstream did and were not retried.
    pub upstream_failures: AtomicU64,
    /// Pooled: acquires, and the nanoseconds spent in them.
    pub acquires: AtomicU64,
    /// Pooled: nanoseconds spent in `Pool::acquire` (waiting included).
    pub acquire_nanos: AtomicU64,
    /// Pooled: nanoseconds spent giving sessions back (`Drop` of the pool connection).
    pub release_nanos: AtomicU64,
}

/// One client session (`Mcp-Session-Id`).
#[derive(Debug)]
struct ClientSession {
    /// Dedicated strategy: the client's own server (`None` inside once the session is closed).
    upstream: Option<Dedicated>,
    /// When a request on it last started or ended.
    last_used: Instant,
    /// Requests on it under way ([`InFlight`] guards); a session with any is not idle.
    in_flight: usize,
}

/// One request under way on a client session: counted from the session's lookup to the end of
/// the request, or to the drop of its handler (a client that went away), whichever comes first,
/// and the session is stamped as used at both ends.
struct InFlight<'a> {
    proxy: &'a McpProxy,
    session_id: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.proxy.sessions.lock().get_mut(self.session_id) {
            session.in_flight -= 1;
            session.last_used = Instant::now();
        }
    }
}

type Dedicated = Arc<tokio::sync::Mutex<Option<McpSession>>>;

/// Why a request was not answered by an upstream.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    error: RpcError,
}

impl Failure {
    fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Failure {
            status,
            error: RpcError::new(code, message),
        }
    }
}

/// The reverse proxy.
#[derive(Debug)]
pub struct McpProxy {
    config: ProxyConfig,
    strategy: Strategy,
    counts: Arc<UpstreamCounts>,
    counters: ProxyCounters,
    sessions: Mutex<HashMap<String, ClientSession>>,
    info: tokio::sync::OnceCell<Arc<UpstreamInfo>>,
    /// Tool name → safe to repeat, from the annotations in `tools/list` results.
    tool_hints: RwLock<HashMap<String, bool>>,
}

impl McpProxy {
    /// A proxy whose upstream servers come from `manager`.
    pub fn new(
        manager: McpManager,
        config: ProxyConfig,
        kind: StrategyKind,
    ) -> Result<Arc<Self>, shadowcat_pool::BuildError> {
        let counts = manager.counts();
        let strategy = match kind {
            StrategyKind::Pooled => Strategy::Pooled(
                PoolOptions::new()
                    .max_connections(config.max_upstreams)
                    .acquire_timeout(config.acquire_timeout)
                    .create_timeout(config.create_timeout)
                    .test_before_acquire(config.test_before_acquire)
                    .build(manager)?,
            ),
            StrategyKind::PerRequest => Strategy::PerRequest(manager),
            StrategyKind::Dedicated => Strategy::Dedicated(manager),
        };
        Ok(Arc::new(McpProxy {
            config,
            strategy,
            counts,
            counters: ProxyCounters::default(),
            sessions: Mutex::default(),
            info: tokio::sync::OnceCell::new(),
            tool_hints: RwLock::default(),
        }))
    }

    /// The pool, for the pooled strategy.
    pub fn pool(&self) -> Option<&Pool<McpSession>> {
        match &self.strategy {
            Strategy::Pooled(pool) => Some(pool),
            _ => None,
        }
    }

    /// What the proxy did so far.
    pub fn counters(&self) -> &ProxyCounters {
        &self.counters
    }

    /// The upstream manager's counters (spawned, reaped, most alive at once).
    pub fn upstream_counts(&self) -> &Arc<UpstreamCounts> {
        &self.counts
    }

    /// Closes every upstream: the pool (waiting for checked-out sessions), or each dedicated
    /// server; then waits, at most `limit`, until every server spawned is reaped (per-request
    /// teardowns run in the background). Returns whether all were reaped.
    pub async fn shutdown(&self, limit: Duration) -> bool {
        let dedicated: Vec<_> = self
            .sessions
            .lock()
            .drain()
            .filter_map(|(_, s)| s.upstream)
            .collect();
        match &self.strategy {
            Strategy::Pooled(pool) => pool.close().await,
            Strategy::Dedicated(manager) => {
                for upstream in dedicated {
                    self.close_dedicated(manager, upstream).await;
                }
            }
            Strategy::PerRequest(_) => {}
        }
        self.counts.wait_all_reaped(limit).await
    }

    async fn close_dedicated(&self, manager: &McpManager, upstream: Dedicated) {
        // A request still running holds the lock; it finishes (or times out) first.
        let session = upstream.lock().await.take();
        if let Some(session) = session {
            manager.destroy(session).await;
        }
    }

    /// Closes the client sessions idle for `session_idle_timeout` or longer (none if it is
    /// `None`), tearing down their dedicated servers; returns how many it closed. `serve` runs
    /// it periodically.
    pub async fn expire_idle_sessions(&self) -> usize {
        self.expire_idle_sessions_at(Instant::now()).await
    }

    /// [`expire_idle_sessions`](Self::expire_idle_sessions) as if it were `now` (tests look
    /// ahead with it).
    pub async fn expire_idle_sessions_at(&self, now: Instant) -> usize {
        let Some(limit) = self.config.session_idle_timeout else {
            return 0;
        };
        let expired: Vec<ClientSession> = {
            let mut sessions = self.sessions.lock();
            let idle: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| {
                    s.in_flight == 0 && now.saturating_duration_since(s.last_used) >= limit
                })
                .map(|(id, _)| id.clone())
                .collect();
            idle.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        let closed = expired.len();
        if closed > 0 {
            tracing::info!(closed, idle_limit = ?limit, "closed idle client sessions");
        }
        if let Strategy::Dedicated(manager) = &self.strategy {
            for upstream in expired.into_iter().filter_map(|s| s.upstream) {
                self.close_dedicated(manager, upstream).await;
            }
        }
        closed
    }

    /// Serves HTTP/1.1 on `listener` until the returned task is aborted. With a
    /// `session_idle_timeout` it also starts a task that expires idle sessions, every half of
    /// that timeout (at least every 30 s); that task ends once the proxy is dropped.
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> JoinHandle<()> {
        if let Some(limit) = self.config.session_idle_timeout {
            let proxy = Arc::downgrade(&self);
            let period = (limit / 2).clamp(Duration::from_millis(1), Duration::from_secs(30));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(proxy) = proxy.upgrade() else {
                        return;
                    };
                    proxy.expire_idle_sessions().await;
                }
            });
        }
        http_serve::serve(listener, move |req| {
            let proxy = self.clone();
            async move { proxy.handle(req).await }
        })
    }

    /// Answers one HTTP request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != ENDPOINT {
            return plain(StatusCode::NOT_FOUND, "not found");
        }
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            if !is_loopback_origin(origin) {
                return plain(StatusCode::FORBIDDEN, "origin not allowed");
            }
        }
        let session_id = req
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let headers_version = req
            .headers()
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match *req.method() {
            Method::POST => {}
            Method::DELETE => return self.delete_session(session_id).await,
            _ => {
                let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "POST or DELETE only");
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
                return resp;
            }
        }
        let json_body = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if !json_body {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            );
        }
        let body = match Limited::new(req.into_body(), self.config.max_body_bytes)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            }
            Err(_) => return plain(StatusCode::BAD_REQUEST, "malformed request body"),
        };
        let message: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    Value::Null,
                    RpcError::new(RpcError::PARSE_ERROR, format!("parse error: {e}")),
                )
            }
        };
        let Value::Object(mut message) = message else {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                RpcError::new(
                    RpcError::INVALID_REQUEST,
                    "one JSON-RPC message per POST; batches are not supported",
                ),
            );
        };
        let method = match message.get("method") {
            Some(Value::String(m)) => Some(m.clone()),
            Some(_) => {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    message.get("id").cloned().unwrap_or(Value::Null),
                    RpcError::new(RpcError::INVALID_REQUEST, "method must be a string"),
                )
            }
            None => None,
        };
        let (Some(method), Some(id)) = (method, message.remove("id")) else {
            // A notification (`notifications/initialized`, `notifications/cancelled`, ...) or a
            // response: accepted. Upstream sessions are initialized by the pool, and the proxy
            // never sends the client a request.
            return status_only(StatusCode::ACCEPTED);
        };
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let params = message.remove("params");
        if method == "initialize" {
            return self.initialize(id).await;
        }
        // After `initialize`, clients name the negotiated version; refuse one we did not offer.
        let version = headers_version.as_deref();
        if let (Some(version), Some(info)) = (version, self.info.get()) {
            if version != info.protocol_version {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    id,
                    RpcError::new(
                        RpcError::INVALID_REQUEST,
                        format!("unsupported MCP-Protocol-Version {version}"),
                    ),
                );
            }
        }
        let Some(session_id) = session_id else {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                id,
                RpcError::new(
                    RpcError::INVALID_REQUEST,
                    "missing Mcp-Session-Id header; send initialize first",
                ),
            );
        };
        let (dedicated, _in_flight) = match self.sessions.lock().get_mut(&session_id) {
            None => {
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    id,
                    RpcError::new(RpcError::INVALID_REQUEST, "unknown or closed session"),
                )
            }
            Some(session) => {
                session.last_used = Instant::now();
                session.in_flight += 1;
                let in_flight = InFlight {
                    proxy: self,
                    session_id: &session_id,
                };
                (session.upstream.clone(), in_flight)
            }
        };
        if !FORWARDED.contains(&method.as_str()) {
            return rpc_error(
                StatusCode::OK,
                id,
                RpcError::new(
                    RpcError::METHOD_NOT_FOUND,
                    format!("{method} is not supported by this proxy"),
                ),
            );
        }
        let outcome = self.forward(&method, params.as_ref(), dedicated).await;
        match outcome {
            Ok(Ok(result)) => {
                if method == "tools/list" {
                    self.learn_tool_hints(&result);
                }
                json_response(
                    StatusCode::OK,
                    json!({ "jsonrpc": "2.0", "id": id, "result": result }),
                )
            }
            Ok(Err(error)) => rpc_error(StatusCode::OK, id, error),
            Err(failure) => rpc_error(failure.status, id, failure.error),
        }
    }

    async fn initialize(&self, id: Value) -> Response<Full<Bytes>> {
        let info = match self.upstream_info().await {
            Ok(info) => info,
            Err(failure) => return rpc_error(failure.status, id, failure.error),
        };
        let session_id = format!("{:032x}", fastrand::u128(..));
        let upstream = match &self.strategy {
            Strategy::Dedicated(manager) => match self.spawn(manager).await {
                Ok(session) => Some(Arc::new(tokio::sync::Mutex::new(Some(session)))),
                Err(failure) => return rpc_error(failure.status, id, failure.error),
            },
            _ => None,
        };
        self.sessions.lock().insert(
            session_id.clone(),
            ClientSession {
                upstream,
                last_used: Instant::now(),
                in_flight: 0,
            },
        );
        let upstream = &info.result;
        let mut result = json!({
            "protocolVersion": info.protocol_version,
            "capabilities": proxied_capabilities(&upstream["capabilities"]),
            "serverInfo": upstream["serverInfo"],
        });
        if let Some(instructions) = upstream.get("instructions") {
            result["instructions"] = instructions.clone();
        }
        let mut resp = json_response(
            StatusCode::OK,
            json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        );
        if let Ok(value) = HeaderValue::from_str(&session_id) {
            resp.headers_mut().insert(SESSION_HEADER, value);
        }
        resp
    }

    async fn delete_session(&self, session_id: Option<String>) -> Response<Full<Bytes>> {
        let Some(session_id) = session_id else {
            return plain(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id header");
        };
        let removed = self.sessions.lock().remove(&session_id);
        match removed {
            None => plain(StatusCode::NOT_FOUND, "unknown or closed session"),
            Some(session) => {
                if let (Some(upstream), Strategy::Dedicated(manager)) =
                    (session.upstream, &self.strategy)
                {
                    self.close_dedicated(manager, upstream).await;
                }
                status_only(StatusCode::NO_CONTENT)
            }
        }
    }

    /// The upstream's `initialize` result, fetched once from a session (all upstreams run the
    /// same server), together with the tool annotations its `tools/list` reports.
    async fn upstream_info(&self) -> Result<Arc<UpstreamInfo>, Failure> {
        self.info
            .get_or_try_init(|| async {
                let (info, tools) = match &self.strategy {
                    Strategy::Pooled(pool) => {
                        let mut session = self.acquire(pool).await?;
                        let tools = self.list_tools(&mut session).await;
                        (session.info().clone(), tools)
                    }
                    Strategy::PerRequest(manager) | Strategy::Dedicated(manager) => {
                        let mut session = self.spawn(manager).await?;
                        let tools = self.list_tools(&mut session).await;
                        let info = session.info().clone();
                        manager.destroy(session).await;
                        (info, tools)
                    }
                };
                if let Some(tools) = tools {
                    self.learn_tool_hints(&tools);
                }
                Ok(info)
            })
            .await
            .cloned()
    }

    fn learn_tool_hints(&self, tools_list: &Value) {
        let Some(tools) = tools_list["tools"].as_array() else {
            return;
        };
        let mut hints = self.tool_hints.write();
        for tool in tools {
            if let Some(name) = tool["name"].as_str() {
                let a = &tool["annotations"];
                let safe = a["readOnlyHint"] == Value::Bool(true)
                    || a["idempotentHint"] == Value::Bool(true);
                hints.insert(name.to_string(), safe);
            }
        }
    }

    /// Whether `method` may be sent again after its upstream failed mid-request.
    pub fn is_retryable(&self, method: &str, params: Option<&Value>) -> bool {
        if method != "tools/call" {
            return FORWARDED.contains(&method);
        }
        let Some(name) = params.and_then(|p| p["name"].as_str()) else {
            return false;
        };
        self.tool_hints.read().get(name).copied().unwrap_or(false)
    }

    async fn forward(
        &self,
        method: &str,
        params: Option<&Value>,
        dedicated: Option<Dedicated>,
    ) -> Result<Reply, Failure> {
        match &self.strategy {
            Strategy::Pooled(pool) => {
                let mut retried = false;
                loop {
                    let mut session = self.acquire(pool).await?;
                    match self.send(&mut session, method, params).await {
                        Err(SendError::Session(e))
                            if !retried && self.is_retryable(method, params) =>
                        {
                            self.counters.retries.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(pid = session.pid(), error = %e, method, "upstream failed; retrying once on another session");
                            retried = true;
                            // Poisoned: destroyed, not pooled.
                            drop(session);
                        }
                        other => {
                            let started = Instant::now();
                            drop(session);
                            self.counters
                                .release_nanos
                                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                            return other.map_err(|e| self.upstream_failed(method, e));
                        }
                    }
                }
            }
            Strategy::PerRequest(manager) => {
                let mut session = self.spawn(manager).await?;
                let outcome = self.send(&mut session, method, params).await;
                // Torn down in the background: the client does not wait for the exit.
                let manager = manager.clone();
                tokio::spawn(async move { manager.destroy(session).await });
                outcome.map_err(|e| self.upstream_failed(method, e))
            }
            Strategy::Dedicated(manager) => {
                let Some(upstream) = dedicated else {
                    return Err(Failure::new(
                        StatusCode::BAD_GATEWAY,
                        RpcError::INTERNAL_ERROR,
                        "no upstream for this session",
                    ));
                };
                let mut slot = upstream.lock().await;
                let Some(session) = slot.as_mut() else {
                    return Err(Failure::new(
                        StatusCode::NOT_FOUND,
                        RpcError::INVALID_REQUEST,
                        "the session was closed",
                    ));
                };
                // A request cut off mid-way (its client went away, and the handler with it)
                // leaves the server poisoned, and nothing replaced it then: replace it first.
                if !session.is_usable() {
                    self.replace_dedicated(manager, session).await?;
                }
                let outcome = self.send(session, method, params).await;
                if let (Err(_), false) = (&outcome, session.is_usable()) {
                    // Replace the client's broken server for its next request. If that fails,
                    // the next request tries again before it sends.
                    if let Err(f) = self.replace_dedicated(manager, session).await {
                        tracing::warn!(error = %f.error.message, "replacing a dedicated upstream failed")
                    }
                }
                outcome.map_err(|e| self.upstream_failed(method, e))
            }
        }
    }

    /// The upstream's `tools/list`, bounded by `request_timeout` like every forwarded request:
    /// the first `initialize` waits for it, and an upstream that never answers must not hold
    /// that client (and the session) for good. `None` if it failed or timed out: then no tool
    /// is known to be safe to repeat, the conservative default. A session cut off mid-request
    /// stays poisoned, so the pool does not hand it out again.
    async fn list_tools(&self, session: &mut McpSession) -> Option<Value> {
        let limit = self.config.request_timeout;
        let failed = match tokio::time::timeout(limit, session.request("tools/list", None)).await {
            Ok(Ok(Ok(tools))) => return Some(tools),
            Ok(Ok(Err(rpc))) => format!("{} ({})", rpc.message, rpc.code),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no reply within {limit:?}"),
        };
        tracing::warn!(error = %failed, "tools/list failed; no tool will be retried");
        None
    }

    /// Spawns a server in place of `session`'s and tears the old one down in the background.
    async fn replace_dedicated(
        &self,
        manager: &McpManager,
        session: &mut McpSession,
    ) -> Result<(), Failure> {
        let fresh = self.spawn(manager).await?;
        let broken = std::mem::replace(session, fresh);
        let manager = manager.clone();
        tokio::spawn(async move { manager.destroy(broken).await });
        Ok(())
    }

    /// One request on one session, bounded by `request_timeout`.
    async fn send(
        &self,
        session: &mut McpSession,
        method: &str,
        params: Option<&Value>,
    ) -> Result<Reply, SendError> {
        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.config.request_timeout, session.request(method, params))
            .await
        {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(SendError::Session(e)),
            // The session stays poisoned and is not reused.
            Err(_) => Err(SendError::TimedOut),
        }
    }

    fn upstream_failed(&self, method: &str, e: SendError) -> Failure {
        self.counters
            .upstream_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, method, "upstream request failed");
        match e {
            SendError::TimedOut => Failure::new(
                StatusCode::GATEWAY_TIMEOUT,
                RpcError::INTERNAL_ERROR,
                format!(
                    "the upstream did not answer {method} within {:?}",
                    self.config.request_timeout
                ),
            ),
            SendError::Session(e) => Failure::new(
                StatusCode::BAD_GATEWAY,
                RpcError::INTERNAL_ERROR,
                format!("the upstream failed ({e}); {method} was not retried"),
            ),
        }
    }

    async fn acquire(
        &self,
        pool: &Pool<McpSession>,
    ) -> Result<shadowcat_pool::PoolConnection<McpSession>, Failure> {
        let started = Instant::now();
        let acquired = pool.acquire().await;
        self.counters.acquires.fetch_add(1, Ordering::Relaxed);
        self.counters
            .acquire_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        acquired.map_err(|e| match e {
            PoolError::Timeout(_) => Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                RpcError::INTERNAL_ERROR,
                "no upstream session became available in time",
            ),
            PoolError::Closed => Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                RpcError::INTERNAL_ERROR,
                "the proxy is shutting down",
            ),
            e => {
                tracing::warn!(error = %e, "no upstream session");
                Failure::new(
                    StatusCode::BAD_GATEWAY,
                    RpcError::INTERNAL_ERROR,
                    "could not start an upstream",
                )
            }
        })
    }

    async fn spawn(&self, manager: &McpManager) -> Result<McpSession, Failure> {
        match tokio::time::timeout(self.config.create_timeout, manager.create()).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "starting an upstream failed");
                Err(Failure::new(
                    StatusCode::BAD_GATEWAY,
                    RpcError::INTERNAL_ERROR,
                    "could not start an upstream",
                ))
            }
            Err(_) => Err(Failure::new(
                StatusCode::BAD_GATEWAY,
                RpcError::INTERNAL_ERROR,
                "starting an upstream timed out",
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("no reply within the request timeout")]
    TimedOut,
}

/// The upstream's capabilities that survive pooling: no change notifications or subscriptions
/// (there is no stream to deliver them on, and they belong to one upstream session), no
/// logging level or tasks (state in one upstream session).
pub fn proxied_capabilities(upstream: &Value) -> Value {
    let mut caps = serde_json::Map::new();
    for name in ["tools", "resources", "prompts"] {
        if upstream.get(name).is_some_and(Value::is_object) {
            caps.insert(name.to_string(), json!({}));
        }
    }
    if upstream.get("completions").is_some_and(Value::is_object) {
        caps.insert("completions".to_string(), json!({}));
    }
    Value::Object(caps)
}

fn is_loopback_origin(origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Ok(uri) = origin.parse::<hyper::Uri>() else {
        return false;
    };
    matches!(uri.host(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

fn json_response(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn rpc_error(status: StatusCode, id: Value, error: RpcError) -> Response<Full<Bytes>> {
    json_response(
        status,
        json!({ "jsonrpc": "2.0", "id": id, "error": error }),
    )
}

fn plain(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(message.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

// ===== a Streamable HTTP client =====

/// What went wrong for a [`McpHttpClient`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or the HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    /// Building the request failed.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The proxy answered with something other than a JSON-RPC result.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The body, as text.
        body: String,
    },
    /// The reply was not the expected JSON-RPC shape.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

/// An HTTP reply from the proxy: status and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Mcp-Session-Id` header, if any.
    pub session_id: Option<String>,
    /// The body parsed as JSON (`Null` if empty or not JSON).
    pub body: Value,
}

/// A minimal MCP Streamable HTTP client on one keep-alive connection.
#[derive(Debug)]
pub struct McpHttpClient {
    sender: SendRequest<Full<Bytes>>,
    session_id: Option<String>,
    protocol_version: Option<String>,
    next_id: u64,
}

impl McpHttpClient {
    /// Connects to a proxy at `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(McpHttpClient {
            sender,
            session_id: None,
            protocol_version: None,
            next_id: 1,
        })
    }

    /// The protocol version negotiated at `initialize`.
    pub fn protocol_version(&self) -> Option<&str> {
        self.protocol_version.as_deref()
    }

    /// The session id the proxy assigned at `initialize`.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// Sends `body` as a POST (or another method) with this client's session headers.
    pub async fn send_raw(
        &mut self,
        method: Method,
        body: Bytes,
    ) -> Result<HttpReply, ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(ENDPOINT)
            .header(header::HOST, "127.0.0.1")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream");
        if let Some(id) = &self.session_id {
            req = req.header(SESSION_HEADER, id.as_str());
        }
        if let Some(version) = &self.protocol_version {
            req = req.header("mcp-protocol-version", version.as_str());
        }
        self.sender.ready().await?;
        let resp = self.sender.send_request(req.body(Full::new(body))?).await?;
        let status = resp.status();
        let session_id = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.into_body().collect().await?.to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(HttpReply {
            status,
            session_id,
            body,
        })
    }

    /// Sends one JSON-RPC request; returns the whole HTTP reply.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<HttpReply, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let reply = self
            .send_raw(Method::POST, Bytes::from(body.to_string()))
            .await?;
        if reply.body.get("id").is_some_and(|got| got != &json!(id)) {
            return Err(ClientError::Unexpected(format!(
                "reply id {} for request {id}",
                reply.body["id"]
            )));
        }
        Ok(reply)
    }

    /// Sends one request and returns its `result`, or an error for anything else.
    pub async fn result(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let reply = self.call(method, params).await?;
        match reply.body.get("result") {
            Some(result) if reply.status == StatusCode::OK => Ok(result.clone()),
            _ => Err(ClientError::Status {
                status: reply.status,
                body: reply.body.to_string(),
            }),
        }
    }

    /// `initialize` + `notifications/initialized`; keeps the session id. Returns the result.
    pub async fn initialize(&mut self) -> Result<Value, ClientError> {
        let reply = self
            .call(
                "initialize",
                json!({
                    "protocolVersion": super::mcp_upstream::PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": { "name": "mcp-http-client", "version": "0" },
                }),
            )
            .await?;
        let result = reply.body.get("result").cloned().ok_or_else(|| {
            ClientError::Unexpected(format!("HTTP {}: {}", reply.status, reply.body))
        })?;
        self.session_id = reply.session_id;
        self.protocol_version = result["protocolVersion"].as_str().map(str::to_string);
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let ack = self
            .send_raw(Method::POST, Bytes::from(note.to_string()))
            .await?;
        if ack.status != StatusCode::ACCEPTED {
            return Err(ClientError::Unexpected(format!(
                "notifications/initialized got HTTP {}",
                ack.status
            )));
        }
        Ok(result)
    }

    /// `tools/call echo {message}`; returns the echoed text (without the `"Echo: "` prefix).
    pub async fn echo(&mut self, message: &str) -> Result<String, ClientError> {
        let result = self
            .result(
                "tools/call",
                json!({ "name": "echo", "arguments": { "message": message } }),
            )
            .await?;
        result["content"][0]["text"]
            .as_str()
            .and_then(|t| t.strip_prefix("Echo: "))
            .map(str::to_string)
            .ok_or_else(|| ClientError::Unexpected(result.to_string()))
    }

    /// `DELETE /mcp`: closes the session.
    pub async fn close(&mut self) -> Result<StatusCode, ClientError> {
        let reply = self.send_raw(Method::DELETE, Bytes::new()).await?;
        Ok(reply.status)
    }
}
