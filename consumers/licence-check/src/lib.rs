//! `licence-check`: one licence verdict per raw punch, behind the log, exactly once.
//!
//! For each tenant group it serves, it consumes `punches.raw.<group>` (`read_committed`,
//! consumer group `licence-check.<group>`), checks each punch against an in-memory snapshot of
//! the master-data history as of the punch's `at` (a pure function, CONTRACT §3), unless the
//! punch_id was judged before, in which case its stored first verdict is published again
//! unchanged, and produces one `CheckedPunch` to
//! `punches.checked.<group>` keyed `<tenant>/<employee or card>`, in a Kafka transaction
//! that also commits the input offsets. Undecodable records go to `punches.quarantine` with
//! their origin, inside the same transaction; a circuit breaker stops a group whose invalid
//! ratio explodes. Each group runs on its own thread with its own clients, so a poison record
//! or a backlog in one group never holds up another.
//!
//! # Layout
//! - [`config`]: the typed [`Config`] (flags and environment) and its start-up checks.
//! - [`service`]: [`run`] / [`serve`] / [`Service`]: refresher, group threads, `/metrics`,
//!   `/healthz`, `/readyz`, graceful shutdown.
//! - [`worker`]: one group's transactional consume-transform-produce loop: `session` (poll
//!   loop, rebuild after failures), `clients` (producer and group member from the
//!   `dakoku-kafka` factory), `handle` (judge or quarantine one record), `txn` (begin, commit
//!   with the offsets, abort), `context` (rebalance and statistics callbacks, librdkafka's
//!   events logged at their true level), `group`, `produce`.
//! - [`check`](mod@check): the licence check, a pure function of punch and master-data
//!   history, judged as of the punch's `at`.
//! - [`first`]: the first verdict of a `punch_id` stands (pure: stored verdict or judge).
//! - [`verdicts`]: the `punch_verdicts` table (lookup per batch, insert before commit), and
//!   its crash windows.
//! - [`snapshot`]: the master-data snapshot and its LISTEN/NOTIFY + poll refresher.
//! - [`breaker`]: the circuit breaker on undecodable input.
//! - [`recheck`]: re-judging rejected punches after master data is fixed (`punchctl recheck`),
//!   scanning with `dakoku_kafka::scan`.
//! - [`metrics`]: metric names and the Prometheus exporter.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod breaker;
pub mod check;
pub mod config;
pub mod first;
pub mod metrics;
pub mod recheck;
pub mod service;
pub mod snapshot;
pub mod verdicts;
pub mod worker;

pub use check::{Decision, check};
pub use config::{Config, ConfigError, Mode};
pub use service::{RunError, Service, run, serve};
pub use snapshot::{Snapshot, SnapshotCell};
pub use worker::{GroupError, GroupState};
