//! Memory: what an idle resource costs beyond the resource itself, and what an empty pool costs.
//!
//! A counting global allocator keeps the net heap bytes allocated by this test's thread (every
//! pool here lives on the test thread, on a current-thread runtime). The cost of one idle
//! resource is the slope of "a full pool of `n`" between two sizes, so whatever a pool costs
//! regardless of `n` cancels out; it includes the idle queue's slot for the resource, which is
//! allocated up front for every unit of `max_connections`. The resource here has no heap of its
//! own, so "beyond the resource itself" is that slope minus `size_of::<Res>()`.
#![cfg(not(shadowcat_loom))]

use futures_util::FutureExt;
use shadowcat_pool::{Pool, PoolOptions};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// Net bytes allocated (and not freed) on this thread by `f`, and its result.
fn net_bytes<R>(f: impl FnOnce() -> R) -> (isize, R) {
    let (bytes, _, r) = counting_alloc::measure(f);
    (bytes, r)
}

/// A resource of a typical handle's size (a socket plus a little state), with no heap.
#[allow(dead_code)]
struct Res([u64; 4]);

/// The asserted bound on what one idle resource costs beyond itself.
const MAX_OVERHEAD_PER_IDLE: isize = 64;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A pool with the default options (the configuration users get).
fn build(max: usize) -> Pool<Res> {
    PoolOptions::new()
        .max_connections(max)
        .build_with(|| async { Ok::<_, std::io::Error>(Res([0; 4])) })
        .expect("valid options")
}

/// Bytes held by an empty pool of `max`, built inside `rt`.
fn empty_pool_bytes(rt: &tokio::runtime::Runtime, max: usize) -> isize {
    let _enter = rt.enter();
    let (bytes, pool) = net_bytes(|| build(max));
    assert_eq!(pool.stats().size, 0);
    drop(pool);
    bytes
}

/// Bytes held by a pool of `max` with `max` idle resources, built and filled inside `rt`.
fn full_pool_bytes(rt: &tokio::runtime::Runtime, max: usize) -> isize {
    let _enter = rt.enter();
    let (bytes, pool) = net_bytes(|| {
        let pool = build(max);
        let held: Vec<_> = (0..max)
            .map(|_| {
                pool.acquire()
                    .now_or_never()
                    .expect("room to create, no waiting")
                    .expect("create succeeds")
            })
            .collect();
        drop(held);
        pool
    });
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.idle, stats.created),
        (max, max, max as u64)
    );
    drop(pool);
    bytes
}

#[test]
fn idle_resource_overhead_is_at_most_64_bytes() {
    let rt = runtime();
    let (small, large) = (256, 1024);
    // Once to warm up anything lazily allocated once per thread or process (thread-locals,
    // tokio's per-runtime state), then measured.
    full_pool_bytes(&rt, small);
    let full_small = full_pool_bytes(&rt, small);
    let full_large = full_pool_bytes(&rt, large);
    let empty_large = empty_pool_bytes(&rt, large);

    let per_idle = (full_large - full_small) / (large - small) as isize;
    let resource = std::mem::size_of::<Res>() as isize;
    let overhead = per_idle - resource;
    // What filling adds beyond the up-front slots (per-resource allocations made on create).
    let fill = (full_large - empty_large) / large as isize;
    println!(
        "memory: one idle resource costs {per_idle} B = {resource} B resource + {overhead} B \
         overhead (slope between full pools of {small} and {large}); filling adds {fill} B per \
         resource beyond the up-front queue slots"
    );
    assert!(per_idle > 0, "the counter saw nothing: {per_idle} B");
    assert!(
        overhead <= MAX_OVERHEAD_PER_IDLE,
        "an idle resource costs {overhead} B beyond itself; the bound is {MAX_OVERHEAD_PER_IDLE} B"
    );
}

#[test]
fn fixed_cost_of_an_empty_pool() {
    let rt = runtime();
    empty_pool_bytes(&rt, 1);
    let mut costs = Vec::new();
    for max in [1, 16, 256, 1024] {
        costs.push((max, empty_pool_bytes(&rt, max)));
    }
    let line: Vec<String> = costs
        .iter()
        .map(|(max, b)| format!("max {max}: {b} B"))
        .collect();
    println!("memory: empty pool (default options), {}", line.join(", "));
    // More capacity never costs less, and a pool costs something.
    assert!(costs[0].1 > 0);
    assert!(costs.windows(2).all(|w| w[0].1 <= w[1].1), "{costs:?}");
}

#[test]
fn the_counter_sees_allocations_and_frees() {
    // Guards the tests above against a counter that never counts.
    let (kept, v) = net_bytes(|| vec![0u8; 100]);
    assert_eq!(kept, 100);
    let (freed, ()) = net_bytes(|| drop(v));
    assert_eq!(freed, -100);
}
