//! [`Held`]: a keyed pool's resource together with the global unit of capacity it occupies and
//! its key.

use crate::engine::loom::Arc;

use super::gate::{GlobalUnit, KeyShare};

/// What a per-key pool stores: the user's resource and its global unit. Wherever the per-key
/// pool destroys it (release, idle expiry, eviction, close, a failed check, a cancelled
/// acquire), dropping it returns the global unit, so the gate never needs a hook into the
/// per-key release path.
pub(crate) struct Held<K, T> {
    pub(crate) resource: T,
    /// Returned on drop; never read.
    pub(crate) unit: GlobalUnit,
    /// Counts the unit in its key's share while it lives; the share also holds the key.
    pub(crate) counted: Counted<K>,
}

impl<K, T> Held<K, T> {
    /// The resource's key.
    pub(crate) fn key(&self) -> &K {
        &self.counted.0.key
    }

    /// The resource and its key, borrowed apart: what a keyed hook is called with. The crate's
    /// hooks get `&'c mut Held` and must return a future borrowing only for `'c`, so the key has
    /// to be reachable through the resource itself (one `Arc` per key, already held here).
    pub(crate) fn key_and_resource(&mut self) -> (&K, &mut T) {
        (&self.counted.0.key, &mut self.resource)
    }
}

/// One global unit counted in its key's [`KeyShare::units`] for as long as it lives.
pub(crate) struct Counted<K>(Arc<KeyShare<K>>);

impl<K> Counted<K> {
    pub(crate) fn new(share: &Arc<KeyShare<K>>) -> Self {
        share.count_unit(1);
        Counted(share.clone())
    }
}

impl<K> Drop for Counted<K> {
    fn drop(&mut self) {
        self.0.count_unit(-1);
    }
}
