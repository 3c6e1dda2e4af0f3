//! Quickstart: reuse, waiting in line, and close.
//!
//! `cargo run --release --example quickstart`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shadowcat_pool::{Error, PoolOptions};

/// A stand-in for an upstream connection.
#[derive(Debug)]
struct Upstream {
    id: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opened = Arc::new(AtomicUsize::new(0));
    let counter = opened.clone();
    let pool = PoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .build_with(move || {
            let id = counter.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<_, std::io::Error>(Upstream { id }) }
        })?;

    // 1. Reuse: acquire and release ten times in a row; one upstream serves them all.
    for _ in 0..10 {
        let conn = pool.acquire().await?;
        let _ = conn.id;
    }
    println!(
        "reuse:   10 sequential acquires opened {} upstream(s)",
        opened.load(Ordering::Relaxed)
    );

    // 2. Waiting: 8 tasks share 2 upstreams; each holds one briefly. They queue in arrival order.
    let mut tasks = Vec::new();
    for task in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.acquire().await?;
            tokio::task::yield_now().await;
            Ok::<_, Error>((task, conn.id))
        }));
    }
    for t in tasks {
        let (task, upstream) = t.await??;
        println!("waiting: task {task} was served by upstream #{upstream}");
    }
    let stats = pool.stats();
    println!(
        "stats:   size={} idle={} created={} served_at_once={} waited={}",
        stats.size,
        stats.idle,
        stats.created,
        stats.acquired_immediately,
        stats.acquired_after_wait
    );

    // 3. Close: a waiter blocked on an exhausted pool wakes with `Closed`.
    let a = pool.acquire().await?;
    let b = pool.acquire().await?;
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.acquire().await.map(|c| c.id) })
    };
    while pool.stats().waiting == 0 {
        tokio::task::yield_now().await;
    }
    let closing = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.close().await })
    };
    println!("close:   waiter got {:?}", waiter.await?);
    drop((a, b)); // checked-out upstreams are destroyed as they come back
    closing.await?;
    let stats = pool.stats();
    println!(
        "close:   closed={} size={} destroyed(closed)={}",
        stats.closed, stats.size, stats.destroyed.closed
    );
    Ok(())
}
