//! Postgres side of the attendance consumer: one transaction per batch of verdicts.
//!
//! [`Store::apply`] is the whole exactly-once story. In one transaction it
//! 1. takes the consumer group's advisory lock (batches of one group never interleave, even
//!    when two instances briefly both think they own a partition) and a batch sequence number;
//! 2. reads the group's stored offsets and drops every record below them (already applied);
//! 3. resolves each verdict against the stored state of its punch (see "Which verdict counts");
//! 4. writes punches once per `punch_id` (multi-row `INSERT .. SELECT FROM UNNEST`), conflicts,
//!    withdrawals and rejections;
//! 5. recomputes, for every employee with a touched punch, the run of punches and work dates
//!    the change can affect ([`dakoku_rules::v2::window::plan`]: a window of the employee's
//!    punches loaded by instant, widened only when the engine asks), merges it with the stored
//!    days around it (weekly overtime, payroll months) and upserts the days and months whose
//!    figures changed, with `revision + 1`;
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
//! A day's or month's revision is bumped only when its figures (or the rules version that
//! computed them) change; a replay of the same log writes nothing and publishes nothing.
//! `computed_at` is the time of the batch that produced the current figures. A day or month
//! that no longer exists (its punches withdrawn, or moved to another work date) keeps its row
//! with zero figures and a bumped revision, so that consumers of the compacted topics, which
//! keep the highest revision, see the change.
//!
//! # Rebuild
//! A rebuild ([`crate::rebuild`]) replays the log through [`Store::apply`] with
//! [`Store::defer_days`] set, then recomputes each rebuilt employee once, in full, with
//! [`Store::recompute`], by the same rules and revision policy as a batch. While a rebuild of the group is
//! unfinished (its row in `attendance_rebuilds`), a batch of the service refuses to write
//! ([`StoreError::RebuildUnfinished`]), checked right after the group's lock: a service started
//! by mistake during a rebuild that is then interrupted must not store the cleared punches
//! again while the deferred days keep stale figures.

//!
//! # Layout
//! - `connection`: [`Store`], the connection and its entry points; [`load_offsets`].
//! - `batch`: one batch's transaction, round trip by round trip.
//! - `resolve`: which verdict counts (unit-tested case by case).
//! - `rulebooks`: each tenant's rules as the engine reads them.
//! - `corrections`: corrections stored exactly once and their employees recomputed.
//! - `closing`: closed months in a write: adjustments instead of new month records.
//! - `requests`: recompute requests of rules changes, served by the consumer.
//! - `recompute`: loading the windows a batch recomputes (or whole histories) and the stored
//!   records around them.
//! - `figures`: recomputed days and months against the stored ones; revision policy.
//! - `rows`: reading rows (punch states, punches, day and month records, the outbox).
//! - `columns`: the writes as column arrays; the record columns follow the engine's figure
//!   lists.
//! - `sql`: the statements, prepared once per connection.
//! - `keys`, `pipeline`: employee and touch keys; pipelined statements.
//! - [`marker`]: the rebuild marker (`attendance_rebuilds`).
//! - `outcome`: what a batch or recompute did ([`Applied`], [`Recomputed`]).

mod batch;
mod closing;
mod columns;
mod connection;
mod corrections;
mod figures;
mod keys;
pub mod marker;
mod outcome;
mod pipeline;
mod recompute;
mod requests;
mod resolve;
mod rows;
mod rulebooks;
mod sql;

use std::time::Duration;

use self::marker::UnfinishedRebuild;

pub use self::connection::{Store, load_offsets};
pub use self::outcome::{Applied, Recomputed};
pub use self::requests::RecomputeRequest;
pub use self::rows::{figures_of, month_figures_of};
pub use self::sql::{figure_columns, month_columns};
pub use crate::counts::Counts;
pub use crate::decode::{Incoming, IncomingCorrection};
/// The order of verdicts of one punch (shared with recheck and audit).
pub use dakoku_schemas::VerdictKey;

/// Errors of the Postgres side. All of them but [`StoreError::RebuildUnfinished`] are retried
/// by the consumer (with backoff, on a new connection); none of them ever advances an offset.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting failed (server down, wrong URL, authentication).
    #[error(transparent)]
    Connect(#[from] dakoku_store::StoreError),
    /// A tenant's stored work rules could not be read (a query failed, or a stored version
    /// does not parse: fix it with `punchctl rules set`).
    #[error(transparent)]
    Rules(#[from] dakoku_store::master::rules::RulesError),
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
            StoreError::Rules(_) => true,
            StoreError::RebuildUnfinished(_) => false,
        }
    }
}
