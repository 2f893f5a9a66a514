//! `ingest-bench`: how much does accepting a punch cost, compared with what the parts under
//! the acceptor can do on their own?
//!
//! One run sets up a fresh tenant group on the local stack (Postgres rows, Kafka topics, device
//! tokens), starts a release `ingest-api` and a bare HTTP endpoint as separate processes, and
//! measures side by side: batch ingest through `ingest-api` against a raw rdkafka producer with
//! the acceptor's own producer settings; single-punch requests against the bare endpoint;
//! open-loop latency at a fraction of each peak; and the acceptor's peak RSS and CPU time. It
//! then removes what it created.
//!
//! `compute-bench` (its own binary) measures `punchctl attendance compute` on generated data.
//!
//! # Layout
//! - [`cli`]: the command line (flags, defaults, `--quick`).
//! - [`setup`]: the bench tenant group (Postgres rows, topics, tokens) and its removal.
//! - [`process`]: child processes (start, readiness, stop) and `/proc` accounting.
//! - [`load`]: the load generator: workers, pacing (closed or open loop), latency histograms,
//!   and the two senders (HTTP, raw Kafka producer).
//!   - `load::fleet`: the devices and their punches' bodies and records.
//!   - `load::senders`: the `Sender` trait, the HTTP and raw Kafka senders.
//!   - `load::http`: the bare HTTP/1.1 client.
//!   - `load::drive`: pacing, the workers and their outcome.
//! - [`bare`]: the bare endpoint, the HTTP baseline.
//! - [`report`]: the results, the human summary and the JSON document.
//! - [`run`]: the run: build checks, set-up, the phases in order, clean-up.
//!   - `run::bench`: the whole run and its report.
//!   - `run::measure`: the servers started, the phases in order, the end checks.
//!   - `run::phases`: batch, single punch, latency.
//!   - `run::rounds`: one round of a phase (progress, CPU) and a phase over its rounds.
//!   - `run::context`: what every phase needs, process names, goals.
//! - [`compute`]: `compute-bench`, the offline engine at scale.
//!   - `compute::data`: the rules file and generated punch lines.
//!   - `compute::measure`: one measured run of `punchctl attendance compute`, output checked.

pub mod bare;
pub mod cli;
pub mod compute;
pub mod load;
pub mod process;
pub mod report;
pub mod run;
pub mod setup;

pub use cli::{Cli, Command, RunArgs};
