//! What the pool needs from tokio, in one place: spawning background work when a runtime exists.

use std::future::Future;

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
