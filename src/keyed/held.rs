//! [`Held`]: a keyed pool's resource together with the global unit of capacity it occupies.

use super::gate::GlobalUnit;

/// What a per-key pool stores: the user's resource and its global unit. Wherever the per-key
/// pool destroys it (release, idle expiry, eviction, close, a failed check, a cancelled
/// acquire), dropping it returns the global unit, so the gate never needs a hook into the
/// per-key release path.
pub(crate) struct Held<T> {
    pub(crate) resource: T,
    /// Returned on drop; never read.
    pub(crate) _unit: GlobalUnit,
}
