//! Destroying resources: counted, logged, and `Manager::destroy` run to completion while the
//! resource's unit of capacity is held, so the pool never counts a resource that is still being
//! torn down as free capacity.

use std::task::{Context, Poll, Waker};

use tracing::Instrument;

use crate::callback::{guarded, guarded_sync, Outcome};
use crate::engine::loom::Arc;
use crate::manager::BoxFuture;
use crate::runtime;
use crate::shared::{Shared, Unit};
use crate::stats::DestroyReason;
use crate::tracked::Tracked;

/// Destroys `tracked` for `reason`; `unit` is returned once the teardown is finished.
pub(crate) fn destroy<T: Send + 'static>(
    tracked: Tracked<T>,
    unit: Unit<T>,
    reason: DestroyReason,
) {
    drop(destroy_keeping_unit(tracked, unit, reason));
}

/// Destroys `tracked` for `reason`. If the teardown finishes at once (the default teardown is a
/// plain drop), the caller gets `unit` back to reuse it; otherwise the teardown runs in a task
/// that owns the unit, bounded by `release_timeout`.
pub(crate) fn destroy_keeping_unit<T: Send + 'static>(
    tracked: Tracked<T>,
    unit: Unit<T>,
    reason: DestroyReason,
) -> Option<Unit<T>> {
    let shared = unit.host().clone();
    let teardown = start(&shared, tracked, reason);
    run(&shared, teardown, Some(unit))
}

/// Destroys `tracked`, retired by a shrink (`Pool::set_max_connections`): its unit of capacity
/// was already freed, so the teardown holds none and is not counted in `tearing_down`.
pub(crate) fn destroy_retired<T: Send + 'static>(shared: &Arc<Shared<T>>, tracked: Tracked<T>) {
    let teardown = start(shared, tracked, DestroyReason::Resized);
    run(shared, teardown, None);
}

/// Polls `teardown` once: the default teardown (drop) finishes at once and needs no task, and
/// the caller gets `unit` back. Otherwise the rest runs in a task, bounded by
/// `release_timeout`, that owns `unit`.
fn run<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    mut teardown: BoxFuture<'static, ()>,
    unit: Option<Unit<T>>,
) -> Option<Unit<T>> {
    let mut cx = Context::from_waker(Waker::noop());
    match guarded_sync(|| teardown.as_mut().poll(&mut cx)) {
        Some(Poll::Ready(())) => return unit,
        None => {
            tracing::warn!(pool = %shared.config.name, "Manager::destroy panicked");
            return unit;
        }
        Some(Poll::Pending) => {}
    }
    let limit = shared.armable(shared.config.release_timeout);
    // The task owns the unit: if it never runs (runtime shutdown), dropping it still returns it.
    let unit = unit.map(InFlight::new);
    let pool = shared.config.name.clone();
    let task = async move {
        if let Outcome::TimedOut(_) = guarded(limit, || teardown).await {
            tracing::warn!(pool = %pool, "Manager::destroy timed out; dropped the resource");
        }
        drop(unit);
    };
    if let Err(task) = runtime::spawn(task) {
        // No runtime to finish it: drop the teardown (and with it the resource) and the unit.
        let _ = guarded_sync(|| drop(task));
    }
    None
}

/// Counts and logs the destruction of `tracked`, and returns `Manager::destroy`'s future, which
/// owns what it needs.
pub(crate) fn start<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    tracked: Tracked<T>,
    reason: DestroyReason,
) -> BoxFuture<'static, ()> {
    shared.stats.destroyed(reason);
    shared.telemetry.destroyed(reason);
    let span = tracing::debug_span!(
        "shadowcat_pool::destroy",
        pool = %shared.config.name,
        id = tracked.id,
        reason = reason.as_str()
    );
    span.in_scope(|| tracing::debug!("destroying pooled resource"));
    let shared = shared.clone();
    Box::pin(async move { shared.manager.destroy(tracked.resource).await }.instrument(span))
}

/// The unit of a resource whose asynchronous teardown is running, counted in the
/// `tearing_down` gauge while it lives (maintenance keeps `min_connections` by what is alive, not
/// by `size`, which still counts these units).
struct InFlight<T: Send + 'static>(Unit<T>);

impl<T: Send + 'static> InFlight<T> {
    fn new(unit: Unit<T>) -> Self {
        // Relaxed: a gauge (see `stats.rs`).
        let gauge = &unit.host().stats.tearing_down;
        gauge.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(unit)
    }
}

impl<T: Send + 'static> Drop for InFlight<T> {
    fn drop(&mut self) {
        let gauge = &self.0.host().stats.tearing_down;
        gauge.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
