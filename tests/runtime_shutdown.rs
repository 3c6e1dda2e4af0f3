//! Release works outside any runtime and during runtime shutdown: no panic, and capacity is
//! restored synchronously (hazard H10: sqlx#1396, romaninsh/vantage#261).
#![cfg(not(shadowcat_loom))]

mod support;

use support::{options, Conn, Gated, TestManager};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn drop_outside_any_runtime_returns_the_resource() {
    let rt = runtime();
    let (pool, conn) = rt.block_on(async {
        let pool = options(1).build(TestManager::new()).unwrap();
        let conn = pool.acquire().await.unwrap();
        (pool, conn)
    });
    drop(rt);
    drop(conn); // no runtime here
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.in_use), (1, 1, 0), "{s:?}");
    assert!(pool.try_acquire().is_some());
}

#[test]
fn broken_resource_with_async_teardown_outside_a_runtime_frees_its_unit() {
    let (m, _gate) = TestManager::gated(Gated::Destroy, 0);
    let counts = m.counts();
    let rt = runtime();
    let (pool, mut conn) = rt.block_on(async {
        let pool = options(1).build(m).unwrap();
        let conn = pool.acquire().await.unwrap();
        (pool, conn)
    });
    drop(rt);
    conn.broken = true;
    drop(conn);
    assert_eq!(
        pool.stats().size,
        0,
        "with no runtime to finish teardown, the unit is freed"
    );
    assert_eq!(counts.live(), 0);
}

#[test]
fn connections_dropped_by_runtime_shutdown_are_returned() {
    let rt = runtime();
    let pool = rt.block_on(async { options(2).build(TestManager::new()).unwrap() });
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    for _ in 0..2 {
        let pool = pool.clone();
        let held_tx = held_tx.clone();
        rt.spawn(async move {
            let _conn: shadowcat_pool::PoolConnection<Conn> = pool.acquire().await.unwrap();
            held_tx.send(()).unwrap();
            std::future::pending::<()>().await; // holds the connection until shutdown
        });
    }
    rt.block_on(async {
        for i in 0..2 {
            assert!(
                support::yield_until(10_000, || held_rx.try_recv().is_ok()).await,
                "task {i} never took its connection"
            );
        }
    });
    assert_eq!(pool.stats().in_use, 2);
    drop(rt); // the tasks are dropped, and with them the connections
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.in_use), (2, 2, 0), "{s:?}");
}
