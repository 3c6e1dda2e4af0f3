//! Timestamps as nanoseconds since the pool's epoch.
//!
//! A [`Stamp`] is a plain `u64`, not an `Instant`: the resource records that move through the
//! queue and the acquire path on every cycle stay small and free of `Option<Instant>` niches, which
//! showed up in profiles as extra copying. Zero means "not recorded".
//!
//! [`Ticks`] reads the CPU's time-stamp counter instead of the system clock, for the two uses
//! that run on every cycle of a benchmarked path: timing parked acquires, and stamping a keyed
//! release's recency.

use std::time::Duration;

use tokio::time::Instant;

/// Nanoseconds since the pool's epoch, plus one; `Stamp::NONE` (zero) means "not recorded".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// Not recorded.
    pub(crate) const NONE: Stamp = Stamp(0);

    #[inline]
    pub(crate) fn is_set(self) -> bool {
        self.0 != 0
    }

    /// The time from `earlier` to `self` (zero if either is unset or `earlier` is later).
    #[inline]
    pub(crate) fn since(self, earlier: Stamp) -> Duration {
        if self.is_set() && earlier.is_set() {
            Duration::from_nanos(self.0.saturating_sub(earlier.0))
        } else {
            Duration::ZERO
        }
    }

    /// `self + d`, saturating.
    #[inline]
    pub(crate) fn after(self, d: Duration) -> Stamp {
        Stamp(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}

/// The pool's clock: an epoch, and the conversions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// Reads the clock.
    #[inline]
    pub(crate) fn now(&self) -> Stamp {
        self.stamp(Instant::now())
    }

    #[inline]
    pub(crate) fn stamp(&self, at: Instant) -> Stamp {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        Stamp((nanos.min(u64::MAX as u128 - 1) as u64) + 1)
    }

    #[inline]
    pub(crate) fn instant(&self, stamp: Stamp) -> Instant {
        self.epoch + Duration::from_nanos(stamp.0.saturating_sub(1))
    }
}

/// The process's one calibrated counter clock (`Ticks`).
static TICKS: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();

/// Raw reads of the CPU's time-stamp counter, scaled to nanoseconds only for a difference
/// (`quanta`, which calibrates the counter against the system's monotonic clock once per process
/// and falls back to that clock where the counter is not invariant). Two users, both on paths
/// the benchmarks run every cycle: a parked acquire reads it when it parks and when it is served
/// (`total_wait`, `acquire_slow_threshold`, the wait histogram), and a keyed release stamps its
/// key's recency with it (eviction only compares stamps).
///
/// On the 2-vCPU benchmark machine a read pair costs about half of a `std::time::Instant` pair
/// (`benches/RESULTS.md`). It counts real time, so under tokio's paused clock in tests a
/// recorded wait is the real time it took, not the virtual time. One clock serves the process,
/// so a pool (or a keyed pool's key) holds nothing for it.
pub(crate) struct Ticks;

impl Ticks {
    /// Calibrates the counter if this is the first use in the process (typically under a
    /// millisecond, at most 200 ms, plus a `cpuid` a hypervisor may trap). Building a pool calls
    /// it, so that cost never lands on a wait.
    pub(crate) fn calibrate() {
        Self::clock();
    }

    #[inline]
    fn clock() -> &'static quanta::Clock {
        TICKS.get_or_init(quanta::Clock::new)
    }

    /// Reads the counter. Only differences ([`since`](Self::since)) and order mean anything.
    #[inline]
    pub(crate) fn now() -> u64 {
        Self::clock().raw()
    }

    /// Nanoseconds since `start` (zero if the counter reads earlier, as it may across cores).
    #[inline]
    pub(crate) fn nanos_since(start: u64) -> u64 {
        let clock = Self::clock();
        clock.delta_as_nanos(start, clock.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_measure_and_convert() {
        let clock = Clock::new();
        let a = clock.now();
        assert!(a.is_set());
        let b = a.after(Duration::from_millis(5));
        assert_eq!(b.since(a), Duration::from_millis(5));
        assert_eq!(a.since(b), Duration::ZERO);
        assert_eq!(b.since(Stamp::NONE), Duration::ZERO);
        assert_eq!(
            clock.instant(b) - clock.instant(a),
            Duration::from_millis(5)
        );
        assert_eq!(clock.stamp(clock.instant(b)), b);
    }

    #[test]
    fn ticks_measure_real_time() {
        let start = Ticks::now();
        let before = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let slept = before.elapsed();
        let measured = Duration::from_nanos(Ticks::nanos_since(start));
        // The timer started before `before` and was read after `slept`: it saw at least the
        // sleep, less the error of the counter's calibrated rate (allowed: 5%, far above what a
        // converged calibration leaves, far below a timer that is broken or frozen).
        assert!(measured >= slept.mul_f64(0.95), "{measured:?} < {slept:?}");
        assert!(measured < slept + Duration::from_secs(5), "{measured:?}");
    }
}
