//! Loom models of the per-worker hot slots (race R8 in DESIGN.md): a release that parks its
//! resource in its worker's slot races a waiter's registration, `close`, a shrink, and a waiter
//! that is cancelled after it was served. Each model but H5 builds its pool with two slots; loom thread
//! `i` owns slot `i` (a later thread has none), so the main thread (0) and the first spawned
//! thread (1) have slots of their own.
#![cfg(shadowcat_loom)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use loom::thread;

/// A pool of `max` with two hot slots.
fn hot_pool(max: usize) -> (shadowcat_pool::Pool<Res>, std::sync::Arc<Tracker>) {
    pool_with(options(max).worker_slots(2), Vec::new())
}

/// Model H1. The pool's one resource is released on thread 1 (its slot is free, so the release
/// tries to park it) while the main thread acquires, finds the pool full and registers. The
/// waiter must get the resource: either the releaser's re-check after its fence sees the
/// registration and releases through the queue, or the waiter's flush after its fence sees the
/// slot claimed and takes (or marks) it. A resource left parked beside the parked waiter blocks
/// forever, which loom reports as a deadlock.
#[test]
fn park_racing_a_registration_serves_the_waiter() {
    model("park_racing_a_registration_serves_the_waiter", || {
        let (pool, tracker) = hot_pool(1);
        let held = acquire(&pool).unwrap();
        let releaser = thread::spawn(move || drop(held));
        let got = acquire(&pool).unwrap();
        releaser.join().unwrap();
        // Counted once each way, whichever side won: a put refused by the waiter's mark gives
        // back the return it tallied in the slot before it counts it elsewhere.
        assert_eq!(pool.stats().in_use, 1, "{:?}", pool.stats());
        drop(got);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model H2. A release that may park races `close`: `close` resolves only once every unit is
/// back, so a resource parked after the close's flush (and never drained) blocks it forever.
/// Afterwards nothing is alive.
#[test]
fn park_racing_close_leaves_nothing_parked() {
    model("park_racing_close_leaves_nothing_parked", || {
        let (pool, tracker) = hot_pool(1);
        let held = acquire(&pool).unwrap();
        let releaser = thread::spawn(move || drop(held));
        loom::future::block_on(pool.close());
        releaser.join().unwrap();
        assert_closed_and_empty(&pool, &tracker);
    });
}

/// Model H3. A release that may park races a shrink from 2 to 1 while both resources are in use:
/// the released one must be retired whatever the order (the release sees the lowered bound
/// before parking, or the shrink's flush takes it from the slot).
#[test]
fn park_racing_a_shrink_ends_within_the_bound() {
    model("park_racing_a_shrink_ends_within_the_bound", || {
        let (pool, tracker) = pool_with(
            options(2).worker_slots(2).max_connections_ceiling(2),
            Vec::new(),
        );
        let a = acquire(&pool).unwrap();
        let b = acquire(&pool).unwrap();
        let releaser = thread::spawn(move || drop(a));
        assert_eq!(pool.set_max_connections(1), Ok(2));
        releaser.join().unwrap();
        let s = pool.stats();
        assert_eq!(
            (s.size, s.idle, s.destroyed.resized, s.in_use),
            (1, 0, 1, 1),
            "{s:?}"
        );
        drop(b);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model H4. A waiter on thread 1 polls its acquire once and is then cancelled, while the main
/// thread releases the one resource (parking it if it sees nobody waiting). Whatever the waiter
/// was handed (the resource flushed from the slot to it, or a release through the queue) must
/// pass on when it is dropped, so that all capacity is usable afterwards.
#[test]
fn waiter_cancelled_after_it_was_served_passes_the_resource_on() {
    model(
        "waiter_cancelled_after_it_was_served_passes_the_resource_on",
        || {
            let (pool, tracker) = hot_pool(1);
            let held = acquire(&pool).unwrap();
            let p = pool.clone();
            let waiter = thread::spawn(move || {
                let mut fut = Box::pin(p.acquire());
                let _ = poll_once(&mut fut).map(|r| Held::new(r.unwrap()));
                drop(fut);
            });
            drop(held);
            waiter.join().unwrap();
            assert_at_rest(&pool, &tracker);
            assert_all_capacity_usable(&pool, &tracker);
        },
    );
}

/// Model H5. Two releases at once on a pool with one slot: the main thread (worker index 0) owns
/// it, thread 1 has none. A put claims its slot with a plain store, which is sound only because a
/// slot has one owner: if thread 1 could use slot 0 too, both would claim it and write its cell
/// at once, which loom reports. Afterwards both resources are idle and usable.
#[test]
fn two_releases_never_share_a_slot() {
    model("two_releases_never_share_a_slot", || {
        let (pool, tracker) = pool_with(options(2).worker_slots(1), Vec::new());
        let a = acquire(&pool).unwrap();
        let b = acquire(&pool).unwrap();
        let releaser = thread::spawn(move || drop(b));
        drop(a);
        releaser.join().unwrap();
        assert_eq!(pool.stats().idle, 2);
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}

/// Model H6. A creator in line meets a resource parked on another worker. The main thread's
/// acquire finds nothing idle and room to create, so it creates (behind a gate that never opens)
/// while counted in line; thread 1 releases the pool's other resource meanwhile, parking it if it
/// sees nobody waiting. The creator must be handed that resource: it takes it from the slot
/// before registering, its flush after registering takes it, or the release's re-check sees the
/// creator counted and hands it over through the queue. A resource left parked beside the
/// creator's endless create blocks forever, which loom reports as a deadlock.
#[test]
fn a_creator_in_line_gets_a_resource_parked_meanwhile() {
    model("a_creator_in_line_gets_a_resource_parked_meanwhile", || {
        let gate = Gate::new();
        let (pool, tracker) = pool_with(
            options(2).worker_slots(2),
            vec![Create::Ok, Create::GateThenOk(gate.clone())],
        );
        let held = acquire(&pool).unwrap();
        let id = held.id();
        let releaser = thread::spawn(move || drop(held));
        let got = acquire(&pool).unwrap();
        releaser.join().unwrap();
        assert_eq!(got.id(), id, "the parked resource, not a new one");
        drop(got);
        // A create that never started leaves the gated attempt to the next create.
        gate.open();
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}
