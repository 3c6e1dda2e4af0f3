//! A keyed pool's hooks (`after_create`, `before_acquire`, `after_release`): each runs with the
//! key of the resource it is given and its metadata; a failing, rejecting or panicking hook
//! closes the resource and gives back its capacity, per key and under `max_total` (checked with
//! `stats()`, and by acquiring up to `max_total` again under `Saturation::Fail`, which would
//! report `Saturated` for a leaked unit).
#![cfg(not(shadowcat_loom))]

mod keyed_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyed_support::{options, poll_once, Counting, Res};
use shadowcat_pool::{Error, HookKind, KeyedPoolOptions, Metadata, Panicked, Saturation};
use tokio::sync::{mpsc, Notify};

/// Options over [`Counting`] (keys `u8`, resources [`Res`]), no time limits.
fn typed(max_per_key: usize, max_total: usize) -> KeyedPoolOptions<u8, Res> {
    options(max_per_key, max_total)
}

/// [`typed`], failing at once at `max_total`, so a unit of global capacity that leaked shows up
/// as `Error::Saturated`.
fn failing_at_total(max_per_key: usize, max_total: usize) -> KeyedPoolOptions<u8, Res> {
    typed(max_per_key, max_total).saturation(Saturation::Fail)
}

/// What one hook call saw: the hook, the key it was given, the key of the resource, metadata.
type Seen = (&'static str, u8, u8, Metadata);

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn each_hook_runs_with_the_resources_key_and_metadata() {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let (released_tx, mut released) = mpsc::unbounded_channel();
    let pool = typed(2, 4)
        .after_create(move |key, res, meta| {
            s1.lock()
                .unwrap()
                .push(("after_create", *key, res.key, meta));
            Box::pin(async { Ok(()) })
        })
        .before_acquire(move |key, res, meta| {
            s2.lock()
                .unwrap()
                .push(("before_acquire", *key, res.key, meta));
            Box::pin(async { Ok(true) })
        })
        .after_release(move |key, res, meta| {
            s3.lock()
                .unwrap()
                .push(("after_release", *key, res.key, meta));
            let _ = released_tx.send(*key);
            Box::pin(async { Ok(true) })
        })
        .build(Counting::default())
        .unwrap();

    let one = pool.acquire(&1).await.unwrap();
    let two = pool.acquire(&2).await.unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    drop(one); // after_release runs in a task
    assert_eq!(released.recv().await, Some(1));
    tokio::time::advance(Duration::from_secs(3)).await;
    let one = pool.acquire(&1).await.unwrap(); // the idle one, through before_acquire
    assert_eq!(one.serial, 0);
    drop((one, two));
    assert_eq!(released.recv().await, Some(1));
    assert_eq!(released.recv().await, Some(2));

    let seen = seen.lock().unwrap().clone();
    let calls: Vec<_> = seen.iter().map(|(hook, key, _, _)| (*hook, *key)).collect();
    assert_eq!(
        calls,
        [
            ("after_create", 1),
            ("after_create", 2),
            ("after_release", 1),
            ("before_acquire", 1),
            ("after_release", 1),
            ("after_release", 2),
        ]
    );
    for (hook, key, resource_key, _) in &seen {
        assert_eq!(key, resource_key, "{hook} was given another key's resource");
    }
    // Ids count per key: both keys' first resource is #0.
    assert!(seen.iter().all(|(_, _, _, meta)| meta.id == 0));
    assert_eq!(seen[0].3.age, Duration::ZERO);
    assert_eq!(seen[2].3.age, Duration::from_secs(5));
    assert_eq!(seen[3].3.age, Duration::from_secs(8));
    assert_eq!(seen[3].3.idle_for, Duration::from_secs(3));
    pool.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn after_create_error_fails_the_acquire_and_frees_its_capacity_under_max_total() {
    let tally = Counting::default();
    let pool = failing_at_total(2, 2)
        .after_create(|key, _res, _meta| {
            let refuse = *key == 1;
            Box::pin(async move {
                if refuse {
                    Err("handshake refused".into())
                } else {
                    Ok(())
                }
            })
        })
        .build(tally.clone())
        .unwrap();

    for _ in 0..3 {
        let Err(err) = pool.acquire(&1).await else {
            panic!("after_create's error did not fail the acquire");
        };
        assert!(
            matches!(
                err,
                Error::Hook {
                    hook: HookKind::AfterCreate,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.created, stats.destroyed.hook_rejected),
        (0, 3, 3)
    );
    assert_eq!(tally.0.total(), 0, "the rejected resources were destroyed");
    // Both units of max_total are free: key 2 takes them, under `Fail`.
    let (a, b) = (
        pool.acquire(&2).await.unwrap(),
        pool.acquire(&2).await.unwrap(),
    );
    assert_eq!(pool.stats().size, 2);
    drop((a, b));
    pool.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn before_acquire_rejecting_an_idle_resource_destroys_it_and_the_acquire_gets_another() {
    let tally = Counting::default();
    let rejected = Arc::new(Mutex::new(None));
    let r = rejected.clone();
    let pool = failing_at_total(2, 3)
        .before_acquire(move |_key, res, _meta| {
            // Rejects the first idle resource it is shown.
            let mut first = r.lock().unwrap();
            let keep = first.is_some();
            first.get_or_insert(res.serial);
            Box::pin(async move { Ok(keep) })
        })
        .build(tally.clone())
        .unwrap();
    let (a, b) = (
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&1).await.unwrap(),
    );
    drop((a, b)); // both idle

    let conn = pool.acquire(&1).await.unwrap();
    let rejected = rejected.lock().unwrap().expect("before_acquire ran");
    assert_ne!(conn.serial, rejected, "handed the rejected resource");
    assert!(conn.serial < 2, "not another idle one: {}", conn.serial);
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.created, stats.destroyed.hook_rejected),
        (1, 2, 1)
    );
    assert_eq!(tally.0.live(1), 1);
    // The rejected resource's global unit is free again: key 2 takes max_total's other two.
    let (c, d) = (
        pool.acquire(&2).await.unwrap(),
        pool.acquire(&2).await.unwrap(),
    );
    assert_eq!(pool.stats().size, 3);
    drop((conn, c, d));
    pool.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn before_acquire_runs_under_saturation_fail_and_a_rejection_creates_anew() {
    // `Fail` takes a shortcut for an idle resource; it must not skip the hook.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let pool = failing_at_total(1, 2)
        .before_acquire(move |_key, _res, _meta| {
            c.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(false) })
        })
        .build(Counting::default())
        .unwrap();
    drop(pool.acquire(&1).await.unwrap());
    let conn = pool.acquire(&1).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(conn.serial, 1, "the rejected one was handed out");
    let stats = pool.stats();
    assert_eq!((stats.size, stats.destroyed.hook_rejected), (1, 1));
    drop(conn);
    pool.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn after_release_false_destroys_instead_of_idling() {
    let (released_tx, mut released) = mpsc::unbounded_channel();
    let pool = failing_at_total(2, 2)
        .after_release(move |key, _res, _meta| {
            let _ = released_tx.send(*key);
            let keep = *key != 1;
            Box::pin(async move { Ok(keep) })
        })
        .build(Counting::default())
        .unwrap();
    let (one, two) = (
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&2).await.unwrap(),
    );
    drop((one, two));
    // Each hook's task decided and finished in the poll that sent this.
    assert_eq!(released.recv().await, Some(1));
    assert_eq!(released.recv().await, Some(2));

    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.idle, stats.destroyed.hook_rejected),
        (1, 1, 1)
    );
    assert_eq!(pool.key_stats(&1).map(|k| k.size), Some(0));
    assert_eq!(pool.key_stats(&2).map(|k| k.idle), Some(1));
    // The destroyed one's unit is free: key 3 takes it under `Fail`.
    let three = pool.acquire(&3).await.unwrap();
    assert_eq!(pool.stats().size, 2);
    drop(three);
    pool.close().await;
}

/// Acquires `max_total` (2) resources across keys 2 and 3 under `Fail`: only possible if no unit
/// leaked.
async fn max_total_is_intact(pool: &shadowcat_pool::KeyedPool<u8, Res>) {
    let a = pool.acquire(&2).await.expect("first unit");
    let b = pool.acquire(&3).await.expect("second unit");
    assert_eq!(pool.stats().size, 2);
    drop((a, b));
}

fn assert_panicked(err: Error, kind: HookKind) {
    match err {
        Error::Hook { hook, source } if hook == kind => {
            assert!(source.is::<Panicked>(), "{source:?}");
        }
        other => panic!("expected a {kind} panic, got {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_after_create_leaves_max_total_intact() {
    let pool = failing_at_total(2, 2)
        .after_create(|key, _res, _meta| {
            assert_ne!(*key, 1, "after_create panics for key 1");
            Box::pin(async { Ok(()) })
        })
        .build(Counting::default())
        .unwrap();
    let Err(err) = pool.acquire(&1).await else {
        panic!("after_create's panic did not fail the acquire");
    };
    assert_panicked(err, HookKind::AfterCreate);
    let stats = pool.stats();
    assert_eq!((stats.size, stats.destroyed.hook_rejected), (0, 1));
    max_total_is_intact(&pool).await;
    pool.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_before_acquire_leaves_max_total_intact() {
    let pool = failing_at_total(2, 2)
        .before_acquire(|key, _res, _meta| {
            let key = *key;
            Box::pin(async move {
                assert_ne!(key, 1, "before_acquire panics for key 1");
                Ok(true)
            })
        })
        .build(Counting::default())
        .unwrap();
    drop(pool.acquire(&1).await.unwrap());
    // The idle one panics the hook, is destroyed, and the acquire creates another.
    let conn = pool.acquire(&1).await.unwrap();
    assert_eq!(conn.serial, 1);
    let stats = pool.stats();
    assert_eq!((stats.size, stats.destroyed.hook_rejected), (1, 1));
    drop(conn); // idle again: it panics the hook once more on the next acquire of key 1
    let evicted = pool.evict_idle();
    assert!(evicted, "key 1's idle resource was not there to evict");
    max_total_is_intact(&pool).await;
    pool.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_after_release_leaves_max_total_intact() {
    let (released_tx, mut released) = mpsc::unbounded_channel();
    let pool = failing_at_total(2, 2)
        .after_release(move |key, _res, _meta| {
            let key = *key;
            let _ = released_tx.send(key);
            Box::pin(async move {
                assert_ne!(key, 1, "after_release panics for key 1");
                Ok(true)
            })
        })
        .build(Counting::default())
        .unwrap();
    let (a, b) = (
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&1).await.unwrap(),
    );
    drop((a, b));
    assert_eq!(released.recv().await, Some(1));
    assert_eq!(released.recv().await, Some(1));
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.idle, stats.destroyed.hook_rejected),
        (0, 0, 2)
    );
    max_total_is_intact(&pool).await;
    pool.close().await;
}

// Paused clock: if the resource idles beside key 2, its acquire times out at once (virtual time).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn after_release_keeping_a_resource_while_another_key_waits_gives_it_to_that_key() {
    // max_total 1, `Evict`, no maintenance pass to rescue a waiter: key 1's resource is in its
    // after_release hook when key 2's acquire registers for global capacity and finds nothing
    // idle to evict. When the hook keeps the resource, it must go to key 2, not idle beside it.
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let finish = Arc::new(Notify::new());
    let f = finish.clone();
    let pool = typed(1, 1)
        .saturation(Saturation::Evict)
        .acquire_timeout(Some(Duration::from_secs(30)))
        .maintenance_interval(Duration::from_secs(24 * 3600))
        .after_release(move |key, _res, _meta| {
            // Key 1's release waits for the test's word; others pass at once.
            let f = (*key == 1).then(|| f.clone());
            let _ = started_tx.send(());
            Box::pin(async move {
                if let Some(f) = f {
                    f.notified().await;
                }
                Ok(true)
            })
        })
        .build(Counting::default())
        .unwrap();
    drop(pool.acquire(&1).await.unwrap());
    started.recv().await.unwrap(); // the hook holds key 1's resource and the global unit

    let mut two = Box::pin(pool.acquire(&2));
    assert!(poll_once(&mut two).await.is_pending());
    assert_eq!(pool.stats().waiting_for_capacity, 1);
    finish.notify_one(); // the hook keeps it
    let two = two.await.expect("key 2 was left beside an idle resource");
    let stats = pool.stats();
    assert_eq!((stats.size, stats.destroyed.evicted), (1, 1));
    assert_eq!(stats.destroyed.hook_rejected, 0, "counted as an eviction");
    assert_eq!(pool.key_stats(&1).map_or(0, |k| k.size), 0);
    drop(two);
    pool.close().await;
}
