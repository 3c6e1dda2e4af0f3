//! User hooks (`after_create`, `before_acquire`, `after_release`) and the [`Metadata`] they get.

use std::sync::Arc;
use std::time::Duration;

use crate::error::BoxError;
use crate::manager::BoxFuture;

/// What the pool knows about a resource, passed to every hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// Time since the resource was created.
    pub age: Duration,
    /// Time the resource spent idle before this event (zero for `after_create` and
    /// `after_release`).
    pub idle_for: Duration,
    /// A number unique within the pool, in creation order; handy in logs.
    pub id: u64,
}

/// `after_create`: runs once on each new resource before first use. An error closes the resource
/// and fails the acquire with [`Error::Hook`](crate::Error::Hook).
pub type AfterCreate<T> =
    Arc<dyn for<'c> Fn(&'c mut T, Metadata) -> BoxFuture<'c, Result<(), BoxError>> + Send + Sync>;

/// `before_acquire` and `after_release`: `Ok(true)` keeps the resource; `Ok(false)` or an error
/// closes it.
pub type Judge<T> =
    Arc<dyn for<'c> Fn(&'c mut T, Metadata) -> BoxFuture<'c, Result<bool, BoxError>> + Send + Sync>;

/// The hooks a pool was built with.
pub(crate) struct Hooks<T> {
    pub(crate) after_create: Option<AfterCreate<T>>,
    pub(crate) before_acquire: Option<Judge<T>>,
    pub(crate) after_release: Option<Judge<T>>,
}

impl<T> Clone for Hooks<T> {
    fn clone(&self) -> Self {
        Hooks {
            after_create: self.after_create.clone(),
            before_acquire: self.before_acquire.clone(),
            after_release: self.after_release.clone(),
        }
    }
}

impl<T> Default for Hooks<T> {
    fn default() -> Self {
        Hooks {
            after_create: None,
            before_acquire: None,
            after_release: None,
        }
    }
}
