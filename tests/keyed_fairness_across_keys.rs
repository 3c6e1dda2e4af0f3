//! Fairness across keys: capacity freed globally goes to the oldest waiter for global capacity,
//! whatever its key, so a cold key's waiter is served before hot-key waiters that came later.
//! And FIFO within a key still holds.
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::sync::Arc;

use keyed_support::{assert_parked, options, poll_once, Counting, Tally};
use shadowcat_pool::Saturation;

const HOT: u8 = 0;
const WARM: u8 = 1;
const COLD: u8 = 2;

#[tokio::test(flavor = "current_thread")]
async fn a_cold_keys_waiter_is_served_before_later_hot_key_waiters() {
    for policy in [Saturation::Wait, Saturation::Evict] {
        let pool = options(2, 2)
            .saturation(policy)
            .build(Counting(Arc::new(Tally::default())))
            .unwrap();
        // The warm key holds the whole total.
        let w1 = pool.acquire(&WARM).await.unwrap();
        let w2 = pool.acquire(&WARM).await.unwrap();
        // The cold key's acquire waits for global capacity first, then two hot ones.
        let mut cold = Box::pin(pool.acquire(&COLD));
        assert_parked(&mut cold, "cold").await;
        let mut hot1 = Box::pin(pool.acquire(&HOT));
        assert_parked(&mut hot1, "hot 1").await;
        let mut hot2 = Box::pin(pool.acquire(&HOT));
        assert_parked(&mut hot2, "hot 2").await;
        assert_eq!(pool.stats().waiting_for_capacity, 3);

        // One unit frees (a destroy under Wait; a release that evicts under Evict).
        match policy {
            Saturation::Wait => w1.discard(),
            _ => drop(w1),
        }
        assert_parked(&mut hot1, "hot 1 after the first unit").await;
        assert_parked(&mut hot2, "hot 2 after the first unit").await;
        let cold = match poll_once(&mut cold).await {
            std::task::Poll::Ready(conn) => conn.unwrap(),
            std::task::Poll::Pending => {
                panic!("{policy:?}: the oldest waiter (cold) was not served")
            }
        };
        assert_eq!(cold.key, COLD);

        // The next unit goes to the older hot waiter.
        match policy {
            Saturation::Wait => w2.discard(),
            _ => drop(w2),
        }
        assert_parked(&mut hot2, "hot 2 after the second unit").await;
        let hot = poll_once(&mut hot1).await;
        assert!(hot.is_ready(), "{policy:?}: hot 1 was not served second");
        drop((hot, cold));
        // hot 2 gets the next one.
        assert!(poll_once(&mut hot2).await.is_ready());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn waiters_of_one_key_are_served_in_arrival_order() {
    let pool = options(1, 4).build(Counting::default()).unwrap();
    let first = pool.acquire(&HOT).await.unwrap();
    let mut waiters: Vec<_> = (0..4).map(|_| Box::pin(pool.acquire(&HOT))).collect();
    for w in waiters.iter_mut() {
        assert_parked(w, "a hot-key waiter").await;
    }
    // A fresh try_acquire never overtakes them.
    drop(first);
    assert!(pool.try_acquire(&HOT).is_none());
    let mut order = Vec::new();
    for round in 0..4 {
        let mut served = None;
        for (i, w) in waiters.iter_mut().enumerate() {
            if order.contains(&i) {
                continue;
            }
            if let std::task::Poll::Ready(conn) = poll_once(w).await {
                served = Some((i, conn.unwrap()));
                break;
            }
        }
        let (i, conn) = served.unwrap_or_else(|| panic!("nobody served in round {round}"));
        order.push(i);
        drop(conn);
    }
    assert_eq!(order, vec![0, 1, 2, 3]);
}
