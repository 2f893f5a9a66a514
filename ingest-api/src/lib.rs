//! `ingest-api`: the thin HTTP acceptor recorders send punches to.
//!
//! It authenticates the device from its signed token, validates the batch, appends punches to
//! `punches.raw.<group>` and answers with what Kafka has durably taken. No database and no
//! licence check on the request path; memory is bounded by in-flight budgets; refusals are
//! cheap and carry a jittered `Retry-After`.
//!
//! # Layout
//! - [`config`]: the typed configuration (Kafka settings flattened from `KafkaArgs`) and its
//!   start-up checks.
//! - [`app`]: the router and handlers (`/v1/punches`, health, readiness, metrics, OpenAPI).
//! - [`state`]: [`AppState`], what every request shares, and how it is built.
//! - [`admission`]: the cheap refusals decided from headers before the body is read.
//! - [`accept`]: one batch from envelope to receipt, one outcome per punch.
//! - [`server`]: [`serve`], the accept loop, background tasks and graceful shutdown.
//! - [`linger`]: lingering close, so a refused client reads its answer instead of a reset.
//! - [`request`]: parsing and validation of a batch (pure, fuzzed).
//! - [`snapshot`]: the in-memory master data (routing, revocations, pauses) and its refresher.
//! - [`limits`]: per-device rate limits, in-flight budgets, jitter.
//! - [`publisher`]: the Kafka producer, from the `dakoku-kafka` client factory.
//! - [`error`]: every refusal and its status; why the acceptor cannot start.
//! - [`metrics`]: metric names and the Prometheus exporter.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod accept;
pub mod admission;
pub mod app;
pub mod config;
pub mod error;
pub mod limits;
pub mod linger;
pub mod metrics;
pub mod publisher;
pub mod request;
pub mod server;
pub mod snapshot;
pub mod state;

pub use app::{AppState, app};
pub use config::Config;
pub use server::serve;
