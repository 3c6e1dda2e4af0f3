//! The [`Manager`] trait (how resources are made, checked, judged and torn down) and its closure
//! form, [`from_fn`].

use std::future::Future;
use std::pin::Pin;

use crate::callback::guarded_sync;
use crate::error::BoxError;

/// A boxed, sendable future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Creates, checks and tears down the resources of a pool.
///
/// Only [`create`](Manager::create) is required. The trait uses native `impl Future` methods, so
/// implementations write plain `async` blocks and nothing is boxed on the acquire/release hot
/// path: the pool calls the synchronous [`is_open`](Manager::is_open) on hand-out and
/// [`is_reusable`](Manager::is_reusable) on release, and the
/// async methods only on the rare paths (create, health check, teardown).
///
/// ```
/// use shadowcat_pool::Manager;
///
/// struct Upstream { addr: std::net::SocketAddr }
///
/// impl Manager for Upstream {
///     type Resource = tokio::net::TcpStream;
///     type Error = std::io::Error;
///
///     async fn create(&self) -> Result<Self::Resource, Self::Error> {
///         tokio::net::TcpStream::connect(self.addr).await
///     }
///
///     fn is_reusable(&self, stream: &mut Self::Resource) -> bool {
///         // A socket with a pending error is not handed out again.
///         matches!(stream.take_error(), Ok(None))
///     }
/// }
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The pooled resource.
    type Resource: Send + 'static;
    /// What `create` and `check` fail with.
    type Error: Into<BoxError> + Send + 'static;

    /// Creates a new resource. Bounded by `create_timeout` when one is set.
    fn create(&self) -> impl Future<Output = Result<Self::Resource, Self::Error>> + Send;

    /// Checks an idle resource before it is handed out; called only when
    /// [`PoolOptions::test_before_acquire`](crate::PoolOptions::test_before_acquire) is on.
    /// An error destroys the resource and the acquire moves on to another one.
    /// Default: always healthy.
    fn check(
        &self,
        resource: &mut Self::Resource,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = resource;
        async { Ok(()) }
    }

    /// Says, cheaply and synchronously, whether an idle resource may be handed out: called on
    /// every hand-out from the idle set (by `acquire` and `try_acquire`) before any async check.
    /// `false` (or a panic) destroys it (`DestroyReason::CheckFailed`) and the acquire moves on.
    /// Use it for what a look at the resource can tell (a closed socket, an exited child): it is
    /// the cheap alternative to `test_before_acquire`. Default: `true`.
    fn is_open(&self, resource: &mut Self::Resource) -> bool {
        let _ = resource;
        true
    }

    /// Says, cheaply and synchronously, whether a released resource may go back to the idle set.
    /// Runs inside `Drop` of [`PoolConnection`](crate::PoolConnection), so it must not block.
    /// A panic here counts as `false`. Default: `true`.
    fn is_reusable(&self, resource: &mut Self::Resource) -> bool {
        let _ = resource;
        true
    }

    /// Tears a resource down. Default: drop it.
    ///
    /// When the pool destroys a resource from synchronous code (a `Drop`), it polls this future
    /// once; if it is not finished, it is spawned on the current tokio runtime, holding the
    /// resource's unit of capacity until it completes. With no runtime it is dropped.
    fn destroy(&self, resource: Self::Resource) -> impl Future<Output = ()> + Send {
        async move { drop(resource) }
    }
}

/// The manager behind [`from_fn`]: resources come from an async closure.
pub struct FnManager<F> {
    factory: F,
}

impl<F> std::fmt::Debug for FnManager<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnManager").finish_non_exhaustive()
    }
}

/// A manager whose `create` calls `factory`; everything else is the default. This is how a
/// plain `Pool<tokio::net::TcpStream>` is built without a wrapper type.
///
/// ```
/// # async fn demo(addr: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
/// use shadowcat_pool::{from_fn, Pool, PoolOptions};
/// use tokio::net::TcpStream;
///
/// let pool: Pool<TcpStream> = PoolOptions::new()
///     .max_connections(8)
///     .build(from_fn(move || TcpStream::connect(addr)))?;
/// # Ok(()) }
/// ```
pub fn from_fn<F, Fut, T, E>(factory: F) -> FnManager<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    FnManager { factory }
}

impl<F, Fut, T, E> Manager for FnManager<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    type Resource = T;
    type Error = E;

    fn create(&self) -> impl Future<Output = Result<T, E>> + Send {
        (self.factory)()
    }
}

/// The pool's type-erased view of a manager, so that `Pool<T>` does not name the manager type.
/// Only the rare async paths box; `is_open` and `is_reusable` are plain virtual calls.
pub(crate) trait DynManager<T>: Send + Sync + 'static {
    fn create(&self) -> BoxFuture<'_, Result<T, BoxError>>;
    fn check<'a>(&'a self, resource: &'a mut T) -> BoxFuture<'a, Result<(), BoxError>>;
    /// [`Manager::is_open`], `false` if it panicked.
    fn is_open(&self, resource: &mut T) -> bool;
    /// [`Manager::is_reusable`], `false` if it panicked.
    fn is_reusable(&self, resource: &mut T) -> bool;
    fn destroy(&self, resource: T) -> BoxFuture<'_, ()>;
}

impl<M: Manager> DynManager<M::Resource> for M {
    fn create(&self) -> BoxFuture<'_, Result<M::Resource, BoxError>> {
        Box::pin(async move { Manager::create(self).await.map_err(Into::into) })
    }

    fn check<'a>(&'a self, resource: &'a mut M::Resource) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { Manager::check(self, resource).await.map_err(Into::into) })
    }

    // The panic guard sits inside the virtual call, where the manager's method is known: for a
    // manager that keeps the default (`true`, which cannot panic) the guard compiles away and
    // the call is a constant return. Around the call, it was a frame of its own on every
    // checkout and every release.
    fn is_open(&self, resource: &mut M::Resource) -> bool {
        guarded_sync(|| Manager::is_open(self, resource)).unwrap_or(false)
    }

    fn is_reusable(&self, resource: &mut M::Resource) -> bool {
        guarded_sync(|| Manager::is_reusable(self, resource)).unwrap_or(false)
    }

    fn destroy(&self, resource: M::Resource) -> BoxFuture<'_, ()> {
        Box::pin(Manager::destroy(self, resource))
    }
}
