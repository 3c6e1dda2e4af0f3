//! [`KeyedPoolStats`] and [`KeyStats`]: snapshots of a keyed pool and of one key.

use crate::stats::DestroyedStats;

/// A snapshot of a whole [`KeyedPool`](super::KeyedPool), from
/// [`KeyedPool::stats`](super::KeyedPool::stats). Gauges are summed key by key, so they may mix
/// slightly different instants; counters are the keys' shared tallies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyedPoolStats {
    /// Keys in the map (keys with no resource and nobody waiting are removed by maintenance).
    pub keys: usize,
    /// Units of global capacity taken: resources alive plus creates in flight, across keys.
    /// Never above `max_total`.
    pub size: usize,
    /// Idle resources across keys.
    pub idle: usize,
    /// Resources checked out across keys.
    pub in_use: usize,
    /// Acquirers parked in their key's line.
    pub waiting: usize,
    /// Creates (of any key) waiting for a unit of global capacity: one per key in the global
    /// line, the key's others waiting for its turn.
    pub waiting_for_capacity: usize,
    /// Creates in flight across keys (waiting for global capacity or running the manager's
    /// `create`).
    pub creating: usize,
    /// Acquires served without parking (as [`PoolStats`](crate::PoolStats)).
    pub acquired_immediately: u64,
    /// Acquires that parked in their key's line before they were served.
    pub acquired_after_wait: u64,
    /// `max_per_key`.
    pub max_per_key: usize,
    /// `max_total`.
    pub max_total: usize,
    /// Whether the pool is closed.
    pub closed: bool,
    /// Resources created.
    pub created: u64,
    /// Creates that failed, panicked or timed out (including waits for global capacity cut by
    /// `create_timeout`, and refusals under [`Saturation::Fail`](super::Saturation::Fail) that
    /// raced past the up-front check).
    pub create_failed: u64,
    /// Acquires that hit `acquire_timeout`.
    pub timeouts: u64,
    /// Resources destroyed, by reason (`evicted` counts evictions: idle resources closed for
    /// another key, and resources given up on release for a key holding fewer).
    pub destroyed: DestroyedStats,
    /// Maintenance passes over the keys.
    pub maintenance_passes: u64,
}

/// A snapshot of one key, from [`KeyedPool::key_stats`](super::KeyedPool::key_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStats {
    /// Units of the key's capacity in use: resources alive plus creates in flight.
    pub size: usize,
    /// Idle resources of the key.
    pub idle: usize,
    /// Acquirers counted in the key's line (including those creating while in line).
    pub waiting: usize,
    /// `max_per_key`.
    pub max: usize,
    /// Whether the key is closed (by `close_key`, draining) or was just removed as empty.
    pub closed: bool,
}
