//! End to end: a pool of real stdio child processes speaking JSON-RPC 2.0
//! (`examples/support/stdio_upstream.rs`).
//!
//! This target is `harness = false`: the test binary is also the child server. Started with
//! `--serve`, `main` runs the child loop instead of the tests, so every test spawns
//! `current_exe() --serve` and needs nothing else built (an example binary is only built by a
//! full `cargo test`, and `CARGO_BIN_EXE_*` exists only for `[[bin]]` targets, which cannot use
//! dev-dependencies). The small runner below runs the tests one after another (they inspect this
//! process's children in `/proc`), accepts name filters, `--exact`, `--skip` and `--list`, and
//! exits non-zero on failure.
//!
//! Under `--cfg shadowcat_loom` the target compiles to an empty `main` (a `harness = false`
//! target cannot be cfg'd out as a whole: it must still have a `main`).
#![cfg_attr(shadowcat_loom, allow(unused))]

#[cfg(shadowcat_loom)]
fn main() {}

#[cfg(not(shadowcat_loom))]
fn main() {
    imp::main()
}

#[cfg(not(shadowcat_loom))]
#[path = "support/procs.rs"]
mod procs;

#[cfg(not(shadowcat_loom))]
#[allow(dead_code)]
#[path = "../examples/support/stdio_upstream.rs"]
mod stdio_upstream;

#[cfg(not(shadowcat_loom))]
mod imp {
    use super::procs::{assert_gone, children_of_this_process};
    use super::stdio_upstream;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use serde_json::json;
    use shadowcat_pool::{Pool, PoolOptions};
    use stdio_upstream::{StdioChild, StdioCounts, StdioManager, Teardown};
    use tokio::sync::mpsc;

    type Test = (&'static str, fn());

    const TESTS: &[Test] = &[
        (
            "thousand_requests_from_32_tasks_spawn_exactly_two_children",
            thousand_requests,
        ),
        (
            "child_killed_while_idle_is_replaced_without_a_failed_request",
            killed_while_idle,
        ),
        (
            "child_that_exited_is_never_handed_out_again",
            exited_child_not_reused,
        ),
        ("close_leaves_no_child_and_no_zombie", close_leaves_nothing),
        (
            "child_hanging_on_ping_is_torn_down_by_the_check_timeout",
            hanging_child,
        ),
    ];

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "--serve") {
            if let Err(e) = stdio_upstream::serve() {
                eprintln!("child server: {e}");
                std::process::exit(1);
            }
            return;
        }
        let mut filters = Vec::new();
        let mut skips = Vec::new();
        let (mut exact, mut list, mut ignored) = (false, false, false);
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--exact" => exact = true,
                "--list" => list = true,
                // No test here is `#[ignore]`d: `--ignored` selects none.
                "--ignored" => ignored = true,
                "--skip" => skips.extend(it.next().cloned()),
                // libtest options that take a value: accept and ignore.
                "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" => {
                    it.next();
                }
                a if a.starts_with('-') => {}
                a => filters.push(a.to_string()),
            }
        }
        let matches = |name: &str, pattern: &str| {
            if exact {
                name == pattern
            } else {
                name.contains(pattern)
            }
        };
        let selected: Vec<&Test> = TESTS
            .iter()
            .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| matches(name, f)))
            .filter(|(name, _)| !skips.iter().any(|s| matches(name, s)))
            .filter(|_| !ignored)
            .collect();
        if list {
            for (name, _) in &selected {
                println!("{name}: test");
            }
            return;
        }
        println!("\nrunning {} tests", selected.len());
        let started = Instant::now();
        let mut failed = Vec::new();
        for (name, test) in &selected {
            let ok = std::panic::catch_unwind(test).is_ok();
            println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
            if !ok {
                failed.push(*name);
            }
        }
        println!(
            "\ntest result: {}. {} passed; {} failed; finished in {:.2}s\n",
            if failed.is_empty() { "ok" } else { "FAILED" },
            selected.len() - failed.len(),
            failed.len(),
            started.elapsed().as_secs_f64()
        );
        if !failed.is_empty() {
            std::process::exit(101);
        }
    }

    // ===== helpers =====

    /// Runs one test on a runtime of its own; a test still running after 90 s (far above what
    /// a passing one needs) fails as hung instead of holding the binary forever.
    fn run(test: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(90), test)
                    .await
                    .expect("the test hung")
            });
    }

    /// A manager whose children are this test binary in `--serve` mode.
    fn manager() -> StdioManager {
        let exe = std::env::current_exe().expect("current_exe");
        StdioManager::new(exe, &["--serve"])
    }

    struct Setup {
        pool: Pool<StdioChild>,
        counts: Arc<StdioCounts>,
        teardowns: mpsc::UnboundedReceiver<(u32, Teardown)>,
    }

    fn setup(manager: StdioManager, options: PoolOptions<StdioChild>) -> Setup {
        let (tx, teardowns) = mpsc::unbounded_channel();
        let manager = manager.with_teardown_events(tx);
        let counts = manager.counts();
        // Generous: no test relies on acquire_timeout, it only turns a hang into a failure.
        let pool = options
            .acquire_timeout(Duration::from_secs(60))
            .build(manager)
            .expect("valid options");
        Setup {
            pool,
            counts,
            teardowns,
        }
    }

    async fn close_and_assert_clean(setup: &Setup) {
        setup.pool.close().await;
        assert_eq!(
            children_of_this_process(),
            Vec::<u32>::new(),
            "children left after close"
        );
        let spawned = setup.counts.spawned.load(Ordering::SeqCst);
        assert_eq!(setup.counts.reaped.load(Ordering::SeqCst), spawned);
    }

    async fn pid_of(child: &mut StdioChild) -> u32 {
        let reply = child.call("pid", json!(null)).await.expect("pid call");
        let pid = reply["pid"].as_u64().expect("pid in reply") as u32;
        assert_eq!(pid, child.pid());
        pid
    }

    async fn echo_ok(pool: &Pool<StdioChild>, tag: serde_json::Value) -> u32 {
        let mut child = pool.acquire().await.expect("acquire");
        let reply = child.call("echo", tag.clone()).await.expect("echo call");
        assert_eq!(reply["echo"], tag, "reply does not match its request");
        assert_eq!(reply["pid"].as_u64(), Some(u64::from(child.pid())));
        child.pid()
    }

    // ===== the tests =====

    fn thousand_requests() {
        run(async {
            let s = setup(manager(), PoolOptions::new().max_connections(2));
            const TASKS: u64 = 32;
            const REQUESTS: u64 = 1_000;
            // Everyone starts together, so the first two acquires both find room to create.
            let start = Arc::new(tokio::sync::Barrier::new(TASKS as usize));
            let mut tasks = Vec::new();
            for task in 0..TASKS {
                let (pool, start) = (s.pool.clone(), start.clone());
                let n = REQUESTS / TASKS + u64::from(task < REQUESTS % TASKS);
                tasks.push(tokio::spawn(async move {
                    start.wait().await;
                    let mut pids = BTreeMap::<u32, u64>::new();
                    for i in 0..n {
                        let tag = json!({ "task": task, "i": i, "nonce": format!("{task}-{i}") });
                        *pids.entry(echo_ok(&pool, tag).await).or_default() += 1;
                    }
                    pids
                }));
            }
            let mut served = BTreeMap::<u32, u64>::new();
            for t in tasks {
                for (pid, n) in t.await.expect("task") {
                    *served.entry(pid).or_default() += n;
                }
            }
            assert_eq!(served.values().sum::<u64>(), REQUESTS);
            assert_eq!(served.len(), 2, "replies came from {served:?}");
            assert_eq!(s.counts.spawned.load(Ordering::SeqCst), 2);
            let stats = s.pool.stats();
            assert_eq!(stats.created, 2);
            assert_eq!(stats.destroyed.total(), 0);
            close_and_assert_clean(&s).await;
        });
    }

    fn killed_while_idle() {
        run(async {
            let mut s = setup(
                manager().check_timeout(Duration::from_secs(30)),
                PoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(true),
            );
            let victim = {
                let mut child = s.pool.acquire().await.expect("acquire");
                pid_of(&mut child).await
            };
            // Killed from outside while it sits idle in the pool. It is blocked in read(2), so
            // once SIGKILL is sent it never runs user code again: it cannot answer the ping.
            let status = std::process::Command::new("kill")
                .args(["-KILL", &victim.to_string()])
                .status()
                .expect("run kill");
            assert!(status.success());

            let mut pids = BTreeSet::new();
            for i in 0..50 {
                pids.insert(echo_ok(&s.pool, json!({ "after_kill": i })).await);
            }
            assert!(!pids.contains(&victim), "the dead child was handed out");
            assert_eq!(pids.len(), 1);

            let (pid, how) = s.teardowns.recv().await.expect("teardown event");
            assert_eq!((pid, how), (victim, Teardown::Exited));
            assert_gone(victim);
            let stats = s.pool.stats();
            assert_eq!(stats.destroyed.check_failed, 1);
            assert_eq!(stats.created, 2);
            close_and_assert_clean(&s).await;
        });
    }

    fn exited_child_not_reused() {
        run(async {
            let mut s = setup(manager(), PoolOptions::new().max_connections(1));

            // 1. A crash mid-request: the call fails, the child is poisoned and not reused.
            let crashed = {
                let mut child = s.pool.acquire().await.expect("acquire");
                let pid = pid_of(&mut child).await;
                assert!(child.call("exit", json!(null)).await.is_err());
                pid
            };
            assert_eq!(s.teardowns.recv().await, Some((crashed, Teardown::Exited)));
            assert_gone(crashed);

            // 2. Dies between requests while checked out: `is_reusable` sees it in `try_wait`.
            let killed = {
                let mut child = s.pool.acquire().await.expect("acquire");
                let pid = pid_of(&mut child).await;
                assert_ne!(pid, crashed);
                let status = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .expect("run kill");
                assert!(status.success());
                child.wait_for_exit().await.expect("wait");
                pid
            };
            assert_eq!(s.teardowns.recv().await, Some((killed, Teardown::Exited)));
            assert_gone(killed);

            let fresh = echo_ok(&s.pool, json!("after")).await;
            assert!(fresh != crashed && fresh != killed);
            let stats = s.pool.stats();
            assert_eq!(stats.destroyed.broken, 2);
            assert_eq!(stats.created, 3);
            close_and_assert_clean(&s).await;
        });
    }

    fn close_leaves_nothing() {
        run(async {
            let s = setup(manager(), PoolOptions::new().max_connections(3));
            let mut held = Vec::new();
            let mut pids = Vec::new();
            for _ in 0..3 {
                let mut child = s.pool.acquire().await.expect("acquire");
                pids.push(pid_of(&mut child).await);
                held.push(child);
            }
            let mut children = children_of_this_process();
            children.sort_unstable();
            let mut expected = pids.clone();
            expected.sort_unstable();
            assert_eq!(children, expected);

            // Two go back idle, one is still checked out when the pool closes.
            let out = held.pop().expect("three held");
            drop(held);
            let closing = tokio::spawn({
                let pool = s.pool.clone();
                async move { pool.close().await }
            });
            s.pool.close_event().await;
            drop(out); // released after close: destroyed, not pooled
            closing.await.expect("close task");

            for pid in &pids {
                assert_gone(*pid);
            }
            let stats = s.pool.stats();
            assert_eq!(stats.size, 0);
            assert_eq!(stats.destroyed.closed, 3);
            close_and_assert_clean(&s).await;
        });
    }

    fn hanging_child() {
        run(async {
            let check_timeout = Duration::from_millis(300);
            let mut s = setup(
                manager()
                    .check_timeout(check_timeout)
                    .exit_grace(Duration::from_millis(100)),
                PoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(true),
            );
            let frozen = {
                let mut child = s.pool.acquire().await.expect("acquire");
                let pid = pid_of(&mut child).await;
                let reply = child.call("freeze", json!(null)).await.expect("freeze");
                assert_eq!(reply["frozen"], true);
                pid
            };
            // Alive, pipes open, nothing unread: it looks reusable and goes back idle.
            assert_eq!(s.pool.stats().idle, 1);

            let asked = Instant::now();
            let fresh = echo_ok(&s.pool, json!("next")).await;
            let waited = asked.elapsed();
            assert_ne!(fresh, frozen);
            // The check waited for its timeout (a timer never fires early), then the pool moved
            // on; the acquire itself is bounded by the 60 s acquire_timeout.
            assert!(waited >= check_timeout, "acquired after {waited:?}");
            assert_eq!(s.counts.check_timeouts.load(Ordering::SeqCst), 1);
            // It ignores stdin closing, so teardown had to kill it, and it was reaped.
            assert_eq!(s.teardowns.recv().await, Some((frozen, Teardown::Killed)));
            assert_gone(frozen);
            assert_eq!(s.pool.stats().destroyed.check_failed, 1);
            close_and_assert_clean(&s).await;
        });
    }
}
