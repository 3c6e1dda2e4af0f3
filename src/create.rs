//! Creating resources: the guarded `Manager::create` call, `after_create`, and creates that
//! finish in the background (a creator handed a released resource, and maintenance warm-ups).

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::callback::{guarded, Outcome};
use crate::clock::Stamp;
use crate::config::{Config, DEFAULT_BACKGROUND_CREATE_LIMIT};
use crate::engine::loom::Arc;
use crate::error::{CreateTimedOut, Error, HookKind};
use crate::lease::Lease;
use crate::manager::BoxFuture;
use crate::release;
use crate::runtime;
use crate::shared::{Shared, Unit};
use crate::stats::{Counters, DestroyReason, GaugeGuard};
use crate::teardown;
use crate::telemetry::Telemetry;
use crate::tracked::{Record, Tracked};

/// A create in flight: `'static`, so it can move to a background task.
pub(crate) type Creating<T> = BoxFuture<'static, Result<Tracked<T>, Error>>;

tokio::task_local! {
    /// Set while a create whose acquirer took a released resource instead (hazard H13) is
    /// polled in the background: nobody waits for it any more.
    static ACQUIRER_GONE: ();
}

/// Whether the create being polled now has lost its acquirer (it was handed a released resource
/// and left the create to finish in the background). A manager that has not started the real
/// work yet (the keyed pool's wait for global capacity) may then give up with [`Unwanted`].
pub(crate) fn acquirer_gone() -> bool {
    ACQUIRER_GONE.try_with(|_| ()).is_ok()
}

/// A manager gave up a create nobody waits for ([`acquirer_gone`]): not a failure (not counted in
/// `create_failed`, not logged as a warning); the unit of capacity goes back.
#[derive(Debug, thiserror::Error)]
#[error("create given up: its acquirer was served by a released resource")]
pub(crate) struct Unwanted;

/// Starts creating one resource: `Manager::create` under `create_timeout` with panics caught,
/// then the bookkeeping. The caller holds the unit of capacity.
pub(crate) fn start<T: Send + 'static>(shared: &Arc<Shared<T>>) -> Creating<T> {
    let shared = shared.clone();
    let span = tracing::debug_span!("shadowcat_pool::create", pool = %shared.config.name);
    Box::pin(
        async move {
            let _creating = GaugeGuard::enter(&shared.stats.creating);
            let started = Telemetry::ENABLED.then(std::time::Instant::now);
            let took = || started.map_or(Duration::ZERO, |t| t.elapsed());
            let limit = shared.config.create_timeout;
            let outcome = guarded(shared.armable(limit), || shared.manager.create()).await;
            match outcome.flatten("Manager::create", CreateTimedOut) {
                Ok(resource) => {
                    shared.telemetry.created(took());
                    Ok(track(&shared, resource))
                }
                Err(failure) if failure.is::<Unwanted>() => {
                    tracing::trace!("create given up: nobody waits for it");
                    Err(Error::Create(failure))
                }
                Err(failure) => {
                    shared.telemetry.create_failed(took());
                    Counters::bump(&shared.stats.create_failed);
                    tracing::warn!(
                        pool = %shared.config.name,
                        error = %failure,
                        "creating a pooled resource failed"
                    );
                    Err(Error::Create(failure))
                }
            }
        }
        .instrument(span),
    )
}

/// Stamps a freshly created resource: creation time, jittered lifetime, id.
fn track<T: Send + 'static>(shared: &Shared<T>, resource: T) -> Tracked<T> {
    let created = shared.clock.now();
    let expires = shared.config.max_lifetime.map_or(Stamp::NONE, |life| {
        let jitter = shared.config.lifetime_jitter;
        let cut = if jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(fastrand::u64(0..=jitter.as_nanos() as u64))
        };
        created.after(life.saturating_sub(cut))
    });
    let id = shared.next_id();
    Counters::bump(&shared.stats.created);
    tracing::debug!(id, "created pooled resource");
    // A parked maintenance task has something to look after now.
    shared.maintenance_wake.notify_additional(1);
    Box::new(Record {
        resource,
        created,
        expires,
        idle_since: Stamp::NONE,
        id,
        unit: None,
    })
}

/// `after_create` (panics caught, bounded by `create_timeout`), then a last look at `closed`: a
/// resource created for a closed pool is destroyed, not handed out. On failure the resource is
/// destroyed and its unit returned.
pub(crate) async fn finish<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    tracked: Tracked<T>,
    unit: Unit<T>,
) -> Result<Lease<T>, Error> {
    let mut lease = Lease::new(tracked, unit);
    if let Some(hook) = shared.config.hooks.after_create.clone() {
        let meta = lease.tracked().metadata(shared.clock.now());
        let outcome = {
            let res = &mut lease.tracked_mut().resource;
            guarded(shared.armable(shared.config.create_timeout), || {
                hook(res, meta)
            })
            .await
        };
        if let Err(source) = outcome.flatten("after_create", CreateTimedOut) {
            tracing::warn!(
                pool = %shared.config.name,
                error = %source,
                "after_create hook failed; closing the resource"
            );
            lease.destroy(DestroyReason::HookRejected);
            return Err(Error::Hook {
                hook: HookKind::AfterCreate,
                source,
            });
        }
    }
    if shared.state().is_closed() {
        lease.destroy(DestroyReason::Closed);
        return Err(Error::Closed);
    }
    Ok(lease)
}

/// Lets an in-flight create finish on the runtime; its resource joins the idle set.
pub(crate) fn finish_in_background<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    creating: Creating<T>,
    unit: Unit<T>,
) {
    // Polled with `ACQUIRER_GONE` set from now on, so the manager can tell nobody waits for it.
    let mut creating: Creating<T> = Box::pin(ACQUIRER_GONE.scope((), creating));
    // One poll here: a create that gives up at once needs no task (and its unit comes back now,
    // not when a task is scheduled). A create that finished in that poll lands from the task.
    match (&mut creating).now_or_never() {
        None => {}
        Some(Err(_)) => return, // `unit` drops: back to the key's oldest waiter or the pool
        // It finished in that poll: a live resource, counted as created. It must land or be
        // destroyed through the manager, never dropped (a task that never runs would drop it).
        Some(Ok(tracked)) => {
            if shared.config.hooks.after_create.is_none() {
                // Nothing async left to run: into the idle set now (a closed pool drains it).
                return release::land(tracked, shared.idle_stamp(), unit);
            }
            if !runtime::available() {
                return teardown::destroy(tracked, unit, DestroyReason::Cancelled);
            }
            creating = Box::pin(std::future::ready(Ok(tracked)));
        }
    }
    // Without a runtime the task is dropped: that cancels the create and returns the unit.
    drop(runtime::spawn(land(shared.clone(), creating, unit)));
}

/// Finishes a create whose result nobody waits for, and puts the resource in the idle set
/// (where a waiter may be handed it).
///
/// Background work must always be bounded and must always lose to `close()`: the create *and*
/// `after_create` run under one limit ([`background_limit`]) and are dropped when the pool closes;
/// on failure, time-out or close the unit is returned.
pub(crate) async fn land<T: Send + 'static>(
    shared: Arc<Shared<T>>,
    creating: Creating<T>,
    unit: Unit<T>,
) {
    let closed = shared.closed_event.listen();
    if shared.state().is_closed() {
        // A create that finished in `finish_in_background`'s one poll holds a live resource:
        // destroy it through the manager, so the books balance (an unfinished one is dropped).
        if let Some(Ok(tracked)) = creating.now_or_never() {
            teardown::destroy(tracked, unit, DestroyReason::Closed);
        }
        return;
    }
    let work = async {
        let tracked = creating.await?;
        finish(&shared, tracked, unit).await
    };
    let limit = background_limit(&shared.config);
    let bounded = guarded(shared.armable(Some(limit)), || {
        select(Box::pin(work), closed)
    });
    let Outcome::Done(Either::Left((Ok(lease), _))) = bounded.await else {
        return;
    };
    let (tracked, unit) = lease.into_parts();
    let idle_since = shared.idle_stamp();
    release::land(tracked, idle_since, unit);
}

/// The time limit on a create (with `after_create`) that finishes in the background:
/// `create_timeout`, else `acquire_timeout`, else [`DEFAULT_BACKGROUND_CREATE_LIMIT`].
pub(crate) fn background_limit<T>(config: &Config<T>) -> Duration {
    config
        .create_timeout
        .or(config.acquire_timeout)
        .unwrap_or(DEFAULT_BACKGROUND_CREATE_LIMIT)
}
