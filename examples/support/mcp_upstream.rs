//! A pooled MCP upstream: a real MCP server, `@modelcontextprotocol/server-everything` from the
//! npm registry, running as a stdio subprocess with an initialized session.
//!
//! Shared by `examples/mcp_proxy.rs`, `examples/mcp_bench.rs` and `tests/mcp_proxy.rs` (through
//! `#[path]`). It holds:
//!
//! * [`ServerInstall`]: finds the pinned server in the repository's ignored `.cache/` folder, and
//!   installs it there with `npm install` when it is missing;
//! * [`McpSession`]: the pooled resource, one server process with its stdin and stdout and an
//!   initialized MCP session, speaking newline-delimited JSON-RPC 2.0 (MCP's stdio transport);
//! * [`McpManager`]: the pool's [`Manager`]: spawn and initialize, `is_open`, a `ping` health
//!   check, the reuse rule, and a teardown that reaps the child.
//!
//! The framing is written here with `serde_json` rather than taken from `rmcp` 3.11, the
//! official Rust SDK. `rmcp` was tried first: it talks to this server fine and adds only about
//! 25 s of CPU to a clean `cargo test --no-run`, but its client moves the child process and both
//! pipes into a background task of its own, so the pooled resource would be a handle and not the
//! session. `is_open` could not ask the child whether it has exited (`try_wait`); teardown would
//! be `rmcp`'s fixed graceful shutdown (3 s wait, `SIGTERM`, 3 s wait, kill), longer than the
//! pool's default 5 s `release_timeout` for a hung server and not adjustable; and relaying would
//! re-type every message through `rmcp`'s model, which drops fields it does not know (this
//! server's `execution` in `tools/list`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shadowcat_pool::Manager;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;

// ===== the pinned server =====

/// The npm package of the reference server.
pub const SERVER_PACKAGE: &str = "@modelcontextprotocol/server-everything";
/// The pinned version (also in `.ci/run`).
pub const SERVER_VERSION: &str = "2026.8.31";
/// The MCP protocol version the upstream sessions are initialized with.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Why the server could not be found or installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// `node` is not on `PATH`.
    #[error(
        "`node` was not found on PATH; the MCP tests and examples run the real npm server and \
         need Node.js 18 or later with npm (Debian: `apt-get install nodejs npm`)"
    )]
    NodeMissing,
    /// `npm` is not on `PATH`.
    #[error("`npm` was not found on PATH (Debian: `apt-get install nodejs npm`)")]
    NpmMissing,
    /// `npm install` failed.
    #[error("`npm install {SERVER_PACKAGE}@{SERVER_VERSION}` failed ({0})")]
    NpmFailed(ExitStatus),
    /// The installed package is not the pinned version.
    #[error("{path} holds version {found:?}, expected {SERVER_VERSION}")]
    WrongVersion {
        /// The package.json read.
        path: PathBuf,
        /// The version found there.
        found: Option<String>,
    },
    /// A file system operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// An installed copy of the pinned server.
#[derive(Debug, Clone)]
pub struct ServerInstall {
    dir: PathBuf,
}

impl ServerInstall {
    /// Where the server is cached: `.cache/server-everything-<version>` in the repository
    /// (ignored by git; survives `cargo clean`).
    pub fn default_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cache")
            .join(format!("server-everything-{SERVER_VERSION}"))
    }

    /// The server in [`default_dir`](Self::default_dir), installed first if missing.
    pub fn ensure() -> Result<Self, InstallError> {
        Self::ensure_in(&Self::default_dir())
    }

    /// The server in `dir`, installed first if missing.
    ///
    /// Several processes may call this at once (test binaries run in parallel): each installs
    /// into a private temporary folder beside `dir` and renames it into place; a process that
    /// loses the race discards its copy and uses the winner's.
    pub fn ensure_in(dir: &Path) -> Result<Self, InstallError> {
        if !tool_runs("node") {
            return Err(InstallError::NodeMissing);
        }
        let install = ServerInstall {
            dir: dir.to_path_buf(),
        };
        if install.verify().is_ok() {
            return Ok(install);
        }
        if !tool_runs("npm") {
            return Err(InstallError::NpmMissing);
        }
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|source| InstallError::Io {
            what: format!("creating {}", parent.display()),
            source,
        })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = parent.join(format!(
            ".install-{}-{}-{nanos}",
            SERVER_VERSION,
            std::process::id()
        ));
        tracing::info!(dir = %dir.display(), "installing {SERVER_PACKAGE}@{SERVER_VERSION} with npm");
        eprintln!(
            "installing {SERVER_PACKAGE}@{SERVER_VERSION} into {}",
            dir.display()
        );
        let status = std::process::Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&tmp)
            .args(["--no-audit", "--no-fund", "--loglevel=error"])
            .arg(format!("{SERVER_PACKAGE}@{SERVER_VERSION}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|source| InstallError::Io {
                what: "running npm".into(),
                source,
            })?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(InstallError::NpmFailed(status));
        }
        if let Err(e) = std::fs::rename(&tmp, dir) {
            // Another process won the race (or left a broken copy, which `verify` reports).
            let _ = std::fs::remove_dir_all(&tmp);
            if install.verify().is_err() {
                return Err(InstallError::Io {
                    what: format!("moving the install into {}", dir.display()),
                    source: e,
                });
            }
        }
        install.verify()?;
        Ok(install)
    }

    /// The folder the server is installed in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn package_dir(&self) -> PathBuf {
        self.dir.join("node_modules").join(SERVER_PACKAGE)
    }

    /// The server's entry point (`mcp-server-everything` is `node dist/index.js`).
    pub fn entry_point(&self) -> PathBuf {
        self.package_dir().join("dist").join("index.js")
    }

    /// Checks that the pinned version is installed.
    pub fn verify(&self) -> Result<(), InstallError> {
        let path = self.package_dir().join("package.json");
        let found = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|v| v["version"].as_str().map(str::to_string));
        if found.as_deref() == Some(SERVER_VERSION) && self.entry_point().is_file() {
            Ok(())
        } else {
            Err(InstallError::WrongVersion { path, found })
        }
    }

    /// A manager that runs this server in stdio mode: `node <entry point> stdio`. Node is run
    /// directly (not through the `#!/usr/bin/env node` shim), so the child's pid is the server's.
    pub fn manager(&self) -> McpManager {
        McpManager::new(
            "node",
            vec![self.entry_point().into_os_string(), OsString::from("stdio")],
        )
    }
}

fn tool_runs(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

// ===== the wire format =====

/// A JSON-RPC 2.0 error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// The error code.
    pub code: i64,
    /// A short description.
    pub message: String,
    /// Optional details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// JSON-RPC: the receiver could not parse the message.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON-RPC: the message was not a valid request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// JSON-RPC: no such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// JSON-RPC: the receiver failed internally.
    pub const INTERNAL_ERROR: i64 = -32603;

    /// An error with no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Whether this error means the upstream broke or lost step with us, rather than answering
    /// a well-formed request it rejected: it could not parse what we sent (`-32700`), did not
    /// see a valid request in it (`-32600`), or failed internally (`-32603`). A session that
    /// answers one of these is not reused. Errors about the request itself (`-32601` method not
    /// found, `-32602` invalid params, MCP's own codes such as `-32002` resource not found) are
    /// relayed to the client and the session stays in the pool.
    pub fn is_protocol_error(&self) -> bool {
        matches!(
            self.code,
            Self::PARSE_ERROR | Self::INVALID_REQUEST | Self::INTERNAL_ERROR
        )
    }
}

/// What a request got back: its `result`, or the JSON-RPC error the server answered with.
pub type Reply = Result<Value, RpcError>;

#[derive(Serialize)]
struct OutRequest<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
}

#[derive(Serialize)]
struct OutNotification<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
}

/// Any message the server writes: a response, a notification or a request of its own.
#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<RpcError>,
}

/// The longest line read from a server (a bound on memory, not a protocol limit).
pub const MAX_LINE_BYTES: u64 = 16 << 20;

// ===== the session =====

/// What can go wrong talking to an upstream server.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Spawning it, or writing to or reading from its pipes, failed (a write to a closed pipe
    /// lands here as `BrokenPipe`).
    #[error("upstream I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// It closed its stdout: it exited or crashed.
    #[error("the upstream closed its stdout")]
    Closed,
    /// It has exited.
    #[error("the upstream exited ({0})")]
    Exited(ExitStatus),
    /// An earlier call was interrupted mid-flight, or failed: the pipes may be out of step.
    #[error("the session is out of step after an earlier failure")]
    Poisoned,
    /// It broke JSON-RPC framing: an unparsable line, a reply to another request, a reply with
    /// neither result nor error, or a line over [`MAX_LINE_BYTES`].
    #[error("upstream protocol error: {0}")]
    Protocol(String),
    /// It answered `initialize` or the health check with a JSON-RPC error.
    #[error("upstream answered {method} with error {}: {}", .error.code, .error.message)]
    Rpc {
        /// The method called.
        method: &'static str,
        /// The error.
        error: RpcError,
    },
    /// The health check got no reply in time.
    #[error("no reply to ping within {0:?}")]
    CheckTimedOut(Duration),
}

/// What the upstream said about itself in its `initialize` result.
#[derive(Debug, Clone)]
pub struct UpstreamInfo {
    /// The protocol version it agreed to.
    pub protocol_version: String,
    /// The whole `initialize` result (capabilities, serverInfo, instructions).
    pub result: Value,
}

/// What a [`McpManager`] reports to a test or a demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamEvent {
    /// A server was spawned and initialized.
    Ready {
        /// Its pid.
        pid: u32,
    },
    /// A request was written to a server's stdin (the reply is not read yet).
    Sent {
        /// The server's pid.
        pid: u32,
        /// The request's method.
        method: String,
    },
    /// A server was torn down and reaped.
    TornDown {
        /// Its pid.
        pid: u32,
        /// How.
        how: Teardown,
    },
}

/// How a server was torn down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// It had exited already, or exited within the grace period once its stdin closed.
    Exited,
    /// It did not exit in time and was killed.
    Killed,
}

/// The pooled resource: one MCP server process with an initialized session.
#[derive(Debug)]
pub struct McpSession {
    /// `None` once torn down (see `Drop`).
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pid: u32,
    next_id: u64,
    /// Set while a request is in flight and left set if it does not finish (an error, or the
    /// caller's future was dropped): the next line on stdout may belong to that request.
    poisoned: bool,
    /// Set when the server answered with a protocol error ([`RpcError::is_protocol_error`]).
    broken: bool,
    info: Arc<UpstreamInfo>,
    events: Option<mpsc::UnboundedSender<UpstreamEvent>>,
    line: String,
    counts: Arc<UpstreamCounts>,
}

impl Drop for McpSession {
    /// A session dropped without `destroy` (a create cut off by its timeout or by the pool
    /// closing, a runtime shutting down): kill the process and reap it in a task, so it leaves
    /// no zombie. Without a runtime, `kill_on_drop` kills it and tokio reaps it later.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let counts = self.counts.clone();
        let pid = self.pid;
        runtime.spawn(async move {
            let _ = child.kill().await;
            counts.reaped_one();
            tracing::debug!(pid, "upstream dropped without teardown: killed and reaped");
        });
    }
}

impl McpSession {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What the server said in its `initialize` result.
    pub fn info(&self) -> &Arc<UpstreamInfo> {
        &self.info
    }

    /// Whether the pool may hand this session out again: no failed or interrupted call, no
    /// protocol error, stdin open, and the process has not exited (`try_wait` is a
    /// non-blocking `waitpid`).
    pub fn is_usable(&mut self) -> bool {
        !self.poisoned
            && !self.broken
            && self.stdin.is_some()
            && self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends one request and reads until its reply, skipping the server's notifications and
    /// refusing its own requests (the proxy offers no client capabilities; `ping` is answered).
    ///
    /// Not cancel-safe by nature: a dropped call leaves the session poisoned, and the pool does
    /// not reuse it.
    pub async fn request(
        &mut self,
        method: &str,
        params: Option<&Value>,
    ) -> Result<Reply, SessionError> {
        if self.poisoned {
            return Err(SessionError::Poisoned);
        }
        self.poisoned = true;
        let id = self.next_id;
        self.next_id += 1;
        let frame = OutRequest {
            jsonrpc: "2.0",
            id,
            method,
            params,
        };
        self.write_frame(&frame).await?;
        if let Some(events) = &self.events {
            let _ = events.send(UpstreamEvent::Sent {
                pid: self.pid,
                method: method.to_string(),
            });
        }
        loop {
            let msg = self.read_message().await?;
            match (msg.method, msg.id) {
                (Some(method), None) => {
                    tracing::trace!(pid = self.pid, %method, "upstream notification skipped");
                }
                (Some(method), Some(their_id)) => {
                    self.answer_server_request(&method, their_id).await?
                }
                (None, Some(Value::Number(n))) if n.as_u64() == Some(id) => {
                    self.poisoned = false;
                    return match (msg.result, msg.error) {
                        (_, Some(error)) => {
                            if error.is_protocol_error() {
                                self.broken = true;
                            }
                            Ok(Err(error))
                        }
                        (Some(result), None) => Ok(Ok(result)),
                        (None, None) => {
                            self.broken = true;
                            Err(SessionError::Protocol(
                                "a reply with neither result nor error".into(),
                            ))
                        }
                    };
                }
                (None, other) => {
                    return Err(SessionError::Protocol(format!(
                        "a reply to id {other:?} while waiting for {id}"
                    )))
                }
            }
        }
    }

    /// Sends a notification (no reply).
    pub async fn notify(
        &mut self,
        method: &str,
        params: Option<&Value>,
    ) -> Result<(), SessionError> {
        if self.poisoned {
            return Err(SessionError::Poisoned);
        }
        self.poisoned = true;
        let frame = OutNotification {
            jsonrpc: "2.0",
            method,
            params,
        };
        self.write_frame(&frame).await?;
        self.poisoned = false;
        Ok(())
    }

    async fn write_frame(&mut self, frame: &impl Serialize) -> Result<(), SessionError> {
        let mut bytes =
            serde_json::to_vec(frame).map_err(|e| SessionError::Protocol(e.to_string()))?;
        bytes.push(b'\n');
        let stdin = self.stdin.as_mut().ok_or(SessionError::Closed)?;
        stdin.write_all(&bytes).await?;
        stdin.flush().await?;
        Ok(())
    }

    async fn read_message(&mut self) -> Result<Incoming, SessionError> {
        loop {
            self.line.clear();
            let n = (&mut self.stdout)
                .take(MAX_LINE_BYTES + 1)
                .read_line(&mut self.line)
                .await?;
            if n == 0 {
                return Err(SessionError::Closed);
            }
            if n as u64 > MAX_LINE_BYTES {
                return Err(SessionError::Protocol("a line over the size limit".into()));
            }
            let line = self.line.trim();
            if line.is_empty() {
                continue;
            }
            return serde_json::from_str(line)
                .map_err(|e| SessionError::Protocol(format!("unparsable line: {e}")));
        }
    }

    async fn answer_server_request(&mut self, method: &str, id: Value) -> Result<(), SessionError> {
        let reply = if method == "ping" {
            json!({ "jsonrpc": "2.0", "id": id, "result": {} })
        } else {
            tracing::debug!(pid = self.pid, %method, "refusing a request from the upstream");
            json!({ "jsonrpc": "2.0", "id": id, "error": RpcError::new(
                RpcError::METHOD_NOT_FOUND,
                format!("{method} is not supported by this client"),
            ) })
        };
        self.write_frame(&reply).await
    }

    /// Waits until the process exits (and reaps it). For tests that kill a server from outside.
    pub async fn wait_for_exit(&mut self) -> std::io::Result<ExitStatus> {
        match self.child.as_mut() {
            Some(child) => child.wait().await,
            None => Err(std::io::Error::other("already torn down")),
        }
    }
}

// ===== the manager =====

/// Counters a [`McpManager`] keeps; shared, so they stay readable after the manager moves into
/// a pool.
#[derive(Debug, Default)]
pub struct UpstreamCounts {
    /// Servers spawned.
    pub spawned: AtomicU64,
    /// Servers torn down and reaped.
    pub reaped: AtomicU64,
    /// The most servers alive (spawned, not yet reaped) at any one time.
    pub max_alive: AtomicU64,
    /// Health checks that timed out.
    pub check_timeouts: AtomicU64,
    /// Notified each time a server is reaped.
    pub reaped_event: tokio::sync::Notify,
}

impl UpstreamCounts {
    /// Servers spawned and not yet reaped.
    pub fn alive(&self) -> u64 {
        self.spawned.load(Ordering::SeqCst) - self.reaped.load(Ordering::SeqCst)
    }

    fn spawned_one(&self) {
        let now =
            self.spawned.fetch_add(1, Ordering::SeqCst) + 1 - self.reaped.load(Ordering::SeqCst);
        self.max_alive.fetch_max(now, Ordering::SeqCst);
    }

    fn reaped_one(&self) {
        self.reaped.fetch_add(1, Ordering::SeqCst);
        self.reaped_event.notify_waiters();
    }

    /// Waits until every spawned server has been reaped, at most `limit`. Returns whether it
    /// got there.
    pub async fn wait_all_reaped(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let reaped = self.reaped_event.notified();
            if self.alive() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, reaped).await.is_err() {
                return self.alive() == 0;
            }
        }
    }
}

/// Spawns, initializes, checks and tears down [`McpSession`]s. Cheap to clone (the counters are
/// shared).
#[derive(Debug, Clone)]
pub struct McpManager {
    program: PathBuf,
    args: Vec<OsString>,
    check_timeout: Duration,
    exit_grace: Duration,
    inherit_stderr: bool,
    counts: Arc<UpstreamCounts>,
    events: Option<mpsc::UnboundedSender<UpstreamEvent>>,
}

impl McpManager {
    /// A manager that runs `program args...` for each server.
    pub fn new(program: impl Into<PathBuf>, args: Vec<OsString>) -> Self {
        McpManager {
            program: program.into(),
            args,
            check_timeout: Duration::from_secs(1),
            exit_grace: Duration::from_millis(500),
            inherit_stderr: false,
            counts: Arc::default(),
            events: None,
        }
    }

    /// How long the health check waits for the reply to `ping`. Default: 1 s.
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// How long teardown waits for the server to exit once its stdin is closed, before killing
    /// it. Default: 500 ms.
    pub fn exit_grace(mut self, grace: Duration) -> Self {
        self.exit_grace = grace;
        self
    }

    /// Lets the servers write to this process's stderr (default: discarded; the reference server
    /// prints a banner on every start).
    pub fn inherit_stderr(mut self, inherit: bool) -> Self {
        self.inherit_stderr = inherit;
        self
    }

    /// Reports spawns, requests written and teardowns on `tx`.
    pub fn with_events(mut self, tx: mpsc::UnboundedSender<UpstreamEvent>) -> Self {
        self.events = Some(tx);
        self
    }

    /// The counters (shared with every clone).
    pub fn counts(&self) -> Arc<UpstreamCounts> {
        self.counts.clone()
    }

    async fn initialize(&self, session: &mut McpSession) -> Result<(), SessionError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "shadowcat-pool-mcp-proxy", "version": env!("CARGO_PKG_VERSION") },
        });
        let result = session
            .request("initialize", Some(&params))
            .await?
            .map_err(|error| SessionError::Rpc {
                method: "initialize",
                error,
            })?;
        let protocol_version = result["protocolVersion"]
            .as_str()
            .ok_or_else(|| {
                SessionError::Protocol("initialize result without protocolVersion".into())
            })?
            .to_string();
        session.info = Arc::new(UpstreamInfo {
            protocol_version,
            result,
        });
        session.notify("notifications/initialized", None).await
    }
}

impl Manager for McpManager {
    type Resource = McpSession;
    type Error = SessionError;

    async fn create(&self) -> Result<McpSession, SessionError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if self.inherit_stderr {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            // A safety net only: `destroy` reaps explicitly. If a create or teardown future is
            // dropped (a create timeout, runtime shutdown), tokio kills and reaps the child.
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or(SessionError::Closed)?;
        let stdin = child.stdin.take().ok_or(SessionError::Closed)?;
        let stdout = child.stdout.take().ok_or(SessionError::Closed)?;
        self.counts.spawned_one();

        let mut session = McpSession {
            child: Some(child),
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            pid,
            next_id: 1,
            poisoned: false,
            broken: false,
            info: Arc::new(UpstreamInfo {
                protocol_version: String::new(),
                result: Value::Null,
            }),
            events: self.events.clone(),
            line: String::new(),
            counts: self.counts.clone(),
        };
        if let Err(e) = self.initialize(&mut session).await {
            tracing::warn!(pid, error = %e, "initializing the upstream failed");
            self.destroy(session).await;
            return Err(e);
        }
        tracing::debug!(pid, "upstream MCP server ready");

        if let Some(events) = &self.events {
            let _ = events.send(UpstreamEvent::Ready { pid });
        }
        Ok(session)
    }

    fn is_open(&self, session: &mut McpSession) -> bool {
        session.is_usable()
    }

    async fn check(&self, session: &mut McpSession) -> Result<(), SessionError> {
        if let Some(child) = session.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                return Err(SessionError::Exited(status));
            }
        }
        match tokio::time::timeout(self.check_timeout, session.request("ping", None)).await {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(error))) => Err(SessionError::Rpc {
                method: "ping",
                error,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // The request stays poisoned; the pool destroys the session next.
                self.counts.check_timeouts.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(pid = session.pid, timeout = ?self.check_timeout, "upstream did not answer ping");
                Err(SessionError::CheckTimedOut(self.check_timeout))
            }
        }
    }

    fn is_reusable(&self, session: &mut McpSession) -> bool {
        session.is_usable()
    }

    async fn destroy(&self, mut session: McpSession) {
        // MCP's stdio shutdown: close the server's stdin and let it exit; kill it if it does not.
        drop(session.stdin.take());
        let Some(mut child) = session.child.take() else {
            return;
        };
        let how = match tokio::time::timeout(self.exit_grace, child.wait()).await {
            Ok(Ok(_status)) => Teardown::Exited,
            Ok(Err(e)) => {
                tracing::warn!(pid = session.pid, error = %e, "waiting for the upstream failed; killing it");
                let _ = child.kill().await;
                Teardown::Killed
            }
            Err(_) => {
                // `kill` sends SIGKILL and then waits, so the child is reaped: no zombie.
                if let Err(e) = child.kill().await {
                    tracing::warn!(pid = session.pid, error = %e, "killing the upstream failed");
                }
                Teardown::Killed
            }
        };
        self.counts.reaped_one();

        tracing::debug!(pid = session.pid, ?how, "upstream torn down");
        if let Some(events) = &self.events {
            let _ = events.send(UpstreamEvent::TornDown {
                pid: session.pid,
                how,
            });
        }
    }
}
