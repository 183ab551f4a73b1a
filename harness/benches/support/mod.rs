//! What the benches share: their `main` with a choice of clock
//! (`clock_main!`), the benchmarking thread's CPU time as a criterion
//! measurement (`thread_cpu`, Linux), and the PostgreSQL and Redis servers
//! to measure (`services`). Each bench uses a part.
//!
//! A module folder without a `main.rs`, so cargo does not take it for a
//! bench of its own.
#![allow(dead_code, unused_macros, reason = "each bench uses a part")]

#[macro_use]
mod clock_main;
pub(crate) mod services;
#[cfg(target_os = "linux")]
pub(crate) mod thread_cpu;
