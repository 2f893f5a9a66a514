//! The storm harness: simulated recorders against the local stack, the 2020 incident replayed
//! (`../shared/INCIDENT.md`) next to a synchronous control, fault injection and security
//! probes, each ending in an audit of what was acked against what was stored.
//!
//! # Layout
//! - [`sim`]: the recorder simulator (`punch-storm`): recorders with pools and a trickle,
//!   `legacy` and `contract` resend behaviours, the exact acked set. Entry point
//!   [`sim::run`]`(`[`sim::StormConfig`]`, shutdown) -> `[`sim::Outcome`].
//!   - `sim::config`, `sim::fleet`, `sim::live`, `sim::outcome`: what a storm is told, the
//!     recorders and their punches, the live counters, what it did.
//!   - `sim::recorder`: one recorder's loop; `sim::drive`: the recorders and the coordinator.
//! - [`http`]: the minimal keep-alive HTTP client the recorders and probes use.
//! - [`provision`]: the storm's tenants, licensed employees and recorders with tokens.
//! - [`audit`]: acked vs stored: lost, doubled, stored-but-unacked.
//! - [`lag`]: the consumers' lag read from outside (end offsets against licence-check's
//!   committed offsets and attendance's offsets in Postgres), and whether they caught up.
//! - [`topics`]: a run's group topics created and deleted (`dakoku_kafka`).
//! - [`scenario`]: named scenarios (incident, contract) run against the pipeline or the
//!   control, with the sampler (lag, RSS, CPU, health probe) and the report.
//!   - `scenario::config`, `scenario::run`, `scenario::services`, `scenario::storm`: the
//!     scenarios, one run end to end, its processes, the storm and its catch-up.
//!   - `scenario::probe`, `scenario::sampler`: the `/healthz` probe and the per-second
//!     sampler.
//!   - `scenario::report`, `scenario::summary`: the report and its human summary.
//! - [`control`]: the deliberately classic synchronous endpoint (licence check and Postgres
//!   write inside the request), the incident's architecture, for comparison.
//! - [`sample`]: one second of a scenario run, the sampler's output and the plot's input.
//! - [`plot`]: the SVG plot of acked/s, refusals/s and lag.
//! - `faults`: scripted fault injection (broker, consumers, Postgres, acceptor): `fault`
//!   (kinds, options, result), `stack` (a private stack), `services` (child processes),
//!   `run` (one run by stage).
//! - `probes`: security probes (tokens, tenants, sizes, slowloris, malformed input):
//!   `fixture` (env, tenants, report), `cases` (the catalogue), `send`, `raw` (the raw topic
//!   checked for leaks), `run`.
//! - `serve`: `storm serve <service>`, each service as a killable child process.

pub mod audit;
pub mod control;
pub mod faults;
pub mod http;
pub mod lag;
pub mod plot;
pub mod probes;
pub mod provision;
pub mod sample;
pub mod scenario;
pub mod serve;
pub mod sim;
pub mod topics;
