//! Shared test support: a controllable manager whose resources count themselves.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use shadowcat_pool::Manager;
use tokio::sync::{Notify, Semaphore};

/// Counts shared by a manager and every resource it made.
#[derive(Default, Debug)]
pub struct Counts {
    pub created: AtomicUsize,
    pub dropped: AtomicUsize,
    pub destroy_calls: AtomicUsize,
    pub create_calls: AtomicUsize,
    pub check_calls: AtomicUsize,
}

impl Counts {
    /// Resources created and not yet dropped.
    pub fn live(&self) -> usize {
        self.created.load(Ordering::SeqCst) - self.dropped.load(Ordering::SeqCst)
    }
}

/// A pooled test resource.
#[derive(Debug)]
pub struct Conn {
    pub id: usize,
    /// Set by a test to make `is_reusable` reject it.
    pub broken: bool,
    counts: Arc<Counts>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the next `create` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateMode {
    Ok,
    Fail,
    Panic,
    /// Never finishes (after counting the call and signalling `create_started`).
    Hang,
}

/// Which manager call a gate holds up.
#[derive(Clone, Copy, Debug)]
pub enum Gated {
    Create,
    Check,
    Destroy,
}

/// A manager whose create and check can be gated, failed or made to panic.
#[derive(Default)]
pub struct TestManager {
    pub counts: Arc<Counts>,
    /// When set, each create waits for a permit.
    pub create_gate: Option<Arc<Semaphore>>,
    /// When set, each check waits for a permit.
    pub check_gate: Option<Arc<Semaphore>>,
    /// Notified each time a create starts (after counting it).
    pub create_started: Arc<Notify>,
    /// Notified each time a check starts.
    pub check_started: Arc<Notify>,
    /// Failure plan for creates: consumed front to back; empty = Ok.
    pub create_plan: std::sync::Mutex<std::collections::VecDeque<CreateMode>>,
    /// Make checks fail.
    pub check_fails: AtomicBool,
    /// Make the next this-many checks fail.
    pub fail_next_checks: AtomicUsize,
    /// Make `is_open` say no for the next this-many calls.
    pub close_next_opens: AtomicUsize,
    /// Make destroy wait for a permit (async teardown).
    pub destroy_gate: Option<Arc<Semaphore>>,
}

impl TestManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// A manager whose `create`, `check` or `destroy` (`which`) waits for permits of the
    /// returned gate; it starts with `permits`.
    pub fn gated(which: Gated, permits: usize) -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(permits));
        let mut m = Self::new();
        match which {
            Gated::Create => m.create_gate = Some(gate.clone()),
            Gated::Check => m.check_gate = Some(gate.clone()),
            Gated::Destroy => m.destroy_gate = Some(gate.clone()),
        }
        (m, gate)
    }

    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }

    pub fn plan(self, modes: &[CreateMode]) -> Self {
        self.create_plan
            .lock()
            .unwrap()
            .extend(modes.iter().copied());
        self
    }
}

#[derive(Debug, thiserror::Error)]
#[error("test failure: {0}")]
pub struct TestError(pub &'static str);

impl Manager for TestManager {
    type Resource = Conn;
    type Error = TestError;

    async fn create(&self) -> Result<Conn, TestError> {
        let id = self.counts.create_calls.fetch_add(1, Ordering::SeqCst);
        let mode = self
            .create_plan
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(CreateMode::Ok);
        self.create_started.notify_one();
        if mode == CreateMode::Hang {
            std::future::pending::<()>().await;
        }
        if let Some(gate) = &self.create_gate {
            gate.acquire().await.unwrap().forget();
        }
        match mode {
            CreateMode::Ok => {
                self.counts.created.fetch_add(1, Ordering::SeqCst);
                Ok(Conn {
                    id,
                    broken: false,
                    counts: self.counts.clone(),
                })
            }
            CreateMode::Fail => Err(TestError("create failed")),
            CreateMode::Panic => panic!("create panicked on purpose"),
            CreateMode::Hang => unreachable!("a hanging create never gets here"),
        }
    }

    async fn check(&self, _conn: &mut Conn) -> Result<(), TestError> {
        self.counts.check_calls.fetch_add(1, Ordering::SeqCst);
        self.check_started.notify_one();
        if let Some(gate) = &self.check_gate {
            gate.acquire().await.unwrap().forget();
        }
        let fail_next = self
            .fail_next_checks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail_next || self.check_fails.load(Ordering::SeqCst) {
            Err(TestError("check failed"))
        } else {
            Ok(())
        }
    }

    fn is_open(&self, _conn: &mut Conn) -> bool {
        self.close_next_opens
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
    }

    fn is_reusable(&self, conn: &mut Conn) -> bool {
        !conn.broken
    }

    async fn destroy(&self, conn: Conn) {
        self.counts.destroy_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.destroy_gate {
            gate.acquire().await.unwrap().forget();
        }
        drop(conn);
    }
}

/// Asserts the pool's books balance when nothing is in flight:
/// `0 <= idle <= size <= max`, `size == live resources`, and the stats agree with the manager.
pub fn assert_quiescent<T: Send + 'static>(pool: &shadowcat_pool::Pool<T>, counts: &Counts) {
    let s = pool.stats();
    assert!(s.idle <= s.size, "idle {} > size {}: {s:?}", s.idle, s.size);
    assert!(s.size <= s.max, "size {} > max {}: {s:?}", s.size, s.max);
    assert_eq!(
        s.size,
        counts.live(),
        "size != live resources: {s:?} {counts:?}"
    );
    assert_eq!(s.waiting, 0, "{s:?}");
    assert_eq!(
        s.created as usize,
        counts.created.load(Ordering::SeqCst),
        "created counter mismatch: {s:?}"
    );
}

/// Checks out `n` resources one after another without waiting for anyone else (proves `n`
/// units are free): each acquire may take a few polls (a hand-off from another worker's hot
/// slot), but one still pending after a thousand yields waits for a unit that is not free, and
/// fails the test instead of hanging it.
pub async fn drain_capacity<T: Send + 'static>(
    pool: &shadowcat_pool::Pool<T>,
    n: usize,
) -> Vec<shadowcat_pool::PoolConnection<T>> {
    let mut held = Vec::new();
    for i in 0..n {
        let mut acquire = Box::pin(pool.acquire());
        let mut polls = 0;
        let conn = loop {
            if let std::task::Poll::Ready(result) = poll_once(&mut acquire).await {
                break result.unwrap_or_else(|e| panic!("acquire {i} of {n} failed: {e}"));
            }
            polls += 1;
            assert!(
                polls < 1_000,
                "unit {i} of {n} is not free (its acquire waits): {:?}",
                pool.stats()
            );
            tokio::task::yield_now().await;
        };
        held.push(conn);
    }
    held
}

/// Polls a future exactly once.
pub async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))).await
}

/// A current-thread runtime with every driver, for a test that runs it on threads of its own.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Options for a plain test pool: no timeouts or clocks unless a test asks.
pub fn options(max: usize) -> shadowcat_pool::PoolOptions<Conn> {
    shadowcat_pool::PoolOptions::new()
        .max_connections(max)
        .acquire_timeout(None)
        .idle_timeout(None)
        .max_lifetime(None)
}

/// Starts an acquire and polls it once, asserting that it parked; returns it to poll later.
pub async fn parked<T: Send + 'static>(
    pool: &shadowcat_pool::Pool<T>,
) -> std::pin::Pin<
    Box<
        impl std::future::Future<
                Output = Result<shadowcat_pool::PoolConnection<T>, shadowcat_pool::Error>,
            > + '_,
    >,
> {
    let mut acquire = Box::pin(pool.acquire());
    assert!(
        poll_once(&mut acquire).await.is_pending(),
        "the acquire did not park"
    );
    acquire
}

/// How long a test waits for an operation that must finish before calling it hung. Generous on
/// purpose: it only bounds a failing test, it measures nothing.
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(10);

/// Awaits `f`, failing the test (naming `what`) if it takes longer than [`HANG_GUARD`]: for an
/// await whose completion is the behaviour under test (a hand-off after a release, a close), so
/// that a regression fails instead of hanging the run. Needs a tokio runtime with timers.
pub async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {HANG_GUARD:?}"))
}

/// How long a test waits for a multi-threaded storm's tasks (thousands of cycles, in a debug
/// build, on a loaded machine) before calling one stranded. Only bounds a failing test.
pub const STORM_GUARD: std::time::Duration = std::time::Duration::from_secs(120);

/// Yields to the runtime until `done()` holds, at most `max_yields` times; returns whether it
/// held. Lets spawned tasks (background work, a maintenance pass) run on a current-thread
/// runtime without sleeping.
pub async fn yield_until(max_yields: usize, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..max_yields {
        if done() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    done()
}

/// An `after_create` or `before_acquire`-style hook body that signals `started` and then never
/// finishes: a hook hung on a dead peer.
pub async fn hang_forever(started: std::sync::Arc<Notify>) {
    started.notify_one();
    std::future::pending::<()>().await
}

/// Collects the `WARN` events the pool emits on this thread (a minimal subscriber: the test
/// needs only the level, the target, the message and the `pool` field). Install it with
/// [`Warnings::install`]: it sees only this thread's events.
#[derive(Clone, Default)]
pub struct Warnings(
    /// Each warning's message.
    pub std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Each warning's `pool` field, in the same order (`None` without one).
    pub std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>,
);

impl Warnings {
    /// Installs `self` as this thread's subscriber until the guard drops.
    ///
    /// First it registers a second subscriber that lives as long as the process. tracing caches
    /// whether anyone is interested in a log call site once per call site, for the whole
    /// process. While exactly one subscriber is registered, that answer is taken from the
    /// default subscriber of whichever thread reaches the call site first. So a test running
    /// beside this one, with no subscriber, could cache "never" for a warning this test
    /// captures, and the warning would be lost (seen about once in a hundred parallel runs).
    /// With two registered, the answer is taken from all of them, and this one always wants
    /// the event.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        static ANCHOR: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        ANCHOR.get_or_init(|| tracing::Dispatch::new(Warnings::default()));
        tracing::subscriber::set_default(self.clone())
    }
}

struct Message<'a>(&'a mut String, &'a mut Option<String>);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => *self.0 = format!("{value:?}"),
            // Recorded with `%`: its Debug form is the Display text.
            "pool" => *self.1 = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN && meta.target().starts_with("shadowcat_pool") {
            let (mut message, mut pool) = (String::new(), None);
            event.record(&mut Message(&mut message, &mut pool));
            self.0.lock().unwrap().push(message);
            self.1.lock().unwrap().push(pool);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
