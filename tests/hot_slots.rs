//! Per-worker hot slots (`PoolOptions::worker_slots`): a resource released while nobody waits is
//! parked in its worker's slot. These tests check that parked resources are still the pool's:
//! counted idle, reused from other threads before anything is created, seen by `retain`, handed
//! to waiters, destroyed by `close`, and that dropping the last `Pool` handle frees the pool even
//! though parked resources hold references to it.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use shadowcat_pool::PoolOptions;
use support::{current_thread, options, Conn, Gated, TestManager};

#[test]
fn a_released_resource_is_parked_and_counted_idle() {
    let m = TestManager::new();
    let counts = m.counts();
    let rt = current_thread();
    rt.block_on(async {
        let pool = options(2).worker_slots(4).build(m).unwrap();
        let conn = pool.acquire().await.unwrap();
        let id = conn.id();
        drop(conn);
        // Parked in this thread's slot: idle, and the next acquire here gets it back.
        assert_eq!((pool.num_idle(), pool.stats().idle, pool.size()), (1, 1, 1));
        let again = pool.acquire().await.unwrap();
        assert_eq!(again.id(), id);
        assert_eq!(pool.num_idle(), 0);
        drop(again);
        pool.close().await;
    });
    assert_eq!(counts.live(), 0);
}

#[test]
fn a_resource_parked_on_one_thread_is_reused_on_another_before_creating() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(2).worker_slots(4).build(m).unwrap();
    let rt = current_thread();
    let id = rt.block_on(async {
        let conn = pool.acquire().await.unwrap();
        conn.id() // parked in this thread's slot on drop
    });
    let p = pool.clone();
    let (try_id, acquire_id) = std::thread::spawn(move || {
        // `try_acquire` looks in other threads' slots when nothing is published.
        let conn = p.try_acquire().expect("the parked resource");
        let try_id = conn.id();
        drop(conn); // parked in this thread's slot now
        let rt = current_thread();
        // So does an acquire that would otherwise create.
        let acquire_id = rt.block_on(async { p.acquire().await.unwrap().id() });
        (try_id, acquire_id)
    })
    .join()
    .unwrap();
    assert_eq!((try_id, acquire_id), (id, id));
    assert_eq!(
        counts.created.load(Ordering::SeqCst),
        1,
        "a parked resource was not reused"
    );
    // And back on the first thread: the resource is in the other thread's slot.
    let conn = pool.try_acquire().expect("parked on the other thread");
    assert_eq!(conn.id(), id);
}

#[test]
fn a_waiter_is_served_from_a_resource_parked_on_another_thread() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).worker_slots(4).build(m).unwrap();
    let rt = current_thread();
    rt.block_on(async { drop(pool.acquire().await.unwrap()) }); // parked here
    let p = pool.clone();
    std::thread::spawn(move || {
        let rt = current_thread();
        rt.block_on(async {
            // The pool is full (its one resource is parked elsewhere): this acquire registers as
            // a waiter, and its registration flushes the slots to it.
            let conn = p.acquire().await.unwrap();
            assert_eq!(conn.id(), 0);
        });
    })
    .join()
    .unwrap();
    assert_eq!(counts.created.load(Ordering::SeqCst), 1);
    assert_eq!(pool.stats().waiting, 0);
}

#[test]
fn retain_and_close_see_parked_resources() {
    let m = TestManager::new();
    let counts = m.counts();
    let rt = current_thread();
    rt.block_on(async {
        let pool = options(2).worker_slots(4).build(m).unwrap();
        let (a, b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
        drop(a); // parked
        drop(b); // the slot is taken: queued
        assert_eq!(pool.num_idle(), 2);
        let kept = pool.retain(|conn, _| conn.id == 0);
        assert_eq!((kept.retained, kept.removed), (1, 1));
        assert_eq!(pool.num_idle(), 1);
        drop(pool.acquire().await.unwrap()); // parked again
        pool.close().await;
        let s = pool.stats();
        assert_eq!((s.size, s.idle), (0, 0), "{s:?}");
    });
    assert_eq!(counts.live(), 0);
    assert_eq!(counts.destroy_calls.load(Ordering::SeqCst), 2);
}

/// The pool's memory must be freed once the last handle is gone and everything in flight has
/// finished, even though resources parked in slots hold references to the pool: the last
/// handle's drop closes the pool, and close empties the slots. In flight when the last handle
/// drops: a resource parked in a slot, a checked-out connection, and a create finishing in the
/// background (its acquirer was handed a released resource first). The manager lives inside the
/// pool, so its `Arc<Counts>` clone goes only when the pool is freed.
#[test]
fn dropping_the_last_handle_with_work_in_flight_frees_the_pool() {
    let (m, create_gate) = TestManager::gated(Gated::Create, 2);
    let counts = m.counts();
    let rt = current_thread();
    rt.block_on(async {
        let pool = options(3).worker_slots(4).build(m).unwrap();
        let a = pool.acquire().await.unwrap();
        let b = pool.acquire().await.unwrap();
        // A third acquire creates (the gate has no permits left) while counted in line.
        let p = pool.clone();
        let creator = tokio::spawn(async move { p.acquire().await.unwrap().id() });
        assert!(
            support::yield_until(10_000, || pool.stats().creating == 1).await,
            "the third acquire never started creating"
        );
        // Released while the creator is in line: handed to it; its create goes on in the
        // background. The creator's task then drops the connection, which parks in this
        // thread's slot (nobody waits any more).
        drop(a);
        assert_eq!(creator.await.unwrap(), 0);
        assert_eq!(pool.num_idle(), 1);
        assert_eq!(pool.stats().creating, 1);
        // The last handle: closes the pool, destroying the parked resource.
        drop(pool);
        drop(b); // into a closed pool: destroyed
        create_gate.add_permits(1); // the background create lands in a closed pool
        for _ in 0..100_000 {
            if Arc::strong_count(&counts) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
    });
    assert_eq!(counts.live(), 0, "{counts:?}");
    assert_eq!(counts.destroy_calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        Arc::strong_count(&counts),
        1,
        "the pool (and its manager) was not freed"
    );
}

/// The last handle dropped on one thread while other threads release at the same moment: each
/// release may park its resource just before close's flush takes it (and frees the pool, if
/// that was the last reference), so the releases' last steps race the free. Nothing may be
/// lost, destroyed twice, or keep the pool alive. Real threads, many rounds: the interleavings
/// come from the machine, so this exercises the race rather than proving it (the argument is in
/// `engine/hot.rs`).
#[test]
fn releases_racing_the_last_handles_drop_free_the_pool() {
    const THREADS: usize = 3;
    for round in 0..200 {
        let m = TestManager::new();
        let counts = m.counts();
        let pool = options(THREADS).worker_slots(4).build(m).unwrap();
        let conns: Vec<_> = current_thread().block_on(async {
            let mut conns = Vec::new();
            for _ in 0..THREADS {
                conns.push(pool.acquire().await.unwrap());
            }
            conns
        });
        let start = Arc::new(std::sync::Barrier::new(THREADS + 1));
        let releasers: Vec<_> = conns
            .into_iter()
            .map(|conn| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    drop(conn); // parks in this thread's slot unless it sees the close
                })
            })
            .collect();
        start.wait();
        drop(pool); // the last handle: closes and flushes the slots
        for r in releasers {
            r.join().unwrap();
        }
        assert_eq!(counts.live(), 0, "round {round}: {counts:?}");
        assert_eq!(
            counts.destroy_calls.load(Ordering::SeqCst),
            THREADS,
            "round {round}"
        );
        assert_eq!(
            Arc::strong_count(&counts),
            1,
            "round {round}: the pool (and its manager) was not freed"
        );
    }
}

#[test]
fn worker_slots_is_validated_by_build() {
    let err = PoolOptions::<Conn>::new()
        .max_connections(1)
        .worker_slots(4096)
        .build(TestManager::new())
        .unwrap_err();
    assert_eq!(err.field, "worker_slots");
}

/// Runs `park` on a thread of its own, which stays alive (so its slot stays its own) until
/// `then` has run on this thread. This thread claims its worker index first, so the two threads
/// have different slots.
fn with_resources_parked_on_another_thread<R>(
    pool: &shadowcat_pool::Pool<Conn>,
    park: impl FnOnce(shadowcat_pool::Pool<Conn>) + Send + 'static,
    then: impl FnOnce() -> R,
) -> R {
    assert!(pool.try_acquire().is_none(), "claims this thread's index");
    let (parked, done) = (
        Arc::new(std::sync::Barrier::new(2)),
        Arc::new(std::sync::Barrier::new(2)),
    );
    let other = {
        let (pool, parked, done) = (pool.clone(), parked.clone(), done.clone());
        std::thread::spawn(move || {
            park(pool);
            parked.wait();
            done.wait();
        })
    };
    parked.wait();
    let out = then();
    done.wait();
    other.join().unwrap();
    out
}

/// `max_waiters(0)` ("never wait") on a full pool whose one resource is parked in another
/// thread's slot: the acquire must take that resource, not fail with `TooManyWaiters` (it used
/// to skip the other slots when the pool was full, expecting a registration to flush them).
#[test]
fn never_waiting_takes_a_resource_parked_on_another_thread() {
    let pool = options(1)
        .worker_slots(4)
        .max_waiters(0)
        .build(TestManager::new())
        .unwrap();
    let id = with_resources_parked_on_another_thread(
        &pool,
        |pool| current_thread().block_on(async { drop(pool.acquire().await.unwrap()) }),
        || {
            assert_eq!(pool.num_idle(), 1, "parked in the other thread's slot");
            current_thread()
                .block_on(pool.acquire())
                .expect("the parked resource, not TooManyWaiters")
                .id()
        },
    );
    assert_eq!((id, pool.stats().created), (0, 1));
}

/// An acquire whose idle resource fails `is_open` creates a replacement while staying in line;
/// a resource parked in another thread's slot must serve it instead of that create (it used to
/// stay parked: a creator is counted as a waiter but did not flush the slots, so the acquire
/// failed with the create's error while a healthy resource sat idle).
#[test]
fn a_creator_takes_a_resource_parked_on_another_thread_instead_of_creating() {
    let m = TestManager::new().plan(&[
        support::CreateMode::Ok,
        support::CreateMode::Ok,
        support::CreateMode::Fail,
    ]);
    m.close_next_opens.store(1, Ordering::SeqCst); // the queued resource is found closed
    let counts = m.counts();
    let pool = options(2)
        .worker_slots(4)
        .test_before_acquire(true)
        .build(m)
        .unwrap();
    let served = with_resources_parked_on_another_thread(
        &pool,
        |pool| {
            current_thread().block_on(async {
                let a = pool.acquire().await.unwrap(); // id 0
                let b = pool.acquire().await.unwrap(); // id 1
                drop(b); // parked in this thread's slot
                drop(a); // the slot is taken: queued
            })
        },
        || {
            assert_eq!(pool.num_idle(), 2);
            current_thread()
                .block_on(pool.acquire())
                .map(|conn| conn.id())
                .map_err(|e| e.to_string())
        },
    );
    assert_eq!(served, Ok(1), "{:?}", pool.stats());
    assert_eq!(
        counts.create_calls.load(Ordering::SeqCst),
        2,
        "no replacement created"
    );
    drop(pool);
}
