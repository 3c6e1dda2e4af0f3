//! Typed errors: [`Error`] for acquiring, [`BuildError`] for invalid options.

use std::time::Duration;

/// A boxed error from user code (a factory, a health check or a hook).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which user hook failed. Today only `AfterCreate` reaches a caller, in [`Error::Hook`]: a
/// failed `before_acquire` destroys that resource and the acquire goes on with another, and a
/// failed `after_release` destroys the resource and is logged. The other variants name those
/// hooks in logs, and leave room for them in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookKind {
    /// [`PoolOptions::after_create`](crate::PoolOptions::after_create).
    AfterCreate,
    /// [`PoolOptions::before_acquire`](crate::PoolOptions::before_acquire).
    BeforeAcquire,
    /// [`PoolOptions::after_release`](crate::PoolOptions::after_release).
    AfterRelease,
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HookKind::AfterCreate => "after_create",
            HookKind::BeforeAcquire => "before_acquire",
            HookKind::AfterRelease => "after_release",
        })
    }
}

/// Why [`Pool::acquire`](crate::Pool::acquire) failed.
///
/// A proxy maps it to a response: no capacity in time is the proxy's own overload, a failed
/// create is the upstream's fault. The enum is `#[non_exhaustive]`, so a `match` needs a last
/// arm:
///
/// ```
/// use shadowcat_pool::Error;
///
/// fn status(error: &Error) -> u16 {
///     match error {
///         // No capacity in time, or load shed by `max_waiters` or `Saturation::Fail`.
///         Error::Timeout(_) | Error::TooManyWaiters(_) | Error::Saturated(_) => 503,
///         // The upstream refused a new connection, or `after_create` rejected it.
///         Error::Create(_) | Error::Hook { .. } => 502,
///         // Shutting down.
///         Error::Closed => 503,
///         _ => 500,
///     }
/// }
/// assert_eq!(status(&Error::Timeout(std::time::Duration::from_secs(2))), 503);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No resource became available within `acquire_timeout`.
    #[error("timed out after {0:?} waiting for a pooled resource")]
    Timeout(Duration),
    /// Nothing was available and `max_waiters` acquirers were already waiting: the acquire failed
    /// at once instead of queueing. Carries the limit.
    #[error("{0} acquirers are already waiting for a pooled resource")]
    TooManyWaiters(usize),
    /// The pool is closed, or was closed while this task waited.
    #[error("the pool is closed")]
    Closed,
    /// A [`KeyedPool`](crate::KeyedPool) under [`Saturation::Fail`](crate::Saturation::Fail):
    /// the key needed a new resource and `max_total` (carried) resources were alive across keys.
    #[error("{0} resources are alive across keys (max_total)")]
    Saturated(usize),
    /// The manager failed to create a resource (or panicked, or exceeded `create_timeout`).
    #[error("creating a pooled resource failed")]
    Create(#[source] BoxError),
    /// The `after_create` hook returned an error or panicked; the new resource was destroyed.
    /// (The other hooks do not fail an acquire: see [`HookKind`].)
    #[error("the {hook} hook failed")]
    Hook {
        /// The hook that failed.
        hook: HookKind,
        /// What it reported.
        #[source]
        source: BoxError,
    },
}

/// A user callback panicked; carried as the source of [`Error::Create`] or [`Error::Hook`].
#[derive(Debug, thiserror::Error)]
#[error("{what} panicked: {message}")]
pub struct Panicked {
    /// What panicked: `"Manager::create"`, `"Manager::check"`, `"after_create"`,
    /// `"before_acquire"` or `"after_release"`.
    pub what: &'static str,
    /// The panic message, when it was a string.
    pub message: String,
}

impl Panicked {
    pub(crate) fn new(what: &'static str, payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        Panicked { what, message }
    }
}

/// A resource creation that took longer than `create_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("creating a resource took longer than {0:?}")]
pub struct CreateTimedOut(pub Duration);

/// A hook or check ran past its time limit: `after_release` past `release_timeout`, or the
/// check of a cancelled acquire past its background limit. Seen only in logs (the resource is
/// destroyed); a teardown past `release_timeout` is logged as a warning.
#[derive(Debug, thiserror::Error)]
#[error("ran longer than {0:?}")]
pub struct HookTimedOut(pub Duration);

/// [`PoolOptions::build`](crate::PoolOptions::build) rejected the options.
///
/// `field` names the option, so a message reads like
/// `invalid pool option max_connections: must be greater than 0`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pool option {field}: {reason}")]
pub struct BuildError {
    /// The option that was rejected.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl BuildError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        BuildError {
            field,
            reason: reason.into(),
        }
    }
}

/// [`Pool::set_max_connections`](crate::Pool::set_max_connections) refused the new bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResizeError {
    /// The bound must be in `1 ..= ceiling`, where `ceiling` is
    /// [`PoolOptions::max_connections_ceiling`](crate::PoolOptions::max_connections_ceiling).
    #[error("max_connections must be in 1..={ceiling} (max_connections_ceiling), got {max}")]
    OutOfRange {
        /// The bound asked for.
        max: usize,
        /// The largest bound the pool accepts.
        ceiling: usize,
    },
    /// The pool is closed.
    #[error("the pool is closed")]
    Closed,
}
