//! [`Held`]: a keyed pool's resource together with the global unit of capacity it occupies.

use crate::engine::loom::Arc;

use super::gate::{GlobalUnit, KeyShare};

/// What a per-key pool stores: the user's resource and its global unit. Wherever the per-key
/// pool destroys it (release, idle expiry, eviction, close, a failed check, a cancelled
/// acquire), dropping it returns the global unit, so the gate never needs a hook into the
/// per-key release path.
pub(crate) struct Held<T> {
    pub(crate) resource: T,
    /// Returned on drop; never read.
    pub(crate) _unit: GlobalUnit,
    /// Counts the unit in its key's share while it lives.
    pub(crate) _counted: Counted,
}

/// One global unit counted in its key's [`KeyShare::units`] for as long as it lives.
pub(crate) struct Counted(Arc<KeyShare>);

impl Counted {
    pub(crate) fn new(share: &Arc<KeyShare>) -> Self {
        share.count_unit(1);
        Counted(share.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.count_unit(-1);
    }
}
