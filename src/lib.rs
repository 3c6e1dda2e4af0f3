//! # shadowcat-pool
//!
//! A generic, transport-agnostic, lock-free and fair async resource pool, built to sit inside
//! latency-sensitive proxies (pooled upstream TCP/HTTP connections, pooled stdio subprocesses)
//! and model-checked with loom.
//!
//! * **Lock-free.** Idle resources live in a bounded lock-free queue; size, idle and waiter
//!   counts share one packed atomic word. No mutex on the acquire or release path.
//! * **Synchronous release.** Dropping a [`PoolConnection`] puts the resource back with a push and
//!   one CAS: no task spawn, no await, no allocation, and it works outside any runtime.
//! * **Fair.** Waiters are served in arrival order; a released resource is handed to the oldest
//!   waiter, never taken by a fresh arrival.
//! * **Leak-proof.** One RAII capacity guard owns each unit of capacity, so success, error,
//!   timeout, panic, cancellation and close all give it back exactly once.
//!
//! ```
//! use std::time::Duration;
//! use shadowcat_pool::{from_fn, Error, PoolOptions};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let pool = PoolOptions::new()
//!     .max_connections(1)
//!     .acquire_timeout(Duration::from_millis(50))
//!     .build(from_fn(|| async { Ok::<_, std::io::Error>(vec![0u8; 16]) }))
//!     .unwrap();
//!
//! let conn = pool.acquire().await.unwrap();
//! assert_eq!(conn.len(), 16);
//! // The only resource is checked out: a second acquire waits, then times out.
//! assert!(matches!(pool.acquire().await, Err(Error::Timeout(_))));
//! drop(conn);
//! assert!(pool.acquire().await.is_ok());
//! # }
//! ```
//!
//! # Waiting without losing a wake-up
//!
//! Like event-listener's check → listen → re-check → wait loop, an acquire that finds nothing
//! inserts its listener first (fixing its place in line), then re-checks the state word and
//! registers as a waiter with a CAS on the exact word it checked. A release that lands in between
//! changes the word, so the CAS fails and the acquire looks again. See `DESIGN.md` for the states
//! of a unit of capacity, every atomic ordering, and the close protocol.
//!
//! # Modules
//! The source tree shows the architecture: `options` (builder), `manager` (the trait and its
//! closure form), `pool` (the handle), `inner` (the engine: claim, release, close), `state` (the
//! packed word), `guard` (the capacity guard and its typestates), `waiters` (fairness),
//! `acquire` (the slow path), `create`, `connection`, `maintenance`, `stats`, `hooks`, `unwind`
//! (guarded calls into user code), `error`, and `sync` (the std/loom facade).

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod acquire;
mod clock;
mod connection;
mod create;
mod error;
mod guard;
mod hooks;
mod inner;
mod maintenance;
mod manager;
mod options;
mod pool;
mod state;
mod stats;
mod sync;
mod unwind;
mod waiters;
mod waitlist;

pub use connection::PoolConnection;
pub use error::{BoxError, BuildError, CreateTimedOut, Error, HookKind, Panicked};
pub use hooks::{AfterCreate, Judge, Metadata};
pub use manager::{from_fn, FnManager, Manager};
pub use options::{
    PoolOptions, DEFAULT_ACQUIRE_SLOW_THRESHOLD, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAINTENANCE_INTERVAL, DEFAULT_MAX_LIFETIME, DEFAULT_RELEASE_TIMEOUT,
};
pub use pool::{Pool, RetainResult};
pub use stats::{DestroyReason, DestroyedStats, PoolStats};

/// The maximum `max_connections` a pool accepts.
pub const MAX_CONNECTIONS_LIMIT: usize = state::MAX_SIZE;

/// The README's code blocks, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// MIGRATION.md's code blocks for this crate, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../MIGRATION.md")]
pub struct MigrationDoctests;
