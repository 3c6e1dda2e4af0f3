//! Property test: random sequences of acquire, try_acquire, release, discard, cancel, evict,
//! maintenance, close_key and close across four keys never exceed `max_per_key` or `max_total`
//! (counted from the outside, by the resources themselves, and from the pool's own gauges), never
//! hand out a resource of another key, and close leaves nothing alive. Every saturation policy.
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use keyed_support::{options, poll_once, Counting, Res, Tally};
use proptest::prelude::*;
use shadowcat_pool::{Error, KeyedConnection, KeyedPool, Saturation};

const KEYS: [u8; 4] = [0, 1, 2, 3];
const MAX_PER_KEY: usize = 2;
const MAX_TOTAL: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Acquire(usize),
    TryAcquire(usize),
    Release(usize),
    Discard(usize),
    Cancel(usize),
    Evict,
    Maintain,
    CloseKey(usize),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS.len()).prop_map(Op::Acquire),
        1 => (0..KEYS.len()).prop_map(Op::TryAcquire),
        4 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Discard),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => Just(Op::Evict),
        1 => Just(Op::Maintain),
        1 => (0..KEYS.len()).prop_map(Op::CloseKey),
        1 => Just(Op::Close),
    ]
}

fn policy() -> impl Strategy<Value = Saturation> {
    prop_oneof![
        Just(Saturation::Evict),
        Just(Saturation::Wait),
        Just(Saturation::Fail)
    ]
}

type Conn = KeyedConnection<u8, Res>;
type Acquiring<'a> = Pin<Box<dyn Future<Output = Result<Conn, Error>> + 'a>>;

fn check(pool: &KeyedPool<u8, Res>, tally: &Tally, held: &[(u8, Conn)]) {
    assert!(
        tally.total() <= MAX_TOTAL,
        "max_total exceeded: {}",
        tally.total()
    );
    for key in KEYS {
        assert!(
            tally.live(key) <= MAX_PER_KEY,
            "max_per_key exceeded for {key}"
        );
        if let Some(s) = pool.key_stats(&key) {
            assert!(
                s.size <= MAX_PER_KEY && s.idle <= s.size,
                "key {key}: {s:?}"
            );
        }
    }
    let stats = pool.stats();
    assert!(stats.size <= MAX_TOTAL, "gate size {}", stats.size);
    assert!(
        stats.size >= tally.total(),
        "a live resource without a global unit"
    );
    for (key, conn) in held {
        assert_eq!(conn.key, *key, "a resource of another key was handed out");
    }
}

async fn run(ops: Vec<Op>, saturation: Saturation, idle_cap: Option<usize>) {
    let tally = Arc::new(Tally::default());
    let pool = options(MAX_PER_KEY, MAX_TOTAL)
        .saturation(saturation)
        .max_idle_total(idle_cap)
        .build(Counting(tally.clone()))
        .unwrap();
    let mut held: Vec<(u8, Conn)> = Vec::new();
    let mut pending: Vec<(u8, Acquiring<'_>)> = Vec::new();
    for op in ops {
        match op {
            Op::Acquire(k) => pending.push((KEYS[k], Box::pin(pool.acquire(&KEYS[k])))),
            Op::TryAcquire(k) => {
                if let Some(conn) = pool.try_acquire(&KEYS[k]) {
                    held.push((KEYS[k], conn));
                }
            }
            Op::Release(i) if !held.is_empty() => drop(held.swap_remove(i % held.len())),
            Op::Discard(i) if !held.is_empty() => held.swap_remove(i % held.len()).1.discard(),
            Op::Cancel(i) if !pending.is_empty() => drop(pending.swap_remove(i % pending.len())),
            Op::Evict => {
                pool.evict_idle();
            }
            Op::Maintain => pool.run_maintenance(),
            Op::CloseKey(k) => {
                // The close happens on the first poll; the wait for checked-out ones is dropped.
                let mut closing = Box::pin(pool.close_key(&KEYS[k]));
                let _ = poll_once(&mut closing).await;
            }
            Op::Close => {
                let mut closing = Box::pin(pool.close());
                let _ = poll_once(&mut closing).await;
            }
            _ => {}
        }
        // Let every pending acquire make progress.
        let mut still = Vec::new();
        for (key, mut acquiring) in pending.drain(..) {
            match poll_once(&mut acquiring).await {
                Poll::Ready(Ok(conn)) => held.push((key, conn)),
                Poll::Ready(Err(Error::Closed | Error::Saturated(_))) => {}
                Poll::Ready(Err(other)) => panic!("unexpected error: {other}"),
                Poll::Pending => still.push((key, acquiring)),
            }
        }
        pending = still;
        check(&pool, &tally, &held);
    }
    assert!(tally.total_high() <= MAX_TOTAL);
    assert!(tally.key_high() <= MAX_PER_KEY);
    drop(pending);
    drop(held);
    pool.close().await;
    assert_eq!(tally.total(), 0, "close left resources alive");
    assert_eq!(pool.stats().size, 0, "close left global units taken");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn caps_are_never_exceeded(
        ops in proptest::collection::vec(op(), 1..80),
        saturation in policy(),
        idle_cap in proptest::option::of(0..=MAX_TOTAL),
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops, saturation, idle_cap));
    }
}
