//! [`Tracked`]: a live resource and what the pool knows about it, in a box of its own.

use crate::clock::Stamp;
use crate::hooks::Metadata;
use crate::shared::Unit;

/// A live resource with its record, boxed once when it is created: the same box sits in the idle
/// queue or a hot slot, moves through checks and hooks inside a [`Lease`](crate::lease::Lease),
/// and is handed to the user. Every checkout moves the box's pointer several times between the
/// engine and the async layers; moving the record itself cost about a fifth of the uncontended
/// cycle's instructions (DESIGN.md, "What the hot path costs").
pub(crate) type Tracked<T> = Box<Record<T>>;

/// A live resource with its timestamps and id.
pub(crate) struct Record<T: Send + 'static> {
    pub(crate) resource: T,
    pub(crate) created: Stamp,
    /// When its (jittered) `max_lifetime` runs out; `NONE` if no lifetime is set.
    pub(crate) expires: Stamp,
    /// When it last went idle; `NONE` while it is checked out, and when no option or hook needs
    /// the time (the release path then reads no clock).
    pub(crate) idle_since: Stamp,
    /// A pool-unique number, for logs.
    pub(crate) id: u64,
    /// The unit of capacity, while a [`PoolConnection`](crate::PoolConnection) holds the box,
    /// and while an idle resource is handed from the fast path to the slow path's future
    /// (`acquire::start`); `None` everywhere else (the unit then travels beside the box, as in a
    /// `Lease`). Kept here so that each of those is one pointer: a two-pointer handle was
    /// returned through memory and read back whole right after being written in halves, a
    /// store-forwarding stall on every checkout (`benches/RESULTS.md`, "One pointer per
    /// connection").
    pub(crate) unit: Option<Unit<T>>,
}

impl<T: Send + 'static> Record<T> {
    /// The hook metadata at `now`.
    pub(crate) fn metadata(&self, now: Stamp) -> Metadata {
        Metadata {
            age: now.since(self.created),
            idle_for: now.since(self.idle_since),
            id: self.id,
        }
    }

    /// Whether its lifetime has run out at `now`.
    #[inline]
    pub(crate) fn expired(&self, now: Stamp) -> bool {
        self.expires.is_set() && now >= self.expires
    }
}
