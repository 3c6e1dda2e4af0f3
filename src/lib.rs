//! # shadowcat-pool
//!
//! A generic, transport-agnostic, lock-free and fair async resource pool, built to sit inside
//! latency-sensitive proxies (pooled upstream TCP/HTTP connections, pooled stdio subprocesses)
//! and model-checked with loom.
//!
//! * **Lock-free.** Idle resources live in a bounded lock-free queue; size, idle and waiter
//!   counts share one packed atomic word. No mutex on the acquire or release path while nobody
//!   waits; a wait takes the waiter line's lock twice.
//! * **Synchronous release.** Dropping a [`PoolConnection`] puts the resource back at once (into
//!   the worker's hot slot or the idle queue, or to the oldest waiter): no task spawn, no await,
//!   no allocation, and it works outside any runtime. (An `after_release` hook runs in a spawned
//!   task; a resource destroyed on release allocates its teardown.)
//! * **Fair.** Waiters are served in arrival order; a released resource is handed to the oldest
//!   waiter, not taken by a fresh arrival (but for two short windows where a release races a
//!   registering waiter, `DESIGN.md` §8).
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
//! # Design
//!
//! `DESIGN.md` in the repository explains the engine: the module graph and a reading order, the
//! states of a unit of capacity, the wake-up protocol and its numbered races, every atomic
//! ordering, close, the hazard classes the tests guard, and the loom models.
//!
//! # Modules
//! The synchronous, loom-checked core is `engine/` (the state word, the waiter line, handoff,
//! the capacity guard, and the std/loom facade); it knows nothing of resources or tokio. The
//! async layer above it: `pool` (the handle), `acquire`, `create`, `release`, `teardown`,
//! `maintenance`, `connection`, `lease` and `tracked` (a resource on its way through), `shared`
//! (what handles point to), `options` and `config`, `manager`, `hooks`, `callback` (guarded calls
//! into user code), `runtime`, `clock`, `stats` and `error`. `keyed` is one pool over many
//! upstreams ([`KeyedPool`]), built from the same engine. DESIGN.md §1 draws the module graph.

#![deny(missing_docs)]
// `unsafe` is denied everywhere but `engine/hot.rs` (the hot slots' cell and park).
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod acquire;
mod callback;
mod clock;
mod config;
mod connection;
mod create;
mod engine;
mod error;
mod hooks;
pub mod keyed;
mod lease;
mod maintenance;
mod manager;
mod options;
mod pool;
pub mod profiles;
mod release;
mod runtime;
mod shared;
mod stats;
mod teardown;
mod telemetry;
mod tracked;

pub use config::DEFAULT_BACKGROUND_CREATE_LIMIT;
pub use connection::PoolConnection;
pub use error::{
    BoxError, BuildError, CreateTimedOut, Error, HookKind, HookTimedOut, Panicked, ResizeError,
};
pub use hooks::{AfterCreate, Judge, Metadata};
pub use keyed::{
    keyed_fn, KeyStats, KeyedConnection, KeyedFnManager, KeyedManager, KeyedPool, KeyedPoolOptions,
    KeyedPoolStats, Saturation,
};
pub use manager::{from_fn, BoxFuture, FnManager, Manager};
pub use options::{
    PoolOptions, DEFAULT_ACQUIRE_SLOW_THRESHOLD, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAINTENANCE_INTERVAL, DEFAULT_MAX_LIFETIME, DEFAULT_RELEASE_TIMEOUT,
};
pub use pool::{Pool, RetainResult};
pub use stats::{DestroyReason, DestroyedStats, PoolStats};

/// The maximum `max_connections` a pool accepts.
pub const MAX_CONNECTIONS_LIMIT: usize = engine::MAX_SIZE;

/// The README's code blocks, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// MIGRATION.md's code blocks for this crate, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../MIGRATION.md")]
pub struct MigrationDoctests;
