//! The run: checks, setup, the servers, the phases in order, resources, cleanup.
//!
//! Phases, each with its warm-up:
//! 1. batch throughput, closed loop: ingest-api and the raw producer, alternating in
//!    `--rounds` rounds; then ingest-api's raw topic end offsets are checked against its acks;
//! 2. single-punch throughput, closed loop: ingest-api and the bare endpoint, alternating;
//! 3. latency, open loop at `--latency-load` of each ingest-api peak: batch, then single punch;
//! 4. ingest-api's peak RSS and CPU time, read from `/proc` before it is stopped.
//!
//! # Layout
//! - `bench`: the whole run ([`run`]): build checks, set-up, measuring, clean-up, the report.
//! - `measure`: the servers started and the phases run in order, with the end checks.
//! - `phases`: each phase: batch, single punch, latency.
//! - `rounds`: one round of a phase (progress, per-process CPU) and a phase over its rounds.
//! - `context`: what every phase needs, the process names and the goals.

mod bench;
mod context;
mod measure;
mod phases;
mod rounds;

pub use bench::run;
pub use context::{BATCH_GOAL, RSS_GOAL_MIB, SINGLE_GOAL};
