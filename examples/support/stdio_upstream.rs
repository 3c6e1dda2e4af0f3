//! A pooled stdio subprocess upstream: child processes that speak newline-delimited JSON-RPC 2.0
//! on stdin/stdout, managed by a [`shadowcat_pool::Manager`].
//!
//! Shared by `examples/stdio_pool.rs` and `tests/stdio_pool.rs` (through `#[path]`). It holds
//! both halves:
//!
//! * the **child server** ([`serve`]): a tiny single-threaded JSON-RPC server that answers
//!   `ping`, `echo` and `pid`, each reply carrying the child's pid. Two extra methods exist to
//!   simulate faults: `freeze` (reply, then never read stdin again: a wedged child) and `exit`
//!   (exit at once without replying: a crash mid-request).
//! * the **parent side**: [`StdioChild`] (the pooled resource: the child, its stdin, its stdout)
//!   and [`StdioManager`] (spawn, health check with a timeout, reuse check, teardown).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shadowcat_pool::Manager;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;

// ===== the wire format =====

/// A JSON-RPC 2.0 request, one per line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// Matches the reply to the request.
    pub id: u64,
    /// `ping`, `echo`, `pid`, `freeze` or `exit`.
    pub method: String,
    /// Method parameters (`echo` returns them).
    #[serde(default)]
    pub params: Value,
}

/// A JSON-RPC 2.0 reply, one per line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The request's id (`null` when the request could not be parsed).
    pub id: Option<u64>,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

/// A JSON-RPC 2.0 error object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcError {
    /// The error code (-32700 parse error, -32601 method not found).
    pub code: i64,
    /// A short description.
    pub message: String,
}

// ===== the child server =====

/// Runs the child server on this process's stdin/stdout until stdin closes.
///
/// Single-threaded blocking I/O on purpose: while idle the child sits in `read(2)`, so a signal
/// that kills it can never race with a reply.
pub fn serve() -> std::io::Result<()> {
    let pid = std::process::id();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (reply, then) = match serde_json::from_str::<Request>(&line) {
            Err(e) => (
                Reply::error(None, -32700, format!("parse error: {e}")),
                Then::Continue,
            ),
            Ok(req) => match req.method.as_str() {
                "ping" => (
                    Reply::ok(req.id, json!({ "pong": true, "pid": pid })),
                    Then::Continue,
                ),
                "pid" => (Reply::ok(req.id, json!({ "pid": pid })), Then::Continue),
                "echo" => (
                    Reply::ok(req.id, json!({ "echo": req.params, "pid": pid })),
                    Then::Continue,
                ),
                "freeze" => (
                    Reply::ok(req.id, json!({ "frozen": true, "pid": pid })),
                    Then::Freeze,
                ),
                // A crash mid-request: no reply at all.
                "exit" => std::process::exit(3),
                other => (
                    Reply::error(Some(req.id), -32601, format!("method not found: {other}")),
                    Then::Continue,
                ),
            },
        };
        serde_json::to_writer(&mut stdout, &reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
        if let Then::Freeze = then {
            // Wedged: alive, stdin open, never reading or answering again.
            loop {
                std::thread::park();
            }
        }
    }
    Ok(())
}

enum Then {
    Continue,
    Freeze,
}

impl Reply {
    fn ok(id: u64, result: Value) -> Self {
        Reply {
            jsonrpc: "2.0".into(),
            id: Some(id),
            result: Some(result),
            error: None,
        }
    }

    fn error(id: Option<u64>, code: i64, message: String) -> Self {
        Reply {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(RpcError { code, message }),
        }
    }
}

// ===== the parent side =====

/// What can go wrong talking to a child.
#[derive(Debug)]
pub enum StdioError {
    /// Spawning, writing or reading failed.
    Io(std::io::Error),
    /// The child closed its stdout (it exited or crashed).
    Eof,
    /// The child has exited.
    Exited(ExitStatus),
    /// An earlier call was interrupted mid-flight: the pipes may be out of step.
    Poisoned,
    /// The reply was not valid JSON-RPC, or answered another request.
    Protocol(String),
    /// The child answered with a JSON-RPC error.
    Rpc(RpcError),
    /// The health check got no `pong` in time.
    CheckTimedOut(Duration),
}

impl std::fmt::Display for StdioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StdioError::Io(e) => write!(f, "child I/O failed: {e}"),
            StdioError::Eof => f.write_str("the child closed its stdout"),
            StdioError::Exited(status) => write!(f, "the child exited ({status})"),
            StdioError::Poisoned => f.write_str("an earlier call was interrupted"),
            StdioError::Protocol(msg) => write!(f, "protocol error: {msg}"),
            StdioError::Rpc(e) => write!(f, "JSON-RPC error {}: {}", e.code, e.message),
            StdioError::CheckTimedOut(d) => write!(f, "no pong within {d:?}"),
        }
    }
}

impl std::error::Error for StdioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StdioError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for StdioError {
    fn from(e: std::io::Error) -> Self {
        StdioError::Io(e)
    }
}

/// The pooled resource: one child process with its stdin and stdout.
#[derive(Debug)]
pub struct StdioChild {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pid: u32,
    next_id: u64,
    /// Set while a call is in flight and left set if it does not finish (an error, or the
    /// caller's future was dropped): the next reply on stdout may belong to that call.
    poisoned: bool,
    line: String,
}

impl StdioChild {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until the child process exits (and reaps it). For tests and demos that kill a
    /// child from outside and need to know it is gone.
    pub async fn wait_for_exit(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Sends one request and reads its reply. Not cancel-safe by nature (a reply may be left in
    /// the pipe), so an interrupted call poisons the child and the pool will not reuse it.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, StdioError> {
        if self.poisoned {
            return Err(StdioError::Poisoned);
        }
        self.poisoned = true;
        let id = self.next_id;
        self.next_id += 1;
        let mut frame = serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "id": id, "method": method, "params": params,
        }))
        .map_err(|e| StdioError::Protocol(e.to_string()))?;
        frame.push(b'\n');
        let stdin = self.stdin.as_mut().ok_or(StdioError::Eof)?;
        stdin.write_all(&frame).await?;
        stdin.flush().await?;
        self.line.clear();
        if self.stdout.read_line(&mut self.line).await? == 0 {
            return Err(StdioError::Eof);
        }
        let reply: Reply = serde_json::from_str(&self.line)
            .map_err(|e| StdioError::Protocol(format!("bad reply: {e}")))?;
        if reply.id != Some(id) {
            return Err(StdioError::Protocol(format!(
                "reply id {:?} for request {id}",
                reply.id
            )));
        }
        self.poisoned = false;
        match (reply.result, reply.error) {
            (_, Some(e)) => Err(StdioError::Rpc(e)),
            (Some(result), None) => Ok(result),
            (None, None) => Err(StdioError::Protocol("reply without result".into())),
        }
    }
}

/// How a child was torn down, reported on [`StdioManager::with_teardown_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// It had already exited (or exited once stdin closed, within the grace period).
    Exited,
    /// It ignored stdin closing and was killed.
    Killed,
}

/// Counters a [`StdioManager`] keeps.
#[derive(Debug, Default)]
pub struct StdioCounts {
    /// Children spawned.
    pub spawned: AtomicU64,
    /// Health checks that timed out.
    pub check_timeouts: AtomicU64,
    /// Children reaped by `destroy`.
    pub reaped: AtomicU64,
}

/// Spawns, checks and tears down [`StdioChild`]ren.
#[derive(Debug)]
pub struct StdioManager {
    program: PathBuf,
    args: Vec<String>,
    check_timeout: Duration,
    exit_grace: Duration,
    counts: Arc<StdioCounts>,
    teardown_events: Option<mpsc::UnboundedSender<(u32, Teardown)>>,
}

impl StdioManager {
    /// A manager that runs `program args...` for each child.
    pub fn new(program: impl Into<PathBuf>, args: &[&str]) -> Self {
        StdioManager {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            check_timeout: Duration::from_secs(1),
            exit_grace: Duration::from_millis(200),
            counts: Arc::default(),
            teardown_events: None,
        }
    }

    /// How long the health check waits for `pong`. Default: 1 s.
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// How long teardown waits for the child to exit after stdin closes, before killing it.
    /// Default: 200 ms.
    pub fn exit_grace(mut self, grace: Duration) -> Self {
        self.exit_grace = grace;
        self
    }

    /// Reports `(pid, how)` each time a child has been torn down and reaped.
    pub fn with_teardown_events(mut self, tx: mpsc::UnboundedSender<(u32, Teardown)>) -> Self {
        self.teardown_events = Some(tx);
        self
    }

    /// The manager's counters (shared; stays valid after the manager moves into a pool).
    pub fn counts(&self) -> Arc<StdioCounts> {
        self.counts.clone()
    }
}

impl Manager for StdioManager {
    type Resource = StdioChild;
    type Error = StdioError;

    async fn create(&self) -> Result<StdioChild, StdioError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // A safety net only: `destroy` reaps explicitly. If a teardown future is dropped
            // (runtime shutdown), tokio still kills and reaps the child in the background.
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or(StdioError::Eof)?;
        let stdin = child.stdin.take().ok_or(StdioError::Eof)?;
        let stdout = child.stdout.take().ok_or(StdioError::Eof)?;
        self.counts.spawned.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pid, "spawned stdio child");
        Ok(StdioChild {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            pid,
            next_id: 1,
            poisoned: false,
            line: String::new(),
        })
    }

    async fn check(&self, child: &mut StdioChild) -> Result<(), StdioError> {
        if let Some(status) = child.child.try_wait()? {
            return Err(StdioError::Exited(status));
        }
        match tokio::time::timeout(self.check_timeout, child.call("ping", Value::Null)).await {
            Ok(Ok(_pong)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // The call stays poisoned; the pool destroys the child next.
                self.counts.check_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(pid = child.pid, timeout = ?self.check_timeout, "stdio child did not answer ping");
                Err(StdioError::CheckTimedOut(self.check_timeout))
            }
        }
    }

    fn is_reusable(&self, child: &mut StdioChild) -> bool {
        // Not if a call was interrupted, not if unread bytes sit in the pipe (out of step), and
        // not if the process has exited (`try_wait` is a non-blocking `waitpid`).
        !child.poisoned
            && child.stdin.is_some()
            && child.stdout.buffer().is_empty()
            && matches!(child.child.try_wait(), Ok(None))
    }

    async fn destroy(&self, mut child: StdioChild) {
        // Close stdin: a healthy child sees EOF and exits on its own.
        drop(child.stdin.take());
        let how = match tokio::time::timeout(self.exit_grace, child.child.wait()).await {
            Ok(Ok(_status)) => Teardown::Exited,
            Ok(Err(e)) => {
                tracing::warn!(pid = child.pid, error = %e, "waiting for stdio child failed; killing it");
                let _ = child.child.kill().await;
                Teardown::Killed
            }
            Err(_) => {
                // `kill` sends SIGKILL and then waits, so the child is reaped: no zombie.
                if let Err(e) = child.child.kill().await {
                    tracing::warn!(pid = child.pid, error = %e, "killing stdio child failed");
                }
                Teardown::Killed
            }
        };
        self.counts.reaped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pid = child.pid, ?how, "stdio child torn down");
        if let Some(tx) = &self.teardown_events {
            let _ = tx.send((child.pid, how));
        }
    }
}
