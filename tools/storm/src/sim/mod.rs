//! The recorder simulator behind `punch-storm`: `N` recorders, each with a pool of pending
//! punches and a live trickle of new ones, uploading to the recorder API (`POST /v1/punches`)
//! with one of two resend behaviours, and recording exactly which punches were acked so the
//! end state can be audited.
//!
//! - [`Behaviour::Legacy`] is the incident's recorder (`INCIDENT.md`): one punch per request,
//!   the oldest first; the next one goes out as soon as one is acked; after anything else
//!   (429, 503, 5xx, timeout, broken connection) it waits exactly `legacy_resend` (1 s) and
//!   sends the same punch again. It ignores `Retry-After`.
//! - [`Behaviour::Contract`] follows the recorder contract (CONTRACT §1): batches in `seq`
//!   order, waits `Retry-After` when given, else exponential backoff with full jitter
//!   (`backoff_base` doubling up to `backoff_cap`).
//!
//! Punch `seq` of a recorder is a pure function of the recorder and `seq` ([`punch_of`]), so
//! provisioning, the audit and tests agree on what was sent without keeping it. Each
//! recorder's employees punch a realistic day (in, break, back, out), one work date after
//! another: a pool of 10,000 punches from 50 employees is 50 days of attendance.
//!
//! [`run`] drives the storm until `shutdown` resolves, `max_duration` passes, or (with
//! `stop_when_drained`) every recorder has emptied its initial pool. Requests in flight are
//! always answered before it returns, so the acked set is exact.
//!
//! # Layout
//! - `config`: [`Behaviour`], [`StormConfig`] and its checks, [`SimError`].
//! - `fleet`: [`Recorder`] and the punches it sends ([`punch_of`]).
//! - `live`: the counters readable while a storm runs ([`Live`]) and [`Tally`].
//! - `outcome`: what a storm did ([`Outcome`], [`SeqSet`] of acked seqs).
//! - `recorder`: one recorder's loop, its pending punches and resend waits.
//! - `drive`: [`run`]: the recorders spawned and the coordinator that stops them.

mod config;
mod drive;
mod fleet;
mod live;
mod outcome;
mod recorder;

pub use config::{Behaviour, PUNCHES_PATH, SimError, StormConfig};
pub use drive::{run, run_with};
pub use fleet::{Recorder, SimPunch, punch_of};
pub use live::{Live, Tally};
pub use outcome::{Outcome, RecorderOutcome, SeqSet, StopReason};
pub use recorder::full_jitter;
