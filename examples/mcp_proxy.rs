//! An MCP reverse proxy: Streamable HTTP in front, a `Pool` of initialized stdio MCP servers
//! behind. The upstream is the reference server `@modelcontextprotocol/server-everything`
//! (pinned, installed from npm into `.cache/` on first use; needs Node.js and npm).
//!
//! ```text
//! cargo run --release --example mcp_proxy -- --demo
//! cargo run --release --example mcp_proxy -- --listen 127.0.0.1:8931 --max-upstreams 4
//! ```
//!
//! `--demo` starts the proxy on an ephemeral loopback port, talks to it as an MCP client
//! (`initialize`, `tools/list`, `tools/call echo`, `resources/read`, `ping`, then 200 echo calls
//! from 20 clients), closes the pool and shows that no server process is left. The proxy itself
//! is in `examples/support/mcp_proxy.rs`, the pooled upstream in
//! `examples/support/mcp_upstream.rs`.

#[allow(dead_code)]
#[path = "support/mcp_proxy.rs"]
mod mcp_proxy;
#[allow(dead_code)]
#[path = "support/mcp_upstream.rs"]
mod mcp_upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use mcp_proxy::{McpHttpClient, McpProxy, ProxyConfig, StrategyKind};
use mcp_upstream::ServerInstall;
use serde_json::json;
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An MCP reverse proxy pooling stdio upstream servers.
#[derive(Debug, Parser)]
#[command(name = "mcp_proxy")]
struct Args {
    /// Where the proxy listens (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:8931")]
    listen: SocketAddr,
    /// Upstream servers at most.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    max_upstreams: u16,
    /// How long a request waits for an upstream session before `503`.
    #[arg(long, default_value_t = 5000)]
    acquire_timeout_ms: u64,
    /// How long an upstream may take to answer before `504`.
    #[arg(long, default_value_t = 30000)]
    request_timeout_ms: u64,
    /// Close a client session after this many seconds without a request (0: never).
    #[arg(long, default_value_t = 600)]
    session_idle_timeout_secs: u64,
    /// Send MCP `ping` to an idle session before handing it out.
    #[arg(long)]
    test_before_acquire: bool,
    /// Where the pinned server is (installed there if missing); default `.cache/` in the repo.
    #[arg(long)]
    server_dir: Option<PathBuf>,
    /// Show the servers' stderr.
    #[arg(long)]
    upstream_stderr: bool,
    /// Run the demo on an ephemeral port and exit.
    #[arg(long)]
    demo: bool,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let dir = args
        .server_dir
        .clone()
        .unwrap_or_else(ServerInstall::default_dir);
    let install = tokio::task::spawn_blocking(move || ServerInstall::ensure_in(&dir)).await??;
    let manager = install
        .manager()
        .check_timeout(Duration::from_secs(1))
        .inherit_stderr(args.upstream_stderr);
    let config = ProxyConfig {
        max_upstreams: usize::from(args.max_upstreams),
        acquire_timeout: Duration::from_millis(args.acquire_timeout_ms),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        test_before_acquire: args.test_before_acquire,
        session_idle_timeout: (args.session_idle_timeout_secs > 0)
            .then(|| Duration::from_secs(args.session_idle_timeout_secs)),
        ..ProxyConfig::default()
    };
    let proxy = McpProxy::new(manager, config, StrategyKind::Pooled)?;
    if args.demo {
        return demo(proxy).await;
    }
    let listener = TcpListener::bind(args.listen).await?;
    println!(
        "MCP proxy on http://{}/mcp -> up to {} `node {} stdio`",
        listener.local_addr()?,
        args.max_upstreams,
        install.entry_point().display()
    );
    // Runs until the process is stopped (the servers are killed with it: `kill_on_drop`).
    proxy.serve(listener).await?;
    Ok(())
}

async fn demo(proxy: std::sync::Arc<McpProxy>) -> Result<(), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = proxy.clone().serve(listener);
    println!("proxy on http://{addr}/mcp");

    let mut client = McpHttpClient::connect(addr).await?;
    let init = client.initialize().await?;
    println!(
        "initialize -> {} {} (protocol {}), capabilities {}",
        init["serverInfo"]["name"],
        init["serverInfo"]["version"],
        init["protocolVersion"],
        init["capabilities"]
    );
    let tools = client.result("tools/list", json!({})).await?;
    println!(
        "tools/list -> {} tools",
        tools["tools"].as_array().map_or(0, Vec::len)
    );
    println!(
        "tools/call echo -> {:?}",
        client.echo("hello through the pool").await?
    );
    let doc = client
        .result(
            "resources/read",
            json!({ "uri": "demo://resource/static/document/architecture.md" }),
        )
        .await?;
    let text = doc["contents"][0]["text"].as_str().unwrap_or("");
    println!(
        "resources/read -> {} bytes of {}",
        text.len(),
        doc["contents"][0]["uri"]
    );
    println!("ping -> {}", client.result("ping", json!({})).await?);

    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..20 {
        tasks.push(tokio::spawn(async move {
            let mut client = McpHttpClient::connect(addr).await?;
            client.initialize().await?;
            for i in 0..10 {
                let message = format!("client {c} call {i}");
                let echoed = client.echo(&message).await?;
                if echoed != message {
                    return Err::<(), BoxError>(format!("{echoed:?} for {message:?}").into());
                }
            }
            client.close().await?;
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let spawned = proxy
        .upstream_counts()
        .spawned
        .load(std::sync::atomic::Ordering::SeqCst);
    println!(
        "200 echo calls from 20 clients in {:.0} ms; upstream servers spawned: {spawned}",
        started.elapsed().as_secs_f64() * 1e3
    );
    if let Some(pool) = proxy.pool() {
        let s = pool.stats();
        println!(
            "pool: size {}, idle {}, served at once {}, after waiting {}, destroyed {}",
            s.size,
            s.idle,
            s.acquired_immediately,
            s.acquired_after_wait,
            s.destroyed.total()
        );
    }

    server.abort();
    let clean = proxy.shutdown(Duration::from_secs(10)).await;
    println!(
        "pool closed: every server reaped: {clean}; upstream processes still alive: {}",
        proxy.upstream_counts().alive()
    );
    Ok(())
}
