//! [`Inner`]: what every handle of a keyed pool points to: the key map, the global gate, the
//! shared counters, and the paths that span keys (lookup, eviction, the maintenance sweep,
//! close).

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering as StdOrdering};

use crate::engine::loom::{Arc, AtomicBool, Event, Ordering, Weak};
use crate::engine::{Engine, Host, TALLIES};
use crate::error::Error;
use crate::hooks::Hooks;
use crate::lease::Lease;
use crate::maintenance;
use crate::manager::DynManager;
use crate::shared::Shared;
use crate::stats::{Counters, DestroyReason};
use crate::telemetry::{KeyedGauges, Telemetry};

use super::entry::KeyEntry;
use super::gate::{Gate, KeyShare};
use super::held::Held;
use super::map::ShardedMap;
use super::options::{KeyedConfig, Saturation};
use super::stats::KeyedPoolStats;

/// Makes one key's manager (erases the user's manager type).
type MakeManager<K, T> =
    Box<dyn Fn(&Arc<KeyShare<K>>) -> Box<dyn DynManager<Held<K, T>>> + Send + Sync>;

/// How many keys with idle resources eviction compares.
const EVICTION_SAMPLE: usize = 5;

/// How many shards a release's eviction walks for its sample before it settles for what it found
/// plus its own key (`Inner::evict_after_release`).
const RELEASE_SAMPLE_SHARDS: usize = 2;

/// The state behind a keyed pool.
pub(crate) struct Inner<K: Send + Sync + 'static, T: Send + 'static> {
    pub(crate) map: ShardedMap<K, Arc<KeyEntry<K, T>>>,
    pub(crate) gate: Arc<Gate>,
    /// One set of counters (and per-thread cells) for every key.
    pub(crate) counters: std::sync::Arc<Counters>,
    pub(crate) config: KeyedConfig,
    /// The hooks every key's pool gets (the keyed hooks, wrapped once; `hooks.rs`).
    pub(crate) hooks: Hooks<Held<K, T>>,
    make_manager: MakeManager<K, T>,
    /// Where the next eviction starts looking (a rotating shard index).
    hand: AtomicU64,
    /// Whether the maintenance task runs.
    pub(crate) maintenance_running: std::sync::atomic::AtomicBool,
    /// Woken when the pool closes (stops the maintenance task).
    pub(crate) closed_event: Event,
    pub(crate) closing: AtomicBool,
    /// The pool's gauges (with the `metrics` feature), set from [`stats`](Self::stats).
    gauges: KeyedGauges,
    /// The handles every key's pool reports its events to (with the `metrics` feature),
    /// registered once here.
    telemetry: Telemetry,
    this: Weak<Inner<K, T>>,
}

impl<K, T> Inner<K, T>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(
        config: KeyedConfig,
        hooks: Hooks<Held<K, T>>,
        gate: Arc<Gate>,
        make_manager: impl FnOnce(Weak<Inner<K, T>>) -> MakeManager<K, T>,
    ) -> Arc<Self> {
        // Shards: a few per core, so that lookups of different keys rarely share a lock (two
        // under loom: every shard is a lock the models interleave on).
        let shards = if cfg!(shadowcat_loom) {
            2
        } else {
            4 * std::thread::available_parallelism().map_or(4, |n| n.get())
        };
        let gauges = KeyedGauges::new(&config.name);
        let telemetry = Telemetry::new(&config.name);
        Arc::new_cyclic(|this| Inner {
            map: ShardedMap::new(shards),
            gate,
            counters: std::sync::Arc::default(),
            config,
            hooks,
            make_manager: make_manager(this.clone()),
            hand: AtomicU64::new(0),
            maintenance_running: std::sync::atomic::AtomicBool::new(false),
            closed_event: Event::new(),
            closing: AtomicBool::new(false),
            gauges,
            telemetry,
            this: this.clone(),
        })
    }

    /// Whether `close()` began.
    pub(crate) fn is_closed(&self) -> bool {
        // Acquire: pairs with the Release store in `close`, so an entry inserted after it is
        // never missed (the check runs under the shard's write lock, see `entry`).
        self.closing.load(Ordering::Acquire)
    }

    /// [`KeyedPool::stats`](super::KeyedPool::stats): sums the gauges of every key (a read lock
    /// per shard), so it is meant for monitoring, not for the hot path.
    pub(crate) fn stats(&self) -> KeyedPoolStats {
        let gate = self.gate.state();
        let (mut keys, mut idle, mut waiters) = (0, 0, 0);
        self.map.for_each(|entry| {
            let s = entry.pool.state();
            keys += 1;
            idle += s.avail();
            waiters += s.waiters();
        });
        // The keys' pools have no hot slots: every count is in the shared counters.
        let c = self
            .counters
            .snapshot(gate, self.config.max_total, [0; TALLIES]);
        // Relaxed: a gauge.
        let creators = self
            .counters
            .creators_in_line
            .load(std::sync::atomic::Ordering::Relaxed);
        KeyedPoolStats {
            keys,
            size: gate.size(),
            idle,
            in_use: c.in_use,
            waiting: waiters.saturating_sub(creators),
            // Relaxed: a gauge.
            waiting_for_capacity: gate.waiters()
                + self
                    .gate
                    .waiting_for_turn
                    .load(std::sync::atomic::Ordering::Relaxed),
            creating: c.creating,
            acquired_immediately: c.acquired_immediately,
            acquired_after_wait: c.acquired_after_wait,
            max_per_key: self.config.max_per_key,
            max_total: self.config.max_total,
            closed: self.is_closed(),
            created: c.created,
            create_failed: c.create_failed,
            timeouts: c.timeouts,
            destroyed: c.destroyed,
            maintenance_passes: c.maintenance_passes,
        }
    }

    /// [`KeyedPool::record_metrics`](super::KeyedPool::record_metrics).
    pub(crate) fn record_metrics(&self) {
        self.gauges.set(&self.stats());
    }

    /// The key's entry, made if absent. `Err(Closed)` once the pool is closing.
    pub(crate) fn entry(&self, key: &K) -> Result<Arc<KeyEntry<K, T>>, Error> {
        self.map.get_or_insert(
            key,
            || self.is_closed().then_some(Error::Closed),
            || self.make_entry(key),
        )
    }

    fn make_entry(&self, key: &K) -> Arc<KeyEntry<K, T>> {
        let mut config = self.config.per_key(self.hooks.clone());
        let this = self.this.clone();
        config.after_landing = Some(std::sync::Arc::new(move || {
            if let Some(inner) = this.upgrade() {
                inner.after_landing();
            }
        }));
        let share = Arc::new(KeyShare::new(key.clone()));
        let manager = (self.make_manager)(&share);
        let shared = Shared::with_counters(
            config,
            manager,
            self.counters.clone(),
            self.telemetry.clone(),
        );
        tracing::trace!("keyed pool: new key");
        Arc::new(KeyEntry {
            pool: Arc::new(shared),
            last_used: AtomicU64::new(crate::clock::Ticks::now()),
            closed_by_user: AtomicBool::new(false),
            gate: self.gate.clone(),
            share,
            inner: self.this.clone(),
        })
    }

    /// Removes `entry` from the map if it is still the one mapped for `key` (an acquire found
    /// it closed because it was empty and removed: the next lookup makes a fresh one).
    pub(crate) fn forget(&self, key: &K, entry: &Arc<KeyEntry<K, T>>) {
        self.map.remove_if(key, |mapped| Arc::ptr_eq(mapped, entry));
    }

    /// Closes one idle resource to free its global unit: among the first
    /// [`EVICTION_SAMPLE`] keys with idle resources found walking the shards from a rotating
    /// hand (skipping `exclude`), the one released least recently gives up its oldest idle
    /// resource. Returns whether one was closed.
    pub(crate) fn evict_one(&self, exclude: Option<&K>) -> bool {
        self.evict_sampled(exclude, self.map.shard_count(), None)
    }

    /// The eviction of a release that just left an idle resource in `own` while someone waits
    /// for global capacity. A victim exists (`own`'s, unless claimed since), so a walk of every
    /// shard, which a scan that finds few idle keys makes, buys only a better sample: it samples
    /// [`RELEASE_SAMPLE_SHARDS`] shards and adds `own`. The handshake with the waiter (K1) needs
    /// only that this release evicts one idle resource if any is left, whichever.
    pub(crate) fn evict_after_release(&self, own: &Arc<KeyEntry<K, T>>) -> bool {
        self.evict_sampled(None, RELEASE_SAMPLE_SHARDS, Some(own))
    }

    /// Samples up to [`EVICTION_SAMPLE`] keys with idle resources from at most `shards` shards
    /// (from the rotating hand, skipping `exclude`), plus `also`, and closes the oldest idle
    /// resource of the least recently released of them.
    fn evict_sampled(
        &self,
        exclude: Option<&K>,
        shards: usize,
        also: Option<&Arc<KeyEntry<K, T>>>,
    ) -> bool {
        let shards = shards.min(self.map.shard_count());
        // Relaxed: only spreads where successive evictions start.
        let start = self.hand.fetch_add(1, StdOrdering::Relaxed) as usize;
        let mut sample: Vec<Arc<KeyEntry<K, T>>> = Vec::with_capacity(EVICTION_SAMPLE + 1);
        for i in 0..shards {
            self.map.visit_shard(start.wrapping_add(i), |key, entry| {
                if entry.pool.state().avail() > 0 && exclude != Some(key) {
                    sample.push(entry.clone());
                }
                sample.len() < EVICTION_SAMPLE
            });
            if sample.len() >= EVICTION_SAMPLE {
                break;
            }
        }
        if let Some(own) = also {
            if !sample.iter().any(|entry| Arc::ptr_eq(entry, own)) {
                sample.push(own.clone());
            }
        }
        // Relaxed: a recency hint.
        sample.sort_by_key(|entry| entry.last_used.load(StdOrdering::Relaxed));
        for entry in sample {
            // A claim like any other: it races releases and acquires of that key through the
            // key's state word, so it takes an item only if one is still published.
            if let Some((tracked, unit)) = Engine::claim_idle_internal(&entry.pool) {
                tracing::debug!(id = tracked.id, "keyed pool: evicting an idle resource");
                Lease::new(tracked, unit).destroy(DestroyReason::Evicted);
                return true;
            }
        }
        false
    }

    /// A resource just landed in some key's idle set without a `KeyedConnection` drop: a create
    /// that went on in the background after its acquirer was handed a released resource (hazard
    /// H13), or a check that passed after its acquire was cancelled. Such a landing must evict
    /// for anyone waiting for global capacity, as a release does: the crate calls this (the
    /// key's `after_landing`) right after the landing's publish.
    pub(crate) fn after_landing(&self) {
        if self.gate.saturation != Saturation::Evict {
            return;
        }
        // SeqCst fence: the landing published with an RMW on its key's word just before, on
        // this thread, and we read the gate's word, as a releaser does
        // (`KeyedConnection::returned`). Pairs with the fence in `Gate::take`: either we see the
        // waiter counted, or its eviction scan saw the landing.
        super::fence(Ordering::SeqCst);
        if self.gate.state().waiters() > 0 {
            self.evict_one(None);
        }
    }

    /// Evicts while the estimated idle total is above `max_idle_total` (at most a few per call).
    pub(crate) fn enforce_idle_cap(&self) {
        let Some(cap) = self.gate.max_idle_total else {
            return;
        };
        for _ in 0..4 {
            if self.idle_estimate() <= cap || !self.evict_one(None) {
                return;
            }
        }
    }

    /// Units taken minus resources checked out, creates holding a unit and teardowns in flight:
    /// the idle total, without summing every key (an estimate; the gauges are read one by one).
    /// Creates still waiting for a unit hold none, so they are not subtracted (they were, and
    /// then `max_idle_total` went unenforced exactly while creates waited for capacity).
    pub(crate) fn idle_estimate(&self) -> usize {
        // Relaxed: gauges.
        let out = self.gate.checked_out.load(StdOrdering::Relaxed);
        let creating = self.gate.creating_with_unit.load(StdOrdering::Relaxed);
        let tearing = self.counters.tearing_down.load(StdOrdering::Relaxed);
        self.gate
            .state()
            .size()
            .saturating_sub(out + creating + tearing)
    }

    /// One maintenance pass over every key: reap expired idle resources (idle timeout, max
    /// lifetime), then remove keys that hold nothing and have nobody waiting, and closed keys
    /// that have drained.
    pub(crate) fn sweep(&self) {
        Counters::bump(&self.counters.maintenance_passes);
        // Idle resources can also appear without a `KeyedConnection` drop (a create finished in
        // the background, a cancelled check that passed): evict for anyone still waiting.
        if self.gate.saturation == Saturation::Evict {
            for _ in 0..self.gate.state().waiters() {
                if !self.evict_one(None) {
                    break;
                }
            }
        }
        self.enforce_idle_cap();
        for i in 0..self.map.shard_count() {
            for (_, entry) in self.map.shard_values(i) {
                maintenance::reap(&entry.pool);
            }
            self.map.retain_shard(i, |_, entry| {
                // The CAS fails if an acquire grew or registered meanwhile: that key stays. A key
                // closed by `close_key` leaves once it has drained.
                let s = entry.pool.state();
                (s.is_closed() && s.size() == 0) || entry.pool.engine().close_if_empty()
            });
        }
    }

    /// Closes every key and the gate, at once (synchronous; `KeyedPool::close` then waits).
    /// Returns the entries that were mapped.
    pub(crate) fn close_all(&self) -> Vec<Arc<KeyEntry<K, T>>> {
        // Release: see `is_closed`.
        self.closing.store(true, Ordering::Release);
        Gate::close(&self.gate);
        let entries: Vec<_> = self.map.drain().into_iter().map(|(_, e)| e).collect();
        for entry in &entries {
            entry.pool.close();
        }
        self.closed_event.notify_all();
        entries
    }
}

impl<K: Send + Sync + 'static, T: Send + 'static> Drop for Inner<K, T> {
    fn drop(&mut self) {
        // The last handle is gone: close everything (connections still out are destroyed when
        // they come back).
        self.closing.store(true, Ordering::Release);
        Gate::close(&self.gate);
        self.map.for_each(|entry| {
            entry.pool.close();
        });
    }
}
