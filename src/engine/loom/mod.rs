//! The std/loom facade (like tokio's `loom` module): every synchronisation primitive the crate
//! uses, with one API for normal builds (`native.rs`) and loom builds (`model.rs`).
//!
//! Nothing else names `std::sync`, `crossbeam_queue` or `event_listener` directly. It imports
//! [`Arc`], the atomics, [`Queue`] and [`Event`] from here, so that the loom build
//! (`RUSTFLAGS="--cfg shadowcat_loom"`) can swap in instrumented versions with the same API:
//!
//! * atomics come from `loom::sync::atomic`; `Arc` and `Weak` stay std's (the engine's
//!   `self: &Arc<Self>` receivers need std's `Arc` on stable Rust, and no protocol the models
//!   check depends on a reference count);
//! * `Mutex` (parking_lot in normal builds) for the waiter line (`engine/line.rs`) comes from
//!   loom, so the line itself is model-checked;
//! * [`Queue`] is crossbeam's `ArrayQueue` in normal builds and, under loom, the same algorithm
//!   (Vyukov's bounded queue) rewritten on loom atomics with crossbeam's orderings, so loom sees
//!   the queue's own synchronisation and nothing more (DESIGN.md §13, "What is modelled, and
//!   how");
//! * [`Event`] is a loom-backed stand-in with event-listener 5's semantics: `listen` registers at
//!   once, `notify_additional` ignores listeners that are already notified, a dropped notified
//!   listener passes its notification on, `discard` does not, and wakers run outside the lock.
//!
//! A crate-specific cfg is used instead of `--cfg loom`, because `--cfg loom` changes tokio and
//! breaks event-listener's build.

// With `event-listener-waiters`, the waiter line's own primitives go unused.
#![cfg_attr(feature = "event-listener-waiters", allow(dead_code, unused_imports))]

#[cfg(not(shadowcat_loom))]
mod native;
#[cfg(not(shadowcat_loom))]
pub(crate) use self::native::*;

#[cfg(shadowcat_loom)]
mod model;
#[cfg(shadowcat_loom)]
pub(crate) use self::model::*;

/// event-listener's check → listen → re-check → wait loop: resolves once `ready()` holds. The
/// listener is inserted before the second check, so a `notify_all` after the condition became
/// true cannot be missed.
pub(crate) async fn wait_until(event: &Event, ready: impl Fn() -> bool) {
    loop {
        if ready() {
            return;
        }
        let listener = event.listen();
        if ready() {
            return;
        }
        listener.await;
    }
}
