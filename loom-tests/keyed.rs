//! Loom models of the keyed pool's global cap, with two keys (three in K2): an eviction racing a
//! release, a freed global unit going to the oldest waiter of another key, an empty key removed
//! while an acquire for it arrives, and a key's turn in the gate's line passing to its next
//! create. DESIGN.md ("Keyed pools") says what each proves and which mutant
//! (`loom-tests/mutants/15-*` to `18-*`) it catches.
#![cfg(shadowcat_loom)]

#[path = "common/mod.rs"]
mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use common::{model, poll_once};
use loom::thread;
use shadowcat_pool::{
    Error, KeyedConnection, KeyedManager, KeyedPool, KeyedPoolOptions, Saturation,
};

const A: u8 = 0;
const B: u8 = 1;
const C: u8 = 2;

/// Live resources per key (std atomics: bookkeeping only, not part of what is modelled).
#[derive(Default)]
struct Live([AtomicUsize; 3]);

impl Live {
    fn total(&self) -> usize {
        self.0.iter().map(|n| n.load(SeqCst)).sum()
    }
}

struct Res {
    key: u8,
    live: Arc<Live>,
}

impl Drop for Res {
    fn drop(&mut self) {
        self.live.0[self.key as usize].fetch_sub(1, SeqCst);
    }
}

struct Manager {
    live: Arc<Live>,
    max_total: usize,
    max_per_key: usize,
}

impl KeyedManager<u8> for Manager {
    type Resource = Res;
    type Error = std::io::Error;

    async fn create(&self, key: &u8) -> std::io::Result<Res> {
        let mine = self.live.0[*key as usize].fetch_add(1, SeqCst) + 1;
        assert!(mine <= self.max_per_key, "max_per_key exceeded");
        assert!(self.live.total() <= self.max_total, "max_total exceeded");
        Ok(Res {
            key: *key,
            live: self.live.clone(),
        })
    }
}

type Conn = KeyedConnection<u8, Res>;
type Acquiring = Pin<Box<dyn Future<Output = Result<Conn, Error>> + Send>>;

fn keyed(
    max_per_key: usize,
    max_total: usize,
    policy: Saturation,
) -> (KeyedPool<u8, Res>, Arc<Live>) {
    let live = Arc::new(Live::default());
    let pool = KeyedPoolOptions::new()
        .max_per_key(max_per_key)
        .max_total(max_total)
        .saturation(policy)
        .acquire_timeout(None)
        .idle_timeout(None)
        .max_lifetime(None)
        .build(Manager {
            live: live.clone(),
            max_total,
            max_per_key,
        })
        .unwrap();
    (pool, live)
}

fn acquire(pool: &KeyedPool<u8, Res>, key: u8) -> Result<Conn, Error> {
    loom::future::block_on(pool.acquire(&key))
}

/// Starts an acquire and polls it once: it must be waiting afterwards.
fn parked(pool: &KeyedPool<u8, Res>, key: u8) -> Acquiring {
    let p = pool.clone();
    let mut fut: Acquiring = Box::pin(async move { p.acquire(&key).await });
    assert!(
        poll_once(&mut fut).is_none(),
        "the acquire for key {key} was expected to wait"
    );
    fut
}

/// Model K1. Key A's only resource is being released while key B, at `max_total`, needs one
/// under `Saturation::Evict`. Whichever comes first, B must get capacity: either B's eviction
/// scan sees A's idle resource, or A's release sees B waiting and evicts for it. Never does B
/// sleep while A holds the whole total idle.
#[test]
fn keyed_eviction_racing_release() {
    model("keyed_eviction_racing_release", || {
        let (pool, live) = keyed(1, 1, Saturation::Evict);
        let a = acquire(&pool, A).unwrap();
        let releaser = thread::spawn(move || drop(a));
        let b = acquire(&pool, B).expect("B was never given capacity");
        assert_eq!(b.key, B);
        releaser.join().unwrap();
        assert_eq!(live.total(), 1);
        assert_eq!(
            pool.stats().size,
            1,
            "one global unit, held by B's resource"
        );
        assert_eq!(pool.stats().destroyed.evicted, 1);
        drop(b);
        loom::future::block_on(pool.close());
        assert_eq!(live.total(), 0);
    });
}

/// Model K2. A global unit freed by key A goes to the oldest waiter for global capacity (key B,
/// parked before the threads start), never to a fresh acquire of another key (C) racing the
/// free: capacity freed anywhere is served FIFO across keys.
#[test]
fn keyed_freed_unit_goes_to_oldest_waiter_of_another_key() {
    model(
        "keyed_freed_unit_goes_to_oldest_waiter_of_another_key",
        || {
            let (pool, live) = keyed(1, 1, Saturation::Wait);
            let a = acquire(&pool, A).unwrap();
            let b = parked(&pool, B);
            let served_first = Arc::new(AtomicUsize::new(usize::MAX));
            let freer = thread::spawn(move || a.discard());
            let p = pool.clone();
            let first = served_first.clone();
            let late = thread::spawn(move || {
                let conn = acquire(&p, C).unwrap();
                let _ = first.compare_exchange(usize::MAX, C as usize, SeqCst, SeqCst);
                conn.discard(); // frees the unit again, so B is served either way
            });
            let b = loom::future::block_on(b).unwrap();
            let _ = served_first.compare_exchange(usize::MAX, B as usize, SeqCst, SeqCst);
            assert_eq!(b.key, B);
            b.discard(); // frees the unit again, for C
            freer.join().unwrap();
            late.join().unwrap();
            assert_eq!(
                served_first.load(SeqCst),
                B as usize,
                "the fresh acquire of key C overtook key B's parked waiter"
            );
            assert_eq!(live.total(), 0);
            assert_eq!(pool.stats().size, 0, "every global unit came back");
        },
    );
}

/// Model K3. Key A is empty (its only resource was destroyed) when maintenance removes it while
/// an acquire for A arrives. The acquire never fails because of the removal, and whatever
/// served it is the key's entry in the map, so the key's cap still covers it.
#[test]
fn keyed_empty_key_removed_while_acquire_arrives() {
    model("keyed_empty_key_removed_while_acquire_arrives", || {
        let (pool, live) = keyed(1, 2, Saturation::Wait);
        acquire(&pool, A).unwrap().discard();
        let p = pool.clone();
        let sweeper = thread::spawn(move || p.run_maintenance());
        let a = acquire(&pool, A).expect("an acquire failed because its key was removed");
        sweeper.join().unwrap();
        let stats = pool
            .key_stats(&A)
            .expect("the resource was served by a key not in the map");
        assert_eq!(stats.size, 1);
        assert_eq!(live.total(), 1);
        // The key's cap still covers it: a second acquire for A must wait.
        let mut second = Box::pin(pool.acquire(&A));
        assert!(poll_once(&mut second).is_none(), "max_per_key exceeded");
        drop(second);
        drop(a);
    });
}

/// Model K4. At most one create per key waits in the gate's line; the key's other creates wait
/// for its turn. Key A's first create holds the turn while it waits for global capacity (both
/// units are B's). One unit is freed for it while a second acquire of A arrives on another
/// thread; when the first create gets its unit it gives the turn back, and the second create,
/// whether it was already listening or only checking, must take the turn and get the other unit,
/// freed next: a give-back that no waiter sees would leave it asleep beside free capacity.
#[test]
fn keyed_turn_passes_to_the_next_create_of_the_key() {
    model("keyed_turn_passes_to_the_next_create_of_the_key", || {
        let (pool, live) = keyed(2, 2, Saturation::Wait);
        let b1 = acquire(&pool, B).unwrap();
        let b2 = acquire(&pool, B).unwrap();
        let a1 = parked(&pool, A);
        b1.discard(); // handed to A's first create, in the gate's line
        let p = pool.clone();
        let second = thread::spawn(move || acquire(&p, A));
        let a1 = loom::future::block_on(a1).expect("A's first create got no unit");
        b2.discard(); // the unit for A's second create
        let a2 = second
            .join()
            .unwrap()
            .expect("A's second create got no unit");
        assert_eq!((a1.key, a2.key), (A, A));
        assert_eq!(live.total(), 2);
        assert_eq!(pool.stats().size, 2, "both units with A's resources");
        drop((a1, a2));
        loom::future::block_on(pool.close());
        assert_eq!(live.total(), 0);
    });
}
