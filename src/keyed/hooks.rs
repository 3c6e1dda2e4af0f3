//! The hooks of a keyed pool (`after_create`, `before_acquire`, `after_release`): the crate's
//! hooks with the key passed too, so one hook serves every upstream.
//!
//! A key's pool is the crate's pool of [`Held`] values, so its hooks are the crate's
//! [`Hooks`] of `Held<K, T>`, run by the crate's own code (timeouts, panics caught, capacity
//! returned). Each keyed hook is wrapped once per keyed pool into such a hook, which splits the
//! `Held` it is given into the key (reached through the `Arc` every resource of the key already
//! holds) and the resource: nothing is allocated per key or per checkout to pass the key.

use std::sync::Arc;

use crate::error::BoxError;
use crate::hooks::{AfterCreate, Hooks, Judge, Metadata};
use crate::manager::BoxFuture;

use super::held::Held;

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
    pub(crate) fn per_key(&self) -> Hooks<Held<K, T>> {
        Hooks {
            after_create: self.after_create.clone().map(|hook| {
                after_create_hook(move |held: &mut Held<K, T>, meta| {
                    let (key, resource) = held.key_and_resource();
                    hook(key, resource, meta)
                })
            }),
            before_acquire: self.before_acquire.clone().map(keyed_judge),
            after_release: self.after_release.clone().map(keyed_judge),
        }
    }
}

/// A keyed `before_acquire` or `after_release` as the crate's hook of `Held`.
fn keyed_judge<K, T>(hook: KeyedJudge<K, T>) -> Judge<Held<K, T>>
where
    K: Send + Sync + 'static,
    T: Send + 'static,
{
    judge_hook(move |held: &mut Held<K, T>, meta| {
        let (key, resource) = held.key_and_resource();
        hook(key, resource, meta)
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
