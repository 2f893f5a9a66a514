//! The audit behind `punchctl audit`: raw log vs verdicts vs stored punches vs attendance days of one tenant
//! group (optionally one tenant and a range of work dates). Kafka is the source of truth
//! (DESIGN "Recovery"); the audit says whether each projection of it is whole, per stage:
//!
//! 1. **raw -> checked** (licence-check). `punches.raw.<group>` legitimately holds a punch
//!    several times (recorders resend), and licence-check judges every raw *record* exactly
//!    once, in Kafka transactions. `punchctl recheck` adds accepted verdicts, at most one per
//!    rejection that was a punch's latest verdict, so for every punch: *accepted verdicts <=
//!    raw records* and *rejected verdicts <= raw records*. **Missing**: fewer verdicts than
//!    raw records licence-check had committed when the audit began. **Doubled**: a bound
//!    above is broken (a raw record judged twice). `punchctl replay` of licence-check re-judges
//!    records on purpose and records what it replayed in `consumer_replays`: each replay that
//!    covered a raw record raises that record's bound by one. **Unexpected**: verdicts of a
//!    punch that has no raw record.
//! 2. **checked -> Postgres** (attendance). The verdict that counts is the latest by
//!    [`VerdictKey`](dakoku_schemas::VerdictKey) (master-data version, `checked_at`, a rejection wins a tie), exactly as
//!    the consumer decides (verdicts it set aside as conflicts, `punch_conflicts`, and accepted
//!    verdicts naming no employee, which it quarantines, are left out the same way). **Missing**:
//!    the latest verdict is accepted but the punch is not in `punches`, or is `withdrawn`.
//!    **Unexpected**: a counting row whose latest verdict is a rejection, a row with no verdict
//!    in the log (a phantom), or a row whose `punch_id` is not the one its tenant, device and
//!    seq derive. **Doubled**: counting rows of one employee with the same card, kind and
//!    instant under different `punch_id`s (the primary key and `UNIQUE (tenant, device, seq)`
//!    make a literal copy impossible; a copy under another seq is what can happen).
//! 3. **attendance days**. Every `attendance_days` row in scope, and every day with counting
//!    punches, is recomputed from the stored, non-withdrawn punches with the pure rules
//!    ([`rules::compute_day`](dakoku_rules::compute_day), tenant time zone from master data); a day whose figures differ
//!    (minutes, first in / last out, `punch_count`, anomalies, `double_taps`) is reported with
//!    both figures. Equal figures also prove the V4 invariant *stored counting punches =
//!    punch_count + double_taps*.
//! 4. **corrections** (attendance). Every correction in `punches.corrections.<group>` below the
//!    consumer's stored offsets must be a row of `corrections`, stored from its first record
//!    (a resend of the same id changes nothing); **missing**, **misapplied** (stored from a
//!    later record) and **unexpected** (stored, not in the log) say otherwise; records past the
//!    offsets are pending. The days stage recomputes with the stored corrections.
//!
//! # Consistency under live traffic
//! The audit reads what was committed when it began and never calls a punch missing because
//! a consumer has not reached it yet; punches newer than the scan are out of scope:
//! - Postgres is read in one `REPEATABLE READ` snapshot, whose first read is the attendance
//!   consumer's stored positions `A` (its offsets live in that same database).
//! - licence-check's committed offsets `C1` are read, then the end `H` of `punches.checked`
//!   (so `A <= H`); the checked topic is read `read_committed` up to `H`; then licence-check's
//!   offsets are read again (`C2`) and the raw topic is read to its end.
//! - A raw record below `C1` must have its verdict below `H` (its transaction committed
//!   before `H` was taken); one at or beyond `C1` is *not yet judged*. Every verdict read was
//!   committed with offsets `<= C2`, so raw records below `C2` bound the doubled check.
//! - A punch with any verdict at or beyond `A` is *pending* for Postgres and not judged there.
//!
//! Memory: about 150 bytes per punch of the scope (a map by `punch_id`), plus the Kafka
//! client's fetch buffers; Postgres rows are streamed day by day. Use `--tenant` to audit part
//! of a very large group. Speed (release build, local stack, 2 vCPU): about 130,000 records/s
//! per topic and 130,000 stored punches/s, e.g. 3.2 s for 200k verdicts, 156k punches and 26k
//! days.
//!
//! # Layout
//! Three stages over shared data: `collect` reads the Postgres snapshot and the log into
//! `model`'s per-punch entries; `compare` (pure) judges them into [`findings`]; [`report`]
//! writes the text and gives the exit status. [`run`](run()) drives one audit; [`request`] is
//! what is asked and how it fails.

mod collect;
mod compare;
mod corrections;
pub mod findings;
mod model;
pub mod report;
pub mod request;
mod run;

pub use findings::{
    AuditReport, CheckedStage, CorrectionFinding, CorrectionsStage, DayFinding, DaysStage, Figures,
    Findings, PunchFinding, StoredStage,
};
pub use report::{exit_code, write_report};
pub use request::{AuditError, AuditProgress, AuditRequest, NoProgress};
pub use run::run;
