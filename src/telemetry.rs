//! [`Telemetry`]: the pool's events reported through the `metrics` crate facade, with the
//! `metrics` cargo feature (without it every method is an empty inline function).
//!
//! Handles are registered once, when the pool is built, with the label `pool` set to
//! [`PoolOptions::name`](crate::PoolOptions::name): install the recorder (a Prometheus exporter,
//! for example) before building the pool. A keyed pool registers one set when it is built and
//! its keys' pools share it (a [`Telemetry`] is a reference to its handles), so a new key
//! registers nothing.
//!
//! The names, kinds and labels are listed in [`Pool::record_metrics`](crate::Pool::record_metrics)'
//! docs.
//!
//! Counters and histograms are updated as events happen, off the acquire/release hot path (an
//! acquire served at once records nothing). Gauges are set from a stats snapshot by every
//! maintenance pass and by [`Pool::record_metrics`](crate::Pool::record_metrics), which a scrape
//! handler can call. A keyed pool's gauges ([`KeyedGauges`]) are the whole pool's, set the same
//! way by its maintenance task and by
//! [`KeyedPool::record_metrics`](crate::KeyedPool::record_metrics); its keys' pools report their
//! events under the keyed pool's name, so the counters and histograms add up across keys.

use std::time::Duration;

use crate::keyed::KeyedPoolStats;
use crate::stats::{DestroyReason, PoolStats};

#[cfg(feature = "metrics")]
mod imp {
    use super::*;
    use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

    /// A pool's registered handles: a reference, so that a keyed pool's keys share one set.
    #[derive(Clone)]
    pub(crate) struct Telemetry(std::sync::Arc<Handles>);

    impl std::ops::Deref for Telemetry {
        type Target = Handles;
        fn deref(&self) -> &Handles {
            &self.0
        }
    }

    /// Registered handles, labelled with the pool's name.
    pub(crate) struct Handles {
        creates: Counter,
        create_failures: Counter,
        destroys: [Counter; DestroyReason::ALL.len()],
        timeouts: Counter,
        rejected: Counter,
        wait: Histogram,
        create_time: Histogram,
        gauges: Gauges,
    }

    /// The gauges both kinds of pool set from a snapshot.
    struct Gauges {
        size: Gauge,
        idle: Gauge,
        in_use: Gauge,
        waiting: Gauge,
        creating: Gauge,
    }

    impl Gauges {
        fn new(label: &[(&'static str, String); 1]) -> Self {
            Gauges {
                size: gauge!("shadowcat_pool_size", label),
                idle: gauge!("shadowcat_pool_idle", label),
                in_use: gauge!("shadowcat_pool_in_use", label),
                waiting: gauge!("shadowcat_pool_waiting", label),
                creating: gauge!("shadowcat_pool_creating", label),
            }
        }

        fn set(&self, size: usize, idle: usize, in_use: usize, waiting: usize, creating: usize) {
            self.size.set(size as f64);
            self.idle.set(idle as f64);
            self.in_use.set(in_use as f64);
            self.waiting.set(waiting as f64);
            self.creating.set(creating as f64);
        }
    }

    /// A keyed pool's gauges: the [`Telemetry`] gauges summed over its keys, and the number of
    /// keys.
    pub(crate) struct KeyedGauges {
        gauges: Gauges,
        keys: Gauge,
    }

    impl KeyedGauges {
        pub(crate) fn new(pool: &str) -> Self {
            let label = [("pool", pool.to_string())];
            KeyedGauges {
                gauges: Gauges::new(&label),
                keys: gauge!("shadowcat_pool_keys", &label),
            }
        }

        pub(crate) fn set(&self, stats: &KeyedPoolStats) {
            self.gauges.set(
                stats.size,
                stats.idle,
                stats.in_use,
                stats.waiting,
                stats.creating,
            );
            self.keys.set(stats.keys as f64);
        }
    }

    impl Telemetry {
        pub(crate) fn new(pool: &str) -> Self {
            Telemetry(std::sync::Arc::new(Handles::new(pool)))
        }

        /// Whether anything is recorded (create durations cost a clock read per create, gauges a
        /// stats snapshot per maintenance pass).
        pub(crate) const ENABLED: bool = true;
    }

    impl Handles {
        fn new(pool: &str) -> Self {
            let name = pool.to_string();
            let label = move || [("pool", name.clone())];
            Handles {
                creates: counter!("shadowcat_pool_creates_total", &label()),
                create_failures: counter!("shadowcat_pool_create_failures_total", &label()),
                destroys: DestroyReason::ALL.map(|reason| {
                    let labels = [
                        ("pool", pool.to_string()),
                        ("reason", reason.as_str().to_string()),
                    ];
                    counter!("shadowcat_pool_destroys_total", &labels)
                }),
                timeouts: counter!("shadowcat_pool_acquire_timeouts_total", &label()),
                rejected: counter!("shadowcat_pool_rejected_waiters_total", &label()),
                wait: histogram!("shadowcat_pool_wait_seconds", &label()),
                create_time: histogram!("shadowcat_pool_create_seconds", &label()),
                gauges: Gauges::new(&label()),
            }
        }

        pub(crate) fn created(&self, took: Duration) {
            self.creates.increment(1);
            self.create_time.record(took.as_secs_f64());
        }

        pub(crate) fn create_failed(&self, took: Duration) {
            self.create_failures.increment(1);
            self.create_time.record(took.as_secs_f64());
        }

        pub(crate) fn destroyed(&self, reason: DestroyReason) {
            self.destroys[reason as usize].increment(1);
        }

        pub(crate) fn timed_out(&self) {
            self.timeouts.increment(1);
        }

        pub(crate) fn rejected(&self) {
            self.rejected.increment(1);
        }

        /// A parked acquire waited `nanos`.
        pub(crate) fn waited(&self, nanos: u64) {
            self.wait.record(Duration::from_nanos(nanos).as_secs_f64());
        }

        pub(crate) fn gauges(&self, stats: &PoolStats) {
            self.gauges.set(
                stats.size,
                stats.idle,
                stats.in_use,
                stats.waiting,
                stats.creating,
            );
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    use super::*;

    /// Without the `metrics` feature: nothing is recorded.
    #[derive(Clone)]
    pub(crate) struct Telemetry;

    impl Telemetry {
        pub(crate) fn new(_pool: &str) -> Self {
            Telemetry
        }
        #[inline]
        pub(crate) fn created(&self, _took: Duration) {}
        #[inline]
        pub(crate) fn create_failed(&self, _took: Duration) {}
        #[inline]
        pub(crate) fn destroyed(&self, _reason: DestroyReason) {}
        #[inline]
        pub(crate) fn timed_out(&self) {}
        #[inline]
        pub(crate) fn rejected(&self) {}
        #[inline]
        pub(crate) fn waited(&self, _nanos: u64) {}
        #[inline]
        pub(crate) fn gauges(&self, _stats: &PoolStats) {}
        pub(crate) const ENABLED: bool = false;
    }

    /// Without the `metrics` feature: nothing is recorded.
    pub(crate) struct KeyedGauges;

    impl KeyedGauges {
        pub(crate) fn new(_pool: &str) -> Self {
            KeyedGauges
        }
        #[inline]
        pub(crate) fn set(&self, _stats: &KeyedPoolStats) {}
    }
}

pub(crate) use imp::{KeyedGauges, Telemetry};
