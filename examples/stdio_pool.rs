//! A pool of stdio subprocesses speaking newline-delimited JSON-RPC 2.0: Shadowcat's own use.
//!
//! ```text
//! cargo run --release --example stdio_pool                 # the demo below
//! cargo run --release --example stdio_pool -- --serve      # the child server, on stdin/stdout
//! ```
//!
//! The child is this same binary started with `--serve` (so nothing else needs to be built or
//! installed). The demo spawns a pool of at most 2 children, sends 1,000 `echo` requests from
//! 32 tasks, kills an idle child from outside to show it being detected and replaced, and closes
//! the pool, checking in `/proc` that no child and no zombie is left.

#[allow(dead_code)]
#[path = "support/stdio_upstream.rs"]
mod stdio_upstream;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use shadowcat_pool::{Pool, PoolOptions};
use stdio_upstream::{StdioChild, StdioManager};

/// Errors in the demo.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A pool of stdio subprocesses speaking newline-delimited JSON-RPC 2.0 (a demo).
#[derive(Parser, Debug)]
#[command(name = "stdio_pool")]
struct Args {
    /// Run as the child server on stdin/stdout instead of the demo.
    #[arg(long)]
    serve: bool,
}

fn main() -> Result<(), BoxError> {
    if Args::parse().serve {
        return Ok(stdio_upstream::serve()?);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(demo())
}

async fn demo() -> Result<(), BoxError> {
    let exe = std::env::current_exe()?;
    let manager = StdioManager::new(&exe, &["--serve"])
        .check_timeout(Duration::from_millis(500))
        .exit_grace(Duration::from_millis(200));
    let counts = manager.counts();
    let pool: Pool<StdioChild> = PoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(true)
        .build(manager)?;

    // 1. 1,000 requests from 32 tasks through 2 children.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..32u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut pids = BTreeSet::new();
            for i in 0..1000 / 32 + u64::from(task < 1000 % 32) {
                let mut child = pool.acquire().await?;
                let params = json!({ "task": task, "i": i });
                let reply = child.call("echo", params.clone()).await?;
                if reply["echo"] != params {
                    return Err(format!("mismatched reply {reply} for {params}").into());
                }
                pids.insert(child.pid());
            }
            Ok::<_, BoxError>(pids)
        }));
    }
    let mut pids = BTreeSet::new();
    for t in tasks {
        pids.extend(t.await??);
    }
    println!(
        "1,000 echo requests from 32 tasks in {:?}: children used {pids:?}, spawned {}",
        started.elapsed(),
        counts.spawned.load(Ordering::Relaxed)
    );

    // 2. Kill an idle child from outside; the health check notices and the pool replaces it.
    let victim = *pids.iter().next().expect("a child ran");
    let status = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()?;
    println!("killed idle child {victim} from outside ({status})");
    // Hold two at once, so the pool has to replace the dead one.
    let (mut a, mut b) = (pool.acquire().await?, pool.acquire().await?);
    a.call("ping", json!(null)).await?;
    b.call("ping", json!(null)).await?;
    println!("  pings answered by {} and {}", a.pid(), b.pid());
    drop((a, b));
    println!("stats after the kill: {:?}", pool.stats());

    // 3. Close: every child is torn down and reaped.
    pool.close().await;
    let leftovers = children_of(std::process::id());
    println!(
        "closed; children spawned {}, reaped {}, still present under /proc: {leftovers:?}",
        counts.spawned.load(Ordering::Relaxed),
        counts.reaped.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Pids whose parent is `parent`, from `/proc/<pid>/stat` (zombies included). Empty on systems
/// without `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    // Fields after the `(comm)`, which may itself contain spaces.
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}
