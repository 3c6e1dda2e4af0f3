//! The hooks of a keyed pool (`after_create`, `before_acquire`, `after_release`): the crate's
//! hooks with the key passed too, so one hook serves every upstream.
//!
//! A key's pool is the crate's pool of [`Held`] values, so its hooks are the crate's
//! [`Hooks`] of `Held<K, T>`, run by the crate's own code (timeouts, panics caught, capacity
//! returned). Each keyed hook is wrapped once per keyed pool into such a hook, which splits the
//! `Held` it is given into the key (reached through the `Arc` every resource of the key already
//! holds) and the resource: nothing is allocated per key or per checkout to pass the key.

use std::sync::atomic::Ordering as StdOrdering;
use std::sync::Arc;

use crate::error::BoxError;
use crate::hooks::{AfterCreate, Hooks, Judge, Metadata};
use crate::manager::BoxFuture;

use super::held::Held;
use super::Saturation;

/// A keyed pool's `after_create` hook: runs once on each new resource of `key` before its first
/// use; an error closes it. See
/// [`KeyedPoolOptions::after_create`](super::KeyedPoolOptions::after_create).
pub type KeyedAfterCreate<K, T> = Arc<
    dyn for<'c> Fn(&'c K, &'c mut T, Metadata) -> BoxFuture<'c, Result<(), BoxError>> + Send + Sync,
>;

/// A keyed pool's `before_acquire` or `after_release` hook: `Ok(true)` keeps the resource of
/// `key`; `Ok(false)` or an error closes it.
pub type KeyedJudge<K, T> = Arc<
    dyn for<'c> Fn(&'c K, &'c mut T, Metadata) -> BoxFuture<'c, Result<bool, BoxError>>
        + Send
        + Sync,
>;

/// The hooks a keyed pool was built with.
pub(crate) struct KeyedHooks<K, T> {
    pub(crate) after_create: Option<KeyedAfterCreate<K, T>>,
    pub(crate) before_acquire: Option<KeyedJudge<K, T>>,
    pub(crate) after_release: Option<KeyedJudge<K, T>>,
}

impl<K, T> Clone for KeyedHooks<K, T> {
    fn clone(&self) -> Self {
        KeyedHooks {
            after_create: self.after_create.clone(),
            before_acquire: self.before_acquire.clone(),
            after_release: self.after_release.clone(),
        }
    }
}

impl<K, T> Default for KeyedHooks<K, T> {
    fn default() -> Self {
        KeyedHooks {
            after_create: None,
            before_acquire: None,
            after_release: None,
        }
    }
}

impl<K, T> KeyedHooks<K, T>
where
    K: Send + Sync + 'static,
    T: Send + 'static,
{
    /// The crate's hooks that every key's pool gets (built once per keyed pool; each key's
    /// config holds clones of these `Arc`s).
    pub(crate) fn per_key(&self, saturation: Saturation) -> Hooks<Held<K, T>> {
        Hooks {
            after_create: self.after_create.clone().map(|hook| {
                after_create_hook(move |held: &mut Held<K, T>, meta| {
                    let (key, resource) = held.key_and_resource();
                    hook(key, resource, meta)
                })
            }),
            before_acquire: self.before_acquire.clone().map(|hook| {
                judge_hook(move |held: &mut Held<K, T>, meta| {
                    let (key, resource) = held.key_and_resource();
                    hook(key, resource, meta)
                })
            }),
            after_release: self
                .after_release
                .clone()
                .map(|hook| after_release(hook, saturation)),
        }
    }
}

/// Wraps a keyed `after_release`. Under [`Saturation::Evict`], a resource the hook keeps while
/// someone waits for global capacity is given up for them instead of going idle: the crate's
/// `after_release` task publishes a kept resource without the landing callback that makes every
/// other landing evict for such a waiter (DESIGN.md §14, "Hooks", says what is left open and
/// the one crate line that would replace this).
fn after_release<K, T>(hook: KeyedJudge<K, T>, saturation: Saturation) -> Judge<Held<K, T>>
where
    K: Send + Sync + 'static,
    T: Send + 'static,
{
    if saturation != Saturation::Evict {
        return judge_hook(move |held: &mut Held<K, T>, meta| {
            let (key, resource) = held.key_and_resource();
            hook(key, resource, meta)
        });
    }
    judge_hook(move |held: &mut Held<K, T>, meta| {
        let gate = held.unit.host().clone();
        let (key, resource) = held.key_and_resource();
        let verdict = hook(key, resource, meta);
        Box::pin(async move {
            if !verdict.await? {
                return Ok(false);
            }
            // SeqCst fence: pairs with the one in `Gate::take` (a waiter's registration, then its
            // eviction scan), as a releaser's does, so a waiter registered before this point is
            // seen. One registering between here and the crate's publish can still miss it.
            super::fence(crate::engine::loom::Ordering::SeqCst);
            if gate.state().waiters() == 0 {
                return Ok(true);
            }
            // Relaxed: a tally (`KeyedPool::stats` reports these as evictions).
            gate.released_for_waiter.fetch_add(1, StdOrdering::Relaxed);
            tracing::debug!("keyed pool: released resource given up for a waiter of another key");
            Ok(false)
        })
    })
}

/// Gives a closure the crate's higher-ranked `after_create` signature (a closure's signature is
/// inferred from the bound it is passed to).
fn after_create_hook<T, F>(hook: F) -> AfterCreate<T>
where
    F: for<'c> Fn(&'c mut T, Metadata) -> BoxFuture<'c, Result<(), BoxError>>
        + Send
        + Sync
        + 'static,
{
    Arc::new(hook)
}

/// As [`after_create_hook`], for `before_acquire` and `after_release`.
fn judge_hook<T, F>(hook: F) -> Judge<T>
where
    F: for<'c> Fn(&'c mut T, Metadata) -> BoxFuture<'c, Result<bool, BoxError>>
        + Send
        + Sync
        + 'static,
{
    Arc::new(hook)
}
