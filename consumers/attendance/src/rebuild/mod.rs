//! Rebuild of the attendance projection of a tenant group, or of one tenant in it: its punch
//! rows are cleared, `punches.checked.<group>` is replayed from the beginning up to its end at
//! the start, and every day of the scope is recomputed, so that Postgres says exactly what the
//! log says (DESIGN "Recovery"). `punchctl rebuild` drives it in-process; the group's
//! attendance service must be stopped (punchctl checks the consumer group is empty).
//!
//! How, and why so:
//! - **One connection holds the group's lock throughout.** [`Rebuild::prepare`] takes a
//!   session advisory lock on the key every batch of the group takes for its transaction, on
//!   the connection that then clears, replays and recomputes. An attendance service started
//!   by mistake mid-rebuild waits (its batch retries) instead of interleaving, and a second
//!   rebuild of the group is refused ([`RebuildError::Locked`]).
//! - **Clear in one transaction** ([`Rebuild::clear`]): the scope's `punch_conflicts`,
//!   `punches` and `punch_rejections`, and the group's `consumer_offsets` set to the log's
//!   first offsets. `attendance_days` is deliberately *not* cleared (see the recompute).
//! - **Replay through [`Store::apply`]** ([`Rebuild::replay`]), the service's own batch
//!   transaction (which verdict counts, conflicts, withdrawals, offsets), with
//!   [`Store::defer_days`]: batches store punches and offsets and leave the scope's days alone.
//!   Partitions are assigned by hand (no group membership, no rebalances) and read
//!   `read_committed` up to the end offsets taken at the start; later records are left to the
//!   service. A reader task decodes while the previous batch is written.
//! - **Recompute each day of the scope once, at the end** ([`Rebuild::recompute`], with
//!   [`Store::recompute`]), against the row it replaces: an unchanged day keeps its row exactly
//!   as it was (revision, `computed_at`, batch); a changed day gets `revision + 1`; a day left
//!   with nothing counting keeps a zero row with `revision + 1`. So revisions never go back
//!   (consumers of the compacted `attendance.daily` keep the highest), only real changes enter
//!   the outbox (the service publishes them when it starts), and payroll reading
//!   `attendance_days` during a rebuild sees the previous figures, never half-replayed days.
//!   Clearing the table and replaying it batch by batch as the service does would restart
//!   revisions at 1 and put every day through partial states.
//! - **One tenant**: only its rows are cleared and recomputed, but it shares partitions with
//!   the group's other tenants, so the whole topic is replayed: their verdicts are found
//!   stored already (idempotent: nothing written), and any they had not had yet (a lagging
//!   service) are applied as the service would, days included.
//! - **Interrupted** (Ctrl-C, a crash, Postgres gone): the days are still the previous ones and
//!   the punches partly replayed; run the rebuild again. That is enforced, not just advised:
//!   the clear writes the group's row in `attendance_rebuilds` in its transaction and the
//!   recompute deletes it once every day has committed ([`UnfinishedRebuild`]). While the row
//!   exists the attendance service refuses the group (started later, at its start; started
//!   mid-rebuild, at its next batch), because its replay would store the punches again while
//!   the days the rebuild deferred keep their stale figures, silently. A later rebuild must
//!   cover the unfinished scope (the same tenant, or the whole group), else it is refused
//!   ([`RebuildError::Unfinished`]).
//! - **Invalid records** are skipped as the service skips them (their offsets advance). Those at
//!   or past the offsets the projection had reached were never seen by the service, so they are
//!   quarantined now, as the service would have; the others were quarantined back then.

//!
//! # Layout
//! - `run`: [`Rebuild`] and its steps.
//! - `plan`: [`RebuildRequest`], [`Plan`] and what each step reports; [`Progress`].
//! - `read`: the replay's reader task (the bounded scan of `dakoku_kafka::scan`).
//! - `kafka`: watermarks (`dakoku_kafka::Admin`), the quarantine producer, the advisory
//!   commit.
//! - `sql`: the rebuild's own statements.
//! - `error`: [`RebuildError`].
//!
//!
//! [`Store::apply`]: crate::store::Store::apply
//! [`Store::defer_days`]: crate::store::Store::defer_days
//! [`Store::recompute`]: crate::store::Store::recompute
//!
//! The rebuild marker ([`Scope`], [`UnfinishedRebuild`], [`unfinished`]) lives in the store
//! (`store::marker`), which the batch transaction checks; it is re-exported here.

mod error;
mod kafka;
mod plan;
mod read;
mod run;
mod sql;

pub use self::error::RebuildError;
pub use self::plan::{
    Finished, NoProgress, PartitionPlan, Plan, Progress, RebuildRequest, Recomputed, Replayed,
    ScopeRows,
};
pub use self::run::Rebuild;
pub use crate::store::marker::{Scope, UnfinishedRebuild, unfinished};
