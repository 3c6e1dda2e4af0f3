//! Timestamps as nanoseconds since the pool's epoch.
//!
//! A [`Stamp`] is a plain `u64`, not an `Instant`: the resource records that move through the
//! queue and the acquire path on every cycle stay small and free of `Option<Instant>` niches, which
//! showed up in profiles as extra copying. Zero means "not recorded".

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
}
