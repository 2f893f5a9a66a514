//! The consume loop of one tenant group: read verdicts, batch them, write each batch in one
//! Postgres transaction (see [`crate::store`]), then publish the changed days.
//!
//! Offsets live in Postgres, next to the rows they produced. On every assignment the rebalance
//! callback reads them and assigns the partitions *at* those offsets (librdkafka's recommended
//! way to keep offsets outside Kafka), so a restarted or rebalanced consumer continues exactly
//! after the last committed batch, whatever Kafka's own committed offsets say; those are
//! committed too, after Postgres, for lag monitoring only. An open batch is dropped on any
//! rebalance: its records are read again from the stored offsets by whoever owns them now.
//!
//! Failure handling: a Postgres error rolls the batch back; the same batch is retried with
//! exponential backoff on a new connection, and nothing is read or committed past it until it
//! is written. A failed publish is retried the same way; days committed but not yet published
//! are published again at the next start (the outbox mark in `attendance_publish_marks`).
//! Shutdown stops reading, commits the open batch within the drain budget or rolls it back,
//! and leaves the group.
//!
//! A group whose `punchctl rebuild` was interrupted (its row in `attendance_rebuilds`) is not
//! consumed: the group stops with [`ConsumerError::UnfinishedRebuild`], naming the command to
//! run, before anything is read (and, for a service started during the rebuild, at its first
//! batch after the rebuild's lock is released). Consuming would store the cleared punches
//! again while the days the rebuild deferred keep stale figures, silently.

//!
//! # Layout
//! - `run`: the loop (reader and writer tasks, batching, the batch's retries, shutdown).
//! - `assign`: the rebalance callback that assigns partitions at the stored offsets.
//! - `publish`: the producer and the outbox of committed days and months.
//! - `rules_change`: serving the recompute requests of rules changes between batches.
//! - `corrections`: serving the corrections topic (offsets in Postgres too) and month
//!   closings between batches.
//! - `backoff`: the retry delay.
//! - `error`: [`ConsumerError`].

mod assign;
mod backoff;
mod corrections;
mod error;
mod publish;
mod rules_change;
mod run;

pub use self::error::ConsumerError;
pub(crate) use self::publish::Producer;
pub(crate) use self::run::{Shared, run_group};
