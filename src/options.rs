//! [`PoolOptions`]: the builder, each knob with its default, and validation.

use std::future::Future;
use std::time::Duration;

use crate::config::Config;
use crate::engine::MAX_SIZE;
use crate::error::{BoxError, BuildError};
use crate::hooks::{Hooks, Metadata};
use crate::manager::{BoxFuture, Manager};
use crate::pool::Pool;

/// Configures and builds a [`Pool`].
///
/// Every knob has a default except [`max_connections`](Self::max_connections), which is
/// required. [`build`](Self::build) rejects invalid combinations with a [`BuildError`] that names
/// the field.
///
/// ```
/// use std::time::Duration;
/// use shadowcat_pool::{from_fn, PoolOptions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = PoolOptions::new()
///     .max_connections(16)
///     .min_connections(2)
///     .acquire_timeout(Duration::from_millis(500))
///     .idle_timeout(Duration::from_secs(90))
///     .build(from_fn(|| async { Ok::<_, std::io::Error>(Vec::<u8>::new()) }))
///     .unwrap();
/// let conn = pool.acquire().await.unwrap();
/// assert!(conn.is_empty());
/// # }
/// ```
pub struct PoolOptions<T> {
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_connections_ceiling: Option<usize>,
    pub(crate) worker_slots: Option<usize>,
    pub(crate) min_connections: usize,
    pub(crate) warmup_concurrency: usize,
    pub(crate) acquire_timeout: Option<Duration>,
    pub(crate) create_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) max_lifetime_jitter: Option<Duration>,
    pub(crate) test_before_acquire: bool,
    pub(crate) maintenance_interval: Option<Duration>,
    pub(crate) acquire_slow_threshold: Option<Duration>,
    pub(crate) release_timeout: Option<Duration>,
    pub(crate) max_waiters: Option<usize>,
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) hooks: Hooks<T>,
}

impl<T> Clone for PoolOptions<T> {
    fn clone(&self) -> Self {
        PoolOptions {
            hooks: self.hooks.clone(),
            name: self.name.clone(),
            ..*self
        }
    }
}

impl<T> std::fmt::Debug for PoolOptions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolOptions")
            .field("max_connections", &self.max_connections)
            .field("max_connections_ceiling", &self.max_connections_ceiling)
            .field("worker_slots", &self.worker_slots)
            .field("min_connections", &self.min_connections)
            .field("warmup_concurrency", &self.warmup_concurrency)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("create_timeout", &self.create_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("max_lifetime_jitter", &self.max_lifetime_jitter)
            .field("test_before_acquire", &self.test_before_acquire)
            .field("maintenance_interval", &self.maintenance_interval)
            .field("acquire_slow_threshold", &self.acquire_slow_threshold)
            .field("release_timeout", &self.release_timeout)
            .field("max_waiters", &self.max_waiters)
            .field("name", &self.name)
            .field("after_create", &self.hooks.after_create.is_some())
            .field("before_acquire", &self.hooks.before_acquire.is_some())
            .field("after_release", &self.hooks.after_release.is_some())
            .finish()
    }
}

impl<T> Default for PoolOptions<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Default for [`PoolOptions::acquire_timeout`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default for [`PoolOptions::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default for [`PoolOptions::max_lifetime`].
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Default for [`PoolOptions::acquire_slow_threshold`].
pub const DEFAULT_ACQUIRE_SLOW_THRESHOLD: Duration = Duration::from_secs(1);
/// Default for [`PoolOptions::release_timeout`].
pub const DEFAULT_RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest default maintenance interval; see [`PoolOptions::maintenance_interval`].
pub const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10);

/// The most hot slots a pool may have ([`PoolOptions::worker_slots`]): one per worker index, and
/// threads hold at most this many indices at once.
const MAX_WORKER_SLOTS: usize = crate::engine::loom::WORKER_INDICES;

/// Twice the available parallelism (a runtime's workers plus the threads around them), at most
/// 64. Loom builds default to none, so that every model not about the slots explores the same
/// engine as before; the slot models set it.
fn default_worker_slots() -> usize {
    if cfg!(shadowcat_loom) {
        return 0;
    }
    std::thread::available_parallelism().map_or(2, |n| (2 * n.get()).min(MAX_WORKER_SLOTS))
}

impl<T> PoolOptions<T> {
    /// Options with every default; [`max_connections`](Self::max_connections) must still be set.
    pub fn new() -> Self {
        PoolOptions {
            max_connections: None,
            max_connections_ceiling: None,
            worker_slots: None,
            min_connections: 0,
            warmup_concurrency: 2,
            acquire_timeout: Some(DEFAULT_ACQUIRE_TIMEOUT),
            create_timeout: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_lifetime: Some(DEFAULT_MAX_LIFETIME),
            max_lifetime_jitter: None,
            test_before_acquire: false,
            maintenance_interval: None,
            acquire_slow_threshold: Some(DEFAULT_ACQUIRE_SLOW_THRESHOLD),
            release_timeout: Some(DEFAULT_RELEASE_TIMEOUT),
            max_waiters: None,
            name: "default".into(),
            hooks: Hooks::default(),
        }
    }

    /// The most resources the pool holds at once, counting those being created. **Required**;
    /// must be in `1..=1_048_575`. No default.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// The largest value [`Pool::set_max_connections`](crate::Pool::set_max_connections) may
    /// raise `max_connections` to at run time. The idle set is a fixed-capacity lock-free queue
    /// allocated at build time with one slot per unit of this ceiling (a slot is a few machine
    /// words plus the resource's size), so a ceiling far above what you will use costs memory
    /// up front. Must be in `max_connections..=1_048_575`. Default: `max_connections` (no
    /// growth beyond the initial bound; lowering and raising back up are always allowed).
    pub fn max_connections_ceiling(mut self, ceiling: usize) -> Self {
        self.max_connections_ceiling = Some(ceiling);
        self
    }

    /// Hot slots: one idle resource per worker thread, kept in front of the shared idle queue.
    /// While nobody waits, a connection dropped on a worker thread parks in that worker's slot
    /// and the next acquire on the same worker takes it back, touching no memory that other
    /// workers write: an uncontended acquire+release scales with workers. Once anyone waits, the
    /// slots are emptied into the queue and the waiter line serves in arrival order, as without
    /// them (DESIGN.md §8). Idle timeout, `retain`, `close` and a shrink see parked resources.
    ///
    /// Each live thread holds a small index (the lowest free one, taken when it first uses any
    /// pool and given back when it exits), and owns the slot at that index; a thread whose index
    /// is past the last slot has none and releases through the queue. `0` turns them off. Must be
    /// at most 64 (threads hold at most 64 indices at once). Default: twice the machine's
    /// available parallelism, at most 64.
    pub fn worker_slots(mut self, slots: usize) -> Self {
        self.worker_slots = Some(slots);
        self
    }

    /// Resources the maintenance task keeps alive (idle or in use) even when unused. Must not
    /// exceed `max_connections`. A resource being torn down does not count: while a slow
    /// `Manager::destroy` runs, a replacement is created if there is room under
    /// `max_connections`. Default: `0`.
    pub fn min_connections(mut self, min: usize) -> Self {
        self.min_connections = min;
        self
    }

    /// How many creates the maintenance task runs at once while it tops the pool up to
    /// `min_connections`, so that a restart or an outage does not cause a connect storm.
    /// Must be at least 1. Default: `2`.
    pub fn warmup_concurrency(mut self, n: usize) -> Self {
        self.warmup_concurrency = n;
        self
    }

    /// How long [`Pool::acquire`] may take in all, including waiting, creating, health checks
    /// and hooks. `None` waits forever. Must not be zero. Default: 2 s.
    pub fn acquire_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.acquire_timeout = timeout.into();
        self
    }

    /// How long one `Manager::create` (and the `after_create` hook) may take; a create that
    /// takes longer fails with [`Error::Create`](crate::Error::Create). Must not be zero.
    /// Default: `None`: a create an acquire waits for is bounded by `acquire_timeout`, and a
    /// create nobody waits for (a warm-up, or one finishing in the background after its acquirer
    /// was handed a released resource) by `acquire_timeout` too, or by
    /// [`DEFAULT_BACKGROUND_CREATE_LIMIT`](crate::DEFAULT_BACKGROUND_CREATE_LIMIT) if that is
    /// `None`, so it cannot hold capacity forever.
    pub fn create_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.create_timeout = timeout.into();
        self
    }

    /// Resources idle longer than this are closed by the maintenance task, as long as that leaves
    /// at least `min_connections`. Must not be zero. Default: 10 min.
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = timeout.into();
        self
    }

    /// Resources older than this are closed when they are released or found idle. Each resource
    /// gets its own lifetime, drawn uniformly from `[max_lifetime - jitter, max_lifetime]`, so a
    /// fleet created together does not reconnect together. Must not be zero. Default: 30 min.
    /// A resource that expires while idle is closed by the next maintenance pass, not checked at
    /// hand-out: until then it can still be handed out (`maintenance_interval`).
    pub fn max_lifetime(mut self, lifetime: impl Into<Option<Duration>>) -> Self {
        self.max_lifetime = lifetime.into();
        self
    }

    /// The spread of [`max_lifetime`](Self::max_lifetime). Must not exceed it. Default: a tenth
    /// of `max_lifetime`.
    pub fn max_lifetime_jitter(mut self, jitter: Duration) -> Self {
        self.max_lifetime_jitter = Some(jitter);
        self
    }

    /// Run [`Manager::check`] on an idle resource before handing it out (not in
    /// [`Pool::try_acquire`], which cannot await). Default: `false`.
    pub fn test_before_acquire(mut self, test: bool) -> Self {
        self.test_before_acquire = test;
        self
    }

    /// How often the maintenance task looks for expired idle resources and tops up
    /// `min_connections`. It runs only while the pool holds resources or has a minimum to keep,
    /// so an empty pool schedules no timer at all. Must not be zero. Default: the smallest of
    /// 10 s, half of `idle_timeout` and a quarter of `max_lifetime` (but at least 10 ms).
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.maintenance_interval = Some(interval);
        self
    }

    /// How long the pool's own work on a returned resource may take: the `after_release` hook
    /// and an asynchronous `Manager::destroy`. Past it, the resource is dropped and its capacity
    /// freed, so a dead connection whose teardown never finishes cannot pin capacity (sqlx#4349).
    /// Must not be zero. Default: 5 s.
    pub fn release_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.release_timeout = timeout.into();
        self
    }

    /// Acquires that wait longer than this log a `WARN` event. `None` turns the warning off.
    /// Measured in real time, like `PoolStats::total_wait`. Default: 1 s.
    pub fn acquire_slow_threshold(mut self, threshold: impl Into<Option<Duration>>) -> Self {
        self.acquire_slow_threshold = threshold.into();
        self
    }

    /// Runs on every new resource before its first use. An error (or a panic) closes the
    /// resource and fails the acquire with [`Error::Hook`](crate::Error::Hook).
    /// Default: none.
    ///
    /// ```
    /// # use shadowcat_pool::{from_fn, PoolOptions};
    /// let options = PoolOptions::<Vec<u8>>::new().after_create(|buf, meta| {
    ///     Box::pin(async move {
    ///         buf.extend_from_slice(format!("resource #{}", meta.id).as_bytes());
    ///         Ok(())
    ///     })
    /// });
    /// ```
    pub fn after_create<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut T, Metadata) -> BoxFuture<'c, Result<(), BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.after_create = Some(std::sync::Arc::new(hook));
        self
    }

    /// The most acquirers that may wait in line at once. An acquire that finds nothing idle and no
    /// room to create, and would be waiter `n + 1`, fails at once with
    /// [`Error::TooManyWaiters`](crate::Error::TooManyWaiters) instead of queueing (fail fast, so
    /// a proxy sheds load instead of building an unbounded queue of requests that will time out
    /// anyway); [`PoolStats::rejected_waiters`](crate::PoolStats::rejected_waiters) counts them.
    /// `0` never waits. Acquirers that are creating a resource are not counted, and a waiter
    /// whose handed resource failed its check keeps its place at the front even if the line
    /// filled behind it meanwhile (it was admitted already), so the count can stand one over
    /// `n` for that moment. Default: `None` (no limit beyond the 4,194,303 the state word can
    /// count).
    ///
    /// ```
    /// # use shadowcat_pool::{from_fn, Error, PoolOptions};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pool = PoolOptions::new()
    ///     .max_connections(1)
    ///     .max_waiters(0) // shed load: never queue
    ///     .build(from_fn(|| async { Ok::<_, std::io::Error>(()) }))
    ///     .unwrap();
    /// let busy = pool.acquire().await.unwrap();
    /// assert!(matches!(pool.acquire().await, Err(Error::TooManyWaiters(0))));
    /// assert_eq!(pool.stats().rejected_waiters, 1);
    /// # drop(busy);
    /// # }
    /// ```
    pub fn max_waiters(mut self, n: impl Into<Option<usize>>) -> Self {
        self.max_waiters = n.into();
        self
    }

    /// A name for the pool: the `pool` label of its metrics (with the `metrics` feature; see
    /// [`Pool::record_metrics`](crate::Pool::record_metrics)) and the `pool` field of its
    /// `WARN` and `INFO` events and of its `create`, `destroy` and `close` spans, so that the
    /// pools of a proxy with many upstreams can be told apart. A literal or a string built at
    /// run time (`format!("upstream-{host}")`). Default: `"default"`.
    pub fn name(mut self, name: impl Into<std::sync::Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Runs on an idle resource before it is handed out (not in [`Pool::try_acquire`]).
    /// `Ok(false)`, an error or a panic closes the resource, and the acquire moves on to another.
    /// [`Metadata::idle_for`] tells how long it sat idle. Default: none.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use shadowcat_pool::{from_fn, PoolOptions};
    /// // An upstream closes keep-alive connections idle for 60 s: don't hand one out that close.
    /// let options = PoolOptions::<String>::new()
    ///     .max_connections(8)
    ///     .before_acquire(|_conn, meta| Box::pin(async move {
    ///         Ok(meta.idle_for < Duration::from_secs(55))
    ///     }));
    /// # let _ = options.build(from_fn(|| async { Ok::<_, std::io::Error>(String::new()) }));
    /// ```
    pub fn before_acquire<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut T, Metadata) -> BoxFuture<'c, Result<bool, BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.before_acquire = Some(std::sync::Arc::new(hook));
        self
    }

    /// Runs on a released resource before it goes back to the idle set. `Ok(false)`, an error or
    /// a panic closes it. Because release happens in `Drop`, this hook runs in a task spawned on
    /// the current tokio runtime, which holds the resource's unit of capacity until it finishes
    /// (with no runtime, the resource is closed instead). Without this hook, release never
    /// spawns. Default: none.
    ///
    /// ```
    /// # use shadowcat_pool::{from_fn, PoolOptions};
    /// // Reset per-request state before the next user gets the session; refuse a dirty one.
    /// let options = PoolOptions::<Vec<u8>>::new()
    ///     .max_connections(8)
    ///     .after_release(|buf, _meta| Box::pin(async move {
    ///         buf.clear();
    ///         Ok(buf.capacity() < 1 << 20) // don't keep huge buffers
    ///     }));
    /// # let _ = options.build(from_fn(|| async { Ok::<_, std::io::Error>(Vec::new()) }));
    /// ```
    pub fn after_release<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut T, Metadata) -> BoxFuture<'c, Result<bool, BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.after_release = Some(std::sync::Arc::new(hook));
        self
    }

    /// Validates the options and builds the pool. Starts the maintenance task on the current
    /// tokio runtime when one is needed and a runtime is present. The first pool built in a
    /// process also calibrates the CPU's time-stamp counter that times waits (`total_wait`):
    /// typically under a millisecond, at most 200 ms, once.
    ///
    /// ```
    /// use shadowcat_pool::{from_fn, PoolOptions};
    /// let err = PoolOptions::new()
    ///     .max_connections(2)
    ///     .min_connections(3)
    ///     .build(from_fn(|| async { Ok::<_, std::io::Error>(()) }))
    ///     .unwrap_err();
    /// assert_eq!(err.field, "min_connections");
    /// ```
    pub fn build<M>(self, manager: M) -> Result<Pool<T>, BuildError>
    where
        M: Manager<Resource = T>,
        T: Send + 'static,
    {
        let config = self.validate()?;
        Ok(Pool::new(config, Box::new(manager)))
    }

    /// Like [`build`](Self::build) with [`from_fn`](crate::from_fn)`(factory)`.
    pub fn build_with<F, Fut, E>(self, factory: F) -> Result<Pool<T>, BuildError>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send,
        T: Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        self.build(crate::manager::from_fn(factory))
    }

    fn validate(self) -> Result<Config<T>, BuildError> {
        let max = self
            .max_connections
            .ok_or_else(|| BuildError::new("max_connections", "is required"))?;
        if max == 0 {
            return Err(BuildError::new("max_connections", "must be greater than 0"));
        }
        if max > MAX_SIZE {
            return Err(BuildError::new(
                "max_connections",
                format!("must be at most {MAX_SIZE}, got {max}"),
            ));
        }
        let ceiling = self.max_connections_ceiling.unwrap_or(max);
        if ceiling < max || ceiling > MAX_SIZE {
            return Err(BuildError::new(
                "max_connections_ceiling",
                format!(
                    "must be in max_connections..={MAX_SIZE} ({max}..={MAX_SIZE}), got {ceiling}"
                ),
            ));
        }
        let worker_slots = self.worker_slots.unwrap_or_else(default_worker_slots);
        if worker_slots > MAX_WORKER_SLOTS {
            return Err(BuildError::new(
                "worker_slots",
                format!("must be at most {MAX_WORKER_SLOTS}, got {worker_slots}"),
            ));
        }
        if self.min_connections > max {
            return Err(BuildError::new(
                "min_connections",
                format!(
                    "must not exceed max_connections ({max}), got {}",
                    self.min_connections
                ),
            ));
        }
        if self.warmup_concurrency == 0 {
            return Err(BuildError::new("warmup_concurrency", "must be at least 1"));
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
        let jitter = match (self.max_lifetime, self.max_lifetime_jitter) {
            (Some(lifetime), Some(jitter)) if jitter > lifetime => {
                return Err(BuildError::new(
                    "max_lifetime_jitter",
                    format!("must not exceed max_lifetime ({lifetime:?}), got {jitter:?}"),
                ))
            }
            (Some(lifetime), jitter) => jitter.unwrap_or(lifetime / 10),
            (None, _) => Duration::ZERO,
        };
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
        let release_needs_clock = self.idle_timeout.is_some()
            || self.max_lifetime.is_some()
            || self.hooks.before_acquire.is_some()
            || self.hooks.after_release.is_some();
        let needs_maintenance =
            self.idle_timeout.is_some() || self.max_lifetime.is_some() || self.min_connections > 0;
        Ok(Config {
            max,
            ceiling,
            worker_slots,
            max_waiters: self.max_waiters,
            name: self.name,
            needs_maintenance,
            min: self.min_connections,
            warmup_concurrency: self.warmup_concurrency,
            acquire_timeout: self.acquire_timeout,
            create_timeout: self.create_timeout,
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime,
            lifetime_jitter: jitter,
            test_before_acquire: self.test_before_acquire,
            maintenance_interval,
            slow_acquire_nanos: crate::config::slow_acquire_nanos(self.acquire_slow_threshold),
            release_timeout: self.release_timeout,
            release_needs_clock,
            hooks: self.hooks,
            after_landing: None,
        })
    }
}
