//! The acquire slow path: waiting, creating (while staying in line), and preparing an idle
//! resource (`test_before_acquire`, `before_acquire`). The fast path is `PoolInner::try_claim`.

use futures_util::future::{select, Either};
use tokio::time::Instant;

use crate::connection::PoolConnection;
use crate::error::{Error, Panicked};
use crate::guard::{CapacityGuard, Floating};
use crate::inner::{Claim, PoolInner};
use crate::stats::DestroyReason;
use crate::sync::Arc;
use crate::unwind::{guarded, guarded_sync, Outcome};
use crate::waiters::{CreatorEntry, Place, Reservation};

/// What preparing an idle resource came to.
pub(crate) enum Prepared<T: Send + 'static> {
    /// Ready to hand out.
    Ready(Floating<T>),
    /// It failed and was destroyed; its teardown finished at once, so the caller keeps the unit
    /// (and its place in line) to create a replacement.
    Replaced(CapacityGuard<T>),
    /// It failed and its teardown holds the unit; the caller starts over.
    Gone,
}

impl<T: Send + 'static> PoolInner<T> {
    /// Everything after the fast path: waiting, creating, checking, retrying. The caller applies
    /// `acquire_timeout` around it.
    pub(crate) async fn acquire_slow(
        self: &Arc<Self>,
        mut claim: Claim<T>,
    ) -> Result<PoolConnection<T>, Error> {
        // Set when this acquire first parks; only parked acquires count as having waited.
        let mut parked_at: Option<Instant> = None;
        // Set when a resource handed to us from the line failed its check and its unit went to
        // teardown: we wait again, but at the front, so nobody who queued after us overtakes us.
        let mut rejoin_front = false;
        loop {
            claim = match claim {
                Claim::Closed => return Err(Error::Closed),
                Claim::Idle(floating) => match self.prepare_idle(floating).await {
                    Prepared::Ready(ready) => {
                        self.note_wait(parked_at);
                        return Ok(self.attach(ready));
                    }
                    Prepared::Replaced(guard) => Claim::Create(guard),
                    Prepared::Gone => {
                        rejoin_front = parked_at.is_some();
                        self.try_claim(true)
                    }
                },
                Claim::Create(guard) => match self.create_racing(guard).await? {
                    Ok(floating) => {
                        self.note_wait(parked_at);
                        return Ok(self.attach(floating));
                    }
                    Err(next) => next,
                },
                Claim::Wait => {
                    let front = std::mem::take(&mut rejoin_front);
                    self.wait_turn(&mut parked_at, front).await
                }
            };
        }
    }

    /// Hands a prepared resource to the user.
    #[inline]
    pub(crate) fn attach(self: &Arc<Self>, floating: Floating<T>) -> PoolConnection<T> {
        self.stats.checkouts.bump();
        PoolConnection::new(floating)
    }

    /// Whether an idle resource needs async work before hand-out.
    #[inline]
    pub(crate) fn idle_needs_preparing(&self) -> bool {
        self.config.test_before_acquire || self.config.hooks.before_acquire.is_some()
    }

    /// Prepares an idle resource for hand-out: `test_before_acquire`, then `before_acquire`.
    ///
    /// Cancelling the acquire here destroys the resource (`DestroyReason::Cancelled`): a check
    /// or hook cut off mid-way may have left it mid-protocol (a ping sent, its reply unread), so
    /// it is not safe to hand to the next user.
    pub(crate) async fn prepare_idle(self: &Arc<Self>, floating: Floating<T>) -> Prepared<T> {
        let mut floating = match self.open_or_replace(floating) {
            Ok(floating) => floating,
            Err(failed) => return failed,
        };
        if self.config.test_before_acquire {
            let outcome = {
                let res = &mut floating.live_mut().resource;
                guarded(None, || self.manager.check(res)).await
            };
            let failure = match outcome {
                Outcome::Done(Ok(())) => None,
                Outcome::Done(Err(e)) => Some(e.to_string()),
                Outcome::Panicked(panic) => {
                    Some(Panicked::new("Manager::check", panic).to_string())
                }
                Outcome::TimedOut(_) => Some("timed out".to_string()),
            };
            if let Some(failure) = failure {
                tracing::debug!(id = floating.live().id, error = %failure, "health check failed");
                return self.replace(floating, DestroyReason::CheckFailed);
            }
        }
        if let Some(hook) = self.config.hooks.before_acquire.clone() {
            let meta = floating
                .live()
                .metadata(self.clock.now(), floating.idle_since);
            let outcome = {
                let res = &mut floating.live_mut().resource;
                guarded(None, || hook(res, meta)).await
            };
            match outcome {
                Outcome::Done(Ok(true)) => {}
                Outcome::Done(Ok(false)) => {
                    return self.replace(floating, DestroyReason::HookRejected);
                }
                Outcome::Done(Err(e)) => {
                    tracing::warn!(error = %e, "before_acquire hook failed; closing the resource");
                    return self.replace(floating, DestroyReason::HookRejected);
                }
                Outcome::Panicked(panic) => {
                    let p = Panicked::new("before_acquire", panic);
                    tracing::warn!(error = %p, "before_acquire hook panicked; closing the resource");
                    return self.replace(floating, DestroyReason::HookRejected);
                }
                Outcome::TimedOut(_) => return self.replace(floating, DestroyReason::HookRejected),
            }
        }
        Prepared::Ready(floating)
    }

    /// `Manager::is_open`, the synchronous check every hand-out from the idle set makes.
    #[inline]
    pub(crate) fn open_or_replace(
        self: &Arc<Self>,
        mut floating: Floating<T>,
    ) -> Result<Floating<T>, Prepared<T>> {
        let res = &mut floating.live_mut().resource;
        if guarded_sync(|| self.manager.is_open(res)).unwrap_or(false) {
            Ok(floating)
        } else {
            tracing::debug!(id = floating.live().id, "idle resource is not open");
            Err(self.replace(floating, DestroyReason::CheckFailed))
        }
    }

    /// Destroys a resource that failed preparation, keeping its unit when teardown is instant.
    fn replace(self: &Arc<Self>, floating: Floating<T>, reason: DestroyReason) -> Prepared<T> {
        let (live, _, guard) = floating.into_parts();
        match PoolInner::destroy_keeping_unit(live, guard, reason) {
            Some(guard) => Prepared::Replaced(guard),
            None => Prepared::Gone,
        }
    }

    fn note_wait(&self, started: Option<Instant>) {
        let Some(started) = started else { return };
        let waited = started.elapsed();
        self.stats.waited.bump();
        self.stats.wait_nanos.add(waited.as_nanos() as u64);
        if let Some(threshold) = self.config.acquire_slow_threshold {
            if waited > threshold {
                tracing::warn!(waited = ?waited, threshold = ?threshold, "slow acquire");
            }
        }
    }

    /// Creates a resource with `guard`'s unit while staying in line as a waiter: if a released
    /// resource is handed to us before the create finishes, we take it, and the create finishes
    /// in the background and lands in the idle set (bug class 13: a waiter stuck in `create`).
    ///
    /// `Ok(Err(claim))` means: carry on with `claim` (a resource handed over that still needs
    /// preparing, or a unit kept after it failed).
    async fn create_racing(
        self: &Arc<Self>,
        guard: CapacityGuard<T>,
    ) -> Result<Result<Floating<T>, Claim<T>>, Error> {
        let mut place = match Place::enter_as_creator(self, guard) {
            CreatorEntry::Registered(place, guard) => (Some(place), guard),
            CreatorEntry::Saturated(guard) => (None, guard),
            // An idle resource was published before we got in line: take it, create nothing.
            CreatorEntry::Item(claim) => return Ok(Err(claim)),
            CreatorEntry::Closed => return Err(Error::Closed),
        };
        let guard = place.1;
        let mut create = self.create_future();
        let handed_over = match place.0.as_mut() {
            Some(place) => match select(&mut create, place.listener()).await {
                Either::Left((created, _)) => Err(created),
                Either::Right(((), _)) => Ok(()),
            },
            None => Err((&mut create).await),
        };
        let created = match handed_over {
            Err(created) => {
                // Leave the line; a notification we got meanwhile is passed on.
                drop(place.0);
                created
            }
            Ok(()) => {
                // We were notified: we hold a reservation.
                let place = place.0.expect("notified without a place");
                match place.take_reservation() {
                    Reservation::Item(floating) => {
                        // Take the released resource; let the create finish in the background.
                        self.finish_create_in_background(create, guard);
                        return Ok(Err(Claim::Idle(floating)));
                    }
                    Reservation::Slot(extra) => {
                        // Spare capacity while we already create: pass it on, keep creating.
                        drop(extra);
                        create.await
                    }
                    Reservation::Closed => return Err(Error::Closed),
                }
            }
        };
        // On a create error, `guard` drops here and returns the unit.
        self.finish_fresh(created?, guard).await.map(Ok)
    }
}
