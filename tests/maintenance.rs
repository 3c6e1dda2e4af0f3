//! Maintenance: idle timeout, max lifetime, min connections, no timer wake-ups for an empty pool
//! (hyper#4100), and the pool is freed when the last handle drops even though the maintenance
//! task is alive (sqlx#2375); hazards H11 and H12. Time is tokio's paused clock: `sleep`
//! advances it deterministically.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shadowcat_pool::{Manager, PoolOptions};
use support::{assert_quiescent, Gated, TestManager};

fn timed_options(max: usize) -> PoolOptions<support::Conn> {
    PoolOptions::new()
        .max_connections(max)
        .acquire_timeout(None)
        .idle_timeout(None)
        .max_lifetime(None)
        .maintenance_interval(Duration::from_millis(100))
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_idle_resources() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = timed_options(2)
        .idle_timeout(Duration::from_secs(1))
        .build(m)
        .unwrap();
    let (a, b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    drop((a, b));
    assert_eq!(pool.stats().idle, 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pool.stats().idle, 2, "not idle long enough yet");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = pool.stats();
    assert_eq!((s.size, s.destroyed.idle_timeout), (0, 2), "{s:?}");
    assert_quiescent(&pool, &counts);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_never_goes_below_min_connections() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = timed_options(3)
        .min_connections(1)
        .idle_timeout(Duration::from_secs(1))
        .build(m)
        .unwrap();
    let held: Vec<_> = vec![
        pool.acquire().await.unwrap(),
        pool.acquire().await.unwrap(),
        pool.acquire().await.unwrap(),
    ];
    drop(held);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = pool.stats();
    assert_eq!((s.size, s.idle), (1, 1), "{s:?}");
    assert_quiescent(&pool, &counts);
}

#[tokio::test(start_paused = true)]
async fn max_lifetime_closes_on_release_and_while_idle() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = timed_options(2)
        .max_lifetime(Duration::from_secs(10))
        .max_lifetime_jitter(Duration::ZERO)
        .build(m)
        .unwrap();
    let out = pool.acquire().await.unwrap();
    drop(pool.acquire().await.unwrap()); // idle
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        pool.stats().destroyed.lifetime,
        1,
        "the idle one was reaped"
    );
    drop(out); // past its lifetime: destroyed on release
    let s = pool.stats();
    assert_eq!((s.size, s.destroyed.lifetime), (0, 2), "{s:?}");
    assert_quiescent(&pool, &counts);
}

#[tokio::test(start_paused = true)]
async fn lifetimes_are_jittered_below_max_lifetime() {
    let m = TestManager::new();
    let pool = timed_options(20)
        .max_lifetime(Duration::from_secs(100))
        .max_lifetime_jitter(Duration::from_secs(50))
        .build(m)
        .unwrap();
    let held: Vec<_> = futures_util::future::join_all((0..20).map(|_| pool.acquire())).await;
    drop(held);
    tokio::time::sleep(Duration::from_millis(49_900)).await;
    assert_eq!(
        pool.stats().destroyed.lifetime,
        0,
        "nobody expires before max - jitter"
    );
    tokio::time::sleep(Duration::from_secs(25)).await;
    let mid = pool.stats().destroyed.lifetime;
    assert!(
        mid > 0 && mid < 20,
        "expiries are spread out, got {mid} of 20 at the midpoint"
    );
    tokio::time::sleep(Duration::from_secs(26)).await;
    assert_eq!(pool.stats().destroyed.lifetime, 20);
}

#[tokio::test(start_paused = true)]
async fn min_connections_are_created_and_replaced() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = timed_options(4)
        .min_connections(3)
        .warmup_concurrency(2)
        .build(m)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.created), (3, 3, 3), "{s:?}");
    let mut conn = pool.acquire().await.unwrap();
    conn.broken = true;
    drop(conn);
    assert_eq!(pool.stats().size, 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(pool.stats().size, 3, "the broken one was replaced");
    assert_quiescent(&pool, &counts);
}

/// A resource past its lifetime whose `destroy` is slow is replaced while it is being torn down
/// (there is room under `max`): `min_connections` counts what is alive, not the units held.
#[tokio::test(start_paused = true)]
async fn an_expired_resource_is_replaced_while_its_slow_teardown_runs() {
    let (m, gate) = TestManager::gated(Gated::Destroy, 0);
    let counts = m.counts();
    let pool = timed_options(2)
        .min_connections(1)
        .max_lifetime(Duration::from_secs(10))
        .build(m)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(pool.stats().created, 1, "warmed to the minimum");
    // Past its lifetime (and not yet the replacement's): reaped, and its destroy waits at the
    // gate.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let s = pool.stats();
    assert_eq!(counts.destroy_calls.load(Ordering::SeqCst), 1, "{s:?}");
    assert_eq!((s.created, s.size, s.idle), (2, 2, 1), "{s:?}");
    gate.add_permits(1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.destroyed.lifetime), (1, 1, 1), "{s:?}");
    drop(gate);
    assert_quiescent(&pool, &counts);
}

#[tokio::test(start_paused = true)]
async fn an_empty_pool_schedules_no_timer_wakeups() {
    let pool = timed_options(2)
        .idle_timeout(Duration::from_secs(1))
        .build(TestManager::new())
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(pool.stats().maintenance_passes, 0, "an empty pool ticked");

    drop(pool.acquire().await.unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = pool.stats();
    assert_eq!(s.size, 0, "reaped: {s:?}");
    assert!(s.maintenance_passes > 0);
    let passes = s.maintenance_passes;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(
        pool.stats().maintenance_passes <= passes + 1,
        "the emptied pool kept ticking"
    );
}

struct DropFlag(Arc<AtomicBool>, TestManager);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Manager for DropFlag {
    type Resource = support::Conn;
    type Error = support::TestError;

    async fn create(&self) -> Result<support::Conn, support::TestError> {
        self.1.create().await
    }
}

#[tokio::test(start_paused = true)]
async fn pool_is_freed_after_the_last_handle_drops() {
    let freed = Arc::new(AtomicBool::new(false));
    let m = DropFlag(freed.clone(), TestManager::new());
    let counts = m.1.counts();
    let pool = timed_options(2)
        .min_connections(1)
        .idle_timeout(Duration::from_secs(1))
        .build(m)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(pool.stats().size, 1);
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(
        metrics.num_alive_tasks(),
        1,
        "the maintenance task is running"
    );
    drop(pool);
    assert!(
        freed.load(Ordering::SeqCst),
        "the maintenance task kept the pool alive"
    );
    assert_eq!(counts.live(), 0);
    // The maintenance task notices and exits.
    for _ in 0..10 {
        if metrics.num_alive_tasks() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        metrics.num_alive_tasks(),
        0,
        "the maintenance task did not exit"
    );
}
