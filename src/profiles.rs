//! Recommended [`PoolOptions`] for the upstreams a proxy pools. Each is a starting point:
//! adjust any knob afterwards with the usual builder methods.
//!
//! ```
//! use shadowcat_pool::profiles;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let pool = profiles::http1_upstream()
//!     .max_connections(32) // the profile's 64 is too many for this upstream
//!     .build_with(|| async { Ok::<_, std::io::Error>(()) })
//!     .unwrap();
//! assert_eq!(pool.max_connections(), 32);
//! # }
//! ```

use std::time::Duration;

use crate::options::PoolOptions;

/// A pool of stdio subprocesses (an MCP server, a language server): each create spawns a child
/// and runs a handshake, so resources are few, expensive and kept warm.
///
/// | knob | value | why |
/// |---|---|---|
/// | `max_connections` | 4 | each child costs a process and its memory |
/// | `min_connections` | 1 | spawning and initialising a child takes 100s of ms: keep one ready |
/// | `warmup_concurrency` | 1 | never spawn a burst of children at once |
/// | `create_timeout` | 10 s | spawn plus the protocol's initialize handshake |
/// | `acquire_timeout` | 30 s | with few resources, waiting behind a slow request is normal |
/// | `test_before_acquire` | on | a child can hang without exiting; a ping finds it |
/// | `idle_timeout` | 5 min | an idle child holds memory for nothing |
/// | `max_lifetime` | 1 h | bounds leaks inside a long-running child |
/// | `release_timeout` | 5 s | killing and reaping a child |
pub fn stdio_subprocess<T>() -> PoolOptions<T> {
    PoolOptions::new()
        .max_connections(4)
        .min_connections(1)
        .warmup_concurrency(1)
        .create_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(true)
        .idle_timeout(Duration::from_secs(5 * 60))
        .max_lifetime(Duration::from_secs(60 * 60))
        .release_timeout(Duration::from_secs(5))
}

/// A pool of HTTP/1.1 connections to one upstream: cheap creates, many resources, and idle
/// connections dropped before the server's keep-alive closes them.
///
/// | knob | value | why |
/// |---|---|---|
/// | `max_connections` | 64 | HTTP/1.1 carries one request per connection at a time |
/// | `min_connections` | 0 | a TCP connect is cheap; nothing to keep warm |
/// | `warmup_concurrency` | 4 | unused at `min_connections` 0; bounds bursts if raised |
/// | `create_timeout` | 2 s | a connect (and TLS handshake) that takes longer is failing |
/// | `acquire_timeout` | 2 s | a proxy fails fast (a 503) instead of queueing requests |
/// | `test_before_acquire` | off | a check would cost a round trip per request; use `Manager::is_open` |
/// | `idle_timeout` | 30 s | below the 60-75 s keep-alive of common servers and load balancers |
/// | `max_lifetime` | 10 min | picks up DNS and load-balancer changes |
/// | `max_waiters` | 1024 | sheds load instead of building an unbounded queue |
pub fn http1_upstream<T>() -> PoolOptions<T> {
    PoolOptions::new()
        .max_connections(64)
        .min_connections(0)
        .warmup_concurrency(4)
        .create_timeout(Duration::from_secs(2))
        .acquire_timeout(Duration::from_secs(2))
        .test_before_acquire(false)
        .idle_timeout(Duration::from_secs(30))
        .max_lifetime(Duration::from_secs(10 * 60))
        .max_waiters(1024)
}

/// A pool of database-like sessions (a connection with server-side state): moderate creates,
/// a modest bound the server sets, and a check before reuse, as sqlx does by default.
///
/// | knob | value | why |
/// |---|---|---|
/// | `max_connections` | 10 | servers limit sessions; sqlx's default |
/// | `min_connections` | 1 | a login handshake is slow; keep one ready |
/// | `warmup_concurrency` | 2 | the default |
/// | `create_timeout` | 10 s | connect, TLS and authentication |
/// | `acquire_timeout` | 30 s | sqlx's default: queries queue behind each other |
/// | `test_before_acquire` | on | sqlx's default: a session can die while idle |
/// | `idle_timeout` | 10 min | sqlx's default |
/// | `max_lifetime` | 30 min | sqlx's default |
pub fn database<T>() -> PoolOptions<T> {
    PoolOptions::new()
        .max_connections(10)
        .min_connections(1)
        .warmup_concurrency(2)
        .create_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(true)
        .idle_timeout(Duration::from_secs(10 * 60))
        .max_lifetime(Duration::from_secs(30 * 60))
}
