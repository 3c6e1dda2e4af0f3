//! Loom model: fairness. A parked waiter is never overtaken by an arrival, through either
//! `try_acquire` or `acquire`.
#![cfg(shadowcat_loom)]

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use common::*;
use loom::thread;

/// Model 7. max 1, a waiter parked; the resource is released while another task arrives and
/// tries `try_acquire` and then `acquire`. The arrival never gets the resource ahead of the
/// parked waiter, by either call.
#[test]
fn parked_waiter_is_not_overtaken() {
    model("parked_waiter_is_not_overtaken", || {
        let (pool, tracker) = pool(1);
        let held = acquire(&pool).unwrap();
        let order = Arc::new(AtomicUsize::new(0));
        let fut = parked_acquire(&pool);
        let o = order.clone();
        let waiter = thread::spawn(move || {
            let h = finish(fut).unwrap();
            (o.fetch_add(1, SeqCst), h)
        });
        let p = pool.clone();
        let o = order.clone();
        let arrival = thread::spawn(move || {
            // Served by `try_acquire` or, failing that, by `acquire`; either way it must come
            // second. (Once the waiter has been served and has given the resource back,
            // `try_acquire` may rightly succeed.)
            let _h = match try_acquire(&p) {
                Some(h) => h,
                None => acquire(&p).unwrap(),
            };
            o.fetch_add(1, SeqCst)
        });
        drop(held);
        let (w, h) = waiter.join().unwrap();
        drop(h);
        let a = arrival.join().unwrap();
        assert!(w < a, "an arrival was served before the parked waiter");
        assert_at_rest(&pool, &tracker);
        assert_all_capacity_usable(&pool, &tracker);
    });
}
