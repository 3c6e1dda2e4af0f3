//! [`KeyEntry`]: one key's pool, as the map holds it.

use std::sync::atomic::AtomicU64;

use crate::engine::loom::{Arc, AtomicBool, Weak};
use crate::shared::Shared;

use super::gate::{Gate, KeyShare};
use super::held::Held;
use super::inner::Inner;

/// One key: a light pool on the crate's engine (its own state word, line and idle queue of
/// `max_per_key`, sharing the keyed pool's counters and maintenance task), plus what eviction
/// and removal need.
pub(crate) struct KeyEntry<K: Send + Sync + 'static, T: Send + 'static> {
    pub(crate) pool: Arc<Shared<Held<K, T>>>,
    /// When a resource of this key was last released (a `Ticks` counter reading): the recency
    /// eviction compares. A std atomic: a hint that orders nothing.
    pub(crate) last_used: AtomicU64,
    /// Set by `close_key` before it closes the pool: an acquire that meets the closed pool then
    /// fails instead of retrying on a fresh entry (as it does after an empty key was removed).
    pub(crate) closed_by_user: AtomicBool,
    pub(crate) gate: Arc<Gate>,
    /// The key, its turn in the gate's line and its count of global units (shared with its
    /// manager and its resources).
    pub(crate) share: Arc<KeyShare<K>>,
    /// For eviction from the release path (rare: only when someone waits for capacity).
    pub(crate) inner: Weak<Inner<K, T>>,
}
