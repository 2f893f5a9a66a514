//! One tenant group's consume-transform-produce loop, on a thread of its own.
//!
//! Exactly once, Kafka to Kafka: records are read `read_committed` from `punches.raw.<group>`
//! and each becomes one `CheckedPunch` in `punches.checked.<group>` (or, if undecodable, one
//! `QuarantinedInput` in `punches.quarantine`) inside a Kafka transaction that also carries the
//! input offsets (`send_offsets_to_transaction`). The verdicts and the offsets commit together
//! or not at all, so a crash at any point leaves each raw record with exactly one verdict in
//! the committed log.
//!
//! Recovery rules:
//! - a restarted instance initialises its transactional producer with the same
//!   `transactional.id`, which fences the crashed one and aborts its open transaction;
//! - partitions revoked by a rebalance abort the open transaction in the rebalance callback
//!   (their new owner restarts from the committed offsets);
//! - any other failed transaction is aborted and the session is rebuilt (new producer and
//!   consumer, positions from the committed offsets): nothing is skipped, nothing doubled;
//! - fencing (another live instance with this instance's id) and the circuit breaker stop the
//!   group with an error; other groups of the process keep running.
//!
//! # Layout
//! - `group`: what the service and a group's thread share (state, counters, errors).
//! - `produce`: the transactional producer, back-pressured sends, and how a session ends.
//! - `context`: the consumer's callbacks (abort on revoke, lag from statistics, logging).
//! - `clients`: the transactional producer and the group member, from the client factory.
//! - `txn`: the transaction cycle: begin, commit with the input offsets, abort.
//! - `handle`: one raw record into its verdict or quarantine record.
//! - `session`: [`run_group`], one life of the clients, and the poll loop over the above.

mod clients;
mod context;
mod group;
mod handle;
mod produce;
mod session;
mod txn;

pub use group::{GroupError, GroupShared, GroupState, GroupStats, WorkerEnv};
pub use handle::QUARANTINE_SOURCE;
pub use session::run_group;
