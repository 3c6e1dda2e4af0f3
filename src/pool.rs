//! [`Pool`]: the public handle.

use std::future::Future;

use crate::acquire;
use crate::callback::guarded_sync;
use crate::config::Config;
use crate::connection::PoolConnection;
use crate::engine::loom::{wait_until, Arc, Ordering};
use crate::engine::{Engine, Host};
use crate::error::{Error, ResizeError};
use crate::hooks::Metadata;
use crate::maintenance;
use crate::manager::DynManager;
use crate::options::PoolOptions;
use crate::shared::Shared;
use crate::stats::{DestroyReason, PoolStats};

/// A pool of `T`. Cheap to clone (an `Arc`); `Send + Sync`. Dropping the last handle closes the
/// pool (resources still checked out are destroyed when they come back).
///
/// ```
/// use shadowcat_pool::{from_fn, PoolOptions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = PoolOptions::new()
///     .max_connections(2)
///     .build(from_fn(|| async { Ok::<_, std::io::Error>(String::from("conn")) }))
///     .unwrap();
///
/// let a = pool.acquire().await.unwrap();     // creates
/// assert_eq!(a.as_str(), "conn");
/// drop(a);                                    // back to the idle set, synchronously
/// let b = pool.try_acquire().unwrap();        // reuses it without awaiting
/// assert_eq!(pool.stats().created, 1);
/// drop(b);
/// pool.close().await;                         // destroys everything
/// assert!(pool.is_closed());
/// # }
/// ```
pub struct Pool<T: Send + 'static> {
    shared: Arc<Shared<T>>,
}

impl<T: Send + 'static> Pool<T> {
    /// Starts a [`PoolOptions`] builder.
    pub fn builder() -> PoolOptions<T> {
        PoolOptions::new()
    }

    pub(crate) fn new(config: Config<T>, manager: Box<dyn DynManager<T>>) -> Self {
        let shared = Arc::new(Shared::new(config, manager));
        maintenance::ensure_running(&shared);
        Pool { shared }
    }

    /// Checks out a resource: an idle one if any (the one this worker thread released last, if
    /// it is still in the worker's hot slot, else the oldest), a new one if there is room,
    /// otherwise waits its turn behind earlier waiters.
    ///
    /// Served at once, it reads no clock and starts no timer. Otherwise it is bounded by
    /// `acquire_timeout`, which needs a tokio runtime with timers (without one, the wait is
    /// unbounded and a warning is logged once). Spends one unit of tokio's cooperative budget.
    /// Cancel-safe: dropping the future at any point returns whatever it held.
    // A plain fn returning the inner future (not an `async fn` wrapping it): one state machine
    // fewer to move the result through on every acquire.
    #[inline]
    pub fn acquire(&self) -> impl Future<Output = Result<PoolConnection<T>, Error>> + Send + '_ {
        acquire::acquire(&self.shared)
    }

    /// Takes an idle resource without waiting. Never creates, never overtakes a waiting task
    /// (it returns `None` while anyone waits). It runs the synchronous `Manager::is_open`, but
    /// skips `test_before_acquire` and `before_acquire`, which are async.
    pub fn try_acquire(&self) -> Option<PoolConnection<T>> {
        acquire::try_acquire(&self.shared)
    }

    /// Closes the pool, and returns a future that resolves when every resource is destroyed.
    ///
    /// The close happens in this call, not when the future is first polled (as with sqlx's
    /// `Pool::close`): every waiting task wakes with [`Error::Closed`], new acquires fail, and
    /// idle resources are destroyed. The future then resolves when every checked-out resource
    /// has been returned and destroyed. To close without waiting (deadpool's synchronous
    /// `close`), drop the future: `let _ = pool.close();`. Idempotent: every call waits for the
    /// same end state.
    ///
    /// ```
    /// # use shadowcat_pool::{from_fn, Error, PoolOptions};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let pool = PoolOptions::new().max_connections(1)
    /// #     .build(from_fn(|| async { Ok::<_, std::io::Error>(()) })).unwrap();
    /// let _ = pool.close(); // closed now; not waiting for resources still out
    /// assert!(pool.is_closed());
    /// assert!(matches!(pool.acquire().await, Err(Error::Closed)));
    /// # }
    /// ```
    pub fn close(&self) -> impl Future<Output = ()> + Send + '_ {
        use tracing::Instrument;
        let span = tracing::info_span!("shadowcat_pool::close", pool = %self.shared.config.name);
        span.in_scope(|| self.shared.close());
        async move {
            self.shared.engine().drained().await;
            tracing::info!("pool closed: every resource destroyed");
        }
        .instrument(span)
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.state().is_closed()
    }

    /// A future that resolves when the pool is closed (by [`close`](Self::close) or by dropping
    /// the last handle). Useful to stop work that uses the pool:
    ///
    /// ```
    /// # use shadowcat_pool::{from_fn, PoolOptions};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let pool = PoolOptions::new().max_connections(1)
    /// #     .build(from_fn(|| async { Ok::<_, std::io::Error>(()) })).unwrap();
    /// let closed = pool.close_event();
    /// let worker = tokio::spawn(async move {
    ///     tokio::select! {
    ///         _ = closed => "stopped",
    ///         _ = std::future::pending::<()>() => "never",
    ///     }
    /// });
    /// pool.close().await;
    /// assert_eq!(worker.await.unwrap(), "stopped");
    /// # }
    /// ```
    pub fn close_event(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move { wait_until(&shared.closed_event, || shared.state().is_closed()).await }
    }

    /// Looks at every idle resource once and closes those for which `keep` returns `false`
    /// (like deadpool's `retain`): for example, drop connections to a backend that was
    /// reconfigured, or older than a cut-off. Checked-out resources are not affected. Each
    /// resource is taken out of the idle set while `keep` looks at it, so an acquire in the
    /// meantime takes another one or waits; a panic in `keep` counts as `true`.
    ///
    /// ```
    /// # use shadowcat_pool::{from_fn, PoolOptions};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pool = PoolOptions::new().max_connections(4)
    ///     .build_with(|| async { Ok::<_, std::io::Error>(0u32) }).unwrap();
    /// let (a, b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    /// drop((a, b));
    /// let result = pool.retain(|_conn, meta| meta.id != 0);
    /// assert_eq!((result.retained, result.removed), (1, 1));
    /// # }
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&T, Metadata) -> bool) -> RetainResult {
        let now = self.shared.clock.now();
        let (retained, removed) = maintenance::sweep_idle(&self.shared, |lease| {
            let tracked = lease.tracked();
            let meta = tracked.metadata(now);
            let kept = guarded_sync(|| keep(&tracked.resource, meta)).unwrap_or(true);
            (!kept).then_some(DestroyReason::ClosedByUser)
        });
        RetainResult { retained, removed }
    }

    /// A lock-free snapshot of gauges and counters.
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// Sets the pool's metrics gauges (`shadowcat_pool_size`, `_idle`, `_in_use`, `_waiting`,
    /// `_creating`) from a fresh snapshot; with the `metrics` cargo feature only (otherwise it
    /// does nothing). Counters and histograms are recorded as events happen, and every
    /// maintenance pass sets the gauges too; call this from a scrape handler for gauges that are
    /// exact at scrape time.
    ///
    /// Every metric carries the label `pool`, set to [`PoolOptions::name`]; handles are
    /// registered when the pool is built, so install the recorder (a Prometheus exporter, for
    /// example) before that. Names, kinds and labels:
    ///
    /// | metric | kind | labels | what |
    /// |---|---|---|---|
    /// | `shadowcat_pool_size` | gauge | `pool` | units of capacity in use (live resources and creates in flight) |
    /// | `shadowcat_pool_idle` | gauge | `pool` | idle resources available now |
    /// | `shadowcat_pool_in_use` | gauge | `pool` | resources checked out |
    /// | `shadowcat_pool_waiting` | gauge | `pool` | acquirers parked in line |
    /// | `shadowcat_pool_creating` | gauge | `pool` | creates in flight |
    /// | `shadowcat_pool_creates_total` | counter | `pool` | resources created |
    /// | `shadowcat_pool_create_failures_total` | counter | `pool` | creates that failed, panicked or timed out |
    /// | `shadowcat_pool_destroys_total` | counter | `pool`, `reason` | resources destroyed, by [`DestroyReason::as_str`](crate::DestroyReason::as_str) |
    /// | `shadowcat_pool_acquire_timeouts_total` | counter | `pool` | acquires that hit `acquire_timeout` |
    /// | `shadowcat_pool_rejected_waiters_total` | counter | `pool` | acquires refused by `max_waiters` |
    /// | `shadowcat_pool_wait_seconds` | histogram | `pool` | time parked acquires waited, from parking to being served |
    /// | `shadowcat_pool_create_seconds` | histogram | `pool` | time `Manager::create` took (kept apart from waiting) |
    ///
    pub fn record_metrics(&self) {
        self.shared.telemetry.gauges(&self.stats());
    }

    /// Units of capacity in use (live resources plus creates and asynchronous teardowns in
    /// flight).
    pub fn size(&self) -> usize {
        self.shared.state().size()
    }

    /// Idle resources available now.
    pub fn num_idle(&self) -> usize {
        self.shared.idle()
    }

    /// The bound on [`size`](Self::size) now in force: `max_connections` as built, or as last
    /// set by [`set_max_connections`](Self::set_max_connections).
    pub fn max_connections(&self) -> usize {
        self.shared.max()
    }

    /// Changes `max_connections` at run time, to any value in `1 ..=`
    /// [`max_connections_ceiling`](crate::PoolOptions::max_connections_ceiling).
    ///
    /// * **Raising** it takes effect at once: parked acquirers, oldest first, are handed the new
    ///   room and create resources with it, before any acquire that arrives during the call may
    ///   grow into what is left (one arriving while the raise serves the line waits in line
    ///   behind them, or with [`max_waiters`](crate::PoolOptions::max_waiters) reached, fails
    ///   as on a full pool). Concurrent calls run one after the other.
    /// * **Lowering** it destroys idle resources until the pool's [`size`](Self::size) is within
    ///   the new bound, and never touches a resource in use: each one that comes back while the
    ///   pool is above the bound is destroyed instead of going idle, until the bound holds.
    ///   Parked acquirers keep their place in line and are served once the size is below the new
    ///   bound (their `acquire_timeout` still applies). Destroyed resources are counted in
    ///   [`DestroyedStats::resized`](crate::DestroyedStats::resized).
    /// * `min_connections` above the new bound is capped at it.
    ///
    /// The call is synchronous and lock-free: it does not wait for teardowns, and returns the
    /// old bound.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use shadowcat_pool::PoolOptions;
    ///
    /// let pool = PoolOptions::new()
    ///     .max_connections(4)
    ///     .max_connections_ceiling(64)
    ///     .build_with(|| async { Ok::<_, std::io::Error>(()) })?;
    /// assert_eq!(pool.set_max_connections(32)?, 4);
    /// assert_eq!(pool.max_connections(), 32);
    /// assert!(pool.set_max_connections(65).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_max_connections(&self, max: usize) -> Result<usize, ResizeError> {
        let ceiling = self.shared.engine().ceiling();
        if max == 0 || max > ceiling {
            return Err(ResizeError::OutOfRange { max, ceiling });
        }
        if self.shared.state().is_closed() {
            return Err(ResizeError::Closed);
        }
        let old = Engine::resize(&self.shared, max);
        tracing::info!(
            pool = %self.shared.config.name,
            old,
            new = max,
            "max_connections changed"
        );
        if max < self.shared.config.min {
            tracing::debug!(
                min_connections = self.shared.config.min,
                "min_connections is capped at the new max_connections"
            );
        }
        Ok(old)
    }

    /// Loom builds only: runs one maintenance reap pass on the calling thread, since no
    /// maintenance task runs under loom (see `loom-tests/`).
    #[cfg(shadowcat_loom)]
    #[doc(hidden)]
    pub fn loom_maintenance_pass(&self) {
        maintenance::reap(&self.shared);
    }
}

/// What [`Pool::retain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetainResult {
    /// Idle resources kept.
    pub retained: usize,
    /// Idle resources closed.
    pub removed: usize,
}

impl<T: Send + 'static> Clone for Pool<T> {
    fn clone(&self) -> Self {
        // Relaxed: like `Arc::clone`, a new handle is made from an existing one, which keeps the
        // count above zero; nothing is published through it.
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send + 'static> Drop for Pool<T> {
    fn drop(&mut self) {
        // AcqRel: the last handle must see every other handle's work before it closes.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.close();
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("state", &self.shared.state())
            .finish()
    }
}
