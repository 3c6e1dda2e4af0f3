//! Shared by the criterion benches (`benches/*.rs`) and `examples/compare.rs`: the two baseline
//! pools, adapters for shadowcat-pool, deadpool and bb8, the scenario drivers, and the keyed
//! scenario (S8) with its own pools (`keyed`).
//!
//! This module is not part of the crate: it is compiled into each bench and example that
//! includes it, so not every item is used by every one of them.
#![allow(dead_code)]

pub mod keyed;
pub mod load;
pub mod pools;
pub mod scenarios;
