//! The S8 stall (64 keys, Zipf demand, `max_total` reached, `Saturation::Evict`): an acquire
//! waiting for global capacity slept beside idle resources of other keys until a maintenance
//! pass evicted for it. Idle resources that appear without a `KeyedConnection` drop (a create
//! that finished in the background after its acquirer was handed a released resource, hazard
//! H13; a check that passed after its acquire was cancelled) must evict for such a waiter too.
//!
//! Every test sets `maintenance_interval` to a day and runs on tokio's paused clock: if nothing
//! but a maintenance pass could serve the waiter, the clock jumps to the test's one-hour limit
//! and the test fails; no real time passes either way.
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyed_support::{assert_parked, options, poll_once, Counting, Res, Tally};
use shadowcat_pool::{KeyedManager, KeyedPoolOptions, Saturation};
use tokio::sync::Semaphore;

/// Long enough that no maintenance pass runs within a test.
const NO_MAINTENANCE: Duration = Duration::from_secs(24 * 3600);
/// What the waiter for global capacity is given (virtual time) before the test fails.
const LIMIT: Duration = Duration::from_secs(3600);

fn stall_options<K, T>(max_per_key: usize, max_total: usize) -> KeyedPoolOptions<K, T> {
    options(max_per_key, max_total)
        .saturation(Saturation::Evict)
        .maintenance_interval(NO_MAINTENANCE)
}

/// Lets spawned tasks (a background create, a background check, a teardown) run.
async fn let_tasks_run() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

/// Creates at once, except key 0's creates after its first: those wait for a permit.
struct GatedCreate {
    tally: Arc<Tally>,
    key0_creates: std::sync::atomic::AtomicUsize,
    permits: Arc<Semaphore>,
}

impl KeyedManager<u8> for GatedCreate {
    type Resource = Res;
    type Error = std::io::Error;

    async fn create(&self, key: &u8) -> std::io::Result<Res> {
        if *key == 0 && self.key0_creates.fetch_add(1, Ordering::SeqCst) > 0 {
            self.permits.acquire().await.unwrap().forget();
        }
        Counting(self.tally.clone()).create(key).await
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn background_create_landing_idle_evicts_for_a_global_waiter() {
    let tally = Arc::new(Tally::default());
    let permits = Arc::new(Semaphore::new(0));
    let pool = stall_options(2, 3)
        .build(GatedCreate {
            tally: tally.clone(),
            key0_creates: Default::default(),
            permits: permits.clone(),
        })
        .unwrap();
    // Key 2 holds one global unit, checked out throughout.
    let c = pool.acquire(&2).await.unwrap();
    // Key 0 holds another, checked out.
    let a1 = pool.acquire(&0).await.unwrap();
    // A second acquire of key 0 takes the last global unit and is creating with it (the
    // manager's create waits for a permit), while in key 0's line as a creator.
    let mut a2 = Box::pin(pool.acquire(&0));
    assert_parked(&mut a2, "key 0's second acquire").await;
    assert_eq!(pool.stats().size, 3);

    // a1 comes back and is handed to that creator (H13): its create, which already holds its
    // global unit, goes on in the background for a key that no longer needs it.
    drop(a1);
    let a2 = match poll_once(&mut a2).await {
        std::task::Poll::Ready(conn) => conn.unwrap(),
        std::task::Poll::Pending => panic!("the released resource was not handed to the creator"),
    };
    let_tasks_run().await;

    // Key 1 needs global capacity: it waits, and its eviction finds nothing idle.
    let mut b = Box::pin(pool.acquire(&1));
    assert_parked(&mut b, "key 1's acquire").await;
    assert_eq!(pool.stats().waiting_for_capacity, 1);

    // The background create finishes: its resource lands in key 0's idle set (nobody of key 0
    // waits). Nobody drops a `KeyedConnection` after that, so only the landing can evict for
    // key 1.
    permits.add_permits(1);
    let b = tokio::time::timeout(LIMIT, b)
        .await
        .expect("key 1 slept beside key 0's idle resource (no maintenance pass to rescue it)")
        .unwrap();
    assert_eq!(b.key, 1);
    assert_eq!(
        tally.live(0),
        1,
        "key 0's landed resource was evicted, a2's kept"
    );
    assert_eq!(pool.stats().destroyed.evicted, 1);
    assert!(tally.total_high() <= 3, "max_total exceeded");
    drop((a2, b, c));
    pool.close().await;
    assert_eq!(tally.total(), 0);
}

/// Creates at once; `check` waits for a permit, then passes.
struct GatedCheck {
    tally: Arc<Tally>,
    checks: Arc<Semaphore>,
    checking: Arc<AtomicBool>,
}

impl KeyedManager<u8> for GatedCheck {
    type Resource = Res;
    type Error = std::io::Error;

    async fn create(&self, key: &u8) -> std::io::Result<Res> {
        Counting(self.tally.clone()).create(key).await
    }

    async fn check(&self, _key: &u8, _res: &mut Res) -> std::io::Result<()> {
        self.checking.store(true, Ordering::SeqCst);
        self.checks.acquire().await.unwrap().forget();
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn check_passing_after_cancel_evicts_for_a_global_waiter() {
    let tally = Arc::new(Tally::default());
    let checks = Arc::new(Semaphore::new(0));
    let checking = Arc::new(AtomicBool::new(false));
    let pool = stall_options(1, 1)
        .test_before_acquire(true)
        .build(GatedCheck {
            tally: tally.clone(),
            checks: checks.clone(),
            checking: checking.clone(),
        })
        .unwrap();

    // Key 0's resource, idle, holding the only global unit.
    drop(pool.acquire(&0).await.unwrap());
    // An acquire of key 0 takes it and starts its check; then it is cancelled (a dropped
    // request): the check goes on in the background, owning the resource.
    let mut a = Box::pin(pool.acquire(&0));
    assert_parked(&mut a, "key 0's checking acquire").await;
    assert!(checking.load(Ordering::SeqCst), "the check did not start");
    drop(a);
    let_tasks_run().await;

    // Key 1 needs global capacity; its eviction finds nothing idle (the resource is in the
    // background check).
    let mut b = Box::pin(pool.acquire(&1));
    assert_parked(&mut b, "key 1's acquire").await;
    assert_eq!(pool.stats().waiting_for_capacity, 1);

    // The check passes: the resource goes back to key 0's idle set without a `KeyedConnection`
    // drop. Only that landing can evict for key 1.
    checks.add_permits(1);
    let b = tokio::time::timeout(LIMIT, b)
        .await
        .expect("key 1 slept beside key 0's idle resource (no maintenance pass to rescue it)")
        .unwrap();
    assert_eq!(b.key, 1);
    assert_eq!(tally.live(0), 0, "key 0's recovered resource was evicted");
    assert_eq!(pool.stats().destroyed.evicted, 1);
    drop(b);
    pool.close().await;
    assert_eq!(tally.total(), 0);
}
