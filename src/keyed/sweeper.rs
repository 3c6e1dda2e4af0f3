//! The keyed pool's one maintenance task: every `maintenance_interval`, reap each key's expired
//! idle resources, remove keys that hold nothing, and set the pool's metrics gauges. One task
//! for all keys: a key has no task, timer or per-thread counters of its own.

use std::hash::Hash;
use std::sync::atomic::Ordering;

use futures_util::future::{select, Either};

use crate::engine::loom::{Arc, Weak};
use crate::runtime;
use crate::telemetry::Telemetry;

use super::inner::Inner;

/// Starts the task on the current runtime if it is not running (never started, or its runtime
/// shut down). Called at build and on every acquire; the common case is one `Relaxed` load.
#[inline]
pub(crate) fn ensure_running<K, T>(inner: &Arc<Inner<K, T>>)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + 'static,
{
    // Relaxed: a hint; the CAS below decides who starts it.
    if inner.maintenance_running.load(Ordering::Relaxed) {
        return;
    }
    start(inner);
}

#[cold]
fn start<K, T>(inner: &Arc<Inner<K, T>>)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + 'static,
{
    if inner.is_closed()
        || !runtime::timer_available()
        // AcqRel: one starter wins; pairs with the Release store when the task ends.
        || inner
            .maintenance_running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let running = Running(Arc::downgrade(inner));
    // If the spawn fails, `running` drops with the task and clears the flag.
    let _ = runtime::spawn(run(running));
}

/// The task's hold on the pool; its drop clears the running flag so the next acquire restarts
/// the task (after a runtime shutdown dropped it).
struct Running<K: Send + Sync + 'static, T: Send + 'static>(Weak<Inner<K, T>>);

impl<K: Send + Sync + 'static, T: Send + 'static> Drop for Running<K, T> {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            // Release: pairs with the starter's CAS.
            inner.maintenance_running.store(false, Ordering::Release);
        }
    }
}

async fn run<K, T>(running: Running<K, T>)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + 'static,
{
    loop {
        let Some(inner) = running.0.upgrade() else {
            return;
        };
        let interval = inner.config.maintenance_interval;
        let closed = inner.closed_event.listen();
        if inner.is_closed() {
            return;
        }
        drop(inner);
        let sleep = std::pin::pin!(tokio::time::sleep(interval));
        if let Either::Right(_) = select(sleep, closed).await {
            return;
        }
        let Some(inner) = running.0.upgrade() else {
            return;
        };
        if inner.is_closed() {
            return;
        }
        inner.sweep();
        // As a plain pool's maintenance pass does (`maintenance.rs`): the gauges follow the pool
        // without a scrape. The snapshot walks every key, so only when something records it.
        if Telemetry::ENABLED {
            inner.record_metrics();
        }
    }
}
