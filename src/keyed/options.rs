//! [`KeyedPoolOptions`]: the builder of a [`KeyedPool`](super::KeyedPool), and validation.

use std::hash::Hash;
use std::time::Duration;

use crate::config::Config;
use crate::engine::MAX_SIZE;
use crate::error::{BoxError, BuildError};
use crate::hooks::{Hooks, Metadata};
use crate::manager::BoxFuture;
use crate::options::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAINTENANCE_INTERVAL,
    DEFAULT_MAX_LIFETIME, DEFAULT_RELEASE_TIMEOUT,
};

use super::held::Held;
use super::hooks::KeyedHooks;
use super::manager::KeyedManager;
use super::KeyedPool;

/// What an acquire does when its key needs a new resource and `max_total` resources are alive
/// across keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Saturation {
    /// Close an idle resource of another key (the stalest of a sample) and take its capacity,
    /// waiting in the global FIFO line for it; with nothing idle anywhere, wait. While anyone
    /// waits for global capacity, every release also evicts one idle resource, so capacity
    /// moves from keys that hold it idle to keys that need it. The default.
    #[default]
    Evict,
    /// Wait in the global FIFO line until a resource of any key is destroyed (idle expiry,
    /// lifetime, broken, `close_key`), up to `acquire_timeout`.
    Wait,
    /// Fail at once with [`Error::Saturated`](crate::Error::Saturated).
    Fail,
}

/// Configures and builds a [`KeyedPool`] of `T` per key `K`.
///
/// `max_per_key` and `max_total` are required; the options both builders have take the same
/// default as in [`PoolOptions`](crate::PoolOptions). [`build`](Self::build) rejects invalid
/// values with a [`BuildError`] naming the field.
///
/// What a key's pool does not offer, next to a [`Pool`](crate::Pool): no `min_connections` or
/// warm-up (keys come and go), no hot slots (they would cost a cache line per key per worker), a
/// fixed `max_lifetime_jitter` of a tenth, and no metrics per key (the pool's are sums over its
/// keys: [`KeyedPool::record_metrics`](crate::KeyedPool::record_metrics)). The slow-acquire
/// warning is off unless [`acquire_slow_threshold`](Self::acquire_slow_threshold) is set. `K`
/// and `T` are usually inferred from the manager passed to `build`; name them
/// (`KeyedPoolOptions::<K, T>::new()`) when a hook is set first.
///
/// ```
/// use std::time::Duration;
/// use shadowcat_pool::{keyed_fn, KeyedPoolOptions, Saturation};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = KeyedPoolOptions::new()
///     .max_per_key(4)
///     .max_total(16)
///     .max_idle_total(8)
///     .saturation(Saturation::Evict)
///     .idle_timeout(Duration::from_secs(90))
///     .build(keyed_fn(|host: &String| {
///         let host = host.clone();
///         async move { Ok::<_, std::io::Error>(format!("connection to {host}")) }
///     }))
///     .unwrap();
/// let conn = pool.acquire(&"a.example:443".to_string()).await.unwrap();
/// assert_eq!(conn.as_str(), "connection to a.example:443");
/// # }
/// ```
pub struct KeyedPoolOptions<K, T> {
    max_per_key: Option<usize>,
    max_total: Option<usize>,
    max_idle_total: Option<usize>,
    saturation: Saturation,
    acquire_timeout: Option<Duration>,
    create_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    test_before_acquire: bool,
    maintenance_interval: Option<Duration>,
    release_timeout: Option<Duration>,
    max_waiters_per_key: Option<usize>,
    acquire_slow_threshold: Option<Duration>,
    name: std::sync::Arc<str>,
    hooks: KeyedHooks<K, T>,
}

impl<K, T> Clone for KeyedPoolOptions<K, T> {
    fn clone(&self) -> Self {
        KeyedPoolOptions {
            hooks: self.hooks.clone(),
            name: self.name.clone(),
            ..*self
        }
    }
}

impl<K, T> std::fmt::Debug for KeyedPoolOptions<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedPoolOptions")
            .field("max_per_key", &self.max_per_key)
            .field("max_total", &self.max_total)
            .field("max_idle_total", &self.max_idle_total)
            .field("saturation", &self.saturation)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("create_timeout", &self.create_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("test_before_acquire", &self.test_before_acquire)
            .field("maintenance_interval", &self.maintenance_interval)
            .field("release_timeout", &self.release_timeout)
            .field("max_waiters_per_key", &self.max_waiters_per_key)
            .field("acquire_slow_threshold", &self.acquire_slow_threshold)
            .field("name", &self.name)
            .field("after_create", &self.hooks.after_create.is_some())
            .field("before_acquire", &self.hooks.before_acquire.is_some())
            .field("after_release", &self.hooks.after_release.is_some())
            .finish()
    }
}

impl<K, T> Default for KeyedPoolOptions<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The validated options.
#[derive(Debug, Clone)]
pub(crate) struct KeyedConfig {
    pub(crate) max_per_key: usize,
    pub(crate) max_total: usize,
    pub(crate) max_idle_total: Option<usize>,
    pub(crate) saturation: Saturation,
    pub(crate) acquire_timeout: Option<Duration>,
    pub(crate) create_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) test_before_acquire: bool,
    pub(crate) maintenance_interval: Duration,
    pub(crate) release_timeout: Option<Duration>,
    pub(crate) max_waiters_per_key: Option<usize>,
    pub(crate) acquire_slow_threshold: Option<Duration>,
    pub(crate) name: std::sync::Arc<str>,
    /// Whether a hook needs the idle stamp on release (`before_acquire`'s `idle_for`).
    pub(crate) hooks_need_clock: bool,
}

impl<K, T> KeyedPoolOptions<K, T> {
    /// The defaults: no caps set (both are required), [`Saturation::Evict`], no idle cap across
    /// keys, no hooks, and `PoolOptions`' timeouts.
    pub fn new() -> Self {
        KeyedPoolOptions {
            max_per_key: None,
            max_total: None,
            max_idle_total: None,
            saturation: Saturation::default(),
            acquire_timeout: Some(DEFAULT_ACQUIRE_TIMEOUT),
            create_timeout: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_lifetime: Some(DEFAULT_MAX_LIFETIME),
            test_before_acquire: false,
            maintenance_interval: None,
            release_timeout: Some(DEFAULT_RELEASE_TIMEOUT),
            max_waiters_per_key: None,
            acquire_slow_threshold: None,
            name: "keyed".into(),
            hooks: KeyedHooks::default(),
        }
    }

    /// Resources alive (plus creates in flight) for one key, at most. **Required**; must be in
    /// `1..=1_048_575`. No default.
    pub fn max_per_key(mut self, n: usize) -> Self {
        self.max_per_key = Some(n);
        self
    }

    /// Resources alive (plus creates in flight) across all keys, at most. **Required**; at least
    /// `max_per_key`, at most `1_048_575`. No default.
    pub fn max_total(mut self, n: usize) -> Self {
        self.max_total = Some(n);
        self
    }

    /// Idle resources across all keys, at most (`None`, the default: no cap beyond
    /// `max_total`). Enforced on release, from an estimate (units taken, minus resources
    /// checked out, creates in flight and teardowns in flight), by evicting the stalest idle
    /// resource of a sample.
    pub fn max_idle_total(mut self, n: impl Into<Option<usize>>) -> Self {
        self.max_idle_total = n.into();
        self
    }

    /// What an acquire does when its key needs a new resource and `max_total` is reached.
    /// Default: [`Saturation::Evict`].
    pub fn saturation(mut self, policy: Saturation) -> Self {
        self.saturation = policy;
        self
    }

    /// The longest an acquire takes in all (in its key's line, for global capacity, creating,
    /// checks and `before_acquire`). `None` waits forever. Must not be zero. Default: 2 s.
    pub fn acquire_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.acquire_timeout = d.into();
        self
    }

    /// The longest a create takes, including its wait for a unit of global capacity; it bounds
    /// `after_create` too. Must not be zero. Default: `None` (bounded by `acquire_timeout`).
    pub fn create_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.create_timeout = d.into();
        self
    }

    /// Resources idle longer than this are closed by the maintenance pass. Must not be zero.
    /// Default: 10 min.
    pub fn idle_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = d.into();
        self
    }

    /// Resources older than this are closed (on release or by the maintenance pass), jittered
    /// down by up to a tenth, as in [`PoolOptions`](crate::PoolOptions). Must not be zero.
    /// Default: 30 min.
    pub fn max_lifetime(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.max_lifetime = d.into();
        self
    }

    /// Run [`KeyedManager::check`] on an idle resource before handing it out (not in
    /// [`KeyedPool::try_acquire`]). Default: `false`.
    pub fn test_before_acquire(mut self, on: bool) -> Self {
        self.test_before_acquire = on;
        self
    }

    /// How often the one maintenance task of the keyed pool reaps expired idle resources and
    /// removes empty keys. Default: as `PoolOptions` derives it from the timeouts.
    pub fn maintenance_interval(mut self, d: Duration) -> Self {
        self.maintenance_interval = Some(d);
        self
    }

    /// The longest the pool's own work on a returned resource may take: `after_release` and an
    /// asynchronous [`KeyedManager::destroy`]. Must not be zero. Default: 5 s.
    pub fn release_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.release_timeout = d.into();
        self
    }

    /// Acquirers waiting in one key's line, at most; more fail with
    /// [`Error::TooManyWaiters`](crate::Error::TooManyWaiters). Must not be zero (unlike
    /// `PoolOptions::max_waiters(0)`, which means "never wait": a key whose acquirers may never
    /// wait would fail every acquire that finds its key busy). Default: no limit.
    pub fn max_waiters_per_key(mut self, n: impl Into<Option<usize>>) -> Self {
        self.max_waiters_per_key = n.into();
        self
    }

    /// A name for the pool: the `pool` label of its metrics (with the `metrics` feature) and
    /// the `pool` field of its events and spans, as
    /// [`PoolOptions::name`](crate::PoolOptions::name), so that two keyed pools in one process
    /// can be told apart. Default: `"keyed"`.
    pub fn name(mut self, name: impl Into<std::sync::Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Acquires that wait longer than this log a `WARN` event, as
    /// [`PoolOptions::acquire_slow_threshold`](crate::PoolOptions::acquire_slow_threshold).
    /// Default: `None` (off): a keyed pool that waits for capacity across
    /// keys ([`Saturation::Wait`]) waits by design.
    pub fn acquire_slow_threshold(mut self, threshold: impl Into<Option<Duration>>) -> Self {
        self.acquire_slow_threshold = threshold.into();
        self
    }

    /// Runs on every new resource of a key before its first use, with the key: one hook serves
    /// every upstream. An error (or a panic) closes the resource, frees its capacity (per key and
    /// under `max_total`) and fails the acquire with [`Error::Hook`](crate::Error::Hook)
    /// ([`HookKind::AfterCreate`](crate::HookKind::AfterCreate)). Bounded by `create_timeout`
    /// (and, for an acquire waiting on it, by `acquire_timeout`). [`Metadata::id`] is unique
    /// within the key. Default: none.
    ///
    /// ```
    /// use shadowcat_pool::{keyed_fn, KeyedPoolOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pool = KeyedPoolOptions::<String, Vec<String>>::new()
    ///     .max_per_key(2)
    ///     .max_total(4)
    ///     .after_create(|host, log, meta| {
    ///         Box::pin(async move {
    ///             log.push(format!("{host} #{}", meta.id)); // e.g. a handshake for `host`
    ///             Ok(())
    ///         })
    ///     })
    ///     .build(keyed_fn(|_: &String| async { Ok::<_, std::io::Error>(Vec::new()) }))
    ///     .unwrap();
    /// let conn = pool.acquire(&"a.example".to_string()).await.unwrap();
    /// assert_eq!(*conn, ["a.example #0"]);
    /// # }
    /// ```
    pub fn after_create<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c K, &'c mut T, Metadata) -> BoxFuture<'c, Result<(), BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.after_create = Some(std::sync::Arc::new(hook));
        self
    }

    /// Runs on an idle resource of a key before it is handed out (not in
    /// [`KeyedPool::try_acquire`], which cannot await), with the key. `Ok(false)`, an error or a
    /// panic closes the resource (its capacity is freed, per key and under `max_total`) and the
    /// acquire moves on: another idle resource of the key, or a new one. [`Metadata::idle_for`]
    /// tells how long it sat idle. Bounded by `acquire_timeout`. Runs after
    /// [`test_before_acquire`](Self::test_before_acquire)'s check. Default: none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shadowcat_pool::{keyed_fn, KeyedPoolOptions};
    ///
    /// // Drop connections that sat idle longer than the upstream's keep-alive.
    /// let options = KeyedPoolOptions::<String, std::net::TcpStream>::new()
    ///     .before_acquire(|_host, _conn, meta| {
    ///         Box::pin(async move { Ok(meta.idle_for < Duration::from_secs(4)) })
    ///     });
    /// ```
    pub fn before_acquire<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c K, &'c mut T, Metadata) -> BoxFuture<'c, Result<bool, BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.before_acquire = Some(std::sync::Arc::new(hook));
        self
    }

    /// Runs on a released resource of a key before it goes back to the key's idle set, with the
    /// key. `Ok(false)`, an error or a panic closes it (its capacity is freed, per key and under
    /// `max_total`). As in [`PoolOptions::after_release`](crate::PoolOptions::after_release), it
    /// runs in a task spawned on the current tokio runtime that holds the resource's capacity
    /// until it finishes (with no runtime the resource is closed), bounded by `release_timeout`.
    /// Under [`Saturation::Evict`], a resource the hook keeps while an acquirer of another key
    /// waits for global capacity is closed for that acquirer instead of going idle (counted in
    /// `stats().destroyed.evicted`), as a release without the hook would evict one. Default:
    /// none.
    ///
    /// ```
    /// use shadowcat_pool::{keyed_fn, KeyedPoolOptions};
    ///
    /// struct Conn { must_close: bool }
    ///
    /// // Do not pool a connection the upstream asked to close (`Connection: close`).
    /// let options = KeyedPoolOptions::<String, Conn>::new()
    ///     .after_release(|_host, conn, _meta| Box::pin(async move { Ok(!conn.must_close) }));
    /// ```
    pub fn after_release<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c K, &'c mut T, Metadata) -> BoxFuture<'c, Result<bool, BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.after_release = Some(std::sync::Arc::new(hook));
        self
    }
    /// Builds the pool around `manager`. Starts its maintenance task on the current tokio
    /// runtime (or on the first acquire that runs on one). Like `PoolOptions::build`, the first
    /// pool built in a process calibrates the time-stamp counter that times waits, once.
    pub fn build<M>(self, manager: M) -> Result<KeyedPool<K, T>, BuildError>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        T: Send + 'static,
        M: KeyedManager<K, Resource = T>,
    {
        let hooks = self.hooks.clone();
        let config = self.validate()?;
        Ok(KeyedPool::new(config, hooks, manager))
    }

    fn validate(self) -> Result<KeyedConfig, BuildError> {
        let cap = |field: &'static str, value: Option<usize>| -> Result<usize, BuildError> {
            let n = value.ok_or_else(|| BuildError::new(field, "is required"))?;
            if n == 0 {
                return Err(BuildError::new(field, "must be greater than 0"));
            }
            if n > MAX_SIZE {
                return Err(BuildError::new(
                    field,
                    format!("must be at most {MAX_SIZE}, got {n}"),
                ));
            }
            Ok(n)
        };
        let max_per_key = cap("max_per_key", self.max_per_key)?;
        let max_total = cap("max_total", self.max_total)?;
        if max_total < max_per_key {
            return Err(BuildError::new(
                "max_total",
                format!("must be at least max_per_key ({max_per_key}), got {max_total}"),
            ));
        }
        if let Some(idle) = self.max_idle_total {
            if idle > max_total {
                return Err(BuildError::new(
                    "max_idle_total",
                    format!("must not exceed max_total ({max_total}), got {idle}"),
                ));
            }
        }
        for (field, value) in [
            ("acquire_timeout", self.acquire_timeout),
            ("create_timeout", self.create_timeout),
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("maintenance_interval", self.maintenance_interval),
            ("release_timeout", self.release_timeout),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(BuildError::new(
                    field,
                    "must be greater than zero (pass None to turn it off)",
                ));
            }
        }
        if self.max_waiters_per_key == Some(0) {
            return Err(BuildError::new(
                "max_waiters_per_key",
                "must be greater than 0 (pass None for no limit)",
            ));
        }
        let maintenance_interval = self.maintenance_interval.unwrap_or_else(|| {
            let mut d = DEFAULT_MAINTENANCE_INTERVAL;
            if let Some(idle) = self.idle_timeout {
                d = d.min(idle / 2);
            }
            if let Some(life) = self.max_lifetime {
                d = d.min(life / 4);
            }
            d.max(Duration::from_millis(10))
        });
        Ok(KeyedConfig {
            max_per_key,
            max_total,
            max_idle_total: self.max_idle_total,
            saturation: self.saturation,
            acquire_timeout: self.acquire_timeout,
            create_timeout: self.create_timeout,
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime,
            test_before_acquire: self.test_before_acquire,
            maintenance_interval,
            release_timeout: self.release_timeout,
            max_waiters_per_key: self.max_waiters_per_key,
            acquire_slow_threshold: self.acquire_slow_threshold,
            name: self.name,
            hooks_need_clock: self.hooks.before_acquire.is_some()
                || self.hooks.after_release.is_some(),
        })
    }
}

impl KeyedConfig {
    /// The configuration of one key's pool: no maintenance task of its own (the keyed pool's
    /// one task reaps every key), no minimum; `hooks` are the keyed pool's, built once
    /// (`KeyedHooks::per_key`), so a key costs three `Arc` clones, not an allocation.
    pub(crate) fn per_key<K, T>(&self, hooks: Hooks<Held<K, T>>) -> Config<Held<K, T>> {
        Config {
            max: self.max_per_key,
            ceiling: self.max_per_key,
            // A key's pool is small and many keys share the workers: slots would cost per key.
            worker_slots: 0,
            max_waiters: self.max_waiters_per_key,
            name: self.name.clone(),
            min: 0,
            warmup_concurrency: 1,
            acquire_timeout: self.acquire_timeout,
            create_timeout: self.create_timeout,
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime,
            lifetime_jitter: self.max_lifetime.map_or(Duration::ZERO, |life| life / 10),
            test_before_acquire: self.test_before_acquire,
            maintenance_interval: self.maintenance_interval,
            slow_acquire_nanos: crate::config::slow_acquire_nanos(self.acquire_slow_threshold),
            release_timeout: self.release_timeout,
            needs_maintenance: false,
            release_needs_clock: self.idle_timeout.is_some()
                || self.max_lifetime.is_some()
                || self.hooks_need_clock,
            hooks,
            // Set by `Inner::make_entry`, which has the keyed pool to evict from.
            after_landing: None,
        }
    }
}
