//! [`KeyedPool`]: one pool over many upstreams, with per-key and global caps, eviction across
//! keys, FIFO waiting across keys, and memory bounded by what is alive.
//!
//! A proxy talks to many upstreams. A `KeyedPool<K, T>` keeps, for each key `K`, a light pool on
//! the crate's engine (its own lock-free state word, FIFO waiter line and idle queue of
//! `max_per_key`), and one **global gate**, a second engine instance that counts units of
//! capacity across keys up to `max_total`:
//!
//! * **Caps.** A key never holds more than `max_per_key` resources (plus creates in flight); all
//!   keys together never more than `max_total`. A create takes a per-key unit and a global unit;
//!   the global unit lives inside the resource and returns when the resource is destroyed.
//! * **Saturation.** When `max_total` is reached and a key needs a new resource,
//!   [`Saturation`] says what happens: evict an idle resource of another key (the default),
//!   wait, or fail at once.
//! * **Fairness.** FIFO within a key (the crate's waiter line); and capacity freed anywhere goes
//!   to the oldest waiter for global capacity, whatever its key, so a hot key cannot starve a
//!   cold one.
//! * **No global lock on the hot path.** Acquiring for a key looks the key up in a sharded map
//!   (a read lock on one shard) and then runs the crate's lock-free acquire on the key's pool.
//!   Releasing never touches the map.
//! * **Hooks.** `after_create`, `before_acquire` and `after_release`, as on
//!   [`PoolOptions`](crate::PoolOptions), are given the key as well
//!   ([`KeyedPoolOptions::after_create`] and the others), so one hook serves every upstream. A
//!   resource a hook rejects (or whose hook fails or panics) is closed and its capacity, per key
//!   and under `max_total`, freed.
//! * **Memory bounded by what is alive.** The maintenance task (one for the whole pool) reaps
//!   idle resources past `idle_timeout` and removes keys that hold nothing and have nobody
//!   waiting, atomically with respect to an acquire that just looked the key up: that acquire
//!   retries on a fresh entry, it never fails because of the removal.
//!
//! # What belongs in a key
//!
//! A resource is reused for any acquire with an equal key, so the key must hold everything that
//! makes two connections interchangeable, for correctness *and* security: for an HTTP upstream
//! the scheme, host and port; the TLS identity expected of the server (SNI name, verification
//! settings, pinned roots) and any client certificate presented; the proxy (and its credentials)
//! the connection goes through; and, for connections authenticated per tenant or user, that
//! identity. A key that leaves one of these out lets a request reuse a connection authenticated
//! for someone else or verified against different rules.
//!
//! ```
//! use shadowcat_pool::{keyed_fn, KeyedPoolOptions};
//!
//! #[derive(Clone, PartialEq, Eq, Hash)]
//! struct Upstream { scheme: &'static str, authority: String }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let pool = KeyedPoolOptions::new()
//!     .max_per_key(2)
//!     .max_total(3)
//!     .build(keyed_fn(|u: &Upstream| {
//!         let name = format!("{}://{}", u.scheme, u.authority);
//!         async move { Ok::<_, std::io::Error>(name) }
//!     }))
//!     .unwrap();
//! let a = Upstream { scheme: "https", authority: "a.example".into() };
//! let b = Upstream { scheme: "https", authority: "b.example".into() };
//!
//! let conn = pool.acquire(&a).await.unwrap();
//! assert_eq!(conn.as_str(), "https://a.example");
//! drop(conn);                                     // back to a's idle set
//! let (b1, b2) = (pool.acquire(&b).await.unwrap(), pool.acquire(&b).await.unwrap());
//! // max_total (3) is reached with a's idle one; b is at max_per_key.
//! assert_eq!(pool.stats().size, 3);
//! drop((b1, b2));
//! pool.close().await;
//! # }
//! ```
//!
//! DESIGN.md ("Keyed pools") explains the design and what was rejected.

mod connection;
mod entry;
mod gate;
mod held;
mod hooks;
mod inner;
mod manager;
mod map;
mod options;
mod stats;
mod sweeper;

/// The SeqCst fence of the eviction handshake (`Gate::take` and `KeyedConnection`'s drop):
/// loom's under loom, so the models see it.
#[cfg(not(shadowcat_loom))]
pub(crate) use std::sync::atomic::fence;

#[cfg(shadowcat_loom)]
pub(crate) use loom::sync::atomic::fence;

pub use self::connection::KeyedConnection;
pub use self::hooks::{KeyedAfterCreate, KeyedJudge};
pub use self::manager::{keyed_fn, KeyedFnManager, KeyedManager};
pub use self::options::{KeyedPoolOptions, Saturation};
pub use self::stats::{KeyStats, KeyedPoolStats};

use std::future::Future;
use std::hash::Hash;

use crate::acquire;
use crate::callback::guarded_sync;
use crate::engine::loom::{Arc, Ordering};
use crate::engine::Host;
use crate::error::Error;
use crate::hooks::Metadata;
use crate::maintenance;
use crate::manager::DynManager;
use crate::pool::RetainResult;
use crate::stats::DestroyReason;

use self::entry::KeyEntry;
use self::gate::{Gate, Refused};
use self::held::Held;
use self::inner::Inner;
use self::manager::KeyManager;
use self::options::KeyedConfig;

/// A pool of `T` per key `K`, with per-key and global caps. Cheap to clone (an `Arc`);
/// dropping the last handle closes it. See the [module docs](self) for what it does and what
/// belongs in a key.
pub struct KeyedPool<K: Send + Sync + 'static, T: Send + 'static> {
    inner: Arc<Inner<K, T>>,
}

impl<K, T> KeyedPool<K, T>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + 'static,
{
    pub(crate) fn new<M>(config: KeyedConfig, hooks: hooks::KeyedHooks<K, T>, manager: M) -> Self
    where
        M: KeyedManager<K, Resource = T>,
    {
        let gate = Arc::new(Gate::new(
            config.max_total,
            config.max_idle_total,
            config.saturation,
        ));
        let manager = Arc::new(manager);
        let saturation = config.saturation;
        let key_gate = gate.clone();
        let hooks = hooks.per_key();
        let inner = Inner::new(config, hooks, gate, move |this| {
            Box::new(
                move |share: &Arc<gate::KeyShare<K>>| -> Box<dyn DynManager<Held<K, T>>> {
                    Box::new(KeyManager {
                        manager: manager.clone(),
                        gate: key_gate.clone(),
                        inner: this.clone(),
                        saturation,
                        share: share.clone(),
                    })
                },
            )
        });
        sweeper::ensure_running(&inner);
        KeyedPool { inner }
    }

    /// Checks out a resource for `key`: an idle one of that key, a new one if the key and the
    /// total have room (or, at `max_total`, per the [`Saturation`] policy), otherwise waits its
    /// turn behind earlier waiters of the key. Bounded by `acquire_timeout` (an acquire that
    /// finds its key just removed as empty starts over on a fresh entry, and its limit with it:
    /// that happens before any wait); cancel-safe.
    ///
    /// Errors: [`Error::Closed`] if the pool is closed or the key was closed with
    /// [`close_key`](Self::close_key) while this acquire was under way; [`Error::Saturated`]
    /// under [`Saturation::Fail`]; otherwise as [`Pool::acquire`](crate::Pool::acquire).
    pub async fn acquire(&self, key: &K) -> Result<KeyedConnection<K, T>, Error> {
        sweeper::ensure_running(&self.inner);
        loop {
            let entry = self.inner.entry(key)?;
            if self.inner.config.saturation == Saturation::Fail {
                // An idle resource that needs a check or `before_acquire` goes through the full
                // acquire below (`try_acquire` runs neither).
                let prepares = self.inner.config.test_before_acquire
                    || self.inner.hooks.before_acquire.is_some();
                if !prepares {
                    if let Some(conn) = acquire::try_acquire(&entry.pool) {
                        return Ok(KeyedConnection::new(conn, entry));
                    }
                }
                let s = entry.pool.state();
                let room_here = s.size() < self.inner.config.max_per_key;
                let nothing_idle = !prepares || s.avail() == 0;
                if nothing_idle
                    && room_here
                    && self.inner.gate.state().size() >= self.inner.config.max_total
                {
                    return Err(Error::Saturated(self.inner.config.max_total));
                }
            }
            match acquire::acquire(&entry.pool).await {
                Ok(conn) => return Ok(KeyedConnection::new(conn, entry)),
                Err(Error::Closed) => {
                    if self.inner.is_closed() || entry.closed_by_user.load(Ordering::Acquire) {
                        return Err(Error::Closed);
                    }
                    // The key was empty and removed after we looked it up: start over on a
                    // fresh entry (removing the dead one ourselves if maintenance has not yet).
                    self.inner.forget(key, &entry);
                }
                Err(Error::Create(source)) => {
                    return Err(match source.downcast_ref::<Refused>() {
                        Some(Refused::Saturated) => Error::Saturated(self.inner.config.max_total),
                        Some(Refused::Closed) => Error::Closed,
                        None => Error::Create(source),
                    })
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Takes an idle resource of `key` without waiting; never creates, never overtakes a waiter
    /// of the key. Runs `KeyedManager::is_open`, not the async check.
    pub fn try_acquire(&self, key: &K) -> Option<KeyedConnection<K, T>> {
        let entry = self.inner.map.get(key)?;
        let conn = acquire::try_acquire(&entry.pool)?;
        Some(KeyedConnection::new(conn, entry))
    }

    /// Closes one key (one upstream) in this call, not at the future's first poll: its waiters
    /// get [`Error::Closed`], its idle resources are destroyed, and the returned future resolves once every resource of the key (including
    /// those checked out now, when they come back) is destroyed. Other keys are untouched.
    ///
    /// While the key drains, acquires for it fail with [`Error::Closed`]: its resources still
    /// count against `max_per_key`, so a fresh key cannot be started beside them. Once the last
    /// one is destroyed the key leaves the map (here, or at the next maintenance pass if this
    /// future is dropped first), and a later acquire starts it fresh. Returns whether the key
    /// existed.
    ///
    /// ```
    /// # use shadowcat_pool::{keyed_fn, Error, KeyedPoolOptions};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pool = KeyedPoolOptions::new()
    ///     .max_per_key(2)
    ///     .max_total(8)
    ///     .build(keyed_fn(|host: &&str| {
    ///         let host = *host;
    ///         async move { Ok::<_, std::io::Error>(format!("connection to {host}")) }
    ///     }))
    ///     .unwrap();
    /// let stale = pool.acquire(&"10.0.0.7:80").await.unwrap();
    /// // The upstream was redeployed: drop its connections, the one in use when it comes back.
    /// let draining = pool.close_key(&"10.0.0.7:80");
    /// assert!(matches!(pool.acquire(&"10.0.0.7:80").await, Err(Error::Closed)));
    /// drop(stale);
    /// assert!(draining.await);
    /// // Drained and gone: the next acquire starts the key afresh.
    /// assert!(pool.acquire(&"10.0.0.7:80").await.is_ok());
    /// # }
    /// ```
    pub fn close_key<'a>(&'a self, key: &'a K) -> impl Future<Output = bool> + Send + 'a {
        // Closed here, not at the first poll (as `close`).
        let entry = self.inner.map.get(key);
        if let Some(entry) = &entry {
            close_entry(entry);
        }
        async move {
            let Some(entry) = entry else {
                return false;
            };
            entry.pool.engine().drained().await;
            self.inner.forget(key, &entry);
            true
        }
    }

    /// Closes the pool, and returns a future that resolves when every resource of every key is
    /// destroyed. Waiters get [`Error::Closed`]. As [`Pool::close`](crate::Pool::close), the
    /// close happens in this call, not at the future's first poll (`let _ = pool.close();`
    /// closes without waiting); idempotent.
    pub fn close(&self) -> impl Future<Output = ()> + Send + '_ {
        let entries = self.inner.close_all();
        async move {
            for entry in entries {
                entry.pool.engine().drained().await;
            }
            self.inner.gate.drained().await;
            tracing::info!(
                pool = %self.inner.config.name,
                "keyed pool closed: every resource destroyed"
            );
        }
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Looks at every idle resource of every key once and closes those for which `keep`
    /// returns `false` (a panic counts as `true`). Checked-out resources are not affected.
    pub fn retain(&self, mut keep: impl FnMut(&K, &T, Metadata) -> bool) -> RetainResult {
        let (mut retained, mut removed) = (0, 0);
        for i in 0..self.inner.map.shard_count() {
            for (key, entry) in self.inner.map.shard_values(i) {
                let now = entry.pool.clock.now();
                let (kept, gone) = maintenance::sweep_idle(&entry.pool, |lease| {
                    let tracked = lease.tracked();
                    let meta = tracked.metadata(now);
                    let kept = guarded_sync(|| keep(&key, &tracked.resource.resource, meta))
                        .unwrap_or(true);
                    (!kept).then_some(DestroyReason::ClosedByUser)
                });
                retained += kept;
                removed += gone;
            }
        }
        RetainResult { retained, removed }
    }

    /// Closes the least recently used idle resource of a sample of keys (as eviction under
    /// [`Saturation::Evict`] does), freeing its global capacity. Returns whether one was found.
    pub fn evict_idle(&self) -> bool {
        self.inner.evict_one(None)
    }

    /// Runs one maintenance pass now (reap expired idle resources, remove empty keys), as the
    /// maintenance task does every `maintenance_interval`.
    pub fn run_maintenance(&self) {
        self.inner.sweep();
    }

    /// A snapshot of the whole pool. Sums the gauges of every key (a read lock per shard):
    /// meant for monitoring, not for the hot path.
    pub fn stats(&self) -> KeyedPoolStats {
        self.inner.stats()
    }

    /// Sets the pool's metrics gauges from a fresh [`stats`](Self::stats) snapshot, with the
    /// `metrics` cargo feature only (otherwise it does nothing): what
    /// [`Pool::record_metrics`](crate::Pool::record_metrics) sets, summed over the keys, plus
    /// `shadowcat_pool_keys`, the keys in the map. The maintenance task sets them on every pass
    /// too; call this from a scrape handler for gauges that are exact at scrape time.
    ///
    /// Every metric carries the label `pool`, set to
    /// [`KeyedPoolOptions::name`](crate::KeyedPoolOptions::name). The keys' events (creates,
    /// destroys by reason, timeouts, rejected waiters, wait and create times) are recorded as
    /// they happen under the same label and names as a [`Pool`](crate::Pool)'s, so each counter
    /// and histogram is the sum over the keys; there is no per-key label (keys come and go, and a
    /// label per key would grow the recorder without bound). The handles are registered once, when
    /// the keyed pool is built (install the recorder before that), and every key reports to them:
    /// a new key registers nothing.
    pub fn record_metrics(&self) {
        self.inner.record_metrics();
    }

    /// A snapshot of one key, `None` if the key is not in the map.
    pub fn key_stats(&self, key: &K) -> Option<KeyStats> {
        let entry = self.inner.map.get(key)?;
        let s = entry.pool.state();
        Some(KeyStats {
            size: s.size(),
            idle: s.avail(),
            waiting: s.waiters(),
            max: self.inner.config.max_per_key,
            closed: s.is_closed(),
        })
    }

    /// Keys in the map now.
    pub fn keys(&self) -> usize {
        self.inner.map.len()
    }
}

/// Marks an entry closed by the user, then closes its pool (waiters wake with `Closed` and see
/// the mark).
fn close_entry<K: Send + Sync + 'static, T: Send + 'static>(entry: &KeyEntry<K, T>) {
    // Release: an acquire that meets the closed pool reads it with Acquire.
    entry.closed_by_user.store(true, Ordering::Release);
    entry.pool.close();
}

impl<K: Send + Sync + 'static, T: Send + 'static> Clone for KeyedPool<K, T> {
    fn clone(&self) -> Self {
        KeyedPool {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Send + Sync + 'static, T: Send + 'static> std::fmt::Debug for KeyedPool<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedPool")
            .field("global", &self.inner.gate.state())
            .finish_non_exhaustive()
    }
}
