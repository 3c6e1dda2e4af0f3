//! [`Gate`]: the global capacity gate of a keyed pool, a second instance of the crate's engine
//! that moves units of capacity only (its idle queue never holds an item).
//!
//! A create for any key takes one unit here besides its per-key unit. The unit lives inside the
//! resource ([`Held`](super::held::Held)) and returns when the resource is destroyed, so the
//! gate's `size` is the number of resources alive (plus creates in flight) across every key,
//! never above `max_total`. Waiting for a unit is the engine's FIFO line, so capacity freed by
//! any key goes to the oldest waiter of any key.

use crate::engine::loom::{wait_until, Arc, AtomicBool, AtomicUsize, Event, Ordering};
use crate::engine::{CapacityGuard, Claim, Engine, Host, Joined, Reservation, Waiter, MAX_WAITERS};

use crate::stats::GaugeGuard;

use super::options::Saturation;

/// One unit of the global capacity; dropping it returns the unit (to the oldest waiter of any
/// key, if one waits).
pub(crate) type GlobalUnit = CapacityGuard<Gate>;

/// Why no global unit was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// `max_total` units are taken and the policy is [`Saturation::Fail`].
    #[error("max_total resources are alive across keys")]
    Saturated,
    /// The keyed pool is closed.
    #[error("the keyed pool is closed")]
    Closed,
}

/// The global gate: an engine of `max_total` units, items unused.
pub(crate) struct Gate {
    engine: Engine<()>,
    /// Resources checked out across keys, kept only when `max_idle_total` is set (to estimate
    /// the idle total without summing every key).
    pub(crate) checked_out: AtomicUsize,
    /// Creates holding a global unit (past the gate, in the manager's `create`), kept only when
    /// `max_idle_total` is set, for the same estimate. Creates still waiting for a unit are not
    /// counted: they hold none. A std atomic: a gauge that orders nothing.
    pub(crate) creating_with_unit: std::sync::atomic::AtomicUsize,
    /// `max_idle_total`.
    pub(crate) max_idle_total: Option<usize>,
    /// The saturation policy.
    pub(crate) saturation: Saturation,
    /// Creates waiting for their key's turn (the gauge behind `waiting_for_capacity`, with the
    /// line's own waiters). A std atomic: a gauge that orders nothing.
    pub(crate) waiting_for_turn: std::sync::atomic::AtomicUsize,
    /// `waiting_at[n]`: keys waiting in the line that held `n` units when they joined (the last
    /// slot counts every larger `n`). Read by a release to decide whether to give its unit up
    /// (`needier_waiter`). Std atomics: hints that order nothing.
    waiting_at: Box<[std::sync::atomic::AtomicUsize]>,
}

impl Gate {
    pub(crate) fn new(
        max_total: usize,
        max_idle_total: Option<usize>,
        saturation: Saturation,
    ) -> Self {
        // Keyed releases stamp recency with it: calibrated when the keyed pool is built.
        crate::clock::Ticks::calibrate();
        Gate {
            engine: Engine::new(max_total, max_total),
            checked_out: AtomicUsize::new(0),
            creating_with_unit: std::sync::atomic::AtomicUsize::new(0),
            max_idle_total,
            saturation,
            waiting_for_turn: std::sync::atomic::AtomicUsize::new(0),
            waiting_at: (0..WAITING_LEVELS)
                .map(|_| std::sync::atomic::AtomicUsize::new(0))
                .collect(),
        }
    }

    /// Whether a key now holding `units` global units should give one up for a key waiting in
    /// the line: one that held at most `units - 2` when it joined, so that the unit moving makes
    /// the two keys' holdings more even (max-min fairness: capacity flows from the keys that
    /// hold the most to those that hold the least, one unit at a time). Scans at most
    /// `units - 1` counters, and only while someone waits.
    ///
    /// `share` is the releasing key's: its own create waiting in the line (counted at the level
    /// it joined with, perhaps 0 while its first creates were still running) is not a needier
    /// key. The last level means "that many or more", so it is never known to be needier.
    pub(crate) fn needier_waiter<K>(&self, units: usize, share: &KeyShare<K>) -> bool {
        let own = share.waiting_level();
        // Relaxed: hints; a stale answer moves one unit too many or too few, never breaks a cap.
        (0..units.saturating_sub(1).min(WAITING_LEVELS - 1)).any(|n| {
            let waiting = self.waiting_at[n].load(std::sync::atomic::Ordering::Relaxed);
            waiting > usize::from(own == Some(n))
        })
    }

    /// Whether anything evicts: the policy, or an idle cap.
    pub(crate) fn evicts(&self) -> bool {
        self.saturation == Saturation::Evict || self.max_idle_total.is_some()
    }

    /// Takes a unit: at once if one is free and nobody waits, else (per `saturation`) fails, or
    /// waits in the FIFO line, after calling `evict` once to free a unit held by an idle
    /// resource of another key (the freed unit goes to the oldest waiter, which may be us).
    /// At most one create per key waits in the line: the others wait for the key's `turn` first,
    /// so the line holds keys, not creates, and a key with many acquirers cannot queue
    /// `max_per_key` creates ahead of a key with one (the keys are served round-robin).
    /// Cancel-safe: a dropped wait leaves the line (or the turn's list) and passes on what it
    /// was handed.
    pub(crate) async fn take<K>(
        gate: &Arc<Gate>,
        saturation: Saturation,
        share: &KeyShare<K>,
        evict: impl FnOnce(),
    ) -> Result<GlobalUnit, Refused> {
        match Engine::claim(gate, true) {
            // The queue never holds an item; a unit is a unit either way.
            Claim::Create(unit) | Claim::Idle((), unit) | Claim::Tallied((), unit) => {
                return Ok(unit)
            }
            Claim::Closed => return Err(Refused::Closed),
            Claim::Wait => {}
        }
        if saturation == Saturation::Fail {
            return Err(Refused::Saturated);
        }
        let _turn = {
            let _waiting = GaugeGuard::enter(&gate.waiting_for_turn);
            share.turn.take().await
        };
        // Counted in the line at the level the key holds now, until we leave it.
        let _level = Level::enter(gate, share);
        let mut evict = Some(evict);
        loop {
            let mut in_line = None;
            match Waiter::join(gate, false, MAX_WAITERS, &mut in_line).await {
                Joined::Unit(unit) | Joined::Item((), unit) => return Ok(unit),
                Joined::Closed => return Err(Refused::Closed),
                Joined::Saturated | Joined::Full => tokio::task::yield_now().await,
                Joined::Waiting => {
                    let waiter = in_line.take().expect("a waiting join fills its slot");
                    // Registered first, then evict: the unit the eviction frees is handed to the
                    // oldest registered waiter instead of being published for a fresh arrival.
                    if saturation == Saturation::Evict {
                        if let Some(evict) = evict.take() {
                            // SeqCst fence: our registration (an RMW on the gate's word) and a
                            // releaser's publish (an RMW on its key's word) are on different
                            // atomics; with this fence and the releaser's, either the eviction
                            // scan below sees the published idle resource, or the releaser sees
                            // us counted and evicts for us (store buffering ruled out).
                            super::fence(std::sync::atomic::Ordering::SeqCst);
                            evict();
                        }
                    }
                    return match waiter.wait().await {
                        Reservation::Slot(unit) | Reservation::Item((), unit) => Ok(unit),
                        Reservation::Closed => Err(Refused::Closed),
                    };
                }
            }
        }
    }

    /// A snapshot of the gate's state word (`size`: global units taken; `waiters`: acquirers
    /// of any key waiting for one).
    pub(crate) fn state(&self) -> crate::engine::State {
        self.engine.state()
    }

    /// Closes the gate: its waiters get `Refused::Closed`, and units returned later are freed.
    pub(crate) fn close(gate: &Arc<Gate>) {
        Engine::close(gate);
    }

    /// Resolves once the gate is closed and every unit has come back.
    pub(crate) async fn drained(&self) {
        self.engine.drained().await;
    }
}

/// Distinct holdings `Gate::waiting_at` tells apart.
const WAITING_LEVELS: usize = 64;

/// A key waiting in the line, counted at the holding it joined with (and the key remembers the
/// level, so that its own releases can leave it out: `Gate::needier_waiter`). One per key at a
/// time: only the holder of the key's turn joins the line.
struct Level<'a> {
    slot: &'a std::sync::atomic::AtomicUsize,
    key_level: &'a std::sync::atomic::AtomicUsize,
}

impl<'a> Level<'a> {
    fn enter<K>(gate: &'a Gate, share: &'a KeyShare<K>) -> Self {
        let level = share.units().min(WAITING_LEVELS - 1);
        let slot = &gate.waiting_at[level];
        // Relaxed: hints (see `Gate::waiting_at`), both.
        slot.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        share
            .waiting_level
            .store(level, std::sync::atomic::Ordering::Relaxed);
        Level {
            slot,
            key_level: &share.waiting_level,
        }
    }
}

impl Drop for Level<'_> {
    fn drop(&mut self) {
        // Relaxed: hints.
        self.key_level
            .store(NOT_WAITING, std::sync::atomic::Ordering::Relaxed);
        self.slot.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `KeyShare::waiting_level` while none of the key's creates is in the line.
const NOT_WAITING: usize = usize::MAX;

/// What one key's manager, its map entry and its resources share: the key itself (the hooks get
/// it through the resource, see `Held::key_and_resource`), the key's turn in the
/// gate's line and how many global units its resources hold.
pub(crate) struct KeyShare<K> {
    pub(crate) key: K,
    pub(crate) turn: Turn,
    /// Global units held by the key's resources (not counting creates still waiting). A std
    /// atomic: a hint for `Gate::needier_waiter`, ordering nothing.
    units: std::sync::atomic::AtomicUsize,
    /// The `Gate::waiting_at` level the key's create in the line is counted at, or
    /// [`NOT_WAITING`]. A hint as `units` is.
    waiting_level: std::sync::atomic::AtomicUsize,
}

impl<K> KeyShare<K> {
    pub(crate) fn new(key: K) -> Self {
        KeyShare {
            key,
            turn: Turn::new(),
            units: std::sync::atomic::AtomicUsize::new(0),
            waiting_level: std::sync::atomic::AtomicUsize::new(NOT_WAITING),
        }
    }

    /// The level the key's create waiting in the gate's line is counted at, if one waits.
    pub(crate) fn waiting_level(&self) -> Option<usize> {
        // Relaxed: a hint.
        let level = self
            .waiting_level
            .load(std::sync::atomic::Ordering::Relaxed);
        (level != NOT_WAITING).then_some(level)
    }

    /// Global units held by the key's resources now.
    pub(crate) fn units(&self) -> usize {
        // Relaxed: a hint.
        self.units.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_unit(&self, delta: isize) {
        // Relaxed: a hint; the unit itself is accounted by the gate's engine.
        if delta > 0 {
            self.units
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            self.units
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A key's turn to wait in the gate's line: one create of the key at a time.
pub(crate) struct Turn {
    taken: AtomicBool,
    /// Creates of the key waiting for the turn.
    event: Event,
}

impl Turn {
    pub(crate) fn new() -> Self {
        Turn {
            taken: AtomicBool::new(false),
            event: Event::new(),
        }
    }

    /// Waits until the turn is free and takes it; the guard gives it back. Cancel-safe: a
    /// dropped listener that was notified passes the notification on.
    async fn take(&self) -> TurnGuard<'_> {
        // check → listen → re-check (`wait_until`): a give-back between our failed check and
        // our listen is seen by the re-check, one after the listen notifies us.
        // Acquire (on success): pairs with the Release in `TurnGuard::drop`; the turn guards no
        // data, but the wait protocol relies on the give-back being visible once we listened
        // (event-listener's lock orders the give-back's notify and our listen).
        wait_until(&self.event, || {
            self.taken
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
        .await;
        TurnGuard(self)
    }
}

/// The key's turn, given back (and the next create of the key woken) on drop.
struct TurnGuard<'a>(&'a Turn);

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        // Release: the store precedes the notify (which takes event-listener's lock), so a
        // waiter that listened before the notify is woken, and one that listens after it sees
        // the store in its re-check.
        self.0.taken.store(false, Ordering::Release);
        self.0.event.notify_additional(1);
    }
}

impl Host for Gate {
    type Item = ();

    fn engine(&self) -> &Engine<()> {
        &self.engine
    }

    fn destroy_drained(self: &Arc<Self>, _item: (), unit: CapacityGuard<Self>) {
        drop(unit);
    }

    /// The gate is never resized, so nothing is ever retired.
    fn retire(self: &Arc<Self>, _item: ()) {}
}
