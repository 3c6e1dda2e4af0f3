//! A counting global allocator for the memory and allocation tests: on the thread that turns it
//! on, it keeps the net heap bytes allocated and the number of allocations (`alloc`, `realloc`).
//! A test file includes it with `#[path = "support/counting_alloc.rs"] mod counting_alloc;` and
//! installs it with `#[global_allocator] static GLOBAL: counting_alloc::Counting =
//! counting_alloc::Counting;`. Everything the tests measure runs on the test's own thread (on a
//! current-thread runtime where a runtime is needed).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The allocator: the system allocator, counting on threads that watch.
pub struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static NET_BYTES: Cell<isize> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: isize, allocations: usize) {
    if WATCHING.with(Cell::get) {
        NET_BYTES.with(|n| n.set(n.get() + bytes));
        ALLOCATIONS.with(|n| n.set(n.get() + allocations));
    }
}

// SAFETY: forwards every call to the system allocator unchanged; the thread-locals are
// const-initialised `Cell`s, so touching them never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize, 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize, 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize), 0);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize, 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Zeroes both counts and starts counting on this thread.
pub fn start() {
    NET_BYTES.with(|n| n.set(0));
    ALLOCATIONS.with(|n| n.set(0));
    WATCHING.with(|w| w.set(true));
}

/// Stops counting on this thread (the counts keep their values).
pub fn stop() {
    WATCHING.with(|w| w.set(false));
}

/// Net bytes allocated and not freed since `start`.
pub fn net_bytes() -> isize {
    NET_BYTES.with(Cell::get)
}

/// Allocations (`alloc`, `alloc_zeroed`, `realloc`) since `start`.
pub fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Runs `f` counting: its net bytes, its allocations, and its result.
pub fn measure<R>(f: impl FnOnce() -> R) -> (isize, usize, R) {
    start();
    let r = f();
    stop();
    (net_bytes(), allocations(), r)
}
