//! The release path: what happens to a resource its user gave back. Synchronous: no spawn, no
//! await, no allocation, unless an `after_release` hook is set (it is async, so it runs in a task).

use crate::callback::{guarded, guarded_sync};
use crate::clock::Stamp;
use crate::engine::Engine;
use crate::error::HookTimedOut;
use crate::lease::Lease;
use crate::runtime;
use crate::shared::Unit;
use crate::stats::{DestroyReason, Tally};
use crate::teardown;
use crate::tracked::Tracked;

/// Takes back a resource from its user: destroyed if `Manager::is_reusable` rejects it or its
/// lifetime ran out, else (after `after_release`, if set) returned to the idle set.
///
/// A pool with nothing to check on release (no clock to read, no `after_release` hook, the
/// manager's default `is_reusable`) goes straight to the engine; everything else is out of line,
/// so that the plain release holds no call on its path (`benches/RESULTS.md`, "The release
/// without a call on its path").
#[inline]
pub(crate) fn release<T: Send + 'static>(mut tracked: Tracked<T>, unit: Unit<T>) {
    if unit.host().releases_plainly() {
        // What `release_checked` stamps without a clock.
        tracked.idle_since = Stamp::NONE;
        return Engine::release(unit, tracked, Some(Tally::Return as usize));
    }
    release_checked(tracked, unit)
}

/// [`release`] with its checks: `is_reusable`, the lifetime, `after_release`.
#[inline(never)]
fn release_checked<T: Send + 'static>(mut tracked: Tracked<T>, unit: Unit<T>) {
    let shared = unit.host();
    // The return is counted on each way out: in the worker's hot slot if it parks there (the
    // engine's tally), else in the per-thread cells.
    let counted = || shared.stats.returns.bump();
    // A panic in user code inside Drop must not abort or leak: it counts as "not reusable" (the
    // guard is inside the call).
    if !shared.is_reusable(&mut tracked.resource) {
        counted();
        return teardown::destroy(tracked, unit, DestroyReason::Broken);
    }
    // The only clock read on the release path, and only when an option or hook needs it.
    let idle_since = shared.idle_stamp();
    if tracked.expired(idle_since) {
        counted();
        return teardown::destroy(tracked, unit, DestroyReason::Lifetime);
    }
    if shared.config.hooks.after_release.is_some() {
        counted();
        return after_release(tracked, idle_since, unit);
    }
    tracked.idle_since = idle_since;
    Engine::release(unit, tracked, Some(Tally::Return as usize));
}

/// Puts a resource that no user gave back into the idle set (a background create, a check that
/// passed after its acquire was cancelled), then runs the pool's `after_landing` callback.
pub(crate) fn land<T: Send + 'static>(tracked: Tracked<T>, idle_since: Stamp, unit: Unit<T>) {
    let after = unit.host().config.after_landing.clone();
    to_idle(tracked, idle_since, unit);
    if let Some(after) = after {
        // After the publish: the callback's reads are ordered after our RMW on the state word.
        let _ = guarded_sync(|| after());
    }
}

/// Puts a resource into the idle set, stamped idle since `idle_since`.
#[inline]
pub(crate) fn to_idle<T: Send + 'static>(
    mut tracked: Tracked<T>,
    idle_since: Stamp,
    unit: Unit<T>,
) {
    tracked.idle_since = idle_since;
    Engine::release(unit, tracked, None);
}

/// `after_release` is async, so it runs in a task that owns the resource and its unit of
/// capacity as a [`Lease`]. If the task never runs (a runtime shutting down drops it), the lease's
/// drop destroys the resource through `Manager::destroy` and returns the unit, so the books still
/// balance.
fn after_release<T: Send + 'static>(tracked: Tracked<T>, idle_since: Stamp, unit: Unit<T>) {
    let shared = unit.host().clone();
    if shared.state().is_closed() {
        return teardown::destroy(tracked, unit, DestroyReason::Closed);
    }
    if !runtime::available() {
        tracing::warn!(
            pool = %shared.config.name,
            "after_release hook needs a tokio runtime; closing the resource"
        );
        return teardown::destroy(tracked, unit, DestroyReason::HookRejected);
    }
    let mut lease = Lease::new(tracked, unit);
    let task = async move {
        let hook = shared.config.hooks.after_release.clone();
        let hook = hook.expect("checked by the caller");
        let meta = lease.tracked().metadata(shared.clock.now());
        // Bounded by `release_timeout`: a hook stuck on a dead connection must not pin the unit
        // of capacity for good.
        let limit = shared.armable(shared.config.release_timeout);
        let verdict = {
            let (_, tracked) = lease.parts_mut();
            guarded(limit, || hook(&mut tracked.resource, meta)).await
        };
        match verdict.flatten("after_release", HookTimedOut) {
            Ok(true) => {
                // A closed pool drains it on the way in. A landing, not a plain `to_idle`: the
                // resource went idle without a user's drop, so the pool's `after_landing` runs
                // (a keyed pool evicts for a waiter of another key then, as a release does).
                let (tracked, unit) = lease.into_parts();
                return land(tracked, idle_since, unit);
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(
                    pool = %shared.config.name,
                    %error,
                    "after_release hook failed; closing the resource"
                );
            }
        }
        lease.destroy(DestroyReason::HookRejected);
    };
    // The runtime is there (checked above, on this thread).
    let _ = runtime::spawn(task);
}
