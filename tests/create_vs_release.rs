//! A waiter stuck in a slow create gets a resource released meanwhile, and the late create lands
//! idle without exceeding max (hazard H13; deadpool#462, hyper#4134).
#![cfg(not(shadowcat_loom))]

mod support;

use support::{assert_quiescent, options, parked, poll_once, Gated, TestManager};

#[tokio::test]
async fn creator_takes_a_released_resource_and_the_create_finishes_in_the_background() {
    let (m, gate) = TestManager::gated(Gated::Create, 1);
    let counts = m.counts();
    let started = m.create_started.clone();
    let pool = options(2).build(m).unwrap();

    let held = pool.acquire().await.unwrap(); // resource #0
    started.notified().await; // consume the first create's signal
    let mut creating = parked(&pool).await;
    started.notified().await; // the second create is in flight and stuck
    assert_eq!(pool.stats().size, 2);

    drop(held); // handed to the creating task, which is in line
    let conn = match poll_once(&mut creating).await {
        std::task::Poll::Ready(Ok(conn)) => conn,
        _ => panic!("the waiter stuck in create was not handed the released resource"),
    };
    assert_eq!(conn.id, 0);

    // Let the background create finish: it must land idle, and size stays at max.
    gate.add_permits(1);
    let extra = pool.acquire().await.unwrap();
    assert_eq!(extra.id, 1, "the late create became an idle resource");
    let s = pool.stats();
    assert_eq!((s.size, s.created), (2, 2), "{s:?}");
    drop((conn, extra));
    assert_quiescent(&pool, &counts);
}
