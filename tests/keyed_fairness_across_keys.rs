//! Fairness across keys: capacity freed globally goes to the oldest waiter for global capacity,
//! whatever its key, so a cold key's waiter is served before hot-key waiters that came later.
//! And FIFO within a key still holds.
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::sync::Arc;
use std::task::Poll;

use keyed_support::{assert_parked, options, poll_once, Counting, Res, Tally};
use shadowcat_pool::{KeyedManager, Saturation};

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
        assert!(
            matches!(&hot, Poll::Ready(Ok(_))),
            "{policy:?}: hot 1 was not served second"
        );
        drop((hot, cold));
        // hot 2 gets the next one.
        assert!(matches!(poll_once(&mut hot2).await, Poll::Ready(Ok(_))));
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

/// A key with many acquirers holds one place in the line for global capacity, not one per
/// create: its other creates wait for the key's turn, so a cold key that came after the hot
/// key's first create is served before the hot key's later ones (the keys take turns).
#[tokio::test(flavor = "current_thread")]
async fn a_key_with_many_acquirers_holds_one_place_in_the_global_line() {
    for policy in [Saturation::Wait, Saturation::Evict] {
        let pool = options(3, 3)
            .saturation(policy)
            .build(Counting(Arc::new(Tally::default())))
            .unwrap();
        // The warm key holds the whole total.
        let w1 = pool.acquire(&WARM).await.unwrap();
        let w2 = pool.acquire(&WARM).await.unwrap();
        let w3 = pool.acquire(&WARM).await.unwrap();
        // Three hot acquires, each creating (room in the key), then a cold one.
        let mut hot: Vec<_> = (0..3).map(|_| Box::pin(pool.acquire(&HOT))).collect();
        for h in hot.iter_mut() {
            assert_parked(h, "a hot acquire").await;
        }
        let mut cold = Box::pin(pool.acquire(&COLD));
        assert_parked(&mut cold, "cold").await;
        // Every create waits for global capacity, but only one per key in the line.
        assert_eq!(pool.stats().waiting_for_capacity, 4);

        // The first unit goes to the hot key's first create (the oldest in the line).
        match policy {
            Saturation::Wait => w1.discard(),
            _ => drop(w1),
        }
        let hot1 = poll_once(&mut hot[0]).await;
        assert!(
            matches!(&hot1, Poll::Ready(Ok(_))),
            "{policy:?}: the oldest create was not served"
        );
        for h in hot.iter_mut().skip(1) {
            assert_parked(h, "a later hot acquire").await;
        }
        // The second goes to the cold key, which joined the line before the hot key's second
        // create got the key's turn.
        match policy {
            Saturation::Wait => w2.discard(),
            _ => drop(w2),
        }
        for h in hot.iter_mut().skip(1) {
            assert_parked(h, "a later hot acquire").await;
        }
        let cold = match poll_once(&mut cold).await {
            std::task::Poll::Ready(conn) => conn.unwrap(),
            std::task::Poll::Pending => {
                panic!("{policy:?}: the hot key's later creates overtook the cold key")
            }
        };
        assert_eq!(cold.key, COLD);
        drop((hot1, cold, hot, w3));
    }
}

/// A create waiting for global capacity whose acquirer is handed a released resource of its
/// key (the crate's H13 path) leaves the global line at once: it creates nothing, takes no
/// unit, and is not counted as a failed create.
#[tokio::test(flavor = "current_thread")]
async fn a_create_whose_acquirer_took_a_released_resource_leaves_the_global_line() {
    let tally = Arc::new(Tally::default());
    let pool = options(2, 2)
        .saturation(Saturation::Wait)
        .build(Counting(tally.clone()))
        .unwrap();
    let c = pool.acquire(&COLD).await.unwrap();
    let a1 = pool.acquire(&HOT).await.unwrap();
    // A second hot acquire creates and waits for global capacity (in the hot key's line too).
    let mut a2 = Box::pin(pool.acquire(&HOT));
    assert_parked(&mut a2, "the second hot acquire").await;
    assert_eq!(pool.stats().waiting_for_capacity, 1);
    assert_eq!(pool.key_stats(&HOT).unwrap().size, 2);

    // a1 comes back and is handed to it: its create is given up at once.
    drop(a1);
    let a2 = match poll_once(&mut a2).await {
        std::task::Poll::Ready(conn) => conn.unwrap(),
        std::task::Poll::Pending => panic!("the released resource was not handed to the creator"),
    };
    let stats = pool.stats();
    assert_eq!(
        stats.waiting_for_capacity, 0,
        "the given-up create is still in line"
    );
    assert_eq!(
        pool.key_stats(&HOT).unwrap().size,
        1,
        "its key unit came back"
    );
    assert_eq!(stats.create_failed, 0, "giving up is not a failure");

    // So the unit freed next goes to a key that needs it, and nothing is created for HOT.
    let mut warm = Box::pin(pool.acquire(&WARM));
    assert_parked(&mut warm, "warm").await;
    c.discard();
    let warm = match poll_once(&mut warm).await {
        std::task::Poll::Ready(conn) => conn.unwrap(),
        std::task::Poll::Pending => panic!("the freed unit did not reach the warm key"),
    };
    assert_eq!(tally.live(HOT), 1);
    assert_eq!(pool.stats().created, 3, "cold, hot, warm: no wasted create");
    drop((a2, warm));
    pool.close().await;
    assert_eq!(tally.total(), 0);
}

/// Under `Saturation::Evict`, a key whose own waiters take every one of its releases (a hot
/// key) still gives capacity up: a release of a key holding at least two units more than a key
/// waiting for global capacity destroys its resource, and the unit goes to that key. The hot
/// key's next waiter then waits its turn for a global unit.
#[tokio::test(flavor = "current_thread")]
async fn a_key_holding_more_gives_a_unit_to_a_waiting_key_holding_less() {
    let tally = Arc::new(Tally::default());
    let pool = options(3, 3)
        .saturation(Saturation::Evict)
        .build(Counting(tally.clone()))
        .unwrap();
    let h1 = pool.acquire(&HOT).await.unwrap();
    let h2 = pool.acquire(&HOT).await.unwrap();
    let h3 = pool.acquire(&HOT).await.unwrap();
    // The hot key is at max_per_key: its next acquire waits in the key's line.
    let mut h4 = Box::pin(pool.acquire(&HOT));
    assert_parked(&mut h4, "the fourth hot acquire").await;
    // The cold key holds nothing and waits for global capacity (nothing idle to evict).
    let mut cold = Box::pin(pool.acquire(&COLD));
    assert_parked(&mut cold, "cold").await;

    // h1's release would be handed to h4; instead the hot key (3 units) gives it up for the
    // cold key (0 units).
    drop(h1);
    let cold = match poll_once(&mut cold).await {
        std::task::Poll::Ready(conn) => conn.unwrap(),
        std::task::Poll::Pending => panic!("the hot key kept every unit; the cold key starved"),
    };
    assert_eq!(cold.key, COLD);
    assert_parked(
        &mut h4,
        "the fourth hot acquire, now waiting for a global unit",
    )
    .await;
    let stats = pool.stats();
    assert_eq!(
        stats.destroyed.evicted, 1,
        "the given-up resource counts as evicted"
    );
    assert_eq!(stats.destroyed.closed_by_user, 0);
    assert_eq!(tally.live(HOT), 2);

    // Between keys holding two and one, nothing moves: h2's release is handed to h4, whose
    // create (waiting for a global unit) is given up.
    drop(h2);
    let h4 = match poll_once(&mut h4).await {
        std::task::Poll::Ready(conn) => conn.unwrap(),
        std::task::Poll::Pending => panic!("h4 was not served by the hot key's release"),
    };
    assert_eq!(pool.stats().destroyed.evicted, 1, "nothing more given up");
    drop((h3, h4, cold));
    pool.close().await;
    assert_eq!(tally.total(), 0);
}

/// Counting, but each create waits for a permit.
struct Gated {
    inner: Counting,
    permits: Arc<tokio::sync::Semaphore>,
}

impl KeyedManager<u8> for Gated {
    type Resource = Res;
    type Error = std::io::Error;
    async fn create(&self, key: &u8) -> std::io::Result<Res> {
        self.permits.acquire().await.unwrap().forget();
        self.inner.create(key).await
    }
}

/// A key's own create waiting in the gate's line (it joined while the key's earlier creates were
/// still running, so at level 0) is not a needier key: the key's release goes to that very
/// acquirer instead of being destroyed for it (and a new resource created).
#[tokio::test(flavor = "current_thread")]
async fn a_release_is_not_given_up_for_its_own_keys_waiting_create() {
    let tally = Arc::new(Tally::default());
    let permits = Arc::new(tokio::sync::Semaphore::new(0));
    let pool = options(8, 8)
        .saturation(Saturation::Evict)
        .build(Gated {
            inner: Counting(tally.clone()),
            permits: permits.clone(),
        })
        .unwrap();
    // Key 1 holds 3 units (checked out).
    permits.add_permits(3);
    let mut other = Vec::new();
    for _ in 0..3 {
        other.push(pool.acquire(&1).await.unwrap());
    }
    // Five creates of key 0 past the gate (gate full), still running: the key holds 0 units.
    let mut first: Vec<_> = (0..5).map(|_| Box::pin(pool.acquire(&0))).collect();
    for a in &mut first {
        assert_parked(a, "a gated create").await;
    }
    // A sixth acquire of key 0 (below max_per_key) waits for global capacity, at level 0.
    let mut sixth = Box::pin(pool.acquire(&0));
    assert_parked(&mut sixth, "the sixth").await;
    assert_eq!(pool.stats().waiting_for_capacity, 1);
    permits.add_permits(6); // five creates, plus one more if the sixth ever creates
    let mut conns = Vec::new();
    for a in &mut first {
        match poll_once(a).await {
            Poll::Ready(c) => conns.push(c.unwrap()),
            Poll::Pending => panic!("create did not finish"),
        }
    }
    let serial = conns[0].serial;
    drop(conns.remove(0)); // handed to the sixth acquire
    let sixth = sixth.await.unwrap();
    let s = pool.stats();
    assert_eq!(
        (sixth.serial, s.destroyed.evicted, s.created),
        (serial, 0, 8),
        "the release was destroyed for the key's own waiting create: {s:?}"
    );
}

/// The last waiting level means "63 or more", so a key waiting there is not known to be needier:
/// a key holding 101 does not give a unit up to one holding 100 (between keys whose holdings
/// differ by one nothing moves).
#[tokio::test(flavor = "current_thread")]
async fn keys_holding_more_than_64_do_not_trade_units_when_they_differ_by_one() {
    let tally = Arc::new(Tally::default());
    let pool = options(101, 201)
        .saturation(Saturation::Evict)
        .build(Counting(tally.clone()))
        .unwrap();
    let mut x = Vec::new();
    for _ in 0..101 {
        x.push(pool.acquire(&0).await.unwrap());
    }
    let mut y = Vec::new();
    for _ in 0..100 {
        y.push(pool.acquire(&1).await.unwrap());
    }
    // Key 0 is at max_per_key: its next acquire waits in its own line.
    let mut x_next = Box::pin(pool.acquire(&0));
    assert_parked(&mut x_next, "x_next").await;
    // Key 1 (100 units) waits for global capacity.
    let mut y_next = Box::pin(pool.acquire(&1));
    assert_parked(&mut y_next, "y_next").await;
    drop(x.pop()); // 101 vs 100: should be handed to x_next
    let s = pool.stats();
    assert_eq!(
        s.destroyed.evicted, 0,
        "a unit moved between keys differing by one: {s:?}"
    );
    assert!(matches!(poll_once(&mut x_next).await, Poll::Ready(Ok(_))));
}
