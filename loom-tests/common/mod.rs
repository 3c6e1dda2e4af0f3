//! Shared harness for the loom models: the model runner (iteration counts, time, the failing
//! iteration), a scripted manager that tracks every resource, a connection wrapper that detects
//! double hand-outs, and the invariant checks.
//!
//! Bookkeeping uses plain std atomics on purpose: it only observes what the pool does, and loom
//! operations here would only multiply the interleavings. Everything the pool itself does goes
//! through loom.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Once};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use shadowcat_pool::{Error, Manager, Pool, PoolConnection, PoolOptions, PoolStats};

// ===== the model runner =====

thread_local! {
    /// The model running on this OS thread and its iteration counter (loom runs a model's
    /// threads as coroutines on the test's thread).
    static CURRENT: RefCell<Option<(&'static str, Arc<AtomicUsize>)>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs, once per process, a panic hook that names the model and iteration that failed.
/// It must be installed before loom's `generator` installs its own (on the first model run),
/// so that generator's filter for its internal cancel panics wraps this one.
fn install_hook() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let is_message = info.payload().is::<&str>() || info.payload().is::<String>();
            if is_message {
                let current = CURRENT
                    .try_with(|c| c.try_borrow().ok().and_then(|c| c.clone()))
                    .ok()
                    .flatten();
                if let Some((name, iters)) = current {
                    eprintln!("LOOM-FAIL model={name} iteration={}", iters.load(SeqCst));
                }
            }
            prev(info);
        }));
    });
}

/// Runs `f` under loom's model checker. The preemption bound comes from
/// `LOOM_MAX_PREEMPTIONS` (loom reads it); `LOOM_MAX_DURATION` must never be set, because loom
/// silently stops exploring and passes when it is hit.
pub fn model<F>(name: &'static str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    run_model(name, None, f);
}

/// [`model`] with the preemption bound capped at `cap`, for a model whose full exploration at
/// the global bound costs too much (DESIGN.md, section 11, says which and why).
pub fn model_capped<F>(name: &'static str, cap: usize, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    run_model(name, Some(cap), f);
}

fn run_model<F>(name: &'static str, cap: Option<usize>, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    install_hook();
    assert!(
        std::env::var_os("LOOM_MAX_DURATION").is_none(),
        "LOOM_MAX_DURATION makes loom stop early and pass silently; unset it"
    );
    let iters = Arc::new(AtomicUsize::new(0));
    CURRENT.with(|c| *c.borrow_mut() = Some((name, iters.clone())));
    let counter = iters.clone();
    let mut builder = loom::model::Builder::new();
    if let Some(cap) = cap {
        builder.preemption_bound = Some(builder.preemption_bound.map_or(cap, |b| b.min(cap)));
    }
    let bound = builder
        .preemption_bound
        .map_or_else(|| "unbounded".to_string(), |b| b.to_string());
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, SeqCst);
        f();
    });
    let elapsed = start.elapsed();
    CURRENT.with(|c| *c.borrow_mut() = None);
    println!(
        "LOOM-PASS model={name} iterations={} time_ms={} preemptions={bound}",
        iters.load(SeqCst),
        elapsed.as_millis()
    );
}

// ===== the resource and its manager =====

/// What a resource has been through, shared with the test.
#[derive(Default)]
pub struct ResState {
    pub in_use: AtomicBool,
    pub destroyed: AtomicBool,
    /// Set by a check or `before_acquire` hook that ran after the model's [`Probe`] saw close
    /// start: such a resource must never be handed out.
    pub prepared_after_close: AtomicBool,
}

/// A pooled resource.
pub struct Res {
    pub id: usize,
    pub st: Arc<ResState>,
    tracker: Arc<Tracker>,
}

impl Drop for Res {
    fn drop(&mut self) {
        self.tracker.dropped.fetch_add(1, SeqCst);
    }
}

/// Counts what the manager did.
#[derive(Default)]
pub struct Tracker {
    pub attempts: AtomicUsize,
    pub created: AtomicUsize,
    pub destroyed: AtomicUsize,
    pub dropped: AtomicUsize,
}

impl Tracker {
    /// Resources that exist now.
    pub fn live(&self) -> usize {
        self.created.load(SeqCst) - self.dropped.load(SeqCst)
    }
}

/// How one create attempt behaves.
#[derive(Clone)]
pub enum Create {
    Ok,
    Fail,
    /// Returns `Pending` once (waking itself), then succeeds.
    YieldThenOk,
    /// Waits (asynchronously) until the gate opens, then succeeds.
    GateThenOk(Arc<Gate>),
    /// Waits (asynchronously) until the gate opens, then fails.
    GateThenFail(Arc<Gate>),
}

/// A manager that follows a script: attempt `i` behaves like `script[i]`, later ones succeed.
/// With a probe, `Manager::check` (run when `test_before_acquire` is on) looks at it.
pub struct Scripted {
    pub tracker: Arc<Tracker>,
    script: Vec<Create>,
    probe: Option<Arc<Probe>>,
}

impl Manager for Scripted {
    type Resource = Res;
    type Error = std::io::Error;

    async fn create(&self) -> Result<Res, std::io::Error> {
        let n = self.tracker.attempts.fetch_add(1, SeqCst);
        let how = self.script.get(n).cloned().unwrap_or(Create::Ok);
        let fail = match how {
            Create::Ok => false,
            Create::Fail => true,
            Create::YieldThenOk => {
                YieldOnce(false).await;
                false
            }
            Create::GateThenOk(gate) => {
                gate.wait().await;
                false
            }
            Create::GateThenFail(gate) => {
                gate.wait().await;
                true
            }
        };
        if fail {
            return Err(std::io::Error::other("scripted create failure"));
        }
        self.tracker.created.fetch_add(1, SeqCst);
        Ok(Res {
            id: n,
            st: Arc::default(),
            tracker: self.tracker.clone(),
        })
    }

    async fn check(&self, r: &mut Res) -> Result<(), std::io::Error> {
        let probe = self.probe.as_ref().expect("check called without a probe");
        probe.look(r).await;
        Ok(())
    }

    async fn destroy(&self, r: Res) {
        assert!(
            !r.st.in_use.load(SeqCst),
            "resource {} destroyed while a user holds it",
            r.id
        );
        assert!(
            !r.st.destroyed.swap(true, SeqCst),
            "resource {} destroyed twice",
            r.id
        );
        self.tracker.destroyed.fetch_add(1, SeqCst);
    }
}

/// Returns `Pending` once (and wakes itself), then `Ready`.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A one-shot async gate on a loom mutex.
#[derive(Default)]
pub struct Gate {
    inner: loom::sync::Mutex<(bool, VecDeque<Waker>)>,
}

impl Gate {
    pub fn new() -> Arc<Self> {
        Arc::new(Gate::default())
    }

    pub fn open(&self) {
        let wakers = {
            let mut g = self.inner.lock().unwrap();
            g.0 = true;
            std::mem::take(&mut g.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn wait(&self) -> impl Future<Output = ()> + Send + '_ {
        std::future::poll_fn(move |cx| {
            let mut g = self.inner.lock().unwrap();
            if g.0 {
                Poll::Ready(())
            } else {
                g.1.push_back(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

/// What a check or hook running on an idle resource can know about a concurrent `close()`.
///
/// The closer calls [`Probe::close_started`] once its first poll of `close()` has set the closed
/// bit. A check or hook calls [`Probe::look`]: it yields once (a scheduling point inside the
/// check, as a real check awaits I/O), then reads the flag and, if close had started, marks the
/// resource [`ResState::prepared_after_close`]. The flag is a loom atomic (`Release` store,
/// `Acquire` load), so a check that reads `true` happens after the closed bit was set, and the
/// pool's re-check after the check must see it.
#[derive(Default)]
pub struct Probe {
    closing: loom::sync::atomic::AtomicBool,
}

impl Probe {
    pub fn new() -> Arc<Self> {
        Arc::new(Probe::default())
    }

    /// Called by the closer after `close()` set the closed bit.
    pub fn close_started(&self) {
        self.closing
            .store(true, loom::sync::atomic::Ordering::Release);
    }

    /// The body of the scripted check or hook.
    pub async fn look(&self, r: &mut Res) {
        YieldOnce(false).await;
        if self.closing.load(loom::sync::atomic::Ordering::Acquire) {
            r.st.prepared_after_close.store(true, SeqCst);
        }
    }
}

// ===== building pools =====

/// Options with every clock-driven feature off and no acquire timeout: loom models run without
/// a runtime.
pub fn options(max: usize) -> PoolOptions<Res> {
    PoolOptions::new()
        .max_connections(max)
        .acquire_timeout(None)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_slow_threshold(None)
        .release_timeout(None)
}

/// A pool whose creates follow `script`.
pub fn pool_with(opts: PoolOptions<Res>, script: Vec<Create>) -> (Pool<Res>, Arc<Tracker>) {
    let tracker = Arc::new(Tracker::default());
    let manager = Scripted {
        tracker: tracker.clone(),
        script,
        probe: None,
    };
    (opts.build(manager).expect("valid options"), tracker)
}

/// A pool whose `Manager::check` looks at `probe` (turn `test_before_acquire` on in `opts`).
pub fn pool_with_check(opts: PoolOptions<Res>, probe: Arc<Probe>) -> (Pool<Res>, Arc<Tracker>) {
    let tracker = Arc::new(Tracker::default());
    let manager = Scripted {
        tracker: tracker.clone(),
        script: Vec::new(),
        probe: Some(probe),
    };
    (opts.build(manager).expect("valid options"), tracker)
}

/// A pool of `max` whose creates all succeed at once.
pub fn pool(max: usize) -> (Pool<Res>, Arc<Tracker>) {
    pool_with(options(max), Vec::new())
}

// ===== holding resources =====

/// A checked-out resource. Checks on hand-out that nobody else holds it and that it was not
/// destroyed; clears the mark before giving it back.
pub struct Held(Option<PoolConnection<Res>>);

impl Held {
    pub fn new(conn: PoolConnection<Res>) -> Self {
        assert!(
            !conn.st.destroyed.load(SeqCst),
            "resource {} handed out after it was destroyed",
            conn.id
        );
        assert!(
            !conn.st.in_use.swap(true, SeqCst),
            "resource {} handed out to two users at once",
            conn.id
        );
        Held(Some(conn))
    }

    fn take(&mut self) -> PoolConnection<Res> {
        let conn = self.0.take().expect("held");
        conn.st.in_use.store(false, SeqCst);
        conn
    }

    pub fn id(&self) -> usize {
        self.0.as_ref().expect("held").id
    }

    /// Whether a check or hook prepared this resource after close had started.
    pub fn prepared_after_close(&self) -> bool {
        self.0
            .as_ref()
            .expect("held")
            .st
            .prepared_after_close
            .load(SeqCst)
    }

    /// `PoolConnection::detach`; the detached resource is dropped.
    pub fn detach(mut self) {
        drop(self.take().detach());
    }

    /// `PoolConnection::close`, driven to completion.
    pub fn close(mut self) {
        loom::future::block_on(self.take().close());
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.0.is_some() {
            drop(self.take());
        }
    }
}

/// `pool.acquire()` to completion.
pub fn acquire(pool: &Pool<Res>) -> Result<Held, Error> {
    loom::future::block_on(pool.acquire()).map(Held::new)
}

/// An acquire future that owns its pool handle.
pub type AcquireFut = Pin<Box<dyn Future<Output = Result<PoolConnection<Res>, Error>> + Send>>;

/// Starts an acquire on the calling thread and polls it once: it must be waiting afterwards
/// (registered and parked). Parking waiters this way, before the racing threads start, puts
/// them deterministically in line without a spin loop.
pub fn parked_acquire(pool: &Pool<Res>) -> AcquireFut {
    let p = pool.clone();
    let mut fut: AcquireFut = Box::pin(async move { p.acquire().await });
    assert!(
        poll_once(&mut fut).is_none(),
        "the acquire was expected to wait"
    );
    fut
}

/// Drives an acquire future to completion.
pub fn finish(fut: AcquireFut) -> Result<Held, Error> {
    loom::future::block_on(fut).map(Held::new)
}

/// `pool.try_acquire()`.
pub fn try_acquire(pool: &Pool<Res>) -> Option<Held> {
    pool.try_acquire().map(Held::new)
}

/// Polls `fut` exactly once with a waker that does nothing; returns its output if it finished.
pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(fut).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Spins (yielding to loom) until `cond` holds.
pub fn wait_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        loom::thread::yield_now();
    }
}

/// Spins until at least `n` tasks are counted as waiting (registered, or creating in line).
pub fn wait_for_waiters(pool: &Pool<Res>, n: usize) {
    wait_until(|| pool.stats().waiting >= n);
}

// ===== invariants =====

/// `size <= max`, at any time.
pub fn assert_size_bounded(s: &PoolStats) {
    assert!(s.size <= s.max, "size above max: {s:?}");
}

/// Invariants of a pool at rest (every model thread joined, nothing in flight):
/// `size <= max`, nobody counted as waiting, `idle + in use == size`, and
/// `created == destroyed + detached + live` both by the pool's counters and by the manager's.
pub fn assert_at_rest(pool: &Pool<Res>, tracker: &Tracker) {
    let s = pool.stats();
    assert_size_bounded(&s);
    assert_eq!(s.waiting, 0, "waiters left counted: {s:?}");
    assert_eq!(
        s.idle + s.in_use,
        s.size,
        "idle + in use != size (capacity leaked or stranded): {s:?}"
    );
    assert_eq!(
        s.created,
        s.destroyed.total() + s.detached + s.size as u64,
        "created != destroyed + detached + live: {s:?}"
    );
    assert_eq!(s.created as usize, tracker.created.load(SeqCst), "{s:?}");
    assert_eq!(
        s.destroyed.total() as usize,
        tracker.destroyed.load(SeqCst),
        "{s:?}"
    );
    assert_eq!(tracker.live(), s.size, "resources alive != size: {s:?}");
}

/// Every unit of capacity can still be acquired: takes `max` resources at once (creating what
/// is missing), then gives them back. A leaked unit or a stranded reservation makes this block
/// forever, which loom reports as a deadlock.
pub fn assert_all_capacity_usable(pool: &Pool<Res>, tracker: &Tracker) {
    let max = pool.max_connections();
    let held: Vec<Held> = (0..max)
        .map(|_| acquire(pool).expect("acquire on an open pool at rest"))
        .collect();
    drop(held);
    assert_at_rest(pool, tracker);
    assert_eq!(pool.stats().idle, max);
}

/// Invariants of a closed pool after `close()` returned and every thread joined.
pub fn assert_closed_and_empty(pool: &Pool<Res>, tracker: &Tracker) {
    let s = pool.stats();
    assert!(s.closed);
    assert_eq!(
        (s.size, s.idle, s.waiting),
        (0, 0, 0),
        "closed pool not empty: {s:?}"
    );
    assert_eq!(s.created, s.destroyed.total() + s.detached, "{s:?}");
    assert_eq!(tracker.live(), 0, "resources left alive in a closed pool");
    assert_eq!(s.created as usize, tracker.created.load(SeqCst));
    assert_eq!(s.destroyed.total() as usize, tracker.destroyed.load(SeqCst));
}
