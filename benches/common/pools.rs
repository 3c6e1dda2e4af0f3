//! The pools under comparison, behind one small trait, and the two baselines.
//!
//! Every pool cycles the same trivial resource ([`Res`]). Creation is instant, or takes about
//! 50 µs in `S6-cold` (see [`make`]). Recycling is a no-op everywhere. Every pool gets the same
//! `max`, and no pool does anything on checkout or return that the others skip, as far as the
//! pool lets us configure it:
//!
//! * `shadowcat-pool`: `idle_timeout(None)`, `max_lifetime(None)` (deadpool's defaults: no clock
//!   read on release), `acquire_timeout(None)` (deadpool's default `wait: None`).
//! * `shadowcat-defaults` (opt-in): the crate's defaults (2 s acquire timeout, 10 min idle
//!   timeout, 30 min lifetime), to show what the clock reads cost.
//! * `shadowcat-no-slots` (opt-in): `shadowcat-pool` with `worker_slots(0)`, to show what the
//!   per-worker hot slots change.
//! * `deadpool`: defaults (FIFO, no timeouts); `recycle` is an instant `Ok(())`.
//! * `bb8`: `test_on_check_out(false)`, `idle_timeout(None)`, `max_lifetime(None)`; its
//!   `connection_timeout` (30 s) cannot be switched off.
//! * `mutex-baseline`, `spawn-drop-baseline`: below.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use shadowcat_pool::{Manager, Pool, PoolConnection, PoolOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// The pooled resource: a counter that every cycle bumps.
#[derive(Debug, Default)]
pub struct Res {
    /// Bumped once per checkout.
    pub n: u64,
}

/// How long a slow create takes (`S6-cold`).
pub const SLOW_CREATE: Duration = Duration::from_micros(50);

/// Creates a resource and counts it. A slow create waits about 50 µs by yielding until a deadline:
/// tokio's timer rounds every sleep up to its 1 ms tick, which would turn "50 µs" into 1 ms.
pub async fn make(slow: bool, created: &AtomicU64) -> Res {
    if slow {
        let until = Instant::now() + SLOW_CREATE;
        while Instant::now() < until {
            tokio::task::yield_now().await;
        }
    }
    created.fetch_add(1, Ordering::Relaxed);
    Res::default()
}

/// A pool as the benchmark drivers see it.
pub trait BenchPool: Send + Sync + Sized + 'static {
    /// A checked-out resource; dropping it gives the resource back.
    type Conn<'a>: DerefMut<Target = Res> + Send
    where
        Self: 'a;

    /// Builds an empty pool of `max`. Called inside a tokio runtime.
    fn build(max: usize, slow_create: bool) -> Self;

    /// Checks a resource out, waiting if needed. Panics on error (none is expected).
    fn acquire(&self) -> impl Future<Output = Self::Conn<'_>> + Send;

    /// Resources created so far.
    fn created(&self) -> u64;
}

// ===== shadowcat-pool =====

/// The manager used for `shadowcat-pool`.
pub struct ScManager {
    slow: bool,
    created: Arc<AtomicU64>,
}

impl Manager for ScManager {
    type Resource = Res;
    type Error = std::io::Error;

    async fn create(&self) -> Result<Res, std::io::Error> {
        Ok(make(self.slow, &self.created).await)
    }
}

/// `shadowcat-pool`, configured like deadpool's defaults (no timeouts, no ages).
pub struct Shadowcat {
    /// The pool.
    pub pool: Pool<Res>,
    created: Arc<AtomicU64>,
}

impl Shadowcat {
    /// Builds with the comparison's options, or with the crate's defaults.
    pub fn with_options(max: usize, slow: bool, defaults: bool) -> Self {
        Self::with(max, slow, defaults, None)
    }

    /// Like [`with_options`](Self::with_options), with `worker_slots` set if `Some`.
    pub fn with(max: usize, slow: bool, defaults: bool, slots: Option<usize>) -> Self {
        let created = Arc::new(AtomicU64::new(0));
        let mut options = PoolOptions::new().max_connections(max);
        if let Some(slots) = slots {
            options = options.worker_slots(slots);
        }
        if !defaults {
            options = options
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(None);
        }
        let pool = options
            .build(ScManager {
                slow,
                created: created.clone(),
            })
            .expect("valid options");
        Shadowcat { pool, created }
    }
}

impl BenchPool for Shadowcat {
    type Conn<'a> = PoolConnection<Res>;

    fn build(max: usize, slow: bool) -> Self {
        Shadowcat::with_options(max, slow, false)
    }

    #[inline]
    async fn acquire(&self) -> Self::Conn<'_> {
        self.pool.acquire().await.expect("shadowcat-pool acquire")
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

/// `shadowcat-pool` with the crate's default options (acquire timeout 2 s, idle timeout,
/// max lifetime): opt-in, to show what the timeout and the clock read on release cost.
pub struct ShadowcatDefaults(pub Shadowcat);

impl BenchPool for ShadowcatDefaults {
    type Conn<'a> = PoolConnection<Res>;

    fn build(max: usize, slow: bool) -> Self {
        ShadowcatDefaults(Shadowcat::with_options(max, slow, true))
    }

    #[inline]
    fn acquire(&self) -> impl Future<Output = Self::Conn<'_>> + Send {
        self.0.acquire()
    }

    fn created(&self) -> u64 {
        self.0.created()
    }
}

/// `shadowcat-pool` without hot slots (`worker_slots(0)`): opt-in, to show what they change.
pub struct ShadowcatNoSlots(pub Shadowcat);

impl BenchPool for ShadowcatNoSlots {
    type Conn<'a> = PoolConnection<Res>;

    fn build(max: usize, slow: bool) -> Self {
        ShadowcatNoSlots(Shadowcat::with(max, slow, false, Some(0)))
    }

    #[inline]
    fn acquire(&self) -> impl Future<Output = Self::Conn<'_>> + Send {
        self.0.acquire()
    }

    fn created(&self) -> u64 {
        self.0.created()
    }
}

// ===== mutex-baseline =====

/// The classic fair pool: a tokio `Semaphore` (FIFO) for capacity, a
/// `parking_lot::Mutex<VecDeque>` for the idle set, and a guard whose `Drop` pushes the resource
/// back synchronously and only then releases its permit.
pub struct MutexBaseline {
    sem: Semaphore,
    idle: parking_lot::Mutex<VecDeque<Res>>,
    slow: bool,
    created: AtomicU64,
}

/// A resource checked out of [`MutexBaseline`].
pub struct MutexConn<'a> {
    res: Option<Res>,
    idle: &'a parking_lot::Mutex<VecDeque<Res>>,
    // Dropped after `Drop::drop` ran, i.e. after the push: the permit goes last.
    _permit: SemaphorePermit<'a>,
}

impl BenchPool for MutexBaseline {
    type Conn<'a> = MutexConn<'a>;

    fn build(max: usize, slow: bool) -> Self {
        MutexBaseline {
            sem: Semaphore::new(max),
            idle: parking_lot::Mutex::new(VecDeque::with_capacity(max)),
            slow,
            created: AtomicU64::new(0),
        }
    }

    #[inline]
    async fn acquire(&self) -> MutexConn<'_> {
        let permit = self.sem.acquire().await.expect("semaphore closed");
        let idle = self.idle.lock().pop_front();
        let res = match idle {
            Some(res) => res,
            // The permit is held while creating, so a cancelled create returns it.
            None => make(self.slow, &self.created).await,
        };
        MutexConn {
            res: Some(res),
            idle: &self.idle,
            _permit: permit,
        }
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

impl Deref for MutexConn<'_> {
    type Target = Res;
    fn deref(&self) -> &Res {
        self.res.as_ref().expect("present until drop")
    }
}

impl DerefMut for MutexConn<'_> {
    fn deref_mut(&mut self) -> &mut Res {
        self.res.as_mut().expect("present until drop")
    }
}

impl Drop for MutexConn<'_> {
    fn drop(&mut self) {
        if let Some(res) = self.res.take() {
            self.idle.lock().push_back(res);
        }
    }
}

// ===== spawn-drop-baseline =====

/// The design Shadowcat's pool shipped: a `Semaphore`, a `tokio::sync::Mutex<VecDeque>`, and a
/// `Drop` that spawns a task which locks, pushes the resource back and only then releases the
/// permit.
pub struct SpawnDropBaseline {
    inner: Arc<SpawnDropInner>,
}

struct SpawnDropInner {
    sem: Arc<Semaphore>,
    idle: tokio::sync::Mutex<VecDeque<Res>>,
    slow: bool,
    created: AtomicU64,
}

/// A resource checked out of [`SpawnDropBaseline`].
pub struct SpawnDropConn {
    res: Option<Res>,
    permit: Option<OwnedSemaphorePermit>,
    inner: Arc<SpawnDropInner>,
}

impl BenchPool for SpawnDropBaseline {
    type Conn<'a> = SpawnDropConn;

    fn build(max: usize, slow: bool) -> Self {
        SpawnDropBaseline {
            inner: Arc::new(SpawnDropInner {
                sem: Arc::new(Semaphore::new(max)),
                idle: tokio::sync::Mutex::new(VecDeque::with_capacity(max)),
                slow,
                created: AtomicU64::new(0),
            }),
        }
    }

    #[inline]
    async fn acquire(&self) -> SpawnDropConn {
        let inner = &self.inner;
        let permit = inner
            .sem
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore closed");
        let idle = inner.idle.lock().await.pop_front();
        let res = match idle {
            Some(res) => res,
            None => make(inner.slow, &inner.created).await,
        };
        SpawnDropConn {
            res: Some(res),
            permit: Some(permit),
            inner: inner.clone(),
        }
    }

    fn created(&self) -> u64 {
        self.inner.created.load(Ordering::Relaxed)
    }
}

impl Deref for SpawnDropConn {
    type Target = Res;
    fn deref(&self) -> &Res {
        self.res.as_ref().expect("present until drop")
    }
}

impl DerefMut for SpawnDropConn {
    fn deref_mut(&mut self) -> &mut Res {
        self.res.as_mut().expect("present until drop")
    }
}

impl Drop for SpawnDropConn {
    fn drop(&mut self) {
        if let (Some(res), Some(permit)) = (self.res.take(), self.permit.take()) {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                inner.idle.lock().await.push_back(res);
                drop(permit);
            });
        }
    }
}

// ===== deadpool =====

/// deadpool's manager: instant (or 50 µs) create, no-op recycle.
pub struct DpManager {
    slow: bool,
    created: Arc<AtomicU64>,
}

impl DpManager {
    /// A manager whose creates are slow (about 50 µs) or instant, counted in `created`.
    pub fn new(slow: bool, created: Arc<AtomicU64>) -> Self {
        DpManager { slow, created }
    }
}

impl deadpool::managed::Manager for DpManager {
    type Type = Res;
    type Error = std::io::Error;

    async fn create(&self) -> Result<Res, std::io::Error> {
        Ok(make(self.slow, &self.created).await)
    }

    async fn recycle(
        &self,
        _: &mut Res,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<std::io::Error> {
        Ok(())
    }
}

/// `deadpool` (managed) with its defaults.
pub struct Deadpool {
    pool: deadpool::managed::Pool<DpManager>,
    created: Arc<AtomicU64>,
}

impl BenchPool for Deadpool {
    type Conn<'a> = deadpool::managed::Object<DpManager>;

    fn build(max: usize, slow: bool) -> Self {
        let created = Arc::new(AtomicU64::new(0));
        let pool = deadpool::managed::Pool::builder(DpManager {
            slow,
            created: created.clone(),
        })
        .max_size(max)
        .build()
        .expect("deadpool build");
        Deadpool { pool, created }
    }

    #[inline]
    async fn acquire(&self) -> Self::Conn<'_> {
        self.pool.get().await.expect("deadpool get")
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

// ===== bb8 =====

/// bb8's manager: instant (or 50 µs) connect, always valid, never broken.
pub struct Bb8Manager {
    slow: bool,
    created: Arc<AtomicU64>,
}

impl bb8::ManageConnection for Bb8Manager {
    type Connection = Res;
    type Error = std::io::Error;

    async fn connect(&self) -> Result<Res, std::io::Error> {
        Ok(make(self.slow, &self.created).await)
    }

    async fn is_valid(&self, _: &mut Res) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn has_broken(&self, _: &mut Res) -> bool {
        false
    }
}

/// `bb8` without checkout tests, idle timeout or lifetime.
pub struct Bb8 {
    pool: bb8::Pool<Bb8Manager>,
    created: Arc<AtomicU64>,
}

impl BenchPool for Bb8 {
    type Conn<'a> = bb8::PooledConnection<'a, Bb8Manager>;

    fn build(max: usize, slow: bool) -> Self {
        let created = Arc::new(AtomicU64::new(0));
        let pool = bb8::Pool::builder()
            .max_size(max as u32)
            .test_on_check_out(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .build_unchecked(Bb8Manager {
                slow,
                created: created.clone(),
            });
        Bb8 { pool, created }
    }

    #[inline]
    async fn acquire(&self) -> Self::Conn<'_> {
        self.pool.get().await.expect("bb8 get")
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

// ===== bare-arrayqueue (multi-task) =====

/// The bare `ArrayQueue` lower bound as a [`BenchPool`], for the multi-task scenarios (S2): a
/// checkout pops, the drop pushes back. No waiting, no accounting: with `max` items and fewer
/// tasks than items the queue is never empty. (S1's bare row is an inline pop + push, see
/// `run_bare_queue`.)
pub struct BareQueue {
    queue: ArrayQueue<Res>,
    max: u64,
}

/// A resource popped from a [`BareQueue`]; pushed back on drop.
pub struct BareConn<'a> {
    res: Option<Res>,
    queue: &'a ArrayQueue<Res>,
}

impl BenchPool for BareQueue {
    type Conn<'a> = BareConn<'a>;

    fn build(max: usize, _slow: bool) -> Self {
        let queue = ArrayQueue::new(max);
        for _ in 0..max {
            let _ = queue.push(Res::default());
        }
        BareQueue {
            queue,
            max: max as u64,
        }
    }

    #[inline]
    async fn acquire(&self) -> Self::Conn<'_> {
        loop {
            if let Some(res) = self.queue.pop() {
                return BareConn {
                    res: Some(res),
                    queue: &self.queue,
                };
            }
            // Only reachable with more tasks than items; S2 has 2 tasks and 16 items.
            tokio::task::yield_now().await;
        }
    }

    fn created(&self) -> u64 {
        self.max
    }
}

impl Deref for BareConn<'_> {
    type Target = Res;
    fn deref(&self) -> &Res {
        self.res.as_ref().expect("held until drop")
    }
}

impl DerefMut for BareConn<'_> {
    fn deref_mut(&mut self) -> &mut Res {
        self.res.as_mut().expect("held until drop")
    }
}

impl Drop for BareConn<'_> {
    fn drop(&mut self) {
        if let Some(res) = self.res.take() {
            let _ = self.queue.push(res);
        }
    }
}
