//! The [`Manager`] trait (how resources are made, checked, judged and torn down) and its closure
//! form, [`from_fn`].

use std::any::TypeId;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::callback::guarded_sync;
use crate::error::BoxError;

/// A boxed, sendable future: what the async hooks (`after_create`, `before_acquire`,
/// `after_release`) return, so that a hook can be a named function:
///
/// ```
/// use shadowcat_pool::{BoxFuture, BoxError, Metadata};
///
/// fn greet(conn: &mut String, _meta: Metadata) -> BoxFuture<'_, Result<(), BoxError>> {
///     Box::pin(async move {
///         conn.push_str(" hello");
///         Ok(())
///     })
/// }
/// # let _ = shadowcat_pool::PoolOptions::<String>::new().after_create(greet);
/// ```
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
///
/// A session that can be pinged (`check`, run on hand-out with
/// [`test_before_acquire`](crate::PoolOptions::test_before_acquire)) and that says goodbye
/// before it is dropped (`destroy`, bounded by `release_timeout`):
///
/// ```
/// use shadowcat_pool::{Manager, PoolOptions};
///
/// struct Session { open: bool }
///
/// impl Session {
///     async fn ping(&mut self) -> std::io::Result<()> {
///         if self.open { Ok(()) } else { Err(std::io::Error::other("closed by peer")) }
///     }
///     async fn goodbye(self) {}
/// }
///
/// struct Sessions;
///
/// impl Manager for Sessions {
///     type Resource = Session;
///     type Error = std::io::Error;
///
///     async fn create(&self) -> std::io::Result<Session> {
///         Ok(Session { open: true })
///     }
///
///     // A failed check destroys the session; the acquire goes on with another one.
///     async fn check(&self, session: &mut Session) -> std::io::Result<()> {
///         session.ping().await
///     }
///
///     async fn destroy(&self, session: Session) {
///         session.goodbye().await;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = PoolOptions::new()
///     .max_connections(4)
///     .test_before_acquire(true)
///     .build(Sessions)
///     .unwrap();
/// let session = pool.acquire().await.unwrap();
/// assert!(session.open);
/// # }
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
    /// the cheap alternative to `test_before_acquire`. Default: `true` (a pool whose manager
    /// keeps the default notices at the first call and stops calling it).
    fn is_open(&self, resource: &mut Self::Resource) -> bool {
        let _ = resource;
        default_ran::<Self>();
        true
    }

    /// Says, cheaply and synchronously, whether a released resource may go back to the idle set.
    /// Runs inside `Drop` of [`PoolConnection`](crate::PoolConnection), so it must not block.
    /// A panic here counts as `false`. Default: `true` (a pool whose manager keeps the default
    /// notices at the first call and stops calling it).
    fn is_reusable(&self, resource: &mut Self::Resource) -> bool {
        let _ = resource;
        default_ran::<Self>();
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

/// What a pool has learned about its manager's two synchronous checks: whether each is the
/// trait's default, which returns `true` and does nothing else, so that the pool can stop
/// calling it (issue 9: a manager that keeps a default pays nothing per checkout or release).
///
/// Rust cannot ask whether a trait method is overridden, so the defaults say so when they run:
/// they record their `Self` type in a thread-local ([`default_ran`]). The first call of each check
/// clears that record, makes the call, and learns "default" only if the record then names this
/// pool's manager type. An override cannot run its own type's default (Rust has no `super`
/// call), and one that delegates to another manager's default records that other type, so an
/// override is never skipped; a panic records nothing. A race between two first calls learns the
/// same answer twice. The bits only grow, and a stale read costs one more probe.
pub(crate) struct Checks(AtomicU8);

impl Checks {
    const OPEN_KNOWN: u8 = 1;
    const OPEN_DEFAULT: u8 = 2;
    const REUSABLE_KNOWN: u8 = 4;
    const REUSABLE_DEFAULT: u8 = 8;

    /// Nothing learned yet.
    pub(crate) fn new() -> Self {
        Checks(AtomicU8::new(0))
    }

    /// What is known of `Manager::is_open`.
    #[inline]
    pub(crate) fn open(&self) -> Known {
        self.known(Self::OPEN_KNOWN, Self::OPEN_DEFAULT)
    }

    /// What is known of `Manager::is_reusable`.
    #[inline]
    pub(crate) fn reusable(&self) -> Known {
        self.known(Self::REUSABLE_KNOWN, Self::REUSABLE_DEFAULT)
    }

    #[inline]
    fn known(&self, known: u8, default: u8) -> Known {
        // Relaxed: a hint that only grows; a stale `Unknown` makes one more probe.
        let bits = self.0.load(Ordering::Relaxed);
        // The default first: it is the one answer the hot path acts on without a call.
        if bits & default != 0 {
            Known::Default
        } else if bits & known == 0 {
            Known::Unknown
        } else {
            Known::Overridden
        }
    }

    /// Runs `check` (manager `M`'s check) and learns whether it is the default.
    fn learn<M: 'static>(&self, known: u8, default: u8, check: impl FnOnce() -> bool) -> bool {
        DEFAULT_RAN.set(None);
        let verdict = check();
        let ran = DEFAULT_RAN.take() == Some(TypeId::of::<M>());
        // Relaxed: as in `known`.
        self.0
            .fetch_or(known | if ran { default } else { 0 }, Ordering::Relaxed);
        verdict
    }

    #[cfg(test)]
    fn open_is_default(&self) -> bool {
        self.open() == Known::Default
    }

    #[cfg(test)]
    fn reusable_is_default(&self) -> bool {
        self.reusable() == Known::Default
    }
}

/// What a pool knows of one of its manager's synchronous checks ([`Checks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// Not called yet: the next call learns.
    Unknown,
    /// The trait's default: not called.
    Default,
    /// The manager's own: called every time.
    Overridden,
}

thread_local! {
    /// The manager type whose default `is_open` or `is_reusable` ran last on this thread
    /// ([`Checks`]).
    static DEFAULT_RAN: Cell<Option<TypeId>> = const { Cell::new(None) };
}

/// Records that `M`'s default `is_open` or `is_reusable` ran ([`Checks`]).
pub(crate) fn default_ran<M: ?Sized + 'static>() {
    DEFAULT_RAN.set(Some(TypeId::of::<M>()));
}

/// For a manager `M` that wraps `Inner` and whose check only calls `Inner`'s (the keyed
/// pool's per-key manager): if `Inner`'s default ran, records that `M`'s did.
pub(crate) fn default_ran_as<Inner: ?Sized + 'static, M: ?Sized + 'static>() {
    if DEFAULT_RAN.get() == Some(TypeId::of::<Inner>()) {
        default_ran::<M>();
    }
}

/// The pool's type-erased view of a manager, so that `Pool<T>` does not name the manager type.
/// Only the rare async paths box; `is_open` and `is_reusable` are plain virtual calls, and no
/// call at all once [`Checks`] knows them to be the defaults.
pub(crate) trait DynManager<T>: Send + Sync + 'static {
    fn create(&self) -> BoxFuture<'_, Result<T, BoxError>>;
    fn check<'a>(&'a self, resource: &'a mut T) -> BoxFuture<'a, Result<(), BoxError>>;
    /// [`Manager::is_open`], `false` if it panicked; with `learn`, the call also teaches it
    /// whether the check is the default.
    fn is_open(&self, resource: &mut T, learn: Option<&Checks>) -> bool;
    /// [`Manager::is_reusable`], `false` if it panicked; with `learn`, the call also teaches it
    /// whether the check is the default.
    fn is_reusable(&self, resource: &mut T, learn: Option<&Checks>) -> bool;
    fn destroy(&self, resource: T) -> BoxFuture<'_, ()>;
}

impl<M: Manager> DynManager<M::Resource> for M {
    fn create(&self) -> BoxFuture<'_, Result<M::Resource, BoxError>> {
        Box::pin(async move { Manager::create(self).await.map_err(Into::into) })
    }

    fn check<'a>(&'a self, resource: &'a mut M::Resource) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { Manager::check(self, resource).await.map_err(Into::into) })
    }

    // The panic guard sits inside the virtual call, where the manager's method is known, so an
    // override that cannot panic pays no frame for it (around the call, it was a frame of its own
    // on every checkout and every release). A kept default is not called at all once `checks`
    // has learned it.
    fn is_open(&self, resource: &mut M::Resource, learn: Option<&Checks>) -> bool {
        let mut check = || guarded_sync(|| Manager::is_open(self, resource)).unwrap_or(false);
        match learn {
            None => check(),
            Some(checks) => checks.learn::<M>(Checks::OPEN_KNOWN, Checks::OPEN_DEFAULT, check),
        }
    }

    fn is_reusable(&self, resource: &mut M::Resource, learn: Option<&Checks>) -> bool {
        let mut check = || guarded_sync(|| Manager::is_reusable(self, resource)).unwrap_or(false);
        match learn {
            None => check(),
            Some(checks) => {
                checks.learn::<M>(Checks::REUSABLE_KNOWN, Checks::REUSABLE_DEFAULT, check)
            }
        }
    }

    fn destroy(&self, resource: M::Resource) -> BoxFuture<'_, ()> {
        Box::pin(Manager::destroy(self, resource))
    }
}

#[cfg(all(test, not(shadowcat_loom)))]
mod tests {
    use super::*;

    /// Keeps both defaults.
    struct Defaults;

    impl Manager for Defaults {
        type Resource = u32;
        type Error = std::io::Error;
        async fn create(&self) -> Result<u32, std::io::Error> {
            Ok(0)
        }
    }

    /// Overrides both checks.
    struct Overrides;

    impl Manager for Overrides {
        type Resource = u32;
        type Error = std::io::Error;
        async fn create(&self) -> Result<u32, std::io::Error> {
            Ok(0)
        }
        fn is_open(&self, resource: &mut u32) -> bool {
            *resource != 1
        }
        fn is_reusable(&self, resource: &mut u32) -> bool {
            *resource != 2
        }
    }

    /// Overrides both checks by delegating to another manager's defaults, then adding its own.
    struct Delegates(Defaults);

    impl Manager for Delegates {
        type Resource = u32;
        type Error = std::io::Error;
        async fn create(&self) -> Result<u32, std::io::Error> {
            Ok(0)
        }
        fn is_open(&self, resource: &mut u32) -> bool {
            Manager::is_open(&self.0, resource) && *resource != 1
        }
        fn is_reusable(&self, resource: &mut u32) -> bool {
            Manager::is_reusable(&self.0, resource) && *resource != 2
        }
    }

    /// Overrides `is_reusable` with one that panics, and keeps the default `is_open`.
    struct Panics;

    impl Manager for Panics {
        type Resource = u32;
        type Error = std::io::Error;
        async fn create(&self) -> Result<u32, std::io::Error> {
            Ok(0)
        }
        fn is_reusable(&self, _: &mut u32) -> bool {
            panic!("is_reusable panicked")
        }
    }

    /// Both checks once through the type-erased manager, as the pool calls them.
    fn learn(manager: &dyn DynManager<u32>) -> (Checks, bool, bool) {
        let checks = Checks::new();
        let open = manager.is_open(&mut 0, Some(&checks));
        let reusable = manager.is_reusable(&mut 0, Some(&checks));
        (checks, open, reusable)
    }

    #[test]
    fn kept_defaults_are_learned_at_the_first_call() {
        let (checks, open, reusable) = learn(&Defaults);
        assert!(open && reusable);
        assert!(checks.open_is_default() && checks.reusable_is_default());
    }

    #[test]
    fn an_override_is_never_taken_for_the_default() {
        let (checks, ..) = learn(&Overrides);
        assert!(!checks.open_is_default() && !checks.reusable_is_default());
        // Known now: later calls go straight to the override, which still decides.
        assert!(!Manager::is_open(&Overrides, &mut 1));
        assert!(!DynManager::is_open(&Overrides, &mut 1, None));
        assert!(!DynManager::is_reusable(&Overrides, &mut 2, None));
        assert!(!checks.open_is_default() && !checks.reusable_is_default());
    }

    #[test]
    fn an_override_that_runs_another_managers_default_is_not_skipped() {
        let (checks, open, reusable) = learn(&Delegates(Defaults));
        assert!(open && reusable);
        assert!(!checks.open_is_default() && !checks.reusable_is_default());
        assert!(!DynManager::is_reusable(&Delegates(Defaults), &mut 2, None));
    }

    #[test]
    fn a_panicking_override_is_not_skipped_and_counts_as_false() {
        let (checks, open, reusable) = learn(&Panics);
        assert!(open && !reusable);
        assert!(checks.open_is_default());
        assert!(!checks.reusable_is_default());
    }

    /// Passes its checks through to `M`'s, as the keyed pool's per-key manager does.
    struct PassesThrough<M>(M);

    impl<M: Manager<Resource = u32>> Manager for PassesThrough<M> {
        type Resource = u32;
        type Error = std::io::Error;
        async fn create(&self) -> Result<u32, std::io::Error> {
            Ok(0)
        }
        fn is_open(&self, resource: &mut u32) -> bool {
            let open = Manager::is_open(&self.0, resource);
            default_ran_as::<M, Self>();
            open
        }
        fn is_reusable(&self, resource: &mut u32) -> bool {
            let reusable = Manager::is_reusable(&self.0, resource);
            default_ran_as::<M, Self>();
            reusable
        }
    }

    #[test]
    fn a_wrapper_that_only_passes_checks_through_learns_what_it_wraps() {
        let (checks, ..) = learn(&PassesThrough(Defaults));
        assert!(checks.open_is_default() && checks.reusable_is_default());
        let (checks, ..) = learn(&PassesThrough(Overrides));
        assert!(!checks.open_is_default() && !checks.reusable_is_default());
        let (checks, ..) = learn(&PassesThrough(Delegates(Defaults)));
        assert!(!checks.open_is_default() && !checks.reusable_is_default());
    }

    #[test]
    fn a_default_run_elsewhere_on_the_thread_is_not_mistaken_for_this_call() {
        // A default of the same type ran outside the pool just before: the probe clears it.
        assert!(Manager::is_open(&Defaults, &mut 0));
        let checks = Checks::new();
        assert!(DynManager::is_open(&Overrides, &mut 0, Some(&checks)));
        assert!(!checks.open_is_default());
    }
}
