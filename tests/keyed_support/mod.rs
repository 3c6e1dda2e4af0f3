//! Shared by the `keyed_*` tests: a keyed manager whose resources count themselves alive per key
//! and in total (with high-water marks), so a test can check the caps from the outside.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use shadowcat_pool::{KeyedManager, KeyedPoolOptions};

/// How many keys a tally tracks (keys are `0..KEYS`).
pub const KEYS: usize = 8;

/// Live resources per key and in total, with the highest values seen.
#[derive(Default)]
pub struct Tally {
    pub live: [AtomicUsize; KEYS],
    pub live_high: [AtomicUsize; KEYS],
    pub total: AtomicUsize,
    pub total_high: AtomicUsize,
    pub created: AtomicUsize,
    pub destroyed: AtomicUsize,
}

impl Tally {
    pub fn live(&self, key: u8) -> usize {
        self.live[key as usize].load(Ordering::SeqCst)
    }
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
    pub fn total_high(&self) -> usize {
        self.total_high.load(Ordering::SeqCst)
    }
    pub fn key_high(&self) -> usize {
        self.live_high
            .iter()
            .map(|h| h.load(Ordering::SeqCst))
            .max()
            .unwrap_or(0)
    }
}

/// A resource of key `key`; counted alive from its create until it is dropped.
pub struct Res {
    pub key: u8,
    pub serial: usize,
    tally: Arc<Tally>,
}

impl Drop for Res {
    fn drop(&mut self) {
        self.tally.live[self.key as usize].fetch_sub(1, Ordering::SeqCst);
        self.tally.total.fetch_sub(1, Ordering::SeqCst);
        self.tally.destroyed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Creates a [`Res`] for a key at once.
#[derive(Clone, Default)]
pub struct Counting(pub Arc<Tally>);

impl KeyedManager<u8> for Counting {
    type Resource = Res;
    type Error = std::io::Error;

    async fn create(&self, key: &u8) -> std::io::Result<Res> {
        let t = &self.0;
        let live = t.live[*key as usize].fetch_add(1, Ordering::SeqCst) + 1;
        t.live_high[*key as usize].fetch_max(live, Ordering::SeqCst);
        let total = t.total.fetch_add(1, Ordering::SeqCst) + 1;
        t.total_high.fetch_max(total, Ordering::SeqCst);
        let serial = t.created.fetch_add(1, Ordering::SeqCst);
        Ok(Res {
            key: *key,
            serial,
            tally: t.clone(),
        })
    }
}

/// How long a test waits for a multi-threaded storm's tasks before calling one stranded (as
/// `support::STORM_GUARD`). Only bounds a failing test.
pub const STORM_GUARD: std::time::Duration = std::time::Duration::from_secs(120);

/// Options with no time limits (tests that need time set their own).
pub fn options<K, T>(max_per_key: usize, max_total: usize) -> KeyedPoolOptions<K, T> {
    KeyedPoolOptions::new()
        .max_per_key(max_per_key)
        .max_total(max_total)
        .acquire_timeout(None)
        .idle_timeout(None)
        .max_lifetime(None)
}

/// Polls `f` once.
pub async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
}

/// Polls `f` once and asserts it is still pending (parked).
pub async fn assert_parked<F: Future + Unpin>(f: &mut F, what: &str) {
    assert!(poll_once(f).await.is_pending(), "{what} did not park");
}
