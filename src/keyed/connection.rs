//! [`KeyedConnection`]: a resource checked out of a keyed pool.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::Ticks;
use crate::connection::PoolConnection;
use crate::engine::loom::Arc;
use crate::hooks::Metadata;
use crate::stats::DestroyReason;

use super::entry::KeyEntry;
use super::held::Held;

/// A resource checked out of a [`KeyedPool`](super::KeyedPool). Derefs to the resource.
///
/// It wraps the crate's [`PoolConnection`] of the key's pool. The wrapper exists because a keyed
/// pool's pooled value is the resource *plus the unit of global capacity it occupies* (so that
/// every path that destroys it, in the key's pool, returns the global unit), and `Deref` must
/// reach the resource inside; and because a release is where capacity moves between keys: after
/// the resource is back in its key's idle set, the drop evicts an idle resource for an acquirer
/// of another key waiting for capacity (policy [`Saturation::Evict`](super::Saturation::Evict)),
/// or to keep the idle total under `max_idle_total`. Dropping it is otherwise the crate's
/// synchronous release: no task, no await, no allocation, no map lookup.
pub struct KeyedConnection<
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + 'static,
> {
    /// `None` only after `detach`, `discard`, `close` or `drop` took it.
    conn: Option<PoolConnection<Held<K, T>>>,
    entry: Arc<KeyEntry<K, T>>,
}

impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static, T: Send + 'static>
    KeyedConnection<K, T>
{
    pub(crate) fn new(conn: PoolConnection<Held<K, T>>, entry: Arc<KeyEntry<K, T>>) -> Self {
        if entry.gate.max_idle_total.is_some() {
            // Relaxed: a gauge for the idle estimate.
            entry.gate.checked_out.fetch_add(1, Ordering::Relaxed);
        }
        KeyedConnection {
            conn: Some(conn),
            entry,
        }
    }

    fn conn(&self) -> &PoolConnection<Held<K, T>> {
        self.conn.as_ref().expect("connection already given back")
    }

    fn take(&mut self) -> PoolConnection<Held<K, T>> {
        self.conn.take().expect("connection already given back")
    }

    /// Takes the resource out of the pool for good; its per-key and global capacity are freed.
    pub fn detach(mut self) -> T {
        let conn = self.take();
        let Held {
            resource,
            unit,
            counted,
        } = conn.detach();
        drop((unit, counted));
        Self::returned(&self.entry);
        resource
    }

    /// Destroys the resource now without awaiting, as [`PoolConnection::discard`].
    pub fn discard(mut self) {
        self.take().discard();
        Self::returned(&self.entry);
    }

    /// Destroys the resource now, awaiting the teardown, as [`PoolConnection::close`].
    pub async fn close(mut self) {
        let conn = self.take();
        // The bookkeeping runs once the teardown is over, or when this future is dropped during
        // it (the teardown is dropped then too, and the units come back).
        let _returned = ReturnedOnDrop(&self.entry);
        conn.close().await;
    }

    /// The key this resource was checked out for.
    pub fn key(&self) -> &K {
        self.conn().key()
    }

    /// Time since the resource was created.
    pub fn age(&self) -> Duration {
        self.conn().age()
    }

    /// When the resource was created.
    pub fn created_at(&self) -> Instant {
        self.conn().created_at()
    }

    /// A number unique within the key, in creation order.
    pub fn id(&self) -> u64 {
        self.conn().id()
    }

    /// The hook metadata for this resource now.
    pub fn metadata(&self) -> Metadata {
        self.conn().metadata()
    }

    /// After the resource of `entry`'s key went back (or was destroyed): the bookkeeping that
    /// spans keys. Takes the entry alone, which is what `close`'s guard holds.
    fn returned(entry: &Arc<KeyEntry<K, T>>) {
        let gate = &entry.gate;
        if !gate.evicts() {
            return;
        }
        if gate.max_idle_total.is_some() {
            // Relaxed: a gauge.
            gate.checked_out.fetch_sub(1, Ordering::Relaxed);
        }
        // Relaxed: a recency hint for eviction.
        entry.last_used.store(Ticks::now(), Ordering::Relaxed);
        // SeqCst fence: pairs with the one in `Gate::take` between a waiter's registration and
        // its eviction scan, so either we see it counted, or its scan saw what we published.
        super::fence(Ordering::SeqCst);
        // Only a release that left something idle in its key evicts for them: one handed to the
        // key's next waiter (or claimed since) freed nothing, and every idle resource that
        // appeared while they waited was matched by its own publisher's eviction (or seen by
        // the waiter's scan). Most releases of a saturated pool are hand-offs, and a scan that
        // finds nothing walks every shard.
        let waiting = gate.saturation == super::Saturation::Evict
            && gate.state().waiters() > 0
            && entry.pool.state().avail() > 0;
        if waiting || gate.max_idle_total.is_some() {
            Self::evict(entry, waiting);
        }
    }

    /// Whether this release gives its global unit to a key waiting for capacity instead of
    /// keeping the resource for its own key: under [`Saturation::Evict`](super::Saturation::Evict),
    /// when a key that holds at least two units fewer than this one waits in the gate's line.
    /// Without it a key whose own waiters always take its releases (a hot key) would never free
    /// a unit, and keys with nothing would wait for idle resources that rarely appear.
    #[inline]
    fn gives_up_its_unit(&self) -> bool {
        let gate = &self.entry.gate;
        let units = self.entry.share.units();
        // A key holding fewer than two units never gives one up: checked first, so most keys'
        // releases do not read the gate's word at all.
        gate.saturation == super::Saturation::Evict
            && units >= 2
            && gate.state().waiters() > 0
            && gate.needier_waiter(units, &self.entry.share)
    }

    #[cold]
    fn evict(entry: &Arc<KeyEntry<K, T>>, for_waiter: bool) {
        let Some(inner) = entry.inner.upgrade() else {
            return;
        };
        if for_waiter {
            inner.evict_after_release(entry);
        }
        inner.enforce_idle_cap();
    }
}

/// Runs `KeyedConnection::returned` on drop: `close`'s bookkeeping, which a cancelled close
/// must not skip (the `checked_out` gauge would stay one too high for good).
/// It holds the entry alone, so that `close`'s future is `Send` whenever the entry is.
struct ReturnedOnDrop<
    'a,
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    T: Send + 'static,
>(&'a Arc<KeyEntry<K, T>>);

impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static, T: Send + 'static> Drop
    for ReturnedOnDrop<'_, K, T>
{
    fn drop(&mut self) {
        KeyedConnection::returned(self.0);
    }
}

impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static, T: Send + 'static> Drop
    for KeyedConnection<K, T>
{
    #[inline]
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.gives_up_its_unit() {
                // Destroyed now: the global unit goes to the oldest key in the gate's line, the
                // key's unit to this key's next waiter (which then waits its turn for a global
                // unit like everyone else). Recorded as an eviction: capacity moved to another key.
                conn.discard_as(DestroyReason::Evicted);
            } else {
                drop(conn);
            }
            Self::returned(&self.entry);
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static, T: Send + 'static> Deref
    for KeyedConnection<K, T>
{
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.conn().resource
    }
}

impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static, T: Send + 'static> DerefMut
    for KeyedConnection<K, T>
{
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self
            .conn
            .as_mut()
            .expect("connection already given back")
            .resource
    }
}

impl<
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
        T: Send + std::fmt::Debug + 'static,
    > std::fmt::Debug for KeyedConnection<K, T>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedConnection")
            .field("id", &self.id())
            .field("resource", &**self)
            .finish()
    }
}
