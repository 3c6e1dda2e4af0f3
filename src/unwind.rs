//! Calling user code: a panic becomes a value, never an unwind through the pool, and an optional
//! time limit bounds the future.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;

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
