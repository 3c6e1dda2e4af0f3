//! Issue 11 item 4: work that finishes a create in the background (a maintenance warm-up, or the
//! create of an acquirer that was handed a released resource meanwhile) is always bounded and
//! always loses to `close()`. A hung `Manager::create` or `after_create` hook must not pin its
//! unit of capacity, hold a `warmup_concurrency` slot for good, or keep `close()` from
//! returning.
//!
//! Time is tokio's paused clock: a hang guard of `HANG_GUARD` (10 s) elapses as soon as nothing
//! else can run, and the limits that must *not* be what ends a hang are set far beyond it.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use shadowcat_pool::{Pool, PoolOptions};
use support::{
    hang_forever, options, parked, poll_once, Conn, Counts, CreateMode, Gated, TestManager,
    HANG_GUARD,
};
use tokio::sync::Notify;

/// A limit far beyond the hang guard: if a hang ends only when this runs out, the test fails.
const FAR: Duration = Duration::from_secs(3600);

/// Options whose `after_create` hook hangs for the resource with pool id `hang_id` (or for the
/// first resource only, when `None`), signalling `started` when it does.
fn hanging_after_create(
    opts: PoolOptions<Conn>,
    hang_id: Option<u64>,
    started: Arc<Notify>,
) -> PoolOptions<Conn> {
    let first = Arc::new(AtomicBool::new(true));
    opts.after_create(move |_conn, meta| {
        let hang = match hang_id {
            Some(id) => meta.id == id,
            None => first.swap(false, Ordering::SeqCst),
        };
        let started = started.clone();
        Box::pin(async move {
            if hang {
                hang_forever(started).await;
            }
            Ok(())
        })
    })
}

async fn close_within_guard(pool: &Pool<Conn>, counts: &Counts, what: &str) {
    let closed = tokio::time::timeout(HANG_GUARD, pool.close()).await;
    let s = pool.stats();
    assert!(
        closed.is_ok(),
        "close() did not return within {HANG_GUARD:?}: {what} holds its unit; {s:?}"
    );
    assert_eq!(s.size, 0, "{s:?}");
    assert_eq!(counts.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn warmup_with_a_hung_after_create_loses_to_close() {
    let m = TestManager::new();
    let counts = m.counts();
    let started = Arc::new(Notify::new());
    let pool = hanging_after_create(options(2), None, started.clone())
        .min_connections(1)
        .acquire_timeout(FAR)
        .build(m)
        .unwrap();
    started.notified().await; // the warm-up's hook is hung
    assert_eq!(pool.stats().size, 1);
    close_within_guard(&pool, &counts, "a warm-up hung in after_create").await;
}

#[tokio::test(start_paused = true)]
async fn warmup_with_a_hung_after_create_is_bounded_and_frees_its_slot() {
    let m = TestManager::new();
    let counts = m.counts();
    let started = Arc::new(Notify::new());
    // create_timeout unset: a create nobody waits for is bounded by acquire_timeout (1 s).
    let pool = hanging_after_create(options(2), None, started.clone())
        .min_connections(2)
        .warmup_concurrency(1)
        .acquire_timeout(Duration::from_secs(1))
        .maintenance_interval(Duration::from_millis(100))
        .build(m)
        .unwrap();
    started.notified().await; // the first warm-up's hook is hung; it holds the only warm-up slot
    tokio::time::sleep(Duration::from_secs(30)).await;
    let s = pool.stats();
    assert_eq!(
        (s.size, s.idle),
        (2, 2),
        "30 s after a warm-up hung in after_create (limit 1 s), the pool is still not at \
         min_connections 2: {s:?}"
    );
    assert_eq!(s.destroyed.total(), 1, "the hung one was destroyed: {s:?}");
    assert_eq!(counts.live(), 2);
}

/// A creator handed a released resource: its create (`create_gate`) then finishes in the
/// background, and resource #1's `after_create` hangs. Returns the pool with #0 back idle.
async fn background_create_hung_in_after_create(
    opts: PoolOptions<Conn>,
) -> (Pool<Conn>, Arc<Counts>) {
    let (m, gate) = TestManager::gated(Gated::Create, 1);
    let counts = m.counts();
    let create_started = m.create_started.clone();
    let hook_started = Arc::new(Notify::new());
    let pool = hanging_after_create(opts, Some(1), hook_started.clone())
        .build(m)
        .unwrap();

    let held = pool.acquire().await.unwrap(); // #0
    create_started.notified().await;
    let mut creating = parked(&pool).await;
    create_started.notified().await; // #1's create is stuck at the gate
    drop(held); // handed to the creating acquirer
    let conn = match poll_once(&mut creating).await {
        Poll::Ready(Ok(conn)) => conn,
        _ => panic!("the creating acquirer was not handed the released resource"),
    };
    assert_eq!(conn.id, 0);
    drop(creating);
    gate.add_permits(1); // #1's create finishes in the background, and its hook hangs
    hook_started.notified().await;
    drop(conn);
    assert_eq!((pool.stats().size, pool.stats().idle), (2, 1));
    (pool, counts)
}

#[tokio::test(start_paused = true)]
async fn background_create_with_a_hung_after_create_loses_to_close() {
    // Both timeouts off: nothing bounds the hook, so only close can end it.
    let opts = options(2).acquire_timeout(None).create_timeout(None);
    let (pool, counts) = background_create_hung_in_after_create(opts).await;
    close_within_guard(&pool, &counts, "a background create hung in after_create").await;
}

#[tokio::test(start_paused = true)]
async fn background_create_with_a_hung_after_create_is_bounded() {
    // create_timeout unset: the background create is bounded by acquire_timeout (1 s).
    let opts = options(2).acquire_timeout(Duration::from_secs(1));
    let (pool, counts) = background_create_hung_in_after_create(opts).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let s = pool.stats();
    assert_eq!(
        (s.size, s.idle),
        (1, 1),
        "30 s after a background create hung in after_create (limit 1 s), it still holds its \
         unit: {s:?}"
    );
    assert_eq!(s.destroyed.total(), 1, "{s:?}");
    assert_eq!(counts.live(), 1);
}

#[tokio::test(start_paused = true)]
async fn max_two_pool_serves_two_while_a_background_create_hangs() {
    // Create #0 succeeds; create #1 hangs forever.
    let m = TestManager::new().plan(&[CreateMode::Ok, CreateMode::Hang]);
    let counts = m.counts();
    let started = m.create_started.clone();
    let pool = options(2)
        .acquire_timeout(None)
        .create_timeout(None)
        .build(m)
        .unwrap();

    let held = pool.acquire().await.unwrap(); // #0
    started.notified().await;
    let mut creating = parked(&pool).await;
    started.notified().await; // create #1 is hung
    drop(held);
    let first = match poll_once(&mut creating).await {
        Poll::Ready(Ok(conn)) => conn,
        _ => panic!("the creating acquirer was not handed the released resource"),
    };

    // One connection is out and nothing else is in use: a max-2 pool must serve a second one.
    // The guard is an hour of paused time, so any finite bound the fix picks for background
    // work with both timeouts off passes; only a unit pinned for good fails.
    let second = tokio::time::timeout(FAR, pool.acquire()).await;
    let s = pool.stats();
    let second = second
        .unwrap_or_else(|_| {
            panic!(
                "a max-2 pool with one connection out could not serve a second within {FAR:?}: \
                 the hung background create pins its unit; {s:?}"
            )
        })
        .expect("the second acquire failed");
    assert_ne!(first.id, second.id);
    drop((first, second));
    pool.close().await;
    assert_eq!(counts.live(), 0);
}
