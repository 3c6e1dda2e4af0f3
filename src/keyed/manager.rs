//! [`KeyedManager`]: how a keyed pool makes, checks and tears down the resources of any key, its
//! closure form [`keyed_fn`], and the per-key adapter that plugs it into one key's pool.

use std::future::{poll_fn, Future};
use std::task::Poll;

use crate::create;
use crate::engine::loom::{Arc, Weak};
use crate::error::BoxError;
use crate::manager::{default_ran, default_ran_as, Manager};
use crate::stats::GaugeGuard;

use super::gate::{Gate, GlobalUnit, KeyShare};
use super::held::{Counted, Held};
use super::inner::Inner;
use super::options::Saturation;

/// Creates, checks and tears down the resources of a [`KeyedPool`](super::KeyedPool): the
/// crate's [`Manager`] with the key passed to every call, so one manager serves every upstream.
/// Only [`create`](Self::create) is required.
///
/// ```
/// use shadowcat_pool::KeyedManager;
///
/// struct Upstreams;
///
/// impl KeyedManager<std::net::SocketAddr> for Upstreams {
///     type Resource = tokio::net::TcpStream;
///     type Error = std::io::Error;
///
///     async fn create(&self, addr: &std::net::SocketAddr) -> std::io::Result<Self::Resource> {
///         tokio::net::TcpStream::connect(*addr).await
///     }
/// }
/// ```
pub trait KeyedManager<K>: Send + Sync + 'static {
    /// The pooled resource.
    type Resource: Send + 'static;
    /// What `create` and `check` fail with.
    type Error: Into<BoxError> + Send + 'static;

    /// Creates a new resource for `key`.
    fn create(&self, key: &K) -> impl Future<Output = Result<Self::Resource, Self::Error>> + Send;

    /// Checks an idle resource before hand-out, with
    /// [`KeyedPoolOptions::test_before_acquire`](super::KeyedPoolOptions::test_before_acquire).
    /// Default: healthy.
    fn check(
        &self,
        key: &K,
        resource: &mut Self::Resource,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = (key, resource);
        async { Ok(()) }
    }

    /// Cheap synchronous check on every hand-out from the idle set, as
    /// [`Manager::is_open`]. Default: `true` (not called once the pool has seen the default).
    fn is_open(&self, key: &K, resource: &mut Self::Resource) -> bool {
        let _ = (key, resource);
        default_ran::<Self>();
        true
    }

    /// Cheap synchronous check on release, as [`Manager::is_reusable`]. Default: `true` (not
    /// called once the pool has seen the default).
    fn is_reusable(&self, key: &K, resource: &mut Self::Resource) -> bool {
        let _ = (key, resource);
        default_ran::<Self>();
        true
    }

    /// Tears a resource down, as [`Manager::destroy`]. Default: drop it.
    fn destroy(&self, key: &K, resource: Self::Resource) -> impl Future<Output = ()> + Send {
        let _ = key;
        async move { drop(resource) }
    }
}

/// The manager behind [`keyed_fn`].
pub struct KeyedFnManager<F> {
    factory: F,
}

impl<F> std::fmt::Debug for KeyedFnManager<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedFnManager").finish_non_exhaustive()
    }
}

/// A keyed manager whose `create` calls `factory(key)`; everything else is the default. The
/// future must not borrow the key (clone what it needs).
pub fn keyed_fn<K, F, Fut, T, E>(factory: F) -> KeyedFnManager<F>
where
    F: Fn(&K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    KeyedFnManager { factory }
}

impl<K, F, Fut, T, E> KeyedManager<K> for KeyedFnManager<F>
where
    K: Sync,
    F: Fn(&K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    T: Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    type Resource = T;
    type Error = E;

    fn create(&self, key: &K) -> impl Future<Output = Result<T, E>> + Send {
        (self.factory)(key)
    }
}

/// One key's manager: takes a global unit (evicting or waiting per the saturation policy), then
/// calls the user's manager with the key. Implements the crate's [`Manager`], so a key's pool is
/// the crate's ordinary pool machinery.
pub(crate) struct KeyManager<K: Send + Sync + 'static, M: KeyedManager<K>> {
    pub(crate) manager: Arc<M>,
    pub(crate) gate: Arc<Gate>,
    /// Weak: the keyed pool owns the keys' pools, which own their managers.
    pub(crate) inner: Weak<Inner<K, M::Resource>>,
    pub(crate) saturation: Saturation,
    /// The key, its turn in the gate's line and its count of global units (shared with its
    /// entry and its resources).
    pub(crate) share: Arc<KeyShare<K>>,
}

impl<K, M> Manager for KeyManager<K, M>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    type Resource = Held<K, M::Resource>;
    type Error = BoxError;

    async fn create(&self) -> Result<Self::Resource, BoxError> {
        let evict = || {
            if let Some(inner) = self.inner.upgrade() {
                inner.evict_one(Some(&self.share.key));
            }
        };
        let mut take = std::pin::pin!(Gate::take(&self.gate, self.saturation, &self.share, evict));
        // Still waiting for global capacity when our acquirer took a released resource instead
        // (the crate then polls us in the background with `acquirer_gone` set): give up before
        // creating anything. Dropping the wait leaves the gate's line (or the key's turn) and
        // passes on whatever it was handed, so the unit goes to the next waiter of any key
        // instead of to a resource nobody asked for, and the key's unit goes back to the key.
        let unit: GlobalUnit = poll_fn(|cx| match take.as_mut().poll(cx) {
            Poll::Ready(taken) => Poll::Ready(taken.map_err(BoxError::from)),
            Poll::Pending if create::acquirer_gone() => {
                Poll::Ready(Err(Box::new(create::Unwanted) as BoxError))
            }
            Poll::Pending => Poll::Pending,
        })
        .await?;
        // The unit is taken but neither idle nor checked out until the resource exists.
        let _counted = self
            .gate
            .max_idle_total
            .is_some()
            .then(|| GaugeGuard::enter(&self.gate.creating_with_unit));
        // On an error `unit` drops here and the global unit goes back.
        let resource = self
            .manager
            .create(&self.share.key)
            .await
            .map_err(Into::into)?;
        Ok(Held {
            resource,
            unit,
            counted: Counted::new(&self.share),
        })
    }

    async fn check(&self, held: &mut Self::Resource) -> Result<(), BoxError> {
        self.manager
            .check(&self.share.key, &mut held.resource)
            .await
            .map_err(Into::into)
    }

    // A keyed manager's kept default is this check's default too: `default_ran_as` passes the
    // record on to this type, so a key's pool stops calling it as a plain pool does.
    fn is_open(&self, held: &mut Self::Resource) -> bool {
        let open = self.manager.is_open(&self.share.key, &mut held.resource);
        default_ran_as::<M, Self>();
        open
    }

    fn is_reusable(&self, held: &mut Self::Resource) -> bool {
        let reusable = self
            .manager
            .is_reusable(&self.share.key, &mut held.resource);
        default_ran_as::<M, Self>();
        reusable
    }

    async fn destroy(&self, held: Self::Resource) {
        let Held {
            resource,
            unit,
            counted,
        } = held;
        self.manager.destroy(&self.share.key, resource).await;
        // The global unit returns once the teardown is done.
        drop((unit, counted));
    }
}
