//! Property test: random sequences of acquire, release, broken release, create failure, cancel,
//! detach and close keep the books balanced after every step (hazard H7):
//! `0 <= idle <= size <= max`, `size == created - destroyed - detached`, no waiter sleeps beside
//! an available resource or free capacity, and close resolves once everything is back.
#![cfg(not(shadowcat_loom))]

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;

use proptest::prelude::*;
use shadowcat_pool::{Error, Pool, PoolConnection};
use support::{options, poll_once, Conn, CreateMode, TestManager};

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    TryAcquire,
    Release(usize),
    ReleaseBroken(usize),
    Detach(usize),
    FailNextCreate,
    Cancel(usize),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        1 => Just(Op::TryAcquire),
        3 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::ReleaseBroken),
        1 => any::<usize>().prop_map(Op::Detach),
        1 => Just(Op::FailNextCreate),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => Just(Op::Close),
    ]
}

type Acquiring = Pin<Box<dyn Future<Output = Result<PoolConnection<Conn>, Error>>>>;

struct Model {
    pool: Pool<Conn>,
    counts: std::sync::Arc<support::Counts>,
    plan: std::sync::Arc<TestManagerHandle>,
    held: Vec<PoolConnection<Conn>>,
    pending: Vec<Acquiring>,
    closing: Option<Pin<Box<dyn Future<Output = ()>>>>,
    max: usize,
}

/// Lets the test push failures into the manager's create plan after the pool owns it.
struct TestManagerHandle(std::sync::Mutex<std::collections::VecDeque<CreateMode>>);

struct PlannedManager {
    inner: TestManager,
    plan: std::sync::Arc<TestManagerHandle>,
}

impl shadowcat_pool::Manager for PlannedManager {
    type Resource = Conn;
    type Error = support::TestError;

    async fn create(&self) -> Result<Conn, support::TestError> {
        if let Some(mode) = self.plan.0.lock().unwrap().pop_front() {
            self.inner.create_plan.lock().unwrap().push_back(mode);
        }
        self.inner.create().await
    }

    fn is_reusable(&self, conn: &mut Conn) -> bool {
        !conn.broken
    }
}

impl Model {
    async fn settle(&mut self) {
        // Poll every pending acquire until none makes progress.
        loop {
            let mut progressed = false;
            let mut i = 0;
            while i < self.pending.len() {
                match poll_once(&mut self.pending[i]).await {
                    Poll::Ready(result) => {
                        drop(self.pending.remove(i));
                        progressed = true;
                        if let Ok(conn) = result {
                            self.held.push(conn);
                        }
                    }
                    Poll::Pending => i += 1,
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn check(&self) {
        let s = self.pool.stats();
        assert!(s.idle <= s.size && s.size <= self.max, "{s:?}");
        assert_eq!(s.size, self.counts.live(), "size != live: {s:?}");
        assert_eq!(
            s.size as u64,
            s.created - s.destroyed.total() - s.detached,
            "size != created - destroyed - detached: {s:?}"
        );
        assert_eq!(s.in_use, self.held.len(), "{s:?}");
        if !s.closed {
            assert_eq!(s.waiting, self.pending.len(), "{s:?}");
            if !self.pending.is_empty() {
                assert_eq!(s.idle, 0, "a waiter sleeps beside an idle resource: {s:?}");
                assert_eq!(
                    s.size, self.max,
                    "a waiter sleeps beside free capacity: {s:?}"
                );
            }
        } else {
            assert!(self.pending.is_empty(), "a waiter survived close");
            assert_eq!(s.idle, 0, "{s:?}");
        }
    }
}

fn run(max: usize, ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let plan = std::sync::Arc::new(TestManagerHandle(Default::default()));
        let inner = TestManager::new();
        let counts = inner.counts();
        let pool = options(max)
            .build(PlannedManager {
                inner,
                plan: plan.clone(),
            })
            .unwrap();
        let mut m = Model {
            pool,
            counts,
            plan,
            held: Vec::new(),
            pending: Vec::new(),
            closing: None,
            max,
        };
        for op in ops {
            match op {
                Op::Acquire => {
                    let pool = m.pool.clone();
                    m.pending
                        .push(Box::pin(async move { pool.acquire().await }));
                }
                Op::TryAcquire => {
                    if let Some(conn) = m.pool.try_acquire() {
                        assert!(m.pending.is_empty(), "try_acquire overtook a waiter");
                        m.held.push(conn);
                    }
                }
                Op::Release(i) if !m.held.is_empty() => {
                    let n = m.held.len();
                    drop(m.held.swap_remove(i % n));
                }
                Op::ReleaseBroken(i) if !m.held.is_empty() => {
                    let n = m.held.len();
                    let mut conn = m.held.swap_remove(i % n);
                    conn.broken = true;
                    drop(conn);
                }
                Op::Detach(i) if !m.held.is_empty() => {
                    let n = m.held.len();
                    drop(m.held.swap_remove(i % n).detach());
                }
                Op::FailNextCreate => m.plan.0.lock().unwrap().push_back(CreateMode::Fail),
                Op::Cancel(i) if !m.pending.is_empty() => {
                    let n = m.pending.len();
                    drop(m.pending.swap_remove(i % n));
                }
                Op::Close if m.closing.is_none() && !m.pool.is_closed() => {
                    let pool = m.pool.clone();
                    m.closing = Some(Box::pin(async move { pool.close().await }));
                }
                _ => {}
            }
            if let Some(closing) = &mut m.closing {
                if poll_once(closing).await.is_ready() {
                    m.closing = None;
                }
            }
            m.settle().await;
            m.check();
        }
        // Wind down: return everything and close; close must resolve.
        m.pending.clear();
        m.held.clear();
        // `close` is idempotent: a fresh call waits for the same end state.
        let pool = m.pool.clone();
        let mut closing = Box::pin(async move { pool.close().await });
        assert!(
            poll_once(&mut closing).await.is_ready(),
            "close did not resolve with everything returned"
        );
        let s = m.pool.stats();
        assert_eq!((s.size, s.idle, s.waiting), (0, 0, 0), "{s:?}");
        assert_eq!(m.counts.live(), 0);
        assert_eq!(s.created as usize, m.counts.created.load(Ordering::SeqCst));
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn books_balance_after_every_step(max in 1usize..=4, ops in proptest::collection::vec(op(), 1..60)) {
        run(max, ops);
    }
}
