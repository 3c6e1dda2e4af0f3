//! A task that loops acquire/release on an idle pool spends tokio's cooperative budget, so another
//! task on the same worker gets to run (hazard H11: a pool that never yields starves its
//! neighbours). Deterministic: a current-thread runtime, no clock.
#![cfg(not(shadowcat_loom))]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use support::{options, TestManager};

#[tokio::test(flavor = "current_thread")]
async fn a_hot_acquire_loop_lets_other_tasks_run() {
    let pool = options(1).build(TestManager::new()).unwrap();
    drop(pool.acquire().await.unwrap()); // one idle resource: every acquire below is served at once
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });

    let mut iterations = 0u32;
    while !ran.load(Ordering::SeqCst) {
        iterations += 1;
        assert!(
            iterations < 100_000,
            "the other task never ran: acquire does not spend the cooperative budget"
        );
        drop(pool.acquire().await.unwrap());
    }
    // tokio's budget is 128 operations per poll of a task.
    assert!(
        iterations <= 1_000,
        "the other task ran only after {iterations} acquires"
    );
}
