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
    let extra = support::within("the acquire of the late create", pool.acquire())
        .await
        .unwrap();
    assert_eq!(extra.id, 1, "the late create became an idle resource");
    let s = pool.stats();
    assert_eq!((s.size, s.created), (2, 2), "{s:?}");
    drop((conn, extra));
    assert_quiescent(&pool, &counts);
}

/// A pool whose first create finishes at once and whose later creates wait for a permit of
/// `gate` and then yield once: such a create is still pending when its acquirer is handed a
/// released resource, and finishes in the one poll the background hand-off gives it.
fn yielding_second_create(
    gate: &std::sync::Arc<tokio::sync::Semaphore>,
    after_create: bool,
) -> shadowcat_pool::Pool<u32> {
    let creates = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let gate = gate.clone();
    let mut options = shadowcat_pool::PoolOptions::new()
        .max_connections(2)
        .acquire_timeout(None)
        .worker_slots(0);
    if after_create {
        options = options.after_create(|_, _| Box::pin(async { Ok(()) }));
    }
    options
        .build_with(move || {
            let id = creates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let gate = gate.clone();
            async move {
                if id > 0 {
                    gate.acquire().await.expect("gate open").forget();
                    tokio::task::yield_now().await;
                }
                Ok::<_, std::io::Error>(id)
            }
        })
        .unwrap()
}

/// The creator is handed a released resource; the create it leaves behind finishes in the very
/// poll that hands it to the background. With no `after_create` hook it is idle at once, before
/// any other task runs: it was never left in a task that a shutting-down runtime could drop
/// unrun (which leaked a counted resource that `Manager::destroy` never saw).
#[tokio::test(flavor = "current_thread")]
async fn a_create_finishing_as_its_creator_is_served_is_idle_at_once() {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let pool = yielding_second_create(&gate, false);
    let held = pool.acquire().await.unwrap(); // resource 0, created at once
    let mut creating = Box::pin(pool.acquire());
    assert!(
        poll_once(&mut creating).await.is_pending(),
        "create 1 waits for the gate"
    );
    gate.add_permits(1); // create 1 can run on: it will yield once, then finish
    drop(held); // handed to the acquirer creating in line
    let conn = match poll_once(&mut creating).await {
        std::task::Poll::Ready(Ok(conn)) => conn,
        other => panic!("the creator was not handed the released resource: {other:?}"),
    };
    assert_eq!(*conn, 0);
    // No other task has run since: the finished create landed in the hand-off itself.
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.created), (2, 1, 2), "{s:?}");
    drop(conn);
    assert_eq!(*pool.try_acquire().expect("an idle resource"), 1);
}

/// The same, with an `after_create` hook: the hook is async, so the finished create lands from a
/// task, and the books balance once it has run.
#[tokio::test(flavor = "current_thread")]
async fn a_create_finishing_as_its_creator_is_served_lands_after_its_hook() {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let pool = yielding_second_create(&gate, true);
    let held = pool.acquire().await.unwrap();
    let mut creating = Box::pin(pool.acquire());
    assert!(
        poll_once(&mut creating).await.is_pending(),
        "create 1 waits for the gate"
    );
    gate.add_permits(1);
    drop(held);
    let std::task::Poll::Ready(Ok(conn)) = poll_once(&mut creating).await else {
        panic!("the creator was not handed the released resource");
    };
    assert_eq!(*conn, 0);
    drop(creating);
    // Both resources are ours: 0 in hand, 1 through the hook's task into the idle set.
    let other = support::within("the acquire of the late create", pool.acquire())
        .await
        .unwrap();
    assert_eq!(*other, 1, "the late create became an idle resource");
    let s = pool.stats();
    assert_eq!((s.size, s.created, s.in_use), (2, 2, 2), "{s:?}");
}
