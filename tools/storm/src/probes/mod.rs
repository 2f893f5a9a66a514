//! Security probes: hostile and broken requests against a running acceptor, each checked for
//! its documented status and error code (CONTRACT §1), then the raw topic checked for leaks.
//!
//! The probes run under two throw-away tenants of one group (A and B) with a live device each
//! and a revoked one. Control punches (valid, acked) bracket the probes: once the last control
//! is acked, everything the probes could have appended is in the log, so reading the raw topic
//! to its end then shows exactly what got through. The only records of the probe tenants
//! allowed there are the controls.
//!
//! # Layout
//! - `fixture`: [`ProbeEnv`], the probe tenants ([`provision`], [`remove`]) and the report.
//! - `cases`: the catalogue of hostile and broken requests and their documented answers.
//! - `send`: sending a case, the controls, and the slow-header and slow-body probes.
//! - `raw`: the raw topic read to its end, for leaks and missing controls.
//! - `run`: every probe in order ([`run`]).

mod cases;
mod fixture;
mod raw;
mod run;
mod send;

pub use fixture::{ProbeEnv, ProbeFixture, ProbeOutcome, ProbeReport, provision, remove};
pub use run::run;
