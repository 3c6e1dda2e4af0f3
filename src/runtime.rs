//! What the pool needs from tokio, in one place: spawning background work when a runtime exists.

use std::future::Future;
use std::time::Duration;

/// Spawns `task` on the current tokio runtime, or hands it back if there is none (the caller
/// then drops it, which releases whatever it owns).
pub(crate) fn spawn<F>(task: F) -> Result<(), F>
where
    F: Future<Output = ()> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(task);
            Ok(())
        }
        Err(_) => Err(task),
    }
}

/// Whether a tokio runtime is running on this thread.
pub(crate) fn available() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

thread_local! {
    /// The runtime this thread last probed for a timer driver, and the answer.
    static TIMER_PROBE: std::cell::Cell<Option<(tokio::runtime::Id, bool)>> =
        const { std::cell::Cell::new(None) };
}

/// Whether a time limit can be armed here: a tokio runtime is running on this thread and it has
/// a timer driver (`enable_time`). Without one, tokio panics when a timer is created, so every
/// limit the pool arms goes through this check (`Shared::armable`) and, when it fails, runs
/// without the limit.
///
/// tokio has no API that says whether timers are enabled, so the first call on a thread for a
/// runtime creates a zero-length timer under `catch_unwind` (tokio's panic message is printed
/// once by the panic hook, if the runtime has no timers), and caches the answer per thread and
/// runtime.
pub(crate) fn timer_available() -> bool {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    let id = handle.id();
    TIMER_PROBE.with(|probe| match probe.get() {
        Some((seen, answer)) if seen == id => answer,
        _ => {
            let answer =
                std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok();
            probe.set(Some((id, answer)));
            answer
        }
    })
}
