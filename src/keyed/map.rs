//! [`ShardedMap`]: the keys of a keyed pool, in shards of `RwLock<HashMap>`.
//!
//! No single lock: a lookup read-locks one shard, picked by the key's hash, for the length of
//! one hash lookup and an `Arc` clone. A release never touches the map (a connection holds its
//! key's pool). Why not `dashmap`, which is this structure: eviction samples keys by walking
//! shards from a rotating hand, one shard at a time, and dashmap exposes its shards only through
//! its `raw-api`, whose table iteration is `unsafe`; the crate forbids `unsafe`. Under loom the
//! shard locks are loom's, so the models see them.

use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasher, Hash};

/// Randomly seeded, so keys taken from requests (a `Host` header) cannot be chosen to collide.
#[cfg(not(shadowcat_loom))]
type Hasher = std::collections::hash_map::RandomState;

/// Fixed under loom: a model must run the same way every iteration.
#[cfg(shadowcat_loom)]
type Hasher = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

#[cfg(not(shadowcat_loom))]
use parking_lot::RwLock;

#[cfg(shadowcat_loom)]
struct RwLock<T>(loom::sync::RwLock<T>);

#[cfg(shadowcat_loom)]
impl<T> RwLock<T> {
    fn new(value: T) -> Self {
        RwLock(loom::sync::RwLock::new(value))
    }
    fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
        self.0.read().expect("shard lock poisoned")
    }
    fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
        self.0.write().expect("shard lock poisoned")
    }
}

/// A map from `K` to `V` (an `Arc`, cheap to clone) in independently locked shards.
pub(crate) struct ShardedMap<K, V> {
    shards: Box<[RwLock<HashMap<K, V, Hasher>>]>,
    hasher: Hasher,
}

impl<K, V> ShardedMap<K, V> {
    /// Visits every value, one shard's read lock at a time.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(&V)) {
        for shard in self.shards.iter() {
            shard.read().values().for_each(&mut visit);
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> ShardedMap<K, V> {
    /// `shards` is rounded up to a power of two.
    pub(crate) fn new(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        ShardedMap {
            shards: (0..n)
                .map(|_| RwLock::new(HashMap::with_hasher(Hasher::default())))
                .collect(),
            hasher: Hasher::default(),
        }
    }

    fn shard(&self, key: &K) -> &RwLock<HashMap<K, V, Hasher>> {
        let h = self.hasher.hash_one(key) as usize;
        &self.shards[h & (self.shards.len() - 1)]
    }

    /// The number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The value for `key`, cloned out under a read lock.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.shard(key).read().get(key).cloned()
    }

    /// The value for `key`, or the one `make` returns, inserted, unless `refuse` (checked under
    /// the shard's write lock) says no.
    pub(crate) fn get_or_insert<E>(
        &self,
        key: &K,
        refuse: impl FnOnce() -> Option<E>,
        make: impl FnOnce() -> V,
    ) -> Result<V, E> {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        let mut shard = self.shard(key).write();
        if let Some(e) = refuse() {
            return Err(e);
        }
        Ok(match shard.entry(key.clone()) {
            Entry::Occupied(e) => e.get().clone(),
            Entry::Vacant(e) => e.insert(make()).clone(),
        })
    }

    /// Removes `key` if `is_it` holds for its value now (under the write lock). Returns the
    /// removed value.
    pub(crate) fn remove_if(&self, key: &K, is_it: impl FnOnce(&V) -> bool) -> Option<V> {
        let mut shard = self.shard(key).write();
        match shard.entry(key.clone()) {
            Entry::Occupied(e) if is_it(e.get()) => Some(e.remove()),
            _ => None,
        }
    }

    /// Clones out every value of shard `i` (`i` modulo the shard count).
    pub(crate) fn shard_values(&self, i: usize) -> Vec<(K, V)> {
        let shard = self.shards[i & (self.shards.len() - 1)].read();
        shard.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Visits the entries of shard `i` under its read lock; `visit` returns `false` to stop.
    pub(crate) fn visit_shard(&self, i: usize, mut visit: impl FnMut(&K, &V) -> bool) {
        let shard = self.shards[i & (self.shards.len() - 1)].read();
        for (k, v) in shard.iter() {
            if !visit(k, v) {
                return;
            }
        }
    }

    /// Removes every entry of shard `i` for which `remove` returns `true` (under its write
    /// lock), then gives back table memory if the shard is mostly empty.
    pub(crate) fn retain_shard(&self, i: usize, mut remove: impl FnMut(&K, &V) -> bool) {
        let mut shard = self.shards[i & (self.shards.len() - 1)].write();
        shard.retain(|k, v| !remove(k, v));
        if shard.capacity() > 4 * shard.len() + 16 {
            shard.shrink_to_fit();
        }
    }

    /// Removes and returns every entry.
    pub(crate) fn drain(&self) -> Vec<(K, V)> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            all.extend(shard.drain());
            shard.shrink_to_fit();
        }
        all
    }

    /// The number of entries (each shard read in turn; not a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }
}
