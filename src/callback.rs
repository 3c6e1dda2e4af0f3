//! Calling user code (factories, checks, hooks, `is_open`, `is_reusable`, `destroy`): a panic
//! becomes a value, never an unwind through the pool; an optional time limit bounds the future;
//! and [`Outcome::flatten`] maps every ending to one `Result`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;

use crate::error::{BoxError, Panicked};

/// How a guarded call into user code ended.
pub(crate) enum Outcome<T> {
    /// It returned.
    Done(T),
    /// It panicked, while building its future or while being polled.
    Panicked(Box<dyn std::any::Any + Send>),
    /// It ran past its time limit and was dropped.
    TimedOut(Duration),
}

/// Builds the future with `make` and awaits it, catching panics in both steps, within `limit`.
///
/// `AssertUnwindSafe` is sound here: after a panic the pool only drops what the user code was
/// working on (the resource is destroyed, the capacity guard returns its unit); it never reads
/// state the panic may have left half-updated.
pub(crate) async fn guarded<Fut: Future>(
    limit: Option<Duration>,
    make: impl FnOnce() -> Fut,
) -> Outcome<Fut::Output> {
    let fut = match std::panic::catch_unwind(AssertUnwindSafe(make)) {
        Ok(fut) => AssertUnwindSafe(fut).catch_unwind(),
        Err(panic) => return Outcome::Panicked(panic),
    };
    // Callers pass limits through `Shared::armable`, which drops them where no timer exists.
    let result = match limit {
        Some(limit) => match tokio::time::timeout(limit, fut).await {
            Ok(result) => result,
            Err(_) => return Outcome::TimedOut(limit),
        },
        None => fut.await,
    };
    match result {
        Ok(value) => Outcome::Done(value),
        Err(panic) => Outcome::Panicked(panic),
    }
}

/// Runs synchronous user code, turning a panic into `None`.
pub(crate) fn guarded_sync<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).ok()
}

impl<V> Outcome<Result<V, BoxError>> {
    /// One `Result` for every way a fallible callback can end: its own error, a panic (as
    /// [`Panicked`] naming `what`), or a time-out (as the error `timed_out` builds from the limit).
    pub(crate) fn flatten<E>(
        self,
        what: &'static str,
        timed_out: fn(Duration) -> E,
    ) -> Result<V, BoxError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        match self {
            Outcome::Done(result) => result,
            Outcome::Panicked(panic) => Err(Box::new(Panicked::new(what, panic))),
            Outcome::TimedOut(limit) => Err(Box::new(timed_out(limit))),
        }
    }
}
