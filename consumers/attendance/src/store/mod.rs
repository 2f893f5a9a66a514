//! Postgres side of the attendance consumer: one transaction per batch of verdicts.
//!
//! [`Store::apply`] is the whole exactly-once story. In one transaction it
//! 1. takes the consumer group's advisory lock (batches of one group never interleave, even
//!    when two instances briefly both think they own a partition) and a batch sequence number;
//! 2. reads the group's stored offsets and drops every record below them (already applied);
//! 3. resolves each verdict against the stored state of its punch (see "Which verdict counts");
//! 4. writes punches once per `punch_id` (multi-row `INSERT .. SELECT FROM UNNEST`), conflicts,
//!    withdrawals and rejections;
//! 5. recomputes every touched employee-day from all its stored, counting punches with
//!    [`dakoku_rules::compute_day`] and upserts the days whose figures changed, with `revision + 1`;
//! 6. stores the next offsets (and the publish mark of the previous batch) and commits.
//!
//! Nothing is written outside that transaction, so a crash or a lost connection at any point
//! leaves Postgres as it was before the batch, and the batch is read again from the stored
//! offsets.
//!
//! # Which verdict counts
//! The latest verdict of a `punch_id` wins, ordered by [`VerdictKey`]: master-data version,
//! then `checked_at`, then a rejection after an acceptance. An accepted verdict stores the punch
//! once; a later rejection *withdraws* it (the row stays with `withdrawn = true`, its day is
//! recomputed without it); a later acceptance counts it again. A rejection of a punch never
//! stored is remembered in `punch_rejections` (so an older acceptance read afterwards from
//! another partition does not bring it in) and adds nothing. Offsets advance for all of them.
//!
//! A verdict whose punch content (card, kind, time, offset; and employee for an acceptance)
//! differs from the stored punch of the same `punch_id` is a conflict: kept in
//! `punch_conflicts`, never allowed to change the stored punch or its standing.
//!
//! # Revisions
//! A day's revision is bumped only when its figures change (any of the contract's columns or
//! `double_taps`); a replay of the same log writes nothing and publishes nothing. `computed_at`
//! is the time of the batch that produced the current figures. A day whose punches are all
//! withdrawn keeps its row with zero figures (and a bumped revision), so that consumers of the
//! compacted topic, which keep the highest revision, see the change.
//!
//! # Rebuild
//! A rebuild ([`crate::rebuild`]) replays the log through [`Store::apply`] with
//! [`Store::defer_days`] set, then computes each rebuilt day once with [`Store::recompute`],
//! by the same rules and revision policy as a batch. While a rebuild of the group is
//! unfinished (its row in `attendance_rebuilds`), a batch of the service refuses to write
//! ([`StoreError::RebuildUnfinished`]), checked right after the group's lock: a service started
//! by mistake during a rebuild that is then interrupted must not store the cleared punches
//! again while the deferred days keep stale figures.

//!
//! # Layout
//! - `connection`: [`Store`], the connection and its entry points; [`load_offsets`].
//! - `batch`: one batch's transaction, round trip by round trip.
//! - `resolve`: which verdict counts (unit-tested case by case).
//! - `days`: recomputing the touched days by the rules, revision policy.
//! - `rows`: reading rows (calendars, punch states, day figures, the outbox).
//! - `columns`: the writes as column arrays; the days' columns follow `dakoku_rules::fields`.
//! - `sql`: the statements, prepared once per connection.
//! - `keys`, `pipeline`: the day key; pipelined statements.
//! - [`marker`]: the rebuild marker (`attendance_rebuilds`).
//! - `outcome`: what a batch or recompute did ([`Applied`], [`Recomputed`]).

mod batch;
mod columns;
mod connection;
mod days;
mod keys;
pub mod marker;
mod outcome;
mod pipeline;
mod resolve;
mod rows;
mod sql;

use std::time::Duration;

use self::marker::UnfinishedRebuild;

pub use self::connection::{Store, load_offsets};
pub use self::outcome::{Applied, Recomputed};
pub use self::rows::figures_of;
pub use self::sql::figure_columns;
pub use crate::counts::Counts;
pub use crate::decode::Incoming;
/// The order of verdicts of one punch (shared with recheck and audit).
pub use dakoku_schemas::VerdictKey;

/// Errors of the Postgres side. All of them but [`StoreError::RebuildUnfinished`] are retried
/// by the consumer (with backoff, on a new connection); none of them ever advances an offset.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting failed (server down, wrong URL, authentication).
    #[error(transparent)]
    Connect(#[from] dakoku_store::StoreError),
    /// A statement failed; the transaction was rolled back.
    #[error("Postgres: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// The batch did not finish within the statement budget; it was rolled back.
    #[error("Postgres did not answer within {0:?}; batch rolled back")]
    Timeout(Duration),
    /// A rebuild of the group cleared its scope and did not finish: nothing is written until
    /// it is run again (the consumer stops the group; see [`crate::rebuild`]).
    #[error("{}; batch rolled back. Run `{}`", .0.describe(), .0.command())]
    RebuildUnfinished(UnfinishedRebuild),
}

impl StoreError {
    /// Whether the connection is unusable afterwards (reconnect before retrying).
    pub fn connection_lost(&self) -> bool {
        match self {
            StoreError::Connect(_) | StoreError::Timeout(_) => true,
            StoreError::Query(error) => error.is_closed() || error.as_db_error().is_none(),
            StoreError::RebuildUnfinished(_) => false,
        }
    }
}
