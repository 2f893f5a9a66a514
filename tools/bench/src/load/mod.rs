//! The load generator: `workers` tasks, each owning a disjoint share of the devices and one
//! sender (an HTTP keep-alive connection, or a handle on a raw Kafka producer), paced closed
//! loop (next request as soon as the answer comes) or open loop (requests on a fixed schedule,
//! latency measured from the scheduled time, so a slow answer cannot hide the queueing it
//! causes: no coordinated omission).
//!
//! # Layout
//! - `fleet`: [`Fleet`], the devices load is sent for, and the bodies and records of their
//!   punches.
//! - `senders`: [`Sender`] and its two kinds, [`HttpSender`] and [`KafkaSender`].
//! - `http`: the bare HTTP/1.1 client ([`connect`], [`get`]).
//! - `drive`: pacing ([`Pace`], [`Spec`], [`Window`]), the workers and their [`Outcome`].

mod drive;
mod fleet;
mod http;
mod senders;

pub use drive::{Outcome, Pace, Spec, Window, drive};
pub use fleet::Fleet;
pub use http::{connect, get};
pub use senders::{Failure, HttpSender, KafkaSender, PUNCHES_PATH, Sender, parse_receipt};
