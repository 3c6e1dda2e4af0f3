//! S8, keyed: one pool over 64 keys with Zipf-distributed demand and a total cap below the sum
//! of the per-key caps, for `examples/compare.rs`.
//!
//! 256 tasks each pick a key per cycle from a Zipf distribution (exponent 1 over 64 keys: the
//! hottest key gets 21% of the picks, the coldest 0.33%), acquire a resource of that key, yield
//! once while holding it, and give it back. Every pool gets `max_per_key` 16; the capped pools
//! also `max_total` 64, a sixteenth of the 1,024 the per-key caps would allow, so demand exceeds
//! supply (about 3× in the smoke runs) and capacity has to move between keys. Why 16 and not 4:
//! with 4, the hottest keys (21% and 11% of the picks) hit their own caps long before the total
//! fills, the tasks pile up in those keys' lines, and the keys' demand, each capped at 4, came
//! to a third of `max_total`: the global cap, and fairness across keys under it, would not be
//! exercised. The pools:
//!
//! * `KeyedPool` (this crate), [`Saturation::Evict`] (the default), no timeouts or ages, as the
//!   unkeyed comparison configures `Pool`.
//! * [`KeyedMutexBaseline`]: what users build today, a `HashMap` of per-key mutex pools behind a
//!   lock, with the global cap a tokio `Semaphore` and the same eviction policy (see its docs).
//! * [`DeadpoolMap`]: a `HashMap` of `deadpool::managed::Pool`s behind a lock. deadpool has no
//!   cap across pools, so this map has none: up to 1,024 resources can be alive.
//!
//! Besides throughput and the acquire-wait histogram, every task tallies per key the cycles it
//! completed, the time it spent holding a resource and the time it spent wanting one (waiting
//! plus holding). [`KeyTally::least_share`] turns these into each key's service relative to its
//! max-min fair share.

use super::scenarios::{MEASURE, STOP, WARMUP};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hint::black_box;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{fence, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use shadowcat_pool::{KeyedConnection, KeyedManager, KeyedPool, KeyedPoolOptions, Saturation};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::load::LoadSample;
use super::pools::{make, DpManager, Res};
use super::scenarios::{latency_histogram, two_workers, RunResult, Timing};

/// Keys in S8.
pub const KEYS: usize = 64;
/// The Zipf exponent of S8's demand over the keys.
pub const ZIPF_EXPONENT: f64 = 1.0;
/// Resources per key, at most (every pool).
pub const MAX_PER_KEY: usize = 16;
/// Resources across keys, at most (the capped pools; a sixteenth of `KEYS * MAX_PER_KEY`).
pub const MAX_TOTAL: usize = 64;
/// Concurrent tasks in S8.
pub const TASKS: usize = 256;

// ===== Zipf sampling =====

/// Exact Zipf sampling over `0..n` (key `k` has weight `1 / (k + 1)^s`) from a precomputed
/// cumulative table in `u64` space and `fastrand`: one random `u64` and a binary search over
/// the `n` thresholds per sample, the same cost for every pool.
pub struct Zipf {
    /// `cdf[k]`: the probability of keys `0..=k`, scaled to `u64::MAX` (the last is `u64::MAX`).
    cdf: Vec<u64>,
}

impl Zipf {
    /// The distribution over `n` keys with exponent `s`.
    pub fn new(n: usize, s: f64) -> Zipf {
        assert!(n > 0, "Zipf over no keys");
        let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let sum: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut cdf: Vec<u64> = weights
            .iter()
            .map(|w| {
                acc += w / sum;
                (acc.min(1.0) * u64::MAX as f64) as u64
            })
            .collect();
        *cdf.last_mut().expect("n > 0") = u64::MAX;
        Zipf { cdf }
    }

    /// The probability of key `k`.
    pub fn probability(&self, k: usize) -> f64 {
        let lo = if k == 0 { 0 } else { self.cdf[k - 1] };
        (self.cdf[k] - lo) as f64 / u64::MAX as f64
    }

    /// Draws a key.
    #[inline]
    pub fn sample(&self, rng: &mut fastrand::Rng) -> u32 {
        let x = rng.u64(..);
        // The first key whose threshold is at or above `x`.
        self.cdf.partition_point(|&c| c < x) as u32
    }
}

// ===== fair share =====

/// What the tasks of one run measured per key, summed over tasks.
#[derive(Clone, Debug, Default)]
pub struct KeyTally {
    /// Cycles completed per key.
    pub served: Vec<u64>,
    /// Time spent holding a resource of the key (acquired → dropped), in ns.
    pub hold_ns: Vec<u64>,
    /// Time spent wanting one (acquire called → dropped: waiting plus holding), in ns.
    pub want_ns: Vec<u64>,
}

/// The least-served key of a run.
#[derive(Clone, Copy, Debug)]
pub struct LeastServed {
    /// The key (0 is the hottest).
    pub key: u32,
    /// Its service (resources held on average) over its max-min fair share, relative to the
    /// same ratio over all keys (1: served like the average key; 0: starved).
    pub share: f64,
    /// Demand over supply: the sum of the keys' demands, each capped at `max_per_key`, over
    /// the total cap. Above 1, demand exceeded supply.
    pub demand_over_supply: f64,
}

/// Max-min fair shares ("water-filling") of `total` units among keys demanding `demand[k]`
/// units each, none above `per_key`: if the capped demands fit, each key's share is its capped
/// demand; otherwise there is a level `L` with `Σ min(capped_k, L) = total` and each key's
/// share is `min(capped_k, L)`.
pub fn fair_shares(demand: &[f64], per_key: f64, total: f64) -> Vec<f64> {
    let capped: Vec<f64> = demand.iter().map(|d| d.min(per_key).max(0.0)).collect();
    if capped.iter().sum::<f64>() <= total {
        return capped;
    }
    let filled = |level: f64| capped.iter().map(|c| c.min(level)).sum::<f64>();
    let (mut lo, mut hi) = (0.0, per_key);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if filled(mid) > total {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    capped.iter().map(|c| c.min(lo)).collect()
}

impl KeyTally {
    fn new(keys: usize) -> KeyTally {
        KeyTally {
            served: vec![0; keys],
            hold_ns: vec![0; keys],
            want_ns: vec![0; keys],
        }
    }

    fn add(&mut self, other: &KeyTally) {
        for (a, b) in [
            (&mut self.served, &other.served),
            (&mut self.hold_ns, &other.hold_ns),
            (&mut self.want_ns, &other.want_ns),
        ] {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }

    /// The key with the least service relative to its max-min fair share, among keys that
    /// wanted any, over a measured window of `window_ns`. By Little's law a key's demand is the
    /// average number of its acquirers wanting a resource (`want_ns / window`) and its service
    /// the average number holding one (`hold_ns / window`). Fair shares are [`fair_shares`] of
    /// `total` (the pool's total cap; for a pool without one, the sum of the per-key caps) with
    /// each key capped at `per_key`. Each key's held-over-fair ratio is divided by the same
    /// ratio over all keys, so hand-off latency, which no pool avoids, does not count as
    /// unfairness: 1 is a key served like the average key. A key whose acquirers wait forever
    /// holds nothing while its demand grows: its share tends to 0.
    pub fn least_share(&self, window_ns: u64, per_key: usize, total: usize) -> Option<LeastServed> {
        let window = window_ns.max(1) as f64;
        let demand: Vec<f64> = self.want_ns.iter().map(|&w| w as f64 / window).collect();
        let held: Vec<f64> = self.hold_ns.iter().map(|&h| h as f64 / window).collect();
        let fair = fair_shares(&demand, per_key as f64, total as f64);
        let capped: f64 = demand.iter().map(|d| d.min(per_key as f64)).sum();
        // What the pool realised of the fair allocation overall: a resource handed to a waiter
        // is not held until the waiter's task is polled (a cost of every pool), so no key holds
        // its whole fair share. Shares are relative to this.
        let realised = held.iter().sum::<f64>() / fair.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let mut least: Option<LeastServed> = None;
        for (k, (&f, &h)) in fair.iter().zip(&held).enumerate() {
            if f <= 0.0 {
                continue;
            }
            let share = h / f / realised.max(f64::MIN_POSITIVE);
            if least.is_none_or(|l| share < l.share) {
                least = Some(LeastServed {
                    key: k as u32,
                    share,
                    demand_over_supply: capped / total as f64,
                });
            }
        }
        least
    }
}

// ===== the keyed pools =====

/// A keyed pool as the S8 driver sees it.
pub trait KeyedBenchPool: Send + Sync + Sized + 'static {
    /// A checked-out resource; dropping it gives the resource back.
    type Conn<'a>: DerefMut<Target = Res> + Send
    where
        Self: 'a;

    /// Builds an empty pool of [`MAX_PER_KEY`] per key and (if it has a total cap)
    /// [`MAX_TOTAL`] across keys. Called inside a tokio runtime.
    fn build() -> Self;

    /// Checks a resource of `key` out, waiting if needed. Panics on error (none is expected).
    fn acquire(&self, key: u32) -> impl Future<Output = Self::Conn<'_>> + Send;

    /// Resources created so far.
    fn created(&self) -> u64;

    /// Idle resources closed to make room for another key (`None`: the pool never evicts).
    fn evicted(&self) -> Option<u64>;

    /// Resources alive now, across keys.
    fn alive(&self) -> usize;

    /// The total cap across keys that the fair shares are computed against.
    fn total_cap() -> usize {
        MAX_TOTAL
    }
}

/// The keyed manager of the `KeyedPool` row: an instant create, counted.
pub struct KeyedScManager {
    created: Arc<AtomicU64>,
}

impl KeyedManager<u32> for KeyedScManager {
    type Resource = Res;
    type Error = std::io::Error;

    async fn create(&self, _key: &u32) -> Result<Res, std::io::Error> {
        Ok(make(false, &self.created).await)
    }
}

/// This crate's `KeyedPool`, configured as the unkeyed comparison configures `Pool` (no
/// acquire timeout, idle timeout or lifetime), with the default [`Saturation::Evict`].
pub struct KeyedShadowcat {
    /// The pool.
    pub pool: KeyedPool<u32, Res>,
    created: Arc<AtomicU64>,
}

impl KeyedBenchPool for KeyedShadowcat {
    type Conn<'a> = KeyedConnection<u32, Res>;

    fn build() -> Self {
        let created = Arc::new(AtomicU64::new(0));
        let pool = KeyedPoolOptions::new()
            .max_per_key(MAX_PER_KEY)
            .max_total(MAX_TOTAL)
            .saturation(Saturation::Evict)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(None)
            .build(KeyedScManager {
                created: created.clone(),
            })
            .expect("valid keyed options");
        KeyedShadowcat { pool, created }
    }

    #[inline]
    async fn acquire(&self, key: u32) -> Self::Conn<'_> {
        self.pool.acquire(&key).await.expect("KeyedPool acquire")
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    fn evicted(&self) -> Option<u64> {
        Some(self.pool.stats().destroyed.evicted)
    }

    fn alive(&self) -> usize {
        self.pool.stats().size
    }
}

// ===== keyed-mutex-baseline =====

/// The lock-based keyed pool users build today: a `HashMap<key, per-key pool>` behind one
/// `parking_lot::Mutex`, each per-key pool being the unkeyed comparison's mutex baseline (a
/// FIFO tokio `Semaphore` of `max_per_key` for checkouts and a `parking_lot::Mutex<VecDeque>`
/// idle set, the resource pushed back synchronously before the permit goes), plus a global cap.
///
/// The global cap is enforced honestly: every resource alive owns a permit of a tokio
/// `Semaphore` of `max_total` (FIFO), taken before it is created and given back when it is
/// destroyed. It saturates the way `KeyedPool` does under `Saturation::Evict`, so both pools do
/// the same work: a key that needs a new resource while `max_total` are alive counts itself as
/// waiting, evicts the least recently released key's oldest idle resource (exact LRU: a scan
/// of the map under its lock, where `KeyedPool` compares a sample of keys) and waits its FIFO
/// turn for a permit, which the eviction hands to the oldest waiter; and while anyone waits for
/// a permit, every release also evicts one idle resource.
pub struct KeyedMutexBaseline {
    keys: parking_lot::Mutex<HashMap<u32, Arc<MutexKey>>>,
    total: Arc<Semaphore>,
    /// Acquirers waiting for a global permit.
    global_waiters: AtomicUsize,
    /// What `last_used` stamps count from.
    epoch: Instant,
    created: AtomicU64,
    evicted: AtomicU64,
}

/// One key of [`KeyedMutexBaseline`]: the mutex baseline, its idle resources owning their
/// global permits.
struct MutexKey {
    sem: Arc<Semaphore>,
    idle: parking_lot::Mutex<VecDeque<(Res, OwnedSemaphorePermit)>>,
    /// When a resource of this key was last released (ns since `epoch`).
    last_used: AtomicU64,
}

/// A resource checked out of [`KeyedMutexBaseline`].
pub struct KeyedMutexConn<'a> {
    /// The resource and its global permit, until the drop.
    res: Option<(Res, OwnedSemaphorePermit)>,
    key: Arc<MutexKey>,
    /// The key's checkout permit, released after the push.
    permit: Option<OwnedSemaphorePermit>,
    pool: &'a KeyedMutexBaseline,
}

impl KeyedMutexBaseline {
    /// Closes the oldest idle resource of the least recently released key (other than
    /// `exclude`) that has one, giving its global permit back. Returns whether one was closed.
    fn evict_one(&self, exclude: Option<u32>) -> bool {
        let victim = {
            let keys = self.keys.lock();
            keys.iter()
                .filter(|(k, slot)| Some(**k) != exclude && !slot.idle.lock().is_empty())
                // Relaxed: a recency hint.
                .min_by_key(|(_, slot)| slot.last_used.load(Ordering::Relaxed))
                .map(|(_, slot)| slot.clone())
        };
        let Some(slot) = victim else {
            return false;
        };
        // The resource is closed (dropped) here.
        let Some((_, global)) = slot.idle.lock().pop_front() else {
            return false;
        };
        // The permit goes to the oldest waiter on the semaphore, if any.
        drop(global);
        // Relaxed: a statistic.
        self.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// A global permit for a new resource of `key`: at once if one is free, else (as
    /// `Saturation::Evict`) evicts for it and waits in the semaphore's FIFO line.
    async fn global_permit(&self, key: u32) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.total.clone().try_acquire_owned() {
            return permit;
        }
        // Relaxed: the fence below orders it.
        self.global_waiters.fetch_add(1, Ordering::Relaxed);
        // SeqCst fence, as KeyedPool has: with the releaser's fence between its push and its
        // look at `global_waiters`, either our scan sees its idle resource or it sees us
        // counted and evicts for us; without, a waiter could sleep beside an idle resource.
        fence(Ordering::SeqCst);
        self.evict_one(Some(key));
        let permit = self.total.clone().acquire_owned().await;
        // Relaxed: as above. (The driver never cancels an acquire, so no guard is needed.)
        self.global_waiters.fetch_sub(1, Ordering::Relaxed);
        permit.expect("global semaphore closed")
    }
}

impl KeyedBenchPool for KeyedMutexBaseline {
    type Conn<'a> = KeyedMutexConn<'a>;

    fn build() -> Self {
        KeyedMutexBaseline {
            keys: parking_lot::Mutex::new(HashMap::new()),
            total: Arc::new(Semaphore::new(MAX_TOTAL)),
            global_waiters: AtomicUsize::new(0),
            epoch: Instant::now(),
            created: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    async fn acquire(&self, key: u32) -> KeyedMutexConn<'_> {
        let slot = self
            .keys
            .lock()
            .entry(key)
            .or_insert_with(|| {
                Arc::new(MutexKey {
                    sem: Arc::new(Semaphore::new(MAX_PER_KEY)),
                    idle: parking_lot::Mutex::new(VecDeque::with_capacity(MAX_PER_KEY)),
                    last_used: AtomicU64::new(0),
                })
            })
            .clone();
        let permit = slot
            .sem
            .clone()
            .acquire_owned()
            .await
            .expect("key semaphore closed");
        let idle = slot.idle.lock().pop_front();
        let res = match idle {
            Some(idle) => idle,
            None => {
                // The key's permit is held meanwhile, as KeyedPool holds the key's unit while
                // its create waits for a global one.
                let global = self.global_permit(key).await;
                (make(false, &self.created).await, global)
            }
        };
        KeyedMutexConn {
            res: Some(res),
            key: slot,
            permit: Some(permit),
            pool: self,
        }
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    fn evicted(&self) -> Option<u64> {
        Some(self.evicted.load(Ordering::Relaxed))
    }

    fn alive(&self) -> usize {
        MAX_TOTAL - self.total.available_permits()
    }
}

impl Deref for KeyedMutexConn<'_> {
    type Target = Res;
    fn deref(&self) -> &Res {
        &self.res.as_ref().expect("present until drop").0
    }
}

impl DerefMut for KeyedMutexConn<'_> {
    fn deref_mut(&mut self) -> &mut Res {
        &mut self.res.as_mut().expect("present until drop").0
    }
}

impl Drop for KeyedMutexConn<'_> {
    fn drop(&mut self) {
        if let Some(res) = self.res.take() {
            self.key.idle.lock().push_back(res);
        }
        let pool = self.pool;
        // Relaxed: a recency hint for eviction.
        self.key
            .last_used
            .store(pool.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
        // The key's permit goes after the push (to the key's oldest waiter, which then pops).
        drop(self.permit.take());
        // SeqCst fence: pairs with the one in `global_permit` (see there).
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence.
        if pool.global_waiters.load(Ordering::Relaxed) > 0 {
            pool.evict_one(None);
        }
    }
}

// ===== deadpool-map =====

/// A `HashMap` of `deadpool::managed::Pool`s (defaults, `max_size` [`MAX_PER_KEY`]) behind one
/// `parking_lot::Mutex`. deadpool has no cap across pools and no eviction: resources alive are
/// bounded only by the sum of the per-key caps.
pub struct DeadpoolMap {
    keys: parking_lot::Mutex<HashMap<u32, deadpool::managed::Pool<DpManager>>>,
    created: Arc<AtomicU64>,
}

impl KeyedBenchPool for DeadpoolMap {
    type Conn<'a> = deadpool::managed::Object<DpManager>;

    fn build() -> Self {
        DeadpoolMap {
            keys: parking_lot::Mutex::new(HashMap::new()),
            created: Arc::new(AtomicU64::new(0)),
        }
    }

    async fn acquire(&self, key: u32) -> Self::Conn<'_> {
        let pool = self
            .keys
            .lock()
            .entry(key)
            .or_insert_with(|| {
                deadpool::managed::Pool::builder(DpManager::new(false, self.created.clone()))
                    .max_size(MAX_PER_KEY)
                    .build()
                    .expect("deadpool build")
            })
            .clone();
        pool.get().await.expect("deadpool get")
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    fn evicted(&self) -> Option<u64> {
        None
    }

    fn alive(&self) -> usize {
        self.keys.lock().values().map(|p| p.status().size).sum()
    }

    fn total_cap() -> usize {
        KEYS * MAX_PER_KEY
    }
}

// ===== the driver =====

/// What S8 measured beyond the unkeyed scenarios' numbers.
#[derive(Clone, Copy, Debug)]
pub struct KeyedOutcome {
    /// Idle resources evicted for another key during the whole run (`None`: never evicts).
    pub evicted: Option<u64>,
    /// The least-served key in the measured window.
    pub least: Option<LeastServed>,
    /// Resources alive across keys when the run stopped.
    pub alive: usize,
    /// Tasks whose acquire was still waiting [`STALL_AFTER_STOP`] after the stop (their
    /// tallies are lost; a pool that wakes its waiters has none).
    pub stalled: usize,
}

/// How long after the stop the driver waits for every task to finish its cycle. Every other
/// task stops asking, so all resources come back: a waiter still asleep then was forgotten.
pub const STALL_AFTER_STOP: std::time::Duration = std::time::Duration::from_secs(2);

/// One timed run of S8 on `P`: no pre-warm (the warm-up creates what the keys' demand needs);
/// every acquire is timed, and each task tallies its keys (see the module docs).
pub fn run_keyed<P: KeyedBenchPool>(timing: Timing) -> RunResult {
    let rt = two_workers();
    let pool = Arc::new(rt.block_on(async { P::build() }));
    let zipf = Arc::new(Zipf::new(KEYS, ZIPF_EXPONENT));
    let load = LoadSample::start();
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let handles: Vec<_> = (0..TASKS)
        .map(|task| {
            let pool = pool.clone();
            let phase = phase.clone();
            let zipf = zipf.clone();
            rt.spawn(async move {
                // Seeded per task: every pool sees the same key sequences.
                let mut rng = fastrand::Rng::with_seed(task as u64 + 1);
                let mut tally = KeyTally::new(KEYS);
                let mut hist = latency_histogram();
                let mut ops = 0u64;
                loop {
                    // Relaxed: the phase carries no data; the join below orders the results.
                    let ph = phase.load(Ordering::Relaxed);
                    if ph == STOP {
                        break;
                    }
                    let key = zipf.sample(&mut rng);
                    let t0 = Instant::now();
                    let mut conn = pool.acquire(key).await;
                    let t1 = Instant::now();
                    black_box(&mut *conn).n += 1;
                    tokio::task::yield_now().await;
                    drop(conn);
                    if ph == MEASURE {
                        let t2 = Instant::now();
                        let k = key as usize;
                        hist.saturating_record((t1 - t0).as_nanos() as u64);
                        tally.served[k] += 1;
                        tally.hold_ns[k] += (t2 - t1).as_nanos() as u64;
                        tally.want_ns[k] += (t2 - t0).as_nanos() as u64;
                        ops += 1;
                    }
                }
                (ops, hist, tally)
            })
        })
        .collect();
    let elapsed = super::scenarios::drive_phases(&timing, &phase);
    let load = load.finish();
    // A task finishes its cycle after the stop; one whose acquire is still waiting
    // `STALL_AFTER_STOP` later is a pool that left a waiter asleep (cancelled, and counted).
    let (results, stalled) = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + STALL_AFTER_STOP;
        let mut out = Vec::with_capacity(handles.len());
        let mut stalled = 0;
        for h in handles {
            let abort = h.abort_handle();
            match tokio::time::timeout_at(deadline, h).await {
                Ok(r) => out.push(r.expect("task panicked")),
                Err(_) => {
                    abort.abort();
                    stalled += 1;
                }
            }
        }
        (out, stalled)
    });
    if stalled > 0 {
        tracing::warn!(stalled, "S8: acquires still waiting after the stop");
    }
    let alive = pool.alive();
    let mut per_task = Vec::with_capacity(results.len());
    let mut hist: Option<Histogram<u64>> = None;
    let mut tally = KeyTally::new(KEYS);
    for (ops, h, t) in results {
        per_task.push(ops);
        match &mut hist {
            Some(all) => all.add(&h).expect("histograms share their bounds"),
            None => hist = Some(h),
        }
        tally.add(&t);
    }
    let least = tally.least_share(elapsed.as_nanos() as u64, MAX_PER_KEY, P::total_cap());
    RunResult {
        ops: per_task.iter().sum(),
        elapsed,
        per_task,
        hist,
        cold_runs: Vec::new(),
        created: pool.created(),
        load,
        keyed: Some(KeyedOutcome {
            evicted: pool.evicted(),
            least,
            alive,
            stalled,
        }),
    }
}

#[cfg(test)]
mod tests {
    // The criterion benches build this module with `cfg(test)` but, without a test harness,
    // without its `#[test]` functions: the import is then unused.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn zipf_probabilities_follow_the_weights_and_sum_to_one() {
        let z = Zipf::new(64, 1.0);
        let h64: f64 = (1..=64).map(|k| 1.0 / k as f64).sum();
        for k in [0, 1, 9, 63] {
            let want = 1.0 / ((k + 1) as f64 * h64);
            assert!((z.probability(k) - want).abs() < 1e-12, "key {k}");
        }
        let total: f64 = (0..64).map(|k| z.probability(k)).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn zipf_samples_match_the_distribution() {
        let z = Zipf::new(64, 1.0);
        let mut rng = fastrand::Rng::with_seed(7);
        let n = 400_000;
        let mut counts = [0u64; 64];
        for _ in 0..n {
            counts[z.sample(&mut rng) as usize] += 1;
        }
        for (k, &c) in counts.iter().enumerate() {
            let p = z.probability(k);
            // Five standard deviations of a binomial count.
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (c as f64 - n as f64 * p).abs() < 5.0 * sd,
                "key {k}: {c} draws, expected {:.0}",
                n as f64 * p
            );
        }
        assert!(
            counts[0] > counts[63] * 40,
            "key 0 is 64x hotter than key 63"
        );
    }

    #[test]
    fn fair_shares_fill_to_a_level_when_demand_exceeds_supply() {
        // Fits: everyone gets the demand, capped per key.
        assert_eq!(
            fair_shares(&[1.0, 6.0, 0.5], 4.0, 10.0),
            vec![1.0, 4.0, 0.5]
        );
        // Capped demands 4 + 4 + 1 = 9 > 6: the small key keeps its 1, the others split 5.
        let f = fair_shares(&[1.0, 6.0, 9.0], 4.0, 6.0);
        assert!(
            (f[0] - 1.0).abs() < 1e-9 && (f[1] - 2.5).abs() < 1e-9 && (f[2] - 2.5).abs() < 1e-9
        );
        assert!((f.iter().sum::<f64>() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn least_share_finds_a_starved_key() {
        let window = 1_000_000;
        // Key 0 held 2 units all window long; key 1 wanted one unit all window and held it a
        // tenth of the time; key 2 never wanted anything.
        let tally = KeyTally {
            served: vec![100, 1, 0],
            hold_ns: vec![2 * window, window / 10, 0],
            want_ns: vec![2 * window, window, 0],
        };
        let least = tally.least_share(window, 4, 2).expect("keys with demand");
        // Supply 2 < capped demand 3: the level is 1, so both fair shares are 1; key 0 held 2.0
        // and key 1 held 0.1, 2.1 of 2 over all keys, so key 1 got 0.1 / 1.05 of its share.
        assert_eq!(least.key, 1);
        assert!(
            (least.share - 0.1 / 1.05).abs() < 1e-9,
            "share {}",
            least.share
        );
        assert!((least.demand_over_supply - 1.5).abs() < 1e-9);
    }

    /// Fills `max_total` with idle resources of four keys, then acquires for a fifth: the pool
    /// must stay at `max_total` by evicting one idle resource of another key.
    async fn evicts_at_the_total_cap<P: KeyedBenchPool>() {
        let pool = P::build();
        {
            let mut held = Vec::new();
            for key in 0..(MAX_TOTAL / MAX_PER_KEY) as u32 {
                for _ in 0..MAX_PER_KEY {
                    held.push(pool.acquire(key).await);
                }
            }
            assert_eq!(pool.alive(), MAX_TOTAL);
            assert_eq!(pool.evicted(), Some(0));
        }
        let conn = pool.acquire(KEYS as u32 - 1).await;
        assert_eq!(pool.alive(), MAX_TOTAL, "the total cap held");
        assert_eq!(pool.evicted(), Some(1), "one idle resource evicted");
        assert_eq!(pool.created(), MAX_TOTAL as u64 + 1);
        drop(conn);
    }

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn keyed_mutex_baseline_evicts_at_the_total_cap() {
        current_thread().block_on(evicts_at_the_total_cap::<KeyedMutexBaseline>());
    }

    #[test]
    fn keyed_pool_evicts_at_the_total_cap() {
        current_thread().block_on(evicts_at_the_total_cap::<KeyedShadowcat>());
    }
}
