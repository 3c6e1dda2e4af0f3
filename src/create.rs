//! Creating resources: the guarded `create` call, `after_create`, and creates that finish in the
//! background (a creator handed a released resource, and maintenance warm-ups).

use std::time::Duration;

use crate::clock::Stamp;
use futures_util::future::{select, Either};
use tracing::Instrument;

use crate::error::{BoxError, CreateTimedOut, Error, HookKind, Panicked};
use crate::guard::{CapacityGuard, Floating, Live};
use crate::inner::PoolInner;
use crate::manager::BoxFuture;
use crate::stats::{Counters, DestroyReason};
use crate::sync::{Arc, Ordering};
use crate::unwind::{guarded, Outcome};

impl<T: Send + 'static> PoolInner<T> {
    /// The time limit on a create nobody waits for (one finishing in the background, or a
    /// warm-up): `create_timeout`, or else `acquire_timeout`, so that it cannot hold its unit
    /// forever. A create an acquire waits for is bounded by `create_timeout` and by the acquire's
    /// own timeout.
    fn background_create_limit(&self) -> Option<Duration> {
        self.config.create_timeout.or(self.config.acquire_timeout)
    }

    /// A `'static` future that creates one resource: `Manager::create` under a time limit with
    /// panics caught, then the bookkeeping. The caller holds the unit of capacity.
    pub(crate) fn create_future(self: &Arc<Self>) -> BoxFuture<'static, Result<Live<T>, Error>> {
        let inner = self.clone();
        let span = tracing::debug_span!("shadowcat_pool::create");
        Box::pin(
            async move {
                let limit = inner.config.create_timeout;
                let failure: BoxError = match guarded(limit, || inner.manager.create()).await {
                    Outcome::Done(Ok(resource)) => return Ok(inner.new_live(resource)),
                    Outcome::Done(Err(e)) => e,
                    Outcome::Panicked(panic) => Box::new(Panicked::new("Manager::create", panic)),
                    Outcome::TimedOut(limit) => Box::new(CreateTimedOut(limit)),
                };
                Counters::bump(&inner.stats.create_failed);
                tracing::warn!(error = %failure, "creating a pooled resource failed");
                Err(Error::Create(failure))
            }
            .instrument(span),
        )
    }

    /// Stamps a freshly created resource: creation time, jittered lifetime, id.
    fn new_live(&self, resource: T) -> Live<T> {
        let created = self.clock.now();
        let expires = self.config.max_lifetime.map_or(Stamp::NONE, |life| {
            let jitter = self.config.lifetime_jitter;
            let cut = if jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(fastrand::u64(0..=jitter.as_nanos() as u64))
            };
            created.after(life.saturating_sub(cut))
        });
        // Relaxed: ids only need to be unique.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Counters::bump(&self.stats.created);
        tracing::debug!(id, "created pooled resource");
        // A parked maintenance task has something to look after now.
        self.maintenance_wake.notify_additional(1);
        Live {
            resource,
            created,
            expires,
            id,
        }
    }

    /// Runs `after_create` on a fresh resource (panics caught, bounded by the create limit);
    /// on failure the resource is destroyed.
    pub(crate) async fn run_after_create(
        self: &Arc<Self>,
        mut floating: Floating<T>,
    ) -> Result<Floating<T>, Error> {
        let Some(hook) = self.config.hooks.after_create.clone() else {
            return Ok(floating);
        };
        let meta = floating.live().metadata(self.clock.now(), Stamp::NONE);
        let outcome = {
            let res = &mut floating.live_mut().resource;
            guarded(self.config.create_timeout, || hook(res, meta)).await
        };
        let err: BoxError = match outcome {
            Outcome::Done(Ok(())) => return Ok(floating),
            Outcome::Done(Err(e)) => e,
            Outcome::Panicked(panic) => Box::new(Panicked::new("after_create", panic)),
            Outcome::TimedOut(limit) => Box::new(CreateTimedOut(limit)),
        };
        tracing::warn!(error = %err, "after_create hook failed; closing the resource");
        floating.destroy(DestroyReason::HookRejected);
        Err(Error::Hook {
            hook: HookKind::AfterCreate,
            source: err,
        })
    }

    /// `after_create`, then a last look at `closed`: a resource created for a closed pool is
    /// destroyed, not handed out.
    pub(crate) async fn finish_fresh(
        self: &Arc<Self>,
        live: Live<T>,
        guard: CapacityGuard<T>,
    ) -> Result<Floating<T>, Error> {
        let floating = self
            .run_after_create(Floating::new(live, Stamp::NONE, guard))
            .await?;
        if self.load_state().is_closed() {
            floating.destroy(DestroyReason::Closed);
            return Err(Error::Closed);
        }
        Ok(floating)
    }

    /// Lets an in-flight create finish on the runtime; its resource joins the idle set.
    pub(crate) fn finish_create_in_background(
        self: &Arc<Self>,
        create: BoxFuture<'static, Result<Live<T>, Error>>,
        guard: CapacityGuard<T>,
    ) {
        let task = self.clone().land_created(create, guard);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(task);
            }
            Err(_) => drop(task), // cancels the create; the guard returns the unit
        }
    }

    /// Finishes a create whose result nobody waits for, and puts the resource in the idle set
    /// (where a waiter may be handed it). On failure, or if the pool closes first (the create is
    /// then dropped), the guard returns the unit.
    pub(crate) async fn land_created(
        self: Arc<Self>,
        create: BoxFuture<'static, Result<Live<T>, Error>>,
        guard: CapacityGuard<T>,
    ) {
        let closed = self.closed_event.listen();
        if self.load_state().is_closed() {
            return;
        }
        let limit = self.background_create_limit();
        let bounded = guarded(limit, || select(create, closed));
        let Outcome::Done(Either::Left((Ok(live), _))) = bounded.await else {
            return;
        };
        if let Ok(floating) = self.finish_fresh(live, guard).await {
            let (live, _, guard) = floating.into_parts();
            PoolInner::release_idle(live, self.idle_stamp(), guard);
        }
    }
}
