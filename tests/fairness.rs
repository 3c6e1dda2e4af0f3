//! Arrival-order fairness: with a pool of one, waiters are served in the order they arrived, and
//! neither a fresh `acquire` nor `try_acquire` overtakes a parked waiter (hazard H6).
#![cfg(not(shadowcat_loom))]

mod support;

use std::task::Poll;

use support::{assert_quiescent, options, parked, poll_once, TestManager};

#[tokio::test]
async fn waiters_are_served_in_arrival_order() {
    let m = TestManager::new();
    let counts = m.counts();
    let pool = options(1).build(m).unwrap();
    let mut held = Some(pool.acquire().await.unwrap());

    let mut waiters: Vec<_> = (0..16).map(|_| Box::pin(pool.acquire())).collect();
    for w in &mut waiters {
        assert!(poll_once(w).await.is_pending());
    }
    let mut order = Vec::new();
    for round in 0..16 {
        drop(held.take());
        // Poll every waiter, newest first: only the oldest unserved one may be ready.
        let mut served = None;
        for (i, w) in waiters.iter_mut().enumerate().rev() {
            if order.contains(&i) {
                continue;
            }
            if let Poll::Ready(conn) = poll_once(w).await {
                assert!(
                    served.is_none(),
                    "two waiters served by one release in round {round}"
                );
                served = Some(i);
                held = Some(conn.unwrap());
            }
        }
        order.push(served.expect("a release served nobody"));
    }
    assert_eq!(order, (0..16).collect::<Vec<_>>());
    drop(held);
    assert_quiescent(&pool, &counts);
}

#[tokio::test]
async fn fresh_arrivals_do_not_overtake_a_parked_waiter() {
    let pool = options(1).build(TestManager::new()).unwrap();
    let held = pool.acquire().await.unwrap();
    let mut waiting = parked(&pool).await;

    drop(held);
    // The released resource is reserved for the parked waiter.
    assert!(pool.try_acquire().is_none(), "try_acquire barged");
    let mut fresh = Box::pin(pool.acquire());
    assert!(
        poll_once(&mut fresh).await.is_pending(),
        "a fresh acquire barged"
    );
    let conn = match poll_once(&mut waiting).await {
        Poll::Ready(Ok(conn)) => conn,
        _ => panic!("the parked waiter was not served"),
    };
    drop(conn);
    assert!(matches!(poll_once(&mut fresh).await, Poll::Ready(Ok(_))));
}

#[tokio::test]
async fn freed_capacity_goes_to_the_waiter_not_to_a_fresh_arrival() {
    let pool = options(1).build(TestManager::new()).unwrap();
    let held = pool.acquire().await.unwrap();
    let mut waiting = parked(&pool).await;
    drop(held.detach()); // frees the unit: it is handed to the waiter as room to create
    let mut fresh = Box::pin(pool.acquire());
    assert!(
        poll_once(&mut fresh).await.is_pending(),
        "a fresh acquire took the freed unit"
    );
    assert!(matches!(poll_once(&mut waiting).await, Poll::Ready(Ok(_))));
}

#[tokio::test]
async fn a_waiter_whose_handed_resource_fails_its_check_keeps_its_place() {
    let m = TestManager::new();
    m.fail_next_checks
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let pool = options(1).test_before_acquire(true).build(m).unwrap();
    let held = pool.acquire().await.unwrap(); // fresh: not checked
    let mut first = parked(&pool).await;
    let mut second = parked(&pool).await;
    drop(held); // handed to `first`; its check will fail
    assert!(poll_once(&mut second).await.is_pending());
    // `first` destroys the broken resource and creates a replacement with the same unit.
    let conn = match poll_once(&mut first).await {
        Poll::Ready(Ok(conn)) => conn,
        _ => panic!("the oldest waiter lost its place when its resource failed the check"),
    };
    assert_eq!(conn.id, 1, "a replacement was created");
    assert!(poll_once(&mut second).await.is_pending());
    drop(conn);
    assert!(matches!(poll_once(&mut second).await, Poll::Ready(Ok(_))));
    assert_eq!(pool.stats().destroyed.check_failed, 1);
}

// Not with the `event-listener-waiters` line, which cannot insert at the front: there the waiter
// rejoins at the back (the feature's documented limit).
#[cfg(not(feature = "event-listener-waiters"))]
#[tokio::test(start_paused = true)]
async fn a_waiter_whose_resource_is_dead_and_slow_to_tear_down_keeps_its_place() {
    use support::Gated;
    // Handed a resource that `is_open` rejects, whose async teardown still holds the unit, the
    // oldest waiter must wait again at the front of the line, not behind later arrivals.
    let (m, gate) = TestManager::gated(Gated::Destroy, 0);
    m.close_next_opens
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let pool = options(1).build(m).unwrap();
    let held = pool.acquire().await.unwrap(); // fresh: is_open not consulted
    let mut first = parked(&pool).await;
    let mut second = parked(&pool).await;
    drop(held); // handed to `first`
    assert!(
        poll_once(&mut first).await.is_pending(),
        "dead resource, teardown pending"
    );
    gate.add_permits(1); // the teardown finishes; its unit goes to the oldest waiter
    let conn = tokio::time::timeout(std::time::Duration::from_secs(60), first)
        .await
        .expect("the oldest waiter was overtaken")
        .unwrap();
    assert!(poll_once(&mut second).await.is_pending());
    drop(conn);
    assert!(matches!(poll_once(&mut second).await, Poll::Ready(Ok(_))));
    assert_eq!(pool.stats().destroyed.check_failed, 1);
}

#[tokio::test]
async fn a_waiter_handed_a_closed_resource_without_a_check_creates_in_its_place() {
    // No check or hook: the wake-up hands out synchronously from the waiting arm, where only
    // `is_open` runs. A resource it rejects (teardown at once) leaves the waiter its unit, and it
    // creates a replacement before the waiter behind it is served.
    let m = TestManager::new();
    m.close_next_opens
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let pool = options(1).build(m).unwrap();
    let held = pool.acquire().await.unwrap(); // fresh: is_open not consulted
    let mut first = parked(&pool).await;
    let mut second = parked(&pool).await;
    drop(held); // handed to `first`; `is_open` will reject it
    let conn = match poll_once(&mut first).await {
        Poll::Ready(Ok(conn)) => conn,
        _ => panic!("the oldest waiter lost its place when its resource was not open"),
    };
    assert_eq!(conn.id, 1, "a replacement was created");
    assert!(poll_once(&mut second).await.is_pending());
    drop(conn);
    assert!(matches!(poll_once(&mut second).await, Poll::Ready(Ok(_))));
    assert_eq!(pool.stats().destroyed.check_failed, 1);
    assert_eq!(pool.stats().size, 1);
}
