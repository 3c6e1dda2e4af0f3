//! Issue 11 item 8: `stats().waiting` counts only acquirers parked in line. An acquire that is
//! creating in a pool with room is not queueing, so an alert on `waiting > 0` must not fire
//! every time the pool grows (creates in flight are reported separately).
#![cfg(not(shadowcat_loom))]

mod support;

use support::{assert_quiescent, options, parked, Gated, TestManager};

#[tokio::test]
async fn a_first_create_is_not_counted_as_waiting() {
    let (m, gate) = TestManager::gated(Gated::Create, 0);
    let counts = m.counts();
    let started = m.create_started.clone();
    let pool = options(2).build(m).unwrap();

    let creating = parked(&pool).await;
    started.notified().await; // the first create is in flight
    let s = pool.stats();
    assert_eq!(s.size, 1, "{s:?}");
    assert_eq!(
        s.waiting, 0,
        "a pool with room that is creating its first connection reports a waiter: {s:?}"
    );

    gate.add_permits(1);
    drop(creating.await.unwrap());
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn only_the_parked_acquirer_behind_a_create_is_waiting() {
    let (m, gate) = TestManager::gated(Gated::Create, 0);
    let counts = m.counts();
    let started = m.create_started.clone();
    let pool = options(1).build(m).unwrap();

    let creating = parked(&pool).await;
    started.notified().await;
    let waiter = parked(&pool).await; // no room: this one queues
    let s = pool.stats();
    assert_eq!(
        s.waiting, 1,
        "one acquirer creates and one queues behind it: {s:?}"
    );

    gate.add_permits(1);
    drop(creating.await.unwrap()); // handed to the waiter
    drop(waiter.await.unwrap());
    assert_quiescent(&pool, &counts);
}
