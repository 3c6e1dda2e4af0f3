//! [`KeyedPoolOptions`]: the builder of a [`KeyedPool`](super::KeyedPool), and validation.

use std::hash::Hash;
use std::time::Duration;

use crate::config::Config;
use crate::engine::MAX_SIZE;
use crate::error::BuildError;
use crate::hooks::Hooks;
use crate::options::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAINTENANCE_INTERVAL,
    DEFAULT_MAX_LIFETIME, DEFAULT_RELEASE_TIMEOUT,
};

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

/// Configures and builds a [`KeyedPool`].
///
/// `max_per_key` and `max_total` are required; everything else has the same default as
/// [`PoolOptions`](crate::PoolOptions). [`build`](Self::build) rejects invalid values with a
/// [`BuildError`] naming the field.
///
/// ```
/// use std::time::Duration;
/// use shadowcat_pool::{keyed_fn, KeyedPoolOptions, Saturation};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = KeyedPoolOptions::new()
///     .max_per_key(4)
///     .max_total(16)
///     .max_idle_total(Some(8))
///     .saturation(Saturation::Evict)
///     .idle_timeout(Some(Duration::from_secs(90)))
///     .build(keyed_fn(|host: &String| {
///         let host = host.clone();
///         async move { Ok::<_, std::io::Error>(format!("connection to {host}")) }
///     }))
///     .unwrap();
/// let conn = pool.acquire(&"a.example:443".to_string()).await.unwrap();
/// assert_eq!(conn.as_str(), "connection to a.example:443");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct KeyedPoolOptions {
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
}

impl Default for KeyedPoolOptions {
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
}

impl KeyedPoolOptions {
    /// The defaults: no caps set (both are required), [`Saturation::Evict`], no idle cap across
    /// keys, and `PoolOptions`' timeouts.
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
        }
    }

    /// Resources alive (plus creates in flight) for one key, at most. Required.
    pub fn max_per_key(mut self, n: usize) -> Self {
        self.max_per_key = Some(n);
        self
    }

    /// Resources alive (plus creates in flight) across all keys, at most. Required; at least
    /// `max_per_key`.
    pub fn max_total(mut self, n: usize) -> Self {
        self.max_total = Some(n);
        self
    }

    /// Idle resources across all keys, at most (`None`, the default: no cap beyond
    /// `max_total`). Enforced on release, from an estimate (units taken, minus resources
    /// checked out, creates in flight and teardowns in flight), by evicting the stalest idle
    /// resource of a sample.
    pub fn max_idle_total(mut self, n: Option<usize>) -> Self {
        self.max_idle_total = n;
        self
    }

    /// What an acquire does when its key needs a new resource and `max_total` is reached.
    pub fn saturation(mut self, policy: Saturation) -> Self {
        self.saturation = policy;
        self
    }

    /// The longest an acquire waits (in its key's line, for global capacity, and creating).
    pub fn acquire_timeout(mut self, d: Option<Duration>) -> Self {
        self.acquire_timeout = d;
        self
    }

    /// The longest a create takes, including its wait for a unit of global capacity.
    pub fn create_timeout(mut self, d: Option<Duration>) -> Self {
        self.create_timeout = d;
        self
    }

    /// Idle resources older than this are closed by the maintenance pass.
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Resources older than this are closed (on release or by the maintenance pass), jittered
    /// down by up to a tenth, as in [`PoolOptions`](crate::PoolOptions).
    pub fn max_lifetime(mut self, d: Option<Duration>) -> Self {
        self.max_lifetime = d;
        self
    }

    /// Run [`KeyedManager::check`] on an idle resource before handing it out.
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

    /// The longest an asynchronous [`KeyedManager::destroy`] may run.
    pub fn release_timeout(mut self, d: Option<Duration>) -> Self {
        self.release_timeout = d;
        self
    }

    /// Acquirers waiting in one key's line, at most; more fail with
    /// [`Error::TooManyWaiters`](crate::Error::TooManyWaiters). Default: no limit.
    pub fn max_waiters_per_key(mut self, n: Option<usize>) -> Self {
        self.max_waiters_per_key = n;
        self
    }

    /// Builds the pool around `manager`. Starts its maintenance task on the current tokio
    /// runtime (or on the first acquire that runs on one).
    pub fn build<K, M>(self, manager: M) -> Result<KeyedPool<K, M::Resource>, BuildError>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        M: KeyedManager<K>,
    {
        let config = self.validate()?;
        Ok(KeyedPool::new(config, manager))
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
        })
    }
}

impl KeyedConfig {
    /// The configuration of one key's pool: no maintenance task of its own (the keyed pool's
    /// one task reaps every key), no minimum, no hooks.
    pub(crate) fn per_key<T>(&self) -> Config<T> {
        Config {
            max: self.max_per_key,
            ceiling: self.max_per_key,
            // A key's pool is small and many keys share the workers: slots would cost per key.
            worker_slots: 0,
            max_waiters: self.max_waiters_per_key,
            name: "keyed",
            min: 0,
            warmup_concurrency: 1,
            acquire_timeout: self.acquire_timeout,
            create_timeout: self.create_timeout,
            idle_timeout: self.idle_timeout,
            max_lifetime: self.max_lifetime,
            lifetime_jitter: self.max_lifetime.map_or(Duration::ZERO, |life| life / 10),
            test_before_acquire: self.test_before_acquire,
            maintenance_interval: self.maintenance_interval,
            acquire_slow_threshold: None,
            release_timeout: self.release_timeout,
            needs_maintenance: false,
            release_needs_clock: self.idle_timeout.is_some() || self.max_lifetime.is_some(),
            hooks: Hooks::default(),
            // Set by `Inner::make_entry`, which has the keyed pool to evict from.
            after_landing: None,
        }
    }
}
