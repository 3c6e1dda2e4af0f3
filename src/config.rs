//! [`Config`]: the options after `PoolOptions::build` validated them.

use std::time::Duration;

use crate::hooks::Hooks;

/// The limit on work that finishes in the background when no option bounds it: a create nobody
/// waits for (a warm-up for `min_connections`, or a create whose acquirer was handed a released
/// resource first) when neither [`PoolOptions::create_timeout`](crate::PoolOptions::create_timeout)
/// nor [`PoolOptions::acquire_timeout`](crate::PoolOptions::acquire_timeout) is set, and the
/// check (`Manager::check`, `before_acquire`) of a cancelled acquire when `acquire_timeout` is
/// `None`. Background work is always bounded, so it can never pin a unit of capacity for good.
pub const DEFAULT_BACKGROUND_CREATE_LIMIT: Duration = Duration::from_secs(30);

/// Validated options, as the pool uses them.
pub(crate) struct Config<T> {
    /// The initial bound on `size`; the bound in force is the engine's (`Pool::set_max_connections`).
    pub(crate) max: usize,
    /// The largest bound `set_max_connections` accepts; the idle queue is allocated this big.
    pub(crate) ceiling: usize,
    /// Hot slots in front of the idle queue (0: none).
    pub(crate) worker_slots: usize,
    /// `None`: no limit.
    pub(crate) max_waiters: Option<usize>,
    /// The `pool` label of the pool's metrics and the `pool` field of its events and spans.
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) min: usize,
    pub(crate) warmup_concurrency: usize,
    pub(crate) acquire_timeout: Option<Duration>,
    pub(crate) create_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) lifetime_jitter: Duration,
    pub(crate) test_before_acquire: bool,
    pub(crate) maintenance_interval: Duration,
    /// `acquire_slow_threshold` in nanoseconds, `u64::MAX` when unset: every parked acquire
    /// compares its wait with it, so it is converted once here rather than on each wait.
    pub(crate) slow_acquire_nanos: u64,
    pub(crate) release_timeout: Option<Duration>,
    /// Whether a maintenance task is needed (`idle_timeout`, `max_lifetime` or
    /// `min_connections`).
    pub(crate) needs_maintenance: bool,
    /// Whether release must read the clock (to stamp idle time or check the lifetime).
    pub(crate) release_needs_clock: bool,
    pub(crate) hooks: Hooks<T>,
    /// Called after a resource lands in the idle set without a user's release: a create that
    /// finished in the background, or a check that passed after its acquire was cancelled. The
    /// keyed pool evicts for waiters of global capacity here; `None` for a plain pool.
    pub(crate) after_landing: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

/// [`Config::slow_acquire_nanos`] for `threshold`.
pub(crate) fn slow_acquire_nanos(threshold: Option<Duration>) -> u64 {
    threshold.map_or(u64::MAX, |t| {
        u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
    })
}
