//! Named storm scenarios against the local stack, and the report they produce.
//!
//! A run is self-contained: its own database (`dakoku_storm_<suffix>`, migrated), its own
//! tenant group (`storm-<suffix>`) with its topics, tenants, licensed employees and recorders
//! (tokens signed with a key of its own), and its own processes started from the release
//! binaries on free ports: `ingest-api`, `licence-check` (with the scenario's per-punch
//! delay) and `attendance` for the pipeline, or `storm control-server` for the synchronous
//! control. While the simulator storms, a sampler records once a second the acceptor's RSS and
//! CPU (`/proc`), the consumers' lag (high watermarks against licence-check's committed group
//! offsets and attendance's offsets in Postgres), and the storm's counters; a separate probe
//! times `GET /healthz` every 100 ms on a connection and a thread of its own. After the storm it waits for
//! the consumers to catch up, stops the processes, audits acked against stored, and removes
//! the topics and the database (unless `keep`).
//!
//! - `incident`: the 2020 month-start replayed: legacy recorders (one punch per request,
//!   resend every second, `Retry-After` ignored) with full pools, a month-start trickle, and a
//!   slowed licence check. Capped in time: legacy pools drain at the per-device rate limit by
//!   design, so what is left is reported.
//! - `contract`: the same fleet with contract recorders (batches, `Retry-After`, backoff with
//!   full jitter), no delay, until every pool is drained.
//!
//! # Layout
//! - `config`: [`ScenarioName`], [`Target`], [`ScenarioConfig`] and the documented values.
//! - `run`: one run from start to end ([`run`]), the clean-up and the files written.
//! - `services`: the run's processes (pipeline or control), started and stopped.
//! - `storm`: the storm with its probe and sampler, the catch-up wait, the audits.
//! - `probe`: the `/healthz` probe on a thread of its own.
//! - `sampler`: one [`crate::sample::Sample`] a second, the lag read by [`crate::lag`].
//! - `report`: [`Report`] and its figures.
//! - `summary`: the human summary table.

mod config;
mod probe;
mod report;
mod run;
mod sampler;
mod services;
mod storm;
mod summary;

pub use config::{ScenarioConfig, ScenarioName, Target, default_out_dir};
pub use report::{LagFigures, Latency, PunchctlAudit, Report, Resources, StormFigures};
pub use run::run;
pub use summary::{summary, summary_table};
