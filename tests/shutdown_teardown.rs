//! Issue 11 item 5: with an `after_release` hook, release runs the hook in a spawned task. A
//! connection released just before or during runtime shutdown must still be torn down through
//! `Manager::destroy` (a child process is killed, not just dropped) or kept, and the books must
//! balance: `created == destroyed + detached + size`.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::Ordering;

use shadowcat_pool::{Pool, PoolOptions};
use support::{options, Conn, Counts, TestManager};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn with_after_release(max: usize) -> PoolOptions<Conn> {
    options(max).after_release(|_conn, _meta| Box::pin(async { Ok(true) }))
}

/// Every resource the pool made is live in it, or was destroyed through `Manager::destroy`.
fn assert_torn_down_or_kept(pool: &Pool<Conn>, counts: &Counts, when: &str) {
    let s = pool.stats();
    let destroy_calls = counts.destroy_calls.load(Ordering::SeqCst) as u64;
    assert_eq!(
        s.created,
        s.destroyed.total() + s.detached + s.size as u64,
        "books do not balance for a connection released {when} (created {}, destroyed {}, \
         size {}); Manager::destroy calls: {destroy_calls}; {s:?}",
        s.created,
        s.destroyed.total(),
        s.size,
    );
    assert_eq!(
        s.destroyed.total(),
        destroy_calls,
        "a resource counted destroyed skipped Manager::destroy: {s:?}"
    );
    assert_eq!(counts.live(), s.size, "{s:?} {counts:?}");
}

#[test]
fn connection_released_just_before_shutdown_is_torn_down() {
    let m = TestManager::new();
    let counts = m.counts();
    let rt = runtime();
    let pool = rt.block_on(async {
        let pool = with_after_release(1).build(m).unwrap();
        drop(pool.acquire().await.unwrap()); // spawns the hook task, which never gets to run
        pool
    });
    drop(rt);
    assert_torn_down_or_kept(&pool, &counts, "just before runtime shutdown");
}

#[test]
fn connection_released_during_shutdown_is_torn_down() {
    let m = TestManager::new();
    let counts = m.counts();
    let rt = runtime();
    let pool = rt.block_on(async { with_after_release(1).build(m).unwrap() });
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    rt.spawn({
        let pool = pool.clone();
        async move {
            let _conn = pool.acquire().await.unwrap();
            held_tx.send(()).unwrap();
            std::future::pending::<()>().await; // holds the connection until shutdown
        }
    });
    rt.block_on(async {
        assert!(
            support::yield_until(10_000, || held_rx.try_recv().is_ok()).await,
            "the task never took its connection"
        );
    });
    assert_eq!(pool.stats().in_use, 1);
    drop(rt); // drops the task, and the connection with it, during shutdown
    assert_torn_down_or_kept(&pool, &counts, "during runtime shutdown");
}
