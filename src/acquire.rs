//! Acquiring: the fast path, then waiting in line, creating (while staying in line), and
//! preparing an idle resource (`Manager::is_open`, `test_before_acquire`, `before_acquire`).

use futures_util::future::{select, Either};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::callback::{guarded, Outcome};
use crate::clock::Ticks;
use crate::config::DEFAULT_BACKGROUND_CREATE_LIMIT;
use crate::connection::PoolConnection;
use crate::create;
use crate::engine::loom::Arc;
use crate::engine::{Claim, CreatorJoined, Engine, Joined, Reservation, Waiter, MAX_WAITERS};
use crate::error::{Error, HookTimedOut};
use crate::lease::Lease;
use crate::maintenance;
use crate::manager::BoxFuture;
use crate::release;
use crate::runtime;
use crate::shared::{Shared, Unit};
use crate::stats::{Counters, DestroyReason, GaugeGuard, Tally};
use crate::teardown;
use crate::tracked::Tracked;

/// Where an acquire stands on its slow path.
enum Next<T: Send + 'static> {
    /// A fresh resource, ready to hand out.
    Ready(Lease<T>),
    /// An idle resource that must be prepared before hand-out.
    Idle(Lease<T>),
    /// A unit of capacity to create a resource with.
    Create(Unit<T>),
    /// Nothing now: wait in line.
    Wait,
    /// Too many waiters to count: yield, then wait in line.
    Saturated,
    /// `max_waiters` acquirers are waiting already.
    Full,
    /// The pool is closed.
    Closed,
}

impl<T: Send + 'static> From<Claim<Shared<T>>> for Next<T> {
    fn from(claim: Claim<Shared<T>>) -> Self {
        match claim {
            Claim::Idle(tracked, unit) => Next::Idle(Lease::new(tracked, unit)),
            Claim::Tallied(tracked, unit) => {
                unit.host().untally(Tally::Checkout);
                Next::Idle(Lease::new(tracked, unit))
            }
            Claim::Create(unit) => Next::Create(unit),
            Claim::Wait => Next::Wait,
            Claim::Closed => Next::Closed,
        }
    }
}

impl<T: Send + 'static> From<Reservation<Shared<T>>> for Next<T> {
    fn from(reservation: Reservation<Shared<T>>) -> Self {
        match reservation {
            Reservation::Item(tracked, unit) => Next::Idle(Lease::new(tracked, unit)),
            Reservation::Slot(unit) => Next::Create(unit),
            Reservation::Closed => Next::Closed,
        }
    }
}

/// What preparing an idle resource came to.
enum Prepared<T: Send + 'static> {
    /// Ready to hand out.
    Ready(Lease<T>),
    /// It failed and was destroyed; its teardown finished at once, so the caller keeps the unit
    /// (and its place in line) to create a replacement.
    Replaced(Unit<T>),
    /// It failed and its teardown holds the unit; the caller starts over.
    Gone,
    /// The pool closed while it was being prepared: it was destroyed.
    Closed,
}

/// [`Pool::acquire`](crate::Pool::acquire).
pub(crate) async fn acquire<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
) -> Result<PoolConnection<T>, Error> {
    // Spend one unit of tokio's cooperative budget, like every tokio resource: a task that loops
    // acquire/release on an idle pool yields to the scheduler once its budget is gone, instead of
    // starving the other tasks of its worker. Outside a runtime the budget is unconstrained.
    // After `made_progress` the guard's drop does nothing, but it is an out-of-line call into
    // tokio on every acquire: forgetting the guard (it owns nothing) saved 0.7 ns of S1's 22.
    std::future::poll_fn(|cx| {
        tokio::task::coop::poll_proceed(cx).map(|restore| {
            restore.made_progress();
            std::mem::forget(restore);
        })
    })
    .await;
    maintenance::ensure_running(shared);
    // A resource from this worker's own slot is counted as checked out by the take, on the
    // slot's line (`Claim::Tallied`); if it is not handed out here, the count is taken back. The
    // two hand-out arms differ only in `tallied`; this is the form that measured fastest (one arm
    // with an or-pattern and a flag was part of a slower version: `benches/RESULTS.md`, "Counts
    // on the slot's line").
    let (idle, unit) = match Engine::claim_tallying(shared, true, Tally::Checkout as usize) {
        Claim::Tallied(tracked, unit) if !needs_preparing(shared) => {
            match hand_out(shared, Lease::new(tracked, unit), true) {
                Ok(conn) => return Ok(conn),
                Err(again) => start(again)?,
            }
        }
        Claim::Idle(tracked, unit) if !needs_preparing(shared) => {
            match hand_out(shared, Lease::new(tracked, unit), false) {
                Ok(conn) => return Ok(conn),
                Err(again) => start(again)?,
            }
        }
        other => start(other)?,
    };
    // The timer needs a tokio runtime with a timer driver; without one the wait is unbounded
    // (and said so, once).
    // The slow path's future is built where it is awaited, from two values (see `slow`).
    let Some(limit) = shared.armable(shared.config.acquire_timeout) else {
        return OutOfLine::new(slow(shared, idle, unit))
            .await
            .map_err(|e| *e);
    };
    match tokio::time::timeout(limit, OutOfLine::new(slow(shared, idle, unit))).await {
        Ok(result) => result.map_err(|e| *e),
        Err(_) => {
            Counters::bump(&shared.stats.timeouts);
            shared.telemetry.timed_out();
            let s = shared.state();
            tracing::warn!(
                pool = %shared.config.name,
                timeout = ?limit,
                size = s.size(),
                waiting = s.waiters(),
                "acquire timed out"
            );
            Err(Error::Timeout(limit))
        }
    }
}

pin_project_lite::pin_project! {
    /// Polls the slow path in a function of its own. Without it LLVM inlines the slow path's
    /// poll into `acquire`'s, and whether `acquire`'s poll is then small enough to be inlined
    /// into its caller flips with any change to the slow path (each flip measured: the
    /// uncontended cycle 5-10% slower when it was not inlined; `benches/RESULTS.md`). One call
    /// per poll of a waiting acquire buys a fast path whose code does not depend on the slow
    /// path's.
    struct OutOfLine<F> {
        #[pin]
        inner: F,
    }
}

impl<F> OutOfLine<F> {
    #[inline(always)]
    fn new(inner: F) -> Self {
        OutOfLine { inner }
    }
}

impl<F: Future> Future for OutOfLine<F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// [`Pool::try_acquire`](crate::Pool::try_acquire).
pub(crate) fn try_acquire<T: Send + 'static>(shared: &Arc<Shared<T>>) -> Option<PoolConnection<T>> {
    loop {
        let claim = Engine::claim_tallying(shared, false, Tally::Checkout as usize);
        let tallied = matches!(claim, Claim::Tallied(..));
        let (Claim::Tallied(tracked, unit) | Claim::Idle(tracked, unit)) = claim else {
            return None;
        };
        // A resource that `Manager::is_open` rejects is destroyed; its unit goes back (to a
        // waiter, if any), and we look at the next idle one.
        let mut lease = Lease::new(tracked, unit);
        if open_or_destroy(&mut lease).is_none() {
            return Some(attach(lease, tallied));
        }
        if tallied {
            shared.untally(Tally::Checkout);
        }
    }
}

/// What the slow path returns: its errors boxed, so that the result is two words and comes back
/// from [`OutOfLine`]'s poll in registers. The 24-byte `Result<PoolConnection, Error>` came back
/// through memory and was copied on in pieces at odd offsets (`Error::Hook`'s kind sits in the
/// tag's word), a store-forwarding stall on every wait (`benches/RESULTS.md`). An error
/// allocates once; errors are the rare outcome.
type SlowResult<T> = Result<PoolConnection<T>, Box<Error>>;

/// Everything after the fast path: waiting, creating, checking, retrying. The caller applies
/// `acquire_timeout` around it.
///
/// One flat state machine: waiting in line and preparing an idle resource without a check or
/// hook are written out here instead of being nested async fns, so a parked acquire's cycle
/// (join, park, take the reservation, hand out) moves no inner future's state and goes round
/// the loop once (issue 10: the values moved per wait were a measured part of its cost).
///
/// It starts from two values, each written on its own, instead of a [`Next`]: the fast path's
/// `Next` (24 bytes, usually just the `Wait` tag written) was copied whole into this future,
/// and again into the async block's own variable at its first poll, each copy a
/// store-forwarding stall on every wait (`benches/RESULTS.md`). `idle`: an idle resource to
/// prepare, with its unit in its record ([`start`]); `unit`: a unit to create with; neither:
/// wait in line. The body is an `async move` block, not an `async fn`, so that the captured
/// values are used where they lie.
#[allow(clippy::manual_async_fn)] // on purpose: see the paragraph above
fn slow<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    idle: Option<Tracked<T>>,
    unit: Option<Unit<T>>,
) -> impl Future<Output = SlowResult<T>> + '_ {
    async move {
        let mut next = match (idle, unit) {
            (Some(mut tracked), spare) => {
                // `start` never gives both; a spare unit would go back as it drops.
                debug_assert!(
                    spare.is_none(),
                    "an idle resource and a unit to create with"
                );
                drop(spare);
                let unit = tracked
                    .unit
                    .take()
                    .expect("`start` keeps the unit in the record");
                Next::Idle(Lease::new(tracked, unit))
            }
            (None, Some(unit)) => Next::Create(unit),
            (None, None) => Next::Wait,
        };
        // Set when this acquire first parks (a `Ticks` reading); only parked acquires count as
        // having waited.
        let mut parked_at: Option<u64> = None;
        // Set when a resource handed to us from the line failed its check and its unit went to
        // teardown: we wait again, but at the front, so nobody who queued after us overtakes us.
        let mut rejoin_front = false;
        loop {
            next = match next {
                Next::Closed => return Err(Box::new(Error::Closed)),
                Next::Full => {
                    let limit = shared.config.max_waiters.unwrap_or(MAX_WAITERS);
                    Counters::bump(&shared.stats.rejected_waiters);
                    shared.telemetry.rejected();
                    tracing::debug!(limit, "acquire rejected: max_waiters are waiting");
                    return Err(Box::new(Error::TooManyWaiters(limit)));
                }
                Next::Ready(lease) => {
                    note_wait(shared, parked_at);
                    return Ok(attach(lease, false));
                }
                Next::Idle(lease) => {
                    // Only a check or a hook needs an await; the usual hand-out is synchronous.
                    let prepared = if needs_preparing(shared) {
                        prepare_idle(shared, lease).await
                    } else {
                        prepare_now(shared, lease)
                    };
                    match prepared {
                        Prepared::Ready(lease) => {
                            note_wait(shared, parked_at);
                            return Ok(attach(lease, false));
                        }
                        failed => retry(shared, failed, parked_at, &mut rejoin_front),
                    }
                }
                Next::Create(unit) => create_in_line(shared, unit).await?,
                // Waits for this task's turn. Cancel-safe at its one await point: a dropped
                // [`Waiter`] leaves the line and passes on anything it was handed.
                Next::Wait => {
                    let front = std::mem::take(&mut rejoin_front);
                    // Joined with this task's waker, registered in the same lock round trip as the
                    // place, so parking below takes no lock and no atomic for the waker. The waiter
                    // is written into `in_line`, part of this state machine, and used where it lies
                    // (through `&mut`) until it is dropped: never copied.
                    let mut in_line = None;
                    // Matched where it is returned, not bound: a bound `Joined` (24 bytes) was kept
                    // in this state machine across the wait below, copied whole right after the
                    // join wrote it in pieces, a store-forwarding stall on every wait.
                    // A waiter rejoining at the front (its handed resource failed its check) was
                    // admitted already: `max_waiters` does not apply to it again, or an acquirer
                    // that came after it and took its place in the count would turn it away. The
                    // count may stand one over the limit until it is served.
                    let limit = if front {
                        MAX_WAITERS
                    } else {
                        waiter_limit(shared)
                    };
                    match Waiter::join(shared, front, limit, &mut in_line).await {
                        Joined::Waiting => {}
                        Joined::Item(tracked, unit) => {
                            next = Next::Idle(Lease::new(tracked, unit));
                            continue;
                        }
                        Joined::Unit(unit) => {
                            next = Next::Create(unit);
                            continue;
                        }
                        Joined::Saturated => {
                            next = Next::Saturated;
                            continue;
                        }
                        Joined::Full => {
                            next = Next::Full;
                            continue;
                        }
                        Joined::Closed => return Err(Box::new(Error::Closed)),
                    }
                    let waiter = in_line.as_mut().expect("a waiting join fills its slot");
                    // The first of the wait's two counter reads (`Ticks`, not the system clock);
                    // only tasks that really wait pay them.
                    parked_at.get_or_insert_with(Ticks::now);
                    // The only await while in line; everything after it is synchronous, so a
                    // cancellation cannot split the wake-up from taking the reservation.
                    waiter.notified().await;
                    match waiter.take_reservation() {
                        // The usual wake-up: a released resource that needs no check or hook,
                        // handed out from here without another turn of the loop.
                        Reservation::Item(tracked, unit) if !needs_preparing(shared) => {
                            match prepare_now(shared, Lease::new(tracked, unit)) {
                                Prepared::Ready(lease) => {
                                    note_wait(shared, parked_at);
                                    return Ok(attach(lease, false));
                                }
                                failed => retry(shared, failed, parked_at, &mut rejoin_front),
                            }
                        }
                        other => Next::from(other),
                    }
                }
                // The waiter count is full: let other tasks run (some will leave), then try again.
                Next::Saturated => {
                    tokio::task::yield_now().await;
                    Next::Wait
                }
            };
        }
    }
}

/// The slow path's start after the fast path's claim, as [`slow`] takes it: an idle resource
/// (its unit kept in its record) or a unit to create with; neither to wait in line.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn start<T: Send + 'static>(
    claim: Claim<Shared<T>>,
) -> Result<(Option<Tracked<T>>, Option<Unit<T>>), Error> {
    match claim {
        Claim::Idle(mut tracked, unit) => {
            tracked.unit = Some(unit);
            Ok((Some(tracked), None))
        }
        Claim::Tallied(mut tracked, unit) => {
            unit.host().untally(Tally::Checkout);
            tracked.unit = Some(unit);
            Ok((Some(tracked), None))
        }
        Claim::Create(unit) => Ok((None, Some(unit))),
        Claim::Wait => Ok((None, None)),
        Claim::Closed => Err(Error::Closed),
    }
}

/// Where an acquire goes on after preparing an idle resource did not make it ready: a
/// replacement to create with the kept unit, another claim (at the front of the line if it had
/// parked), or `Closed`.
#[inline]
fn retry<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    prepared: Prepared<T>,
    parked_at: Option<u64>,
    rejoin_front: &mut bool,
) -> Next<T> {
    match prepared {
        Prepared::Ready(lease) => Next::Ready(lease),
        Prepared::Replaced(unit) => Next::Create(unit),
        Prepared::Gone => {
            *rejoin_front = parked_at.is_some();
            Next::from(Engine::claim(shared, true))
        }
        Prepared::Closed => Next::Closed,
    }
}

/// How many waiters may be counted when this acquire joins the line. Acquirers creating while in
/// line are counted in `waiters` too; the limit leaves them out.
#[inline]
fn waiter_limit<T: Send + 'static>(shared: &Shared<T>) -> usize {
    shared.config.max_waiters.map_or(MAX_WAITERS, |n| {
        let creators = shared.stats.creators_in_line.load(Ordering::Relaxed);
        n.saturating_add(creators).min(MAX_WAITERS)
    })
}

/// Creates a resource with `unit` while staying in line as a waiter: if a released resource is
/// handed to us before the create finishes, we take it, and the create finishes in the
/// background and lands in the idle set (hazard H13: a waiter stuck in a slow create).
async fn create_in_line<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    unit: Unit<T>,
) -> Result<Next<T>, Error> {
    let (waiter, unit) = match Waiter::join_as_creator(shared, unit) {
        CreatorJoined::Waiting(waiter, unit) => (Some(waiter), unit),
        CreatorJoined::Saturated(unit) => (None, unit),
        // An idle resource was published before we got in line: take it, create nothing.
        CreatorJoined::Item(tracked, unit) => return Ok(Next::Idle(Lease::new(tracked, unit))),
        CreatorJoined::Closed => return Err(Error::Closed),
    };
    let mut creating = create::start(shared);
    // Counted in `waiters` (so a release can hand us a resource), but not reported as waiting,
    // and left out of `max_waiters` (`waiter_limit`): for exactly as long as we are registered.
    let mut in_line = waiter
        .as_ref()
        .map(|_| GaugeGuard::enter(&shared.stats.creators_in_line));
    let created = match waiter {
        None => (&mut creating).await,
        Some(mut waiter) => match select(&mut creating, waiter.notified()).await {
            // Leave the line; a notification we got meanwhile is passed on.
            Either::Left((created, _)) => created,
            // We were notified: we hold a reservation.
            Either::Right(((), _)) => {
                let reservation = waiter.take_reservation();
                // `take_reservation` took us out of `waiters`, so out of this count too, before
                // the create goes on: left in it, we would raise every other acquirer's
                // `max_waiters` limit by one until our create finished.
                in_line = None;
                match reservation {
                    Reservation::Item(tracked, handed) => {
                        // Take the released resource; let the create finish in the background.
                        create::finish_in_background(shared, creating, unit);
                        return Ok(Next::Idle(Lease::new(tracked, handed)));
                    }
                    Reservation::Slot(extra) => {
                        // Spare capacity while we already create: pass it on, keep creating.
                        drop(extra);
                        creating.await
                    }
                    Reservation::Closed => return Err(Error::Closed),
                }
            }
        },
    };
    drop(in_line);
    // On a create error, `unit` drops here and returns the unit.
    create::finish(shared, created?, unit)
        .await
        .map(Next::Ready)
}

/// The fast path's hand-out of an idle resource that needs no preparing: `is_open`, then the
/// handle; or, if it failed the check, the next claim (nobody was waiting when we claimed, so
/// the failed resource's unit goes back first, then we look again: the next idle resource, or
/// room to create). `tallied`: the claim counted the checkout (`Claim::Tallied`).
#[inline(always)]
fn hand_out<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    mut lease: Lease<T>,
    tallied: bool,
) -> Result<PoolConnection<T>, Claim<Shared<T>>> {
    match open_or_destroy(&mut lease) {
        None => Ok(attach(lease, tallied)),
        Some(failed) => {
            if tallied {
                shared.untally(Tally::Checkout);
            }
            drop(failed);
            Err(Engine::claim(shared, true))
        }
    }
}

/// Hands a prepared resource to the user, counting the checkout unless the claim already did
/// (`tallied`: it came from this worker's own slot, `Claim::Tallied`).
#[inline(always)]
fn attach<T: Send + 'static>(lease: Lease<T>, tallied: bool) -> PoolConnection<T> {
    // Split once: the count, the stamp and the handle each used to look into the lease.
    let (mut tracked, unit) = lease.into_parts();
    if !tallied {
        unit.host().stats.checkouts.bump();
    }
    // Checked out: not idle (hook metadata reads zero idle time until it is released).
    tracked.idle_since = crate::clock::Stamp::NONE;
    PoolConnection::new(tracked, unit)
}

/// Whether an idle resource needs async work before hand-out.
#[inline]
fn needs_preparing<T: Send + 'static>(shared: &Shared<T>) -> bool {
    shared.config.test_before_acquire || shared.config.hooks.before_acquire.is_some()
}

/// Prepares an idle resource for hand-out when neither `test_before_acquire` nor
/// `before_acquire` is set: `is_open`, then a last look at `closed` (a resource handed out of a
/// closed pool is destroyed instead). Synchronous, so the usual hand-out after a wait builds no
/// future.
#[inline]
fn prepare_now<T: Send + 'static>(shared: &Shared<T>, mut lease: Lease<T>) -> Prepared<T> {
    if let Some(failed) = open_or_destroy(&mut lease) {
        return failed;
    }
    unless_closed(shared, lease)
}

/// The last look at `closed` before hand-out.
#[inline]
fn unless_closed<T: Send + 'static>(shared: &Shared<T>, lease: Lease<T>) -> Prepared<T> {
    if shared.state().is_closed() {
        lease.destroy(DestroyReason::Closed);
        return Prepared::Closed;
    }
    Prepared::Ready(lease)
}

/// Prepares an idle resource for hand-out when a check or a hook is set: `is_open`, then
/// `test_before_acquire` and `before_acquire`, then a last look at `closed` (a resource prepared
/// while the pool closed is destroyed, not handed out of a closed pool).
///
/// The check and the hook run in a future that owns the resource. If the acquire is cancelled
/// meanwhile (its timeout, a dropped request), that future finishes in the background instead of
/// being dropped: a resource that passes goes back to the idle set (counted in
/// `recovered_after_cancel`), one that fails is destroyed, and one still running at the
/// background limit (`acquire_timeout`, else [`DEFAULT_BACKGROUND_CREATE_LIMIT`]) or when the
/// pool closes is destroyed.
async fn prepare_idle<T: Send + 'static>(shared: &Arc<Shared<T>>, lease: Lease<T>) -> Prepared<T> {
    let mut lease = lease;
    if let Some(failed) = open_or_destroy(&mut lease) {
        return failed;
    }
    let checking = Checking {
        shared: shared.clone(),
        running: Some(Box::pin(check_and_judge(shared.clone(), lease))),
    };
    match checking.await {
        (lease, None) => unless_closed(shared, lease),
        (lease, Some(reason)) => destroy_for_retry(lease, reason),
    }
}

/// A check and hook in flight: the lease, and why it failed (`None`: it passed).
type Judging<T> = BoxFuture<'static, (Lease<T>, Option<DestroyReason>)>;

/// `test_before_acquire`, then `before_acquire`, on a resource it owns.
async fn check_and_judge<T: Send + 'static>(
    shared: Arc<Shared<T>>,
    mut lease: Lease<T>,
) -> (Lease<T>, Option<DestroyReason>) {
    if shared.config.test_before_acquire {
        let outcome = {
            let (_, tracked) = lease.parts_mut();
            guarded(None, || shared.manager.check(&mut tracked.resource)).await
        };
        if let Err(error) = outcome.flatten("Manager::check", HookTimedOut) {
            tracing::debug!(id = lease.tracked().id, %error, "health check failed");
            return (lease, Some(DestroyReason::CheckFailed));
        }
    }
    if let Some(hook) = shared.config.hooks.before_acquire.clone() {
        let meta = lease.tracked().metadata(shared.clock.now());
        let outcome = {
            let (_, tracked) = lease.parts_mut();
            guarded(None, || hook(&mut tracked.resource, meta)).await
        };
        match outcome.flatten("before_acquire", HookTimedOut) {
            Ok(true) => {}
            Ok(false) => return (lease, Some(DestroyReason::HookRejected)),
            Err(error) => {
                tracing::warn!(
                    pool = %shared.config.name,
                    %error,
                    "before_acquire hook failed; closing the resource"
                );
                return (lease, Some(DestroyReason::HookRejected));
            }
        }
    }
    (lease, None)
}

/// Polls a [`Judging`] future; dropped before it finished (the acquire was cancelled), it hands
/// the future to a background task.
struct Checking<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    running: Option<Judging<T>>,
}

impl<T: Send + 'static> Future for Checking<T> {
    type Output = (Lease<T>, Option<DestroyReason>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let running = self.running.as_mut().expect("polled after completion");
        let done = std::task::ready!(running.as_mut().poll(cx));
        self.running = None;
        Poll::Ready(done)
    }
}

impl<T: Send + 'static> Drop for Checking<T> {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            // Without a runtime the task is dropped, and with it the lease: destroyed.
            drop(runtime::spawn(finish_check(self.shared.clone(), running)));
        }
    }
}

/// Finishes a check whose acquire was cancelled: bounded by `acquire_timeout` (or
/// [`DEFAULT_BACKGROUND_CREATE_LIMIT`] if that is `None`: nobody waits for this check, so it
/// must not hold its unit forever), and losing to `close()`. A resource still being checked when either ends is dropped with its lease, which
/// destroys it.
async fn finish_check<T: Send + 'static>(shared: Arc<Shared<T>>, running: Judging<T>) {
    let closed = shared.closed_event.listen();
    if shared.state().is_closed() {
        return; // `running` drops, and its lease destroys the resource
    }
    let limit = Some(
        shared
            .config
            .acquire_timeout
            .unwrap_or(DEFAULT_BACKGROUND_CREATE_LIMIT),
    );
    let Outcome::Done(Either::Left(((lease, failed), _))) =
        guarded(shared.armable(limit), || select(running, closed)).await
    else {
        return;
    };
    if let Some(reason) = failed {
        return lease.destroy(reason);
    }
    Counters::bump(&shared.stats.recovered_after_cancel);
    tracing::debug!(
        id = lease.tracked().id,
        "a cancelled acquire's check passed; resource kept"
    );
    let (tracked, unit) = lease.into_parts();
    let idle_since = tracked.idle_since;
    release::land(tracked, idle_since, unit);
}

/// `Manager::is_open`, the synchronous check every hand-out from the idle set makes. `None`: open,
/// the lease is untouched. Otherwise the resource was destroyed and the lease left empty.
///
/// Always inlined (a flag, and unless the manager keeps the default, a call through its vtable);
/// what follows a failed check is out of line.
#[inline(always)]
fn open_or_destroy<T: Send + 'static>(lease: &mut Lease<T>) -> Option<Prepared<T>> {
    let (shared, tracked) = lease.parts_mut();
    // A panic in `is_open` counts as "not open" (the guard is inside the call).
    if shared.is_open(&mut tracked.resource) {
        return None;
    }
    destroy_not_open(lease)
}

/// [`open_or_destroy`] after `Manager::is_open` said no (or panicked).
#[cold]
#[inline(never)]
fn destroy_not_open<T: Send + 'static>(lease: &mut Lease<T>) -> Option<Prepared<T>> {
    tracing::debug!(id = lease.tracked().id, "idle resource is not open");
    let lease = lease.take()?;
    Some(destroy_for_retry(lease, DestroyReason::CheckFailed))
}

/// Destroys a resource that failed preparation, keeping its unit when teardown is instant.
fn destroy_for_retry<T: Send + 'static>(lease: Lease<T>, reason: DestroyReason) -> Prepared<T> {
    let (tracked, unit) = lease.into_parts();
    match teardown::destroy_keeping_unit(tracked, unit, reason) {
        Some(unit) => Prepared::Replaced(unit),
        None => Prepared::Gone,
    }
}

/// Counts an acquire that parked, and warns when it waited past `acquire_slow_threshold`.
fn note_wait<T: Send + 'static>(shared: &Shared<T>, parked_at: Option<u64>) {
    let Some(parked_at) = parked_at else { return };
    // Nanoseconds, not a `Duration`, until one is needed: this runs on every parked acquire.
    let waited = Ticks::nanos_since(parked_at);
    shared.stats.waits.add_each([1, waited]);
    shared.telemetry.waited(waited);
    // The threshold in nanoseconds, converted when the pool was built (`u64::MAX`: unset, and
    // no wait exceeds it).
    let threshold = shared.config.slow_acquire_nanos;
    if waited > threshold {
        let (waited, threshold) = (
            Duration::from_nanos(waited),
            Duration::from_nanos(threshold),
        );
        tracing::warn!(
            pool = %shared.config.name,
            waited = ?waited,
            threshold = ?threshold,
            "slow acquire"
        );
    }
}

#[cfg(all(test, not(shadowcat_loom)))]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// The slow path's starting values and its result stay the sizes they were made (see `slow`
    /// and `SlowResult`): a growth could bring back a store-forwarding stall on every wait, which
    /// no functional test notices.
    #[test]
    fn the_slow_paths_start_and_result_stay_small() {
        let word = size_of::<usize>();
        // The boxed record: a pointer, with `None` in its niche.
        assert_eq!(size_of::<Option<Tracked<u64>>>(), word);
        // The guard's own `Option` takes the pointer's niche, so this one has a tag word.
        assert_eq!(size_of::<Option<Unit<u64>>>(), 2 * word);
        // Two words: returned in registers, not through memory.
        assert_eq!(size_of::<Poll<SlowResult<u64>>>(), 2 * word);
    }
}
