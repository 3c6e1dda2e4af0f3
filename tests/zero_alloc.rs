//! A steady-state acquire + release cycle allocates nothing: a counting global allocator watches
//! this thread while it cycles.
#![cfg(not(shadowcat_loom))]

use futures_util::FutureExt;
use shadowcat_pool::PoolOptions;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    counting_alloc::measure(f).1
}

#[test]
fn steady_state_cycle_allocates_nothing() {
    // Default options: acquire timeout, idle timeout and max lifetime all on (release reads the
    // clock), so this is the configuration users get.
    let pool = PoolOptions::new()
        .max_connections(4)
        .build_with(|| async { Ok::<_, std::io::Error>(vec![1u8; 64]) })
        .unwrap();
    // Warm up outside the window: the first acquire creates (and allocates) the resource.
    let warm = pool.acquire().now_or_never().unwrap().unwrap();
    drop(warm);

    let n = allocations_during(|| {
        for _ in 0..10_000 {
            let conn = pool
                .acquire()
                .now_or_never()
                .expect("idle resource, no waiting")
                .unwrap();
            assert_eq!(conn.len(), 64);
            drop(conn);
            let conn = pool.try_acquire().expect("idle resource");
            drop(conn);
        }
    });
    assert_eq!(n, 0, "{n} allocations in 20,000 acquire/release cycles");
    assert_eq!(pool.stats().created, 1);
}

#[test]
fn the_watcher_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let n = allocations_during(|| drop(std::hint::black_box(vec![0u8; 32])));
    assert_eq!(n, 1);
}

// The wait-path tests check the crate's own waiter line; the `event-listener-waiters` line
// allocates a listener per wait (the feature's documented cost).
#[cfg(not(feature = "event-listener-waiters"))]
#[test]
fn a_parked_acquire_allocates_nothing_in_steady_state() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    let pool = PoolOptions::new()
        .max_connections(1)
        .build_with(|| async { Ok::<_, std::io::Error>(vec![1u8; 64]) })
        .unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let mut held = Some(pool.acquire().now_or_never().unwrap().unwrap());
    // One cycle: an acquire parks behind the held resource, the release hands it over.
    let mut cycle = || {
        let mut acquiring = std::pin::pin!(pool.acquire());
        assert!(acquiring.as_mut().poll(&mut cx).is_pending(), "parks");
        drop(held.take());
        match acquiring.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(conn)) => held = Some(conn),
            other => panic!(
                "the handed-over resource was not taken: {:?}",
                other.is_ready()
            ),
        }
    };
    cycle(); // warm-up: the line's slab grows to one slot
    let n = allocations_during(|| {
        for _ in 0..1_000 {
            cycle();
        }
    });
    assert_eq!(n, 0, "{n} allocations in 1,000 park + hand-off cycles");
    assert_eq!(pool.stats().acquired_after_wait, 1_001);
}

#[cfg(not(feature = "event-listener-waiters"))]
#[test]
fn overlapping_parked_acquires_allocate_nothing_in_steady_state() {
    // The oversubscribed pattern: a release notifies the oldest waiter, and before that waiter
    // runs, another acquire joins the line (it takes the place the notified waiter just left).
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    let pool = PoolOptions::new()
        .max_connections(1)
        .build_with(|| async { Ok::<_, std::io::Error>(vec![1u8; 64]) })
        .unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let mut held = Some(pool.acquire().now_or_never().unwrap().unwrap());
    type Acquiring<'a> = Pin<
        Box<
            dyn Future<
                    Output = Result<shadowcat_pool::PoolConnection<Vec<u8>>, shadowcat_pool::Error>,
                > + 'a,
        >,
    >;
    // Two acquires always parked, oldest first; the boxes are allocated outside the window.
    let mut boxes: Vec<Acquiring<'_>> = (0..1_010)
        .map(|_| Box::pin(pool.acquire()) as Acquiring<'_>)
        .collect();
    let mut parked: std::collections::VecDeque<Acquiring<'_>> = Default::default();
    let mut finished: Vec<Acquiring<'_>> = Vec::with_capacity(1_010);
    for _ in 0..2 {
        let mut a = boxes.pop().unwrap();
        assert!(a.as_mut().poll(&mut cx).is_pending(), "parks");
        parked.push_back(a);
    }
    let mut cycle = || {
        // The holder releases: the oldest waiter is notified but has not run yet...
        drop(held.take());
        // ...when another acquire joins the line behind the other one.
        let mut next = boxes.pop().unwrap();
        assert!(next.as_mut().poll(&mut cx).is_pending(), "parks");
        parked.push_back(next);
        let mut oldest = parked.pop_front().unwrap();
        match oldest.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(conn)) => held = Some(conn),
            other => panic!("the oldest waiter was not served: {:?}", other.is_ready()),
        }
        finished.push(oldest);
    };
    for _ in 0..8 {
        cycle(); // warm-up: the line's slab grows to its steady size
    }
    let n = allocations_during(|| {
        for _ in 0..1_000 {
            cycle();
        }
    });
    assert_eq!(
        n, 0,
        "{n} allocations in 1,000 overlapping park + hand-off cycles"
    );
    drop(finished);
    drop(parked);
    drop(held);
    assert_eq!(pool.stats().acquired_after_wait, 1_008);
}
