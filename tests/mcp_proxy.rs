#![cfg(not(shadowcat_loom))]
//! End to end against a real MCP server nobody here wrote: `@modelcontextprotocol/server-everything`
//! (pinned; installed from npm into `.cache/` on first use, so these tests need Node.js and npm),
//! pooled behind the Streamable HTTP proxy of `examples/support/mcp_proxy.rs`, driven by real HTTP
//! clients on loopback.
//!
//! The tests run one at a time (they inspect this process's children in `/proc`). They
//! synchronise on events from the upstream manager (a server ready, a request written to a
//! server's stdin, a server torn down), never on sleeps. A server is made to hang with `SIGSTOP`
//! and killed with `SIGKILL`, from outside, as a crash would.

#[path = "support/procs.rs"]
mod procs;
use procs::{assert_gone, children_of_this_process};

#[allow(dead_code)]
#[path = "../examples/support/mcp_proxy.rs"]
mod mcp_proxy;
#[allow(dead_code)]
#[path = "../examples/support/mcp_upstream.rs"]
mod mcp_upstream;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use mcp_proxy::{McpHttpClient, McpProxy, ProxyConfig, StrategyKind};
use mcp_upstream::{McpManager, ServerInstall, Teardown, UpstreamEvent};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Turns a hang into a failure; far above what a passing test needs.
const HANG_GUARD: Duration = Duration::from_secs(90);

/// One test at a time: each checks that it leaves no child process behind.
static SERIAL: Mutex<()> = Mutex::new(());

fn run(test: impl std::future::Future<Output = ()>) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let install = install();
    assert!(install.verify().is_ok());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            tokio::time::timeout(HANG_GUARD, test)
                .await
                .expect("the test hung")
        });
}

/// The pinned server, installed once per test binary (and once per machine: it is cached).
fn install() -> &'static ServerInstall {
    static INSTALL: OnceLock<ServerInstall> = OnceLock::new();
    INSTALL.get_or_init(|| ServerInstall::ensure().unwrap_or_else(|e| panic!("{e}")))
}

/// A proxy serving on an ephemeral loopback port, with the upstream manager's events.
struct Harness {
    proxy: Arc<McpProxy>,
    addr: SocketAddr,
    server: JoinHandle<()>,
    events: mpsc::UnboundedReceiver<UpstreamEvent>,
    /// Every event received so far.
    seen: Vec<UpstreamEvent>,
}

async fn start(config: ProxyConfig, tune: impl FnOnce(McpManager) -> McpManager) -> Harness {
    start_on(install().manager(), StrategyKind::Pooled, config, tune).await
}

/// [`start`] with another upstream than the pinned server, or another strategy.
async fn start_on(
    upstream: McpManager,
    strategy: StrategyKind,
    config: ProxyConfig,
    tune: impl FnOnce(McpManager) -> McpManager,
) -> Harness {
    let (tx, events) = mpsc::unbounded_channel();
    let manager = tune(upstream.with_events(tx));
    let proxy = McpProxy::new(manager, config, strategy).expect("valid options");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound");
    let server = proxy.clone().serve(listener);
    Harness {
        proxy,
        addr,
        server,
        events,
        seen: Vec::new(),
    }
}

fn config(max_upstreams: usize) -> ProxyConfig {
    ProxyConfig {
        max_upstreams,
        // Generous: no test relies on these; they only turn a hang into a failure. Starting
        // `node` counts against `create_timeout`, and four start at once on two loaded cores.
        acquire_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(30),
        create_timeout: Duration::from_secs(60),
        ..ProxyConfig::default()
    }
}

impl Harness {
    async fn client(&self) -> McpHttpClient {
        let mut client = McpHttpClient::connect(self.addr)
            .await
            .expect("connect to proxy");
        client.initialize().await.expect("initialize");
        client
    }

    /// Moves the events already sent into `seen`.
    fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
    }

    /// The first event, seen before or still to come, that `pick` selects.
    async fn wait_for<T>(&mut self, mut pick: impl FnMut(&UpstreamEvent) -> Option<T>) -> T {
        if let Some(found) = self.seen.iter().find_map(&mut pick) {
            return found;
        }
        self.wait_new(pick).await
    }

    /// The first event not received yet that `pick` selects.
    async fn wait_new<T>(&mut self, mut pick: impl FnMut(&UpstreamEvent) -> Option<T>) -> T {
        loop {
            let event = self.events.recv().await.expect("manager alive");
            let found = pick(&event);
            self.seen.push(event);
            if let Some(found) = found {
                return found;
            }
        }
    }

    /// The first server ready whose pid is not in `except`.
    async fn ready(&mut self, except: &[u32]) -> u32 {
        self.wait_for(|e| match e {
            UpstreamEvent::Ready { pid } if !except.contains(pid) => Some(*pid),
            _ => None,
        })
        .await
    }

    /// Waits until a request for `method` has been written to `pid`'s stdin, not counting
    /// events already in `seen` (call [`drain`](Self::drain) before starting the request).
    async fn sent(&mut self, pid: u32, method: &str) {
        self.wait_new(|e| match e {
            UpstreamEvent::Sent { pid: p, method: m } if *p == pid && m == method => Some(()),
            _ => None,
        })
        .await
    }

    /// Waits until `pid` has been torn down; returns how.
    async fn torn_down(&mut self, pid: u32) -> Teardown {
        self.wait_for(|e| match e {
            UpstreamEvent::TornDown { pid: p, how } if *p == pid => Some(*how),
            _ => None,
        })
        .await
    }

    fn spawned(&self) -> u64 {
        self.proxy.upstream_counts().spawned.load(Ordering::SeqCst)
    }

    /// Closes everything and checks that no server process is left, running or zombie.
    async fn close_and_assert_clean(self) {
        self.server.abort();
        assert!(
            self.proxy.shutdown(HANG_GUARD).await,
            "some upstream was never reaped"
        );
        assert_eq!(
            children_of_this_process(),
            Vec::<u32>::new(),
            "processes left after close"
        );
        let counts = self.proxy.upstream_counts();
        assert_eq!(
            counts.reaped.load(Ordering::SeqCst),
            counts.spawned.load(Ordering::SeqCst)
        );
    }
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// `clients` concurrent clients send `total` echo calls between them; every reply must echo its
/// own request. Each completed call bumps `done` and notifies `progress`.
async fn echo_load(
    h: &Harness,
    clients: u64,
    total: u64,
    done: Arc<AtomicU64>,
    progress: Arc<tokio::sync::Notify>,
) {
    let start = Arc::new(tokio::sync::Barrier::new(clients as usize));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = h.client().await;
        let (start, done, progress) = (start.clone(), done.clone(), progress.clone());
        let n = total / clients + u64::from(c < total % clients);
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            for i in 0..n {
                let message = format!("client {c} call {i} nonce {}", fastrand::u64(..));
                let echoed = client.echo(&message).await.expect("echo call");
                assert_eq!(echoed, message, "a reply does not match its request");
                done.fetch_add(1, Ordering::SeqCst);
                progress.notify_waiters();
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
}

// ===== the tests =====

#[test]
fn thousand_echo_calls_from_100_clients_through_4_upstreams() {
    run(async {
        let h = start(config(4), |m| m).await;
        let done = Arc::new(AtomicU64::new(0));
        echo_load(&h, 100, 1_000, done.clone(), Arc::default()).await;
        assert_eq!(done.load(Ordering::SeqCst), 1_000);

        let counts = h.proxy.upstream_counts();
        assert!(counts.max_alive.load(Ordering::SeqCst) <= 4, "{counts:?}");
        assert!(h.spawned() <= 4, "{counts:?}");
        let stats = h.proxy.pool().expect("pooled").stats();
        assert_eq!(stats.destroyed.total(), 0, "{stats:?}");
        assert_eq!(
            children_of_this_process().len(),
            stats.size,
            "one process per pooled session"
        );
        let proxy = h.proxy.clone();
        let counters = proxy.counters();
        assert_eq!(counters.retries.load(Ordering::SeqCst), 0);
        assert_eq!(counters.upstream_failures.load(Ordering::SeqCst), 0);
        assert_eq!(counters.forwarded.load(Ordering::SeqCst), 1_000);
        h.close_and_assert_clean().await;
    });
}

#[test]
fn upstream_killed_mid_run_is_replaced_without_a_failed_idempotent_call() {
    run(async {
        let mut h = start(config(4), |m| m).await;
        let done = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(tokio::sync::Notify::new());
        // The first server, created for the first client's `initialize`.
        let _first_client = h.client().await;
        let victim = h.ready(&[]).await;
        let killer = {
            let (done, progress) = (done.clone(), progress.clone());
            tokio::spawn(async move {
                // Kill it once a quarter of the calls are through, with all 100 clients busy.
                loop {
                    let notified = progress.notified();
                    if done.load(Ordering::SeqCst) >= 250 {
                        break;
                    }
                    notified.await;
                }
                signal(victim, "KILL");
            })
        };
        echo_load(&h, 100, 1_000, done.clone(), progress).await;
        killer.await.expect("killer task");
        assert_eq!(done.load(Ordering::SeqCst), 1_000, "a call failed");

        assert_eq!(h.torn_down(victim).await, Teardown::Exited);
        assert_gone(victim);
        let counts = h.proxy.upstream_counts();
        assert_eq!(h.spawned(), 5, "4 servers and one replacement: {counts:?}");
        assert!(counts.max_alive.load(Ordering::SeqCst) <= 4, "{counts:?}");
        let stats = h.proxy.pool().expect("pooled").stats();
        assert_eq!(
            stats.destroyed.broken + stats.destroyed.check_failed,
            1,
            "{stats:?}"
        );
        assert_eq!(
            h.proxy.counters().upstream_failures.load(Ordering::SeqCst),
            0
        );
        h.close_and_assert_clean().await;
    });
}

#[test]
fn call_in_flight_on_a_killed_upstream_is_retried_only_if_idempotent() {
    run(async {
        let mut h = start(config(1), |m| m).await;
        let mut client = h.client().await;
        let first = h.ready(&[]).await;

        // 1. `echo` is annotated read-only and idempotent: retried on a fresh server.
        //    Stopped, the server cannot answer before it is killed: the request is in flight.
        signal(first, "STOP");
        h.drain();
        let call = tokio::spawn(async move {
            let echoed = client.echo("retried").await;
            (client, echoed)
        });
        h.sent(first, "tools/call").await;
        signal(first, "KILL");
        let (mut client, echoed) = call.await.expect("call task");
        assert_eq!(echoed.expect("retried call succeeds"), "retried");
        assert_eq!(h.torn_down(first).await, Teardown::Exited);
        assert_gone(first);
        let proxy = h.proxy.clone();
        let counters = proxy.counters();
        assert_eq!(counters.retries.load(Ordering::SeqCst), 1);

        // 2. `toggle-simulated-logging` is not idempotent: not retried, the client gets an error.
        let second = h.ready(&[first]).await;
        signal(second, "STOP");
        h.drain();
        let call = tokio::spawn(async move {
            let reply = client
                .call(
                    "tools/call",
                    json!({ "name": "toggle-simulated-logging", "arguments": {} }),
                )
                .await;
            (client, reply)
        });
        h.sent(second, "tools/call").await;
        signal(second, "KILL");
        let (mut client, reply) = call.await.expect("call task");
        let reply = reply.expect("an HTTP reply");
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{reply:?}");
        assert_eq!(reply.body["error"]["code"], json!(-32603), "{reply:?}");
        assert_eq!(counters.retries.load(Ordering::SeqCst), 1, "not retried");
        assert_eq!(counters.upstream_failures.load(Ordering::SeqCst), 1);
        assert_eq!(h.torn_down(second).await, Teardown::Exited);
        assert_gone(second);

        // The next call gets a fresh server.
        assert_eq!(client.echo("after").await.expect("echo"), "after");
        assert_eq!(h.spawned(), 3);
        h.close_and_assert_clean().await;
    });
}

#[test]
fn session_whose_server_died_is_not_reused() {
    run(async {
        let mut h = start(config(1), |m| m).await;
        let pool = h.proxy.pool().expect("pooled").clone();
        let dead = {
            let mut session = pool.acquire().await.expect("acquire");
            let pid = session.pid();
            signal(pid, "KILL");
            session.wait_for_exit().await.expect("wait");
            // The write hits a closed pipe (or the read finds the pipe closed).
            let err = session
                .request("ping", None)
                .await
                .expect_err("a dead server cannot answer");
            assert!(
                matches!(
                    err,
                    mcp_upstream::SessionError::Io(_) | mcp_upstream::SessionError::Closed
                ),
                "{err:?}"
            );
            assert!(!session.is_usable());
            pid
        };
        assert_eq!(h.torn_down(dead).await, Teardown::Exited);
        assert_gone(dead);
        let stats = pool.stats();
        assert_eq!(stats.destroyed.broken, 1, "{stats:?}");
        // The next acquire gets a new, working server.
        let mut session = pool.acquire().await.expect("acquire");
        assert_ne!(session.pid(), dead);
        let pong = session.request("ping", None).await.expect("ping");
        assert_eq!(pong, Ok(json!({})));
        drop(session);
        h.close_and_assert_clean().await;
    });
}

#[test]
fn close_leaves_no_node_process_behind() {
    run(async {
        let mut h = start(config(4), |m| m).await;
        let mut client = h.client().await;
        assert_eq!(client.echo("one").await.expect("echo"), "one");
        // Three sessions out at once (two more servers), then two back idle and one still
        // checked out when the pool closes.
        let pool = h.proxy.pool().expect("pooled").clone();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(pool.acquire().await.expect("acquire"));
        }
        let mut pids: BTreeSet<u32> = held.iter().map(|s| s.pid()).collect();
        assert_eq!(pids.len(), 3);
        let out = held.pop().expect("three held");
        drop(held);
        let closing = tokio::spawn({
            let proxy = h.proxy.clone();
            async move { proxy.shutdown(HANG_GUARD).await }
        });
        pool.close_event().await;
        drop(out); // released after close: destroyed, not pooled
        assert!(closing.await.expect("close task"), "every server reaped");

        h.drain();
        for event in &h.seen {
            if let UpstreamEvent::Ready { pid } = event {
                pids.insert(*pid);
            }
        }
        for pid in &pids {
            assert_gone(*pid);
        }
        let stats = pool.stats();
        assert_eq!(stats.size, 0);
        assert_eq!(stats.destroyed.closed, 3);
        h.close_and_assert_clean().await;
    });
}

#[test]
fn upstream_hanging_on_ping_is_torn_down_by_the_check_timeout() {
    run(async {
        // Long enough that a healthy server's ping (the "before" echo is checked too) never
        // misses it on a loaded machine; the stopped server's check times out whatever it is.
        let check_timeout = Duration::from_secs(5);
        let mut h = start(
            ProxyConfig {
                test_before_acquire: true,
                ..config(1)
            },
            |m| {
                m.check_timeout(check_timeout)
                    .exit_grace(Duration::from_millis(100))
            },
        )
        .await;
        let mut client = h.client().await;
        let hung = h.ready(&[]).await;
        assert_eq!(client.echo("before").await.expect("echo"), "before");
        let counts = h.proxy.upstream_counts().clone();
        assert_eq!(
            counts.check_timeouts.load(Ordering::SeqCst),
            0,
            "the healthy server's ping timed out"
        );
        // Stopped: alive (`is_open` sees no exit), stdin open, but it never answers `ping`.
        signal(hung, "STOP");
        assert_eq!(client.echo("after").await.expect("echo"), "after");
        assert_eq!(counts.check_timeouts.load(Ordering::SeqCst), 1);
        // Closing its stdin does not make a stopped process exit: teardown kills and reaps it.
        assert_eq!(h.torn_down(hung).await, Teardown::Killed);
        assert_gone(hung);
        let stats = h.proxy.pool().expect("pooled").stats();
        assert_eq!(stats.destroyed.check_failed, 1, "{stats:?}");
        assert_eq!(h.spawned(), 2);
        h.close_and_assert_clean().await;
    });
}

/// A stdio MCP server (for `node -e`) that answers `initialize` and nothing else: it reads
/// `tools/list` and never replies.
const SILENT_LISTER: &str = r#"
const rl = require("readline").createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const m = JSON.parse(line);
  if (m.method === "initialize") {
    process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: {
      protocolVersion: "2025-06-18", capabilities: { tools: {} },
      serverInfo: { name: "silent-lister", version: "0" } } }) + "\n");
  }
});
"#;

#[test]
fn upstream_silent_on_tools_list_does_not_hold_the_first_initialize() {
    run(async {
        let silent = McpManager::new("node", vec!["-e".into(), SILENT_LISTER.into()]);
        let mut h = start_on(
            silent,
            StrategyKind::Pooled,
            ProxyConfig {
                request_timeout: Duration::from_millis(300),
                ..config(1)
            },
            |m| m.exit_grace(Duration::from_millis(100)),
        )
        .await;
        // The first `initialize` fetches the upstream's `tools/list` (for the tools' retry
        // hints); it is answered once that request times out, from the upstream's own result.
        let mut client = McpHttpClient::connect(h.addr).await.expect("connect");
        let init = client.initialize().await.expect("initialize");
        assert_eq!(init["serverInfo"]["name"], "silent-lister");
        // The session cut off mid-request is not handed out again: it is torn down.
        let pid = h.ready(&[]).await;
        h.torn_down(pid).await;
        h.close_and_assert_clean().await;
    });
}

#[test]
fn idle_client_session_is_closed_and_its_dedicated_server_torn_down() {
    run(async {
        let mut h = start_on(
            install().manager(),
            StrategyKind::Dedicated,
            ProxyConfig {
                session_idle_timeout: Some(Duration::from_millis(200)),
                ..config(1)
            },
            |m| m,
        )
        .await;
        let mut client = h.client().await;
        // `initialize` spawned a server for the upstream's own `initialize` result (torn down
        // at once), then the session's dedicated one.
        let info = h.ready(&[]).await;
        let own = h.ready(&[info]).await;
        // Nobody uses the session, so it expires and its server goes (without a DELETE).
        h.torn_down(own).await;
        // A request on the closed session is 404: the client must initialize again.
        let reply = client.call("ping", json!({})).await.expect("reply");
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert_eq!(h.spawned(), 2);
        h.close_and_assert_clean().await;
    });
}

#[test]
fn a_session_with_a_request_in_flight_is_not_idle() {
    run(async {
        let mut h = start(
            ProxyConfig {
                session_idle_timeout: Some(Duration::from_secs(60)),
                ..config(1)
            },
            |m| m.exit_grace(Duration::from_millis(100)),
        )
        .await;
        let mut client = h.client().await;
        let server = h.ready(&[]).await;
        let later = || Instant::now() + Duration::from_secs(120);
        // A call that outlasts the idle limit (its server stopped mid-call) keeps the session.
        signal(server, "STOP");
        h.drain();
        let call = tokio::spawn(async move {
            let echoed = client.echo("slow").await.expect("echo");
            (client, echoed)
        });
        h.sent(server, "tools/call").await;
        assert_eq!(h.proxy.expire_idle_sessions_at(later()).await, 0);
        signal(server, "CONT");
        let (mut client, echoed) = call.await.expect("the call's task");
        assert_eq!(echoed, "slow");
        // Once the call is over, the session is idle like any other.
        assert_eq!(h.proxy.expire_idle_sessions_at(later()).await, 1);
        let reply = client.call("ping", json!({})).await.expect("reply");
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        h.close_and_assert_clean().await;
    });
}

#[test]
fn dedicated_server_cut_off_by_a_departed_client_is_replaced_before_the_next_request() {
    run(async {
        let mut h = start_on(
            install().manager(),
            StrategyKind::Dedicated,
            config(1),
            |m| m.exit_grace(Duration::from_millis(100)),
        )
        .await;
        let mut client = h.client().await;
        let info = h.ready(&[]).await;
        let own = h.ready(&[info]).await;
        // Stopped, the server takes a request and never answers it (nor anything else).
        signal(own, "STOP");
        h.drain();
        // A request on the session from a connection of its own, which the client drops once
        // the request has reached the server: the proxy drops the handler in the middle of its
        // request, and the session's server is left poisoned (a reply may still come).
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "echo", "arguments": { "message": "cut off" } },
        })
        .to_string();
        let head = format!(
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\nmcp-session-id: {}\r\n\
             mcp-protocol-version: {}\r\ncontent-length: {}\r\n\r\n{body}",
            client.session_id().expect("a session"),
            client.protocol_version().expect("a version"),
            body.len()
        );
        let mut departing = TcpStream::connect(h.addr).await.expect("connect");
        departing
            .write_all(head.as_bytes())
            .await
            .expect("write request");
        h.sent(own, "tools/call").await;
        drop(departing);
        // The server stays stopped, so the cut-off request can only end by the handler's drop
        // (or, 30 s on, its request timeout). The session's next request waits for the server's
        // lock until then, and is served by a new server: the poisoned one is replaced before
        // the request, not after failing it with 502. The stopped one is killed.
        assert_eq!(client.echo("after").await.expect("echo"), "after");
        h.torn_down(own).await;
        assert_eq!(h.spawned(), 3);
        h.close_and_assert_clean().await;
    });
}

/// A request the client type cannot make: custom method, headers and body.
async fn raw(
    addr: SocketAddr,
    method: Method,
    headers: &[(&str, &str)],
    body: &'static str,
) -> (StatusCode, serde_json::Value) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri("/mcp")
        .header("host", "127.0.0.1");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = sender
        .send_request(
            req.body(Full::new(Bytes::from_static(body.as_bytes())))
                .expect("request"),
        )
        .await
        .expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[test]
fn front_speaks_streamable_http_and_answers_initialize_from_the_upstream() {
    run(async {
        let h = start(config(1), |m| m).await;
        let json_ct = ("content-type", "application/json");

        let mut client = h.client().await;
        let session = client.session_id().expect("a session id").to_string();
        // `initialize` answered from the upstream's own result, minus what a pool cannot serve.
        let init = client.initialize().await.expect("initialize again");
        assert_eq!(init["serverInfo"]["name"], "mcp-servers/everything");
        assert_eq!(init["protocolVersion"], mcp_upstream::PROTOCOL_VERSION);
        assert!(init["capabilities"]["tools"].is_object());
        assert!(init["capabilities"].get("logging").is_none());
        assert!(init["capabilities"].get("tasks").is_none());

        // Forwarded methods.
        let tools = client
            .result("tools/list", json!({}))
            .await
            .expect("tools/list");
        assert!(tools["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .any(|t| t["name"] == "echo"));
        let doc = client
            .result(
                "resources/read",
                json!({ "uri": "demo://resource/static/document/architecture.md" }),
            )
            .await
            .expect("resources/read");
        assert!(doc["contents"][0]["text"]
            .as_str()
            .expect("text")
            .contains("Architecture"));
        assert_eq!(
            client.result("ping", json!({})).await.expect("ping"),
            json!({})
        );
        // An error about the request is relayed, and the session stays pooled.
        let missing = client
            .call("resources/read", json!({ "uri": "demo://no-such-thing" }))
            .await
            .expect("reply");
        assert_eq!(missing.status, StatusCode::OK);
        assert_eq!(missing.body["error"]["code"], json!(-32602));
        // Not forwarded: state that would live in one upstream session.
        let level = client
            .call("logging/setLevel", json!({ "level": "debug" }))
            .await
            .expect("reply");
        assert_eq!(level.body["error"]["code"], json!(-32601));
        assert_eq!(h.spawned(), 1, "one server served all of it");

        // The transport's rules.
        let session_header = ("mcp-session-id", session.as_str());
        let tools_list = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
        assert_eq!(
            raw(h.addr, Method::POST, &[json_ct], tools_list).await.0,
            StatusCode::BAD_REQUEST,
            "no session id"
        );
        assert_eq!(
            raw(
                h.addr,
                Method::POST,
                &[json_ct, ("mcp-session-id", "nope")],
                tools_list
            )
            .await
            .0,
            StatusCode::NOT_FOUND,
            "unknown session"
        );
        let (status, body) = raw(
            h.addr,
            Method::POST,
            &[json_ct, session_header],
            "{not json",
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (StatusCode::BAD_REQUEST, json!(-32700))
        );
        let (status, body) = raw(h.addr, Method::POST, &[json_ct, session_header], "[]").await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (StatusCode::BAD_REQUEST, json!(-32600))
        );
        let note =
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#;
        assert_eq!(
            raw(h.addr, Method::POST, &[json_ct, session_header], note)
                .await
                .0,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            raw(
                h.addr,
                Method::POST,
                &[
                    json_ct,
                    session_header,
                    ("mcp-protocol-version", "1999-01-01")
                ],
                tools_list
            )
            .await
            .0,
            StatusCode::BAD_REQUEST,
            "a protocol version not agreed at initialize"
        );
        assert_eq!(
            raw(h.addr, Method::GET, &[session_header], "").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            raw(h.addr, Method::POST, &[session_header], tools_list)
                .await
                .0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            raw(
                h.addr,
                Method::POST,
                &[json_ct, session_header, ("origin", "http://evil.example")],
                tools_list
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        let (status, body) = raw(
            h.addr,
            Method::POST,
            &[json_ct, session_header, ("origin", "http://localhost:3000")],
            tools_list,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], json!(7));

        // DELETE ends the session.
        assert_eq!(
            client.close().await.expect("delete"),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            client.call("ping", json!({})).await.expect("reply").status,
            StatusCode::NOT_FOUND
        );
        h.close_and_assert_clean().await;
    });
}
