//! `punchctl audit`: raw log vs verdicts vs stored punches vs attendance days of one tenant
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
//!    [`VerdictKey`] (master-data version, `checked_at`, a rejection wins a tie), exactly as
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
//!    ([`rules::compute_day`], tenant time zone from master data); a day whose figures differ
//!    (minutes, first in / last out, `punch_count`, anomalies, `double_taps`) is reported with
//!    both figures. Equal figures also prove the V4 invariant *stored counting punches =
//!    punch_count + double_taps*.
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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use clap::Args;
use dakoku_attendance::rules::{self, DayFigures, Punch};
use dakoku_schemas::{
    CheckedPunch, DeviceId, GroupId, PunchId, PunchKind, RawPunch, TenantId, Topic, Verdict,
    VerdictKey, decode,
};
use dakoku_service::scan::{OnRecord, ScanError, scan_range};
use rdkafka::consumer::BaseConsumer;
use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

use crate::lag::{self, LagError};

/// Rows fetched per round trip when streaming Postgres.
const FETCH_ROWS: i32 = 5_000;

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditRequest {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Postgres URL.
    pub database_url: String,
    /// The tenant group.
    pub group: GroupId,
    /// Only this tenant's punches and days.
    pub tenant: Option<TenantId>,
    /// First work date in scope (inclusive); `None`: from the beginning.
    pub from: Option<NaiveDate>,
    /// Last work date in scope (inclusive); `None`: to the end.
    pub to: Option<NaiveDate>,
    /// Examples kept per kind of finding (all are counted).
    pub limit: usize,
    /// Longest wait for one Kafka operation, and longest stall of a topic scan (an open
    /// transaction holds a `read_committed` reader until it ends).
    pub timeout: Duration,
}

impl AuditRequest {
    /// A request for the whole of `group`, with 10 examples and a 120 s timeout.
    pub fn new(brokers: &str, database_url: &str, group: GroupId) -> Self {
        Self {
            brokers: brokers.to_owned(),
            database_url: database_url.to_owned(),
            group,
            tenant: None,
            from: None,
            to: None,
            limit: 10,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Why an audit could not be completed (nothing about the data: that is the report).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The work-date range is empty.
    #[error("--from {from} is after --to {to}; give a range of work dates in order")]
    BadRange {
        /// First date given.
        from: NaiveDate,
        /// Last date given.
        to: NaiveDate,
    },
    /// Kafka, or Postgres while reading positions, failed (see [`LagError`]).
    #[error(transparent)]
    Positions(#[from] LagError),
    /// A topic scan made no progress for the timeout (a transaction open for that long, or a
    /// broker problem). Run again, or raise `--timeout-secs`.
    #[error(
        "the scan of {topic} made no progress for {timeout:?}; is a transaction stuck open? run again or raise --timeout-secs"
    )]
    ScanStalled {
        /// The topic.
        topic: String,
        /// The limit.
        timeout: Duration,
    },
    /// Connecting to Postgres failed.
    #[error(transparent)]
    Connect(#[from] dakoku_store::StoreError),
    /// A Postgres query failed. Check that the server is up and the schema migrated
    /// (`punchctl db migrate`).
    #[error(
        "Postgres query failed: {0}; is the server up (`scripts/stack status`) and the schema migrated (`punchctl db migrate`)?"
    )]
    Db(#[from] tokio_postgres::Error),
    /// The blocking Kafka task panicked or was cancelled (a bug).
    #[error("the Kafka scan task failed: {0}")]
    Task(String),
}

/// Progress callbacks (a progress bar, or nothing).
pub trait AuditProgress: Send + Sync {
    /// A phase begins; `total` units are expected (0: unknown).
    fn phase(&self, what: &str, total: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
}

/// An [`AuditProgress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl AuditProgress for NoProgress {
    fn phase(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

// ---------------------------------------------------------------------------------------------
// The report.

/// A count of findings of one kind, with the first few as examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Findings<T> {
    /// How many were found.
    pub count: u64,
    /// Up to the request's `limit` of them, in (tenant, employee or device, date or seq) order.
    pub examples: Vec<T>,
}

impl<T> Default for Findings<T> {
    fn default() -> Self {
        Self {
            count: 0,
            examples: Vec::new(),
        }
    }
}

impl<T> Findings<T> {
    fn push(&mut self, item: T, limit: usize) {
        self.count += 1;
        if self.examples.len() < limit {
            self.examples.push(item);
        }
    }
}

impl Findings<PunchFinding> {
    /// Keeps the `limit` smallest by their order, amortised.
    fn offer(&mut self, item: PunchFinding, limit: usize) {
        self.count += 1;
        self.examples.push(item);
        if self.examples.len() > limit.max(1) * 4 {
            self.trim(limit);
        }
    }

    fn trim(&mut self, limit: usize) {
        self.examples.sort_by(|a, b| a.order().cmp(&b.order()));
        self.examples.truncate(limit);
    }
}

/// One punch the audit has something to say about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PunchFinding {
    /// The punch.
    pub punch_id: Uuid,
    /// Its tenant.
    pub tenant: String,
    /// Its recorder.
    pub device: String,
    /// The recorder's sequence number.
    pub seq: u64,
    /// The employee, when known.
    pub employee: Option<String>,
    /// `clock_in`, ...
    pub kind: String,
    /// The punch instant.
    pub at: Option<DateTime<Utc>>,
    /// Its work date.
    pub work_date: NaiveDate,
    /// What is wrong, in words.
    pub detail: String,
}

impl PunchFinding {
    fn order(&self) -> (&str, &str, u64, Uuid) {
        (&self.tenant, &self.device, self.seq, self.punch_id)
    }
}

/// The stage raw -> checked (licence-check).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckedStage {
    /// Raw records in scope read (up to the end at the audit's start).
    pub raw_records: u64,
    /// Distinct punches among them.
    pub raw_punches: u64,
    /// Raw records licence-check had not committed a verdict for when the audit began (not
    /// judged: out of scope).
    pub raw_not_yet_checked: u64,
    /// Raw records that do not decode as `RawPunch` (licence-check quarantines those).
    pub raw_undecodable: u64,
    /// Verdicts in scope read.
    pub verdicts: u64,
    /// Of which accepted.
    pub accepted: u64,
    /// Of which rejected.
    pub rejected: u64,
    /// Checked records that do not decode as `CheckedPunch` (attendance quarantines those).
    pub verdicts_undecodable: u64,
    /// Punches with fewer verdicts than judged raw records.
    pub missing: Findings<PunchFinding>,
    /// Punches with more accepted (or rejected) verdicts than raw records.
    pub doubled: Findings<PunchFinding>,
    /// Punches with verdicts but no raw record.
    pub unexpected: Findings<PunchFinding>,
}

/// The stage checked -> Postgres `punches` (attendance).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoredStage {
    /// Punches whose latest verdict is accepted (applied by attendance): must be stored.
    pub expected: u64,
    /// Punches whose latest verdict is a rejection: must be absent or withdrawn.
    pub rejected: u64,
    /// Punches with verdicts attendance had not applied when the audit began (not judged).
    pub pending: u64,
    /// Rows of `punches` in scope.
    pub stored: u64,
    /// Of which withdrawn.
    pub withdrawn: u64,
    /// Verdicts left out like the consumer leaves them out: conflicts (`punch_conflicts`) and
    /// accepted verdicts naming no employee.
    pub set_aside: u64,
    /// Rows whose verdicts are no longer in the log (retention): not verifiable.
    pub unverifiable: u64,
    /// Expected but not stored (or withdrawn).
    pub missing: Findings<PunchFinding>,
    /// Stored (and counting) but not expected, phantoms, ids not matching tenant/device/seq.
    pub unexpected: Findings<PunchFinding>,
    /// The same punch (employee, card, kind, instant) counting under several ids.
    pub doubled: Findings<PunchFinding>,
}

/// The figures of a day, as stored or as recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Earliest kept clock-in.
    pub first_in: Option<DateTime<Utc>>,
    /// Latest kept clock-out.
    pub last_out: Option<DateTime<Utc>>,
    /// Worked minutes.
    pub worked_minutes: i32,
    /// Break minutes.
    pub break_minutes: i32,
    /// Night minutes.
    pub night_minutes: i32,
    /// Overtime minutes.
    pub overtime_minutes: i32,
    /// Kept punches.
    pub punch_count: i32,
    /// Ignored double taps.
    pub double_taps: i32,
    /// Anomaly codes, sorted.
    pub anomalies: Vec<String>,
}

impl From<&DayFigures> for Figures {
    fn from(f: &DayFigures) -> Self {
        Self {
            first_in: f.first_in.and_then(DateTime::from_timestamp_millis),
            last_out: f.last_out.and_then(DateTime::from_timestamp_millis),
            worked_minutes: f.worked_minutes,
            break_minutes: f.break_minutes,
            night_minutes: f.night_minutes,
            overtime_minutes: f.overtime_minutes,
            punch_count: f.punch_count,
            double_taps: f.double_taps,
            anomalies: f.anomaly_codes(),
        }
    }
}

/// An attendance day whose stored figures differ from a recomputation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFinding {
    /// The tenant.
    pub tenant: String,
    /// The employee.
    pub employee: String,
    /// The work date.
    pub work_date: NaiveDate,
    /// The `attendance_days` row; `None` when there is none.
    pub stored: Option<Figures>,
    /// The figures recomputed from the stored, non-withdrawn punches.
    pub recomputed: Figures,
    /// Stored punches of the day that count (not withdrawn).
    pub counting_punches: u64,
    /// Withdrawn punches of the day.
    pub withdrawn_punches: u64,
    /// The fields that differ, `name stored -> recomputed`.
    pub detail: String,
}

/// The attendance days stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DaysStage {
    /// `attendance_days` rows in scope.
    pub rows: u64,
    /// Days recomputed (rows, and days with counting punches but no row).
    pub checked: u64,
    /// Days whose figures differ (or whose row is missing).
    pub differing: Findings<DayFinding>,
}

/// What an audit found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// The tenant group.
    pub group: GroupId,
    /// The tenant, when only one was audited.
    pub tenant: Option<TenantId>,
    /// First work date in scope.
    pub from: Option<NaiveDate>,
    /// Last work date in scope.
    pub to: Option<NaiveDate>,
    /// When the audit began: what was committed then is in scope.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_seconds: f64,
    /// raw -> checked.
    pub checked: CheckedStage,
    /// checked -> Postgres punches.
    pub stored: StoredStage,
    /// attendance days.
    pub days: DaysStage,
    /// Limits of what could be verified (e.g. retention), in words.
    pub notes: Vec<String>,
}

impl AuditReport {
    /// Findings of every kind, summed: 0 means clean.
    pub fn problems(&self) -> u64 {
        self.checked.missing.count
            + self.checked.doubled.count
            + self.checked.unexpected.count
            + self.stored.missing.count
            + self.stored.unexpected.count
            + self.stored.doubled.count
            + self.days.differing.count
    }

    /// Whether nothing is off.
    pub fn is_clean(&self) -> bool {
        self.problems() == 0
    }
}

// ---------------------------------------------------------------------------------------------
// What the log says, per punch.

const NONE: u32 = u32::MAX;

/// Interned strings (tenants, devices, employees repeat across millions of punches).
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(NONE - 1);
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }
}

/// One punch as the log has it.
#[derive(Debug, Clone)]
struct Entry {
    tenant: u32,
    device: u32,
    employee: u32,
    seq: u64,
    at: i64,
    kind: PunchKind,
    work_date: NaiveDate,
    /// Raw records read.
    raw: u32,
    /// Raw records below licence-check's position at the start (must have a verdict).
    raw_judged: u32,
    /// Judgements allowed: raw records below its position after the checked scan (they bound
    /// every verdict read), each counted once more per `punchctl replay` that covered it.
    raw_bound: u32,
    accepted: u32,
    rejected: u32,
    /// The latest verdict as the attendance consumer decides it.
    latest: Option<VerdictKey>,
    /// Verdicts the consumer sets aside (conflicts, accepted without employee).
    set_aside: u32,
    /// A verdict at or beyond attendance's stored position.
    pending: bool,
    /// Seen in `punches` (in scope).
    stored: bool,
}

/// A tenant's calendar (for work dates) and time zone (for night minutes).
#[derive(Debug, Clone, Copy)]
struct Calendar {
    tz: Tz,
    day_change: NaiveTime,
}

impl Default for Calendar {
    fn default() -> Self {
        Self {
            tz: rules::DEFAULT_TIME_ZONE,
            day_change: rules::DEFAULT_DAY_CHANGE,
        }
    }
}

/// Everything the Kafka phase learned.
#[derive(Debug, Default)]
struct Log {
    names: Names,
    entries: HashMap<Uuid, Entry>,
    raw_undecodable: u64,
    verdicts_undecodable: u64,
    raw_not_yet_checked: u64,
    /// First retained offset of each checked partition (> 0: retention deleted verdicts).
    checked_low: BTreeMap<i32, i64>,
    raw_truncated: bool,
    checked_truncated: bool,
}

impl Log {
    fn entry(
        &mut self,
        id: Uuid,
        calendars: &HashMap<String, Calendar>,
        make: impl FnOnce(&mut Names) -> (u32, u32, u64, i64, PunchKind),
    ) -> &mut Entry {
        let names = &mut self.names;
        self.entries.entry(id).or_insert_with(|| {
            let (tenant, device, seq, at, kind) = make(names);
            let calendar = names
                .name(tenant)
                .and_then(|t| calendars.get(t))
                .copied()
                .unwrap_or_default();
            Entry {
                tenant,
                device,
                employee: NONE,
                seq,
                at,
                kind,
                work_date: rules::work_date(at, calendar.tz, calendar.day_change),
                raw: 0,
                raw_judged: 0,
                raw_bound: 0,
                accepted: 0,
                rejected: 0,
                latest: None,
                set_aside: 0,
                pending: false,
                stored: false,
            }
        })
    }

    fn finding(&self, id: Uuid, e: &Entry, detail: String) -> PunchFinding {
        let name = |n: u32| self.names.name(n).unwrap_or_default().to_owned();
        PunchFinding {
            punch_id: id,
            tenant: name(e.tenant),
            device: name(e.device),
            seq: e.seq,
            employee: (e.employee != NONE).then(|| name(e.employee)),
            kind: e.kind.as_str().to_owned(),
            at: DateTime::from_timestamp_millis(e.at),
            work_date: e.work_date,
            detail,
        }
    }
}

/// What the Kafka phase needs from Postgres.
struct KafkaInput {
    request: AuditRequest,
    calendars: HashMap<String, Calendar>,
    /// Attendance's stored positions on the checked topic.
    applied: BTreeMap<i32, i64>,
    /// (partition, offset) of verdicts attendance set aside as conflicts.
    conflicts: HashSet<(i32, i64)>,
    /// licence-check replays of the raw topic: partition -> [from, to) ranges.
    replays: HashMap<i32, Vec<(i64, i64)>>,
}

/// Reads a topic from its low watermarks to `ends` (exclusive), `read_committed`, calling `on`
/// with each record and reporting progress.
fn scan_topic(
    consumer: &BaseConsumer,
    topic: &str,
    bounds: &BTreeMap<i32, (i64, i64)>,
    stall: Duration,
    progress: &dyn AuditProgress,
    on: &mut OnRecord<'_>,
) -> Result<(), AuditError> {
    let total = bounds
        .values()
        .map(|&(low, end)| u64::try_from(end - low).unwrap_or(0))
        .sum();
    progress.phase(&format!("reading {topic}"), total);
    scan_range(consumer, topic, bounds, stall, on, &mut |n| {
        progress.advance(n)
    })?;
    Ok(())
}

impl From<ScanError> for AuditError {
    fn from(error: ScanError) -> Self {
        match error {
            ScanError::Kafka { doing, source } => {
                AuditError::Positions(LagError::Kafka { doing, source })
            }
            ScanError::Stalled { topic, waited } => AuditError::ScanStalled {
                topic,
                timeout: waited,
            },
        }
    }
}

/// The Kafka phase (blocking): positions and both topics, in the order the module docs give.
fn read_log(input: &KafkaInput, progress: &dyn AuditProgress) -> Result<Log, AuditError> {
    let request = &input.request;
    let timeout = request.timeout;
    let group = &request.group;
    let raw_topic = Topic::Raw(group.clone()).name();
    let checked_topic = Topic::Checked(group.clone()).name();
    let licence_group = dakoku_licence_check::Config::consumer_group(group);
    let tenant = request.tenant.as_ref().map(TenantId::as_str);

    let meta = lag::reader(&request.brokers, "audit")?;
    let raw_partitions = lag::partitions(&meta, &raw_topic, timeout)?;
    let checked_partitions = lag::partitions(&meta, &checked_topic, timeout)?;
    let judged = lag::kafka_committed(
        &request.brokers,
        &licence_group,
        &raw_topic,
        &raw_partitions,
        timeout,
    )?;
    let checked_marks = lag::watermarks(&meta, &checked_topic, &checked_partitions, timeout)?;

    let mut log = Log {
        checked_low: checked_marks
            .iter()
            .map(|(&p, &(low, _))| (p, low))
            .collect(),
        checked_truncated: checked_marks.values().any(|&(low, _)| low > 0),
        ..Log::default()
    };

    let consumer = lag::reader(&request.brokers, "audit")?;
    scan_topic(
        &consumer,
        &checked_topic,
        &checked_marks,
        timeout,
        progress,
        &mut |partition, offset, payload| {
            let Some(verdict) = payload.and_then(|p| decode::<CheckedPunch>(p).ok()) else {
                log.verdicts_undecodable += 1;
                return;
            };
            if tenant.is_some_and(|t| t != verdict.tenant_id.as_str()) {
                return;
            }
            let employee = verdict
                .employee_id
                .as_ref()
                .map(|e| log.names.id(e.as_str()));
            let entry = log.entry(*verdict.punch_id.as_uuid(), &input.calendars, |names| {
                (
                    names.id(verdict.tenant_id.as_str()),
                    names.id(verdict.device_id.as_str()),
                    verdict.seq,
                    verdict.at,
                    verdict.kind,
                )
            });
            let accepted = verdict.verdict == Verdict::Accepted;
            if accepted {
                entry.accepted += 1;
            } else {
                entry.rejected += 1;
            }
            if input
                .applied
                .get(&partition)
                .is_none_or(|&next| offset >= next)
            {
                entry.pending = true;
            }
            // Left out exactly as the consumer leaves them out.
            if input.conflicts.contains(&(partition, offset))
                || (accepted && verdict.employee_id.is_none())
            {
                entry.set_aside += 1;
                return;
            }
            let key = VerdictKey::of(&verdict);
            if entry.latest.is_none_or(|latest| key > latest) {
                entry.latest = Some(key);
            }
            if let Some(employee) = employee
                && (entry.employee == NONE || accepted)
            {
                entry.employee = employee;
            }
        },
    )?;
    drop(consumer);

    // After the checked scan: every verdict read was committed with offsets up to these.
    let bound = lag::kafka_committed(
        &request.brokers,
        &licence_group,
        &raw_topic,
        &raw_partitions,
        timeout,
    )?;
    let raw_marks = lag::watermarks(&meta, &raw_topic, &raw_partitions, timeout)?;
    log.raw_truncated = raw_marks.values().any(|&(low, _)| low > 0);
    let consumer = lag::reader(&request.brokers, "audit")?;
    scan_topic(
        &consumer,
        &raw_topic,
        &raw_marks,
        timeout,
        progress,
        &mut |partition, offset, payload| {
            let Some(raw) = payload.and_then(|p| decode::<RawPunch>(p).ok()) else {
                log.raw_undecodable += 1;
                return;
            };
            if tenant.is_some_and(|t| t != raw.tenant_id.as_str()) {
                return;
            }
            let judged_before = judged.get(&partition).copied().unwrap_or(0);
            let bound_before = bound.get(&partition).copied().unwrap_or(0);
            let entry = log.entry(*raw.punch_id.as_uuid(), &input.calendars, |names| {
                (
                    names.id(raw.tenant_id.as_str()),
                    names.id(raw.device_id.as_str()),
                    raw.seq,
                    raw.at,
                    raw.kind,
                )
            });
            entry.raw += 1;
            if offset < judged_before {
                entry.raw_judged += 1;
            }
            if offset < bound_before {
                // Judged once, and once more for every replay that covered it.
                let replayed = input.replays.get(&partition).map_or(0, |ranges| {
                    ranges
                        .iter()
                        .filter(|&&(from, to)| from <= offset && offset < to)
                        .count()
                });
                entry.raw_bound += 1 + u32::try_from(replayed).unwrap_or(u32::MAX - 1);
            }
            if offset >= judged_before {
                log.raw_not_yet_checked += 1;
            }
        },
    )?;
    Ok(log)
}

// ---------------------------------------------------------------------------------------------
// Postgres.

/// One `punches` row.
#[derive(Debug, Clone)]
struct StoredRow {
    punch_id: Uuid,
    tenant: String,
    device: String,
    seq: i64,
    card: String,
    employee: String,
    kind: String,
    at: DateTime<Utc>,
    work_date: NaiveDate,
    withdrawn: bool,
    source_partition: i32,
    source_offset: i64,
}

impl StoredRow {
    const SQL: &'static str = "SELECT punch_id, tenant_id, device_id, seq, card_id, employee_id, \
         kind, at, work_date, withdrawn, source_partition, source_offset FROM punches \
         WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
         AND ($3::date IS NULL OR work_date >= $3) AND ($4::date IS NULL OR work_date <= $4) \
         ORDER BY tenant_id COLLATE \"C\", employee_id COLLATE \"C\", work_date, punch_id";

    fn of(row: &Row) -> Self {
        Self {
            punch_id: row.get(0),
            tenant: row.get(1),
            device: row.get(2),
            seq: row.get(3),
            card: row.get(4),
            employee: row.get(5),
            kind: row.get(6),
            at: row.get(7),
            work_date: row.get(8),
            withdrawn: row.get(9),
            source_partition: row.get(10),
            source_offset: row.get(11),
        }
    }

    fn day(&self) -> DayKey {
        (self.tenant.clone(), self.employee.clone(), self.work_date)
    }

    fn finding(&self, detail: String) -> PunchFinding {
        PunchFinding {
            punch_id: self.punch_id,
            tenant: self.tenant.clone(),
            device: self.device.clone(),
            seq: u64::try_from(self.seq).unwrap_or(0),
            employee: Some(self.employee.clone()),
            kind: self.kind.clone(),
            at: Some(self.at),
            work_date: self.work_date,
            detail,
        }
    }
}

/// One `attendance_days` row.
#[derive(Debug, Clone)]
struct DayRow {
    key: DayKey,
    figures: DayFigures,
}

impl DayRow {
    const SQL: &'static str = "SELECT tenant_id, employee_id, work_date, first_in, last_out, \
         worked_minutes, break_minutes, night_minutes, overtime_minutes, punch_count, anomalies, \
         double_taps FROM attendance_days \
         WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
         AND ($3::date IS NULL OR work_date >= $3) AND ($4::date IS NULL OR work_date <= $4) \
         ORDER BY tenant_id COLLATE \"C\", employee_id COLLATE \"C\", work_date";

    fn of(row: &Row) -> Self {
        Self {
            key: (row.get(0), row.get(1), row.get(2)),
            // An unknown anomaly code cannot be recomputed, so it shows as a difference.
            figures: dakoku_attendance::store::day_figures(row, 3),
        }
    }
}

/// `(tenant, employee, work date)`, ordered bytewise like `COLLATE "C"`.
type DayKey = (String, String, NaiveDate);

/// Rows of a query streamed through a portal, `FETCH_ROWS` at a time.
struct Cursor<'t, T> {
    tx: &'t Transaction<'t>,
    portal: tokio_postgres::Portal,
    buf: VecDeque<T>,
    done: bool,
    map: fn(&Row) -> T,
}

impl<'t, T> Cursor<'t, T> {
    async fn open(
        tx: &'t Transaction<'t>,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: fn(&Row) -> T,
    ) -> Result<Self, tokio_postgres::Error> {
        let statement = tx.prepare(sql).await?;
        let portal = tx.bind(&statement, params).await?;
        Ok(Self {
            tx,
            portal,
            buf: VecDeque::new(),
            done: false,
            map,
        })
    }

    /// Refills the buffer when empty; afterwards `peek` is `None` only at the end.
    async fn fill(&mut self) -> Result<(), tokio_postgres::Error> {
        if self.buf.is_empty() && !self.done {
            let rows = self.tx.query_portal(&self.portal, FETCH_ROWS).await?;
            self.done = rows.len() < FETCH_ROWS as usize;
            self.buf.extend(rows.iter().map(self.map));
        }
        Ok(())
    }

    fn peek(&self) -> Option<&T> {
        self.buf.front()
    }

    fn pop(&mut self) -> Option<T> {
        self.buf.pop_front()
    }
}

/// Runs an audit.
///
/// Returns the report whatever it finds (see [`AuditReport::is_clean`]); an error means the
/// audit itself could not be done (Kafka or Postgres unreachable, a topic missing).
pub async fn run(
    request: &AuditRequest,
    progress: Arc<dyn AuditProgress>,
) -> Result<AuditReport, AuditError> {
    if let (Some(from), Some(to)) = (request.from, request.to)
        && from > to
    {
        return Err(AuditError::BadRange { from, to });
    }
    let started_at = Utc::now();
    let clock = Instant::now();
    let mut client = dakoku_store::connect(&request.database_url).await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // The snapshot begins with attendance's positions: everything it applied below them is
    // in this snapshot, nothing beyond.
    let applied = lag::attendance_positions(&tx, &request.group).await?;
    let calendars = calendars(&tx).await?;
    let conflicts: HashSet<(i32, i64)> = tx
        .query(
            "SELECT source_partition, source_offset FROM punch_conflicts WHERE source_topic = $1",
            &[&Topic::Checked(request.group.clone()).name()],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    // Raw records replayed to licence-check on purpose (`punchctl replay`) were judged once
    // more per replay: allowed extra verdicts, not doubled ones.
    let mut replays: HashMap<i32, Vec<(i64, i64)>> = HashMap::new();
    for row in tx
        .query(
            "SELECT partition, from_offset, to_offset FROM consumer_replays \
             WHERE consumer_group = $1 AND topic = $2",
            &[
                &dakoku_licence_check::Config::consumer_group(&request.group),
                &Topic::Raw(request.group.clone()).name(),
            ],
        )
        .await?
    {
        replays
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }

    let input = KafkaInput {
        request: request.clone(),
        calendars: calendars.clone(),
        applied,
        conflicts,
        replays,
    };
    let scan_progress = Arc::clone(&progress);
    let mut log = tokio::task::spawn_blocking(move || read_log(&input, scan_progress.as_ref()))
        .await
        .map_err(|e| AuditError::Task(e.to_string()))??;
    tracing::info!(
        group = %request.group,
        punches = log.entries.len(),
        took_ms = clock.elapsed().as_millis() as u64,
        "log read"
    );

    let mut report = AuditReport {
        group: request.group.clone(),
        tenant: request.tenant.clone(),
        from: request.from,
        to: request.to,
        started_at,
        duration_seconds: 0.0,
        checked: CheckedStage {
            raw_undecodable: log.raw_undecodable,
            verdicts_undecodable: log.verdicts_undecodable,
            raw_not_yet_checked: log.raw_not_yet_checked,
            ..CheckedStage::default()
        },
        stored: StoredStage::default(),
        days: DaysStage::default(),
        notes: Vec::new(),
    };
    judge_checked(request, &log, &mut report);
    let rows: i64 = tx
        .query_one(
            "SELECT count(*) FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
             AND ($3::date IS NULL OR work_date >= $3) AND ($4::date IS NULL OR work_date <= $4)",
            &[
                &request.group.as_str(),
                &request.tenant.as_ref().map(TenantId::as_str),
                &request.from,
                &request.to,
            ],
        )
        .await?
        .get(0);
    progress.phase("comparing with Postgres", u64::try_from(rows).unwrap_or(0));
    let compared = Instant::now();
    compare_postgres(
        request,
        &tx,
        &calendars,
        &mut log,
        &mut report,
        progress.as_ref(),
    )
    .await?;
    judge_unstored(request, &tx, &log, &mut report).await?;
    tx.commit().await?;
    tracing::info!(
        group = %request.group,
        rows,
        days = report.days.checked,
        took_ms = compared.elapsed().as_millis() as u64,
        "Postgres compared"
    );

    report.checked.missing.trim(request.limit);
    report.checked.doubled.trim(request.limit);
    report.checked.unexpected.trim(request.limit);
    report.stored.missing.trim(request.limit);
    if log.checked_truncated {
        report.notes.push(format!(
            "punches.checked.{} no longer starts at offset 0 (retention): raw punches whose \
             verdicts were deleted are not reported missing, and stored punches from them are \
             counted as unverifiable",
            request.group
        ));
    }
    if log.raw_truncated {
        report.notes.push(format!(
            "punches.raw.{} no longer starts at offset 0 (retention): verdicts without a raw \
             record and doubled verdicts are not reported",
            request.group
        ));
    }
    report.duration_seconds = clock.elapsed().as_secs_f64();
    Ok(report)
}

async fn calendars(
    tx: &Transaction<'_>,
) -> Result<HashMap<String, Calendar>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT tenant_id, time_zone, day_change_time FROM tenants",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let zone: String = r.get(1);
            (
                r.get(0),
                Calendar {
                    tz: zone.parse().unwrap_or(rules::DEFAULT_TIME_ZONE),
                    day_change: r.get(2),
                },
            )
        })
        .collect())
}

fn in_dates(request: &AuditRequest, date: NaiveDate) -> bool {
    request.from.is_none_or(|from| date >= from) && request.to.is_none_or(|to| date <= to)
}

/// The raw -> checked stage, from the log alone.
fn judge_checked(request: &AuditRequest, log: &Log, report: &mut AuditReport) {
    let limit = request.limit;
    let stage = &mut report.checked;
    for (&id, e) in &log.entries {
        if !in_dates(request, e.work_date) {
            continue;
        }
        stage.raw_records += u64::from(e.raw);
        stage.raw_punches += u64::from(e.raw > 0);
        stage.accepted += u64::from(e.accepted);
        stage.rejected += u64::from(e.rejected);
        stage.verdicts += u64::from(e.accepted + e.rejected);
        let verdicts = e.accepted + e.rejected;
        if !log.checked_truncated && verdicts < e.raw_judged {
            stage.missing.offer(
                log.finding(
                    id,
                    e,
                    format!(
                        "{} raw records judged by licence-check, {verdicts} verdicts",
                        e.raw_judged
                    ),
                ),
                limit,
            );
        }
        if log.raw_truncated {
            continue;
        }
        if verdicts > 0 && e.raw == 0 {
            stage.unexpected.offer(
                log.finding(
                    id,
                    e,
                    format!(
                        "{} accepted and {} rejected verdicts, no raw record",
                        e.accepted, e.rejected
                    ),
                ),
                limit,
            );
        } else if e.accepted > e.raw_bound || e.rejected > e.raw_bound {
            stage.doubled.offer(
                log.finding(
                    id,
                    e,
                    format!(
                        "{} raw records (judged when the scan ended), {} accepted and {} rejected verdicts",
                        e.raw_bound, e.accepted, e.rejected
                    ),
                ),
                limit,
            );
        }
    }
}

/// Streams the stored punches and days in scope, day by day, against the log and the rules.
async fn compare_postgres(
    request: &AuditRequest,
    tx: &Transaction<'_>,
    calendars: &HashMap<String, Calendar>,
    log: &mut Log,
    report: &mut AuditReport,
    progress: &dyn AuditProgress,
) -> Result<(), AuditError> {
    let group = request.group.as_str();
    let tenant = request.tenant.as_ref().map(TenantId::as_str);
    let params: [&(dyn ToSql + Sync); 4] = [&group, &tenant, &request.from, &request.to];
    let mut punches = Cursor::open(tx, StoredRow::SQL, &params, StoredRow::of).await?;
    let mut days = Cursor::open(tx, DayRow::SQL, &params, DayRow::of).await?;
    loop {
        punches.fill().await?;
        days.fill().await?;
        let key = match (punches.peek(), days.peek()) {
            (None, None) => break,
            (Some(p), None) => p.day(),
            (None, Some(d)) => d.key.clone(),
            (Some(p), Some(d)) => {
                let pk = p.day();
                if pk <= d.key { pk } else { d.key.clone() }
            }
        };
        let mut rows = Vec::new();
        loop {
            punches.fill().await?;
            match punches.peek() {
                Some(p) if p.tenant == key.0 && p.employee == key.1 && p.work_date == key.2 => {
                    rows.extend(punches.pop());
                }
                _ => break,
            }
        }
        let day = match days.peek() {
            Some(d) if d.key == key => days.pop(),
            _ => None,
        };
        progress.advance(rows.len() as u64);
        let calendar = calendars.get(&key.0).copied().unwrap_or_default();
        judge_day(request, log, report, &key, &rows, day.as_ref(), calendar);
    }
    Ok(())
}

/// One day: its stored rows against the log, its doubled punches, its figures.
fn judge_day(
    request: &AuditRequest,
    log: &mut Log,
    report: &mut AuditReport,
    key: &DayKey,
    rows: &[StoredRow],
    day: Option<&DayRow>,
    calendar: Calendar,
) {
    let limit = request.limit;
    let stage = &mut report.stored;
    let mut counting: Vec<&StoredRow> = Vec::with_capacity(rows.len());
    for row in rows {
        stage.stored += 1;
        if row.withdrawn {
            stage.withdrawn += 1;
        } else {
            counting.push(row);
        }
        if let (Ok(tenant), Ok(device), Ok(seq)) = (
            row.tenant.parse::<TenantId>(),
            row.device.parse::<DeviceId>(),
            u64::try_from(row.seq),
        ) && *PunchId::derive(&tenant, &device, seq).as_uuid() != row.punch_id
        {
            stage.unexpected.push(
                row.finding(format!(
                    "punch_id is not the id of {}/{}/{} (it would be {})",
                    row.tenant,
                    row.device,
                    row.seq,
                    PunchId::derive(&tenant, &device, seq)
                )),
                limit,
            );
            continue;
        }
        let entry = log
            .entries
            .get_mut(&row.punch_id)
            .filter(|e| e.accepted + e.rejected > 0);
        let Some(entry) = entry else {
            let retained = log
                .checked_low
                .get(&row.source_partition)
                .is_none_or(|&low| row.source_offset >= low);
            if retained {
                stage.unexpected.push(
                    row.finding(format!(
                        "stored (from punches.checked.{} partition {} offset {}) but the log has no verdict of this punch",
                        request.group, row.source_partition, row.source_offset
                    )),
                    limit,
                );
            } else {
                stage.unverifiable += 1;
            }
            continue;
        };
        entry.stored = true;
        if entry.pending {
            continue;
        }
        match entry.latest {
            Some(latest) if latest.rank == 0 && row.withdrawn => stage.missing.offer(
                row.finding(format!(
                    "withdrawn, but its latest verdict is accepted (master data v{})",
                    latest.master_data_version
                )),
                limit,
            ),
            Some(latest) if latest.rank != 0 && !row.withdrawn => stage.unexpected.push(
                row.finding(format!(
                    "counts, but its latest verdict is a rejection (master data v{})",
                    latest.master_data_version
                )),
                limit,
            ),
            None if !row.withdrawn => stage.unexpected.push(
                row.finding("counts, but every verdict of it was set aside".to_owned()),
                limit,
            ),
            _ => {}
        }
    }

    // The same punch counting twice: same card, kind and instant under another punch_id.
    let mut same: HashMap<(&str, &str, DateTime<Utc>), Vec<&StoredRow>> = HashMap::new();
    for row in &counting {
        same.entry((row.card.as_str(), row.kind.as_str(), row.at))
            .or_default()
            .push(row);
    }
    let mut doubles: Vec<Vec<&StoredRow>> = same.into_values().filter(|v| v.len() > 1).collect();
    doubles.sort_by_key(|v| (v[0].at, v[0].kind.clone()));
    for mut rows in doubles {
        // The row the log backs first: the others are the extra ones.
        let backed = |r: &StoredRow| log.entries.get(&r.punch_id).is_some_and(|e| e.stored);
        rows.sort_by_key(|r| (!backed(r), r.punch_id));
        let ids: Vec<String> = rows.iter().map(|r| r.punch_id.to_string()).collect();
        for row in rows.iter().skip(1) {
            stage.doubled.push(
                row.finding(format!(
                    "the same punch (card {}, {} at {}) is stored {} times: {}",
                    row.card,
                    row.kind,
                    row.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    rows.len(),
                    ids.join(", ")
                )),
                limit,
            );
        }
    }

    // The day's figures, recomputed from its counting punches.
    let punches: Vec<Punch> = counting
        .iter()
        .filter_map(|r| {
            Some(Punch {
                punch_id: r.punch_id,
                seq: u64::try_from(r.seq).ok()?,
                kind: PunchKind::ALL
                    .iter()
                    .copied()
                    .find(|k| k.as_str() == r.kind)?,
                at: r.at.timestamp_millis(),
            })
        })
        .collect();
    let recomputed = rules::compute_day(&punches, calendar.tz);
    let days = &mut report.days;
    days.rows += u64::from(day.is_some());
    if day.is_none() && recomputed == DayFigures::default() {
        // Nothing counts and there is no row: nothing to check (all withdrawn, never counted).
        return;
    }
    days.checked += 1;
    let stored = day.map(|d| &d.figures);
    if stored == Some(&recomputed) {
        return;
    }
    let detail = match stored {
        None => "no attendance_days row, though punches count on this day".to_owned(),
        Some(stored) => differences(stored, &recomputed).join(", "),
    };
    days.differing.push(
        DayFinding {
            tenant: key.0.clone(),
            employee: key.1.clone(),
            work_date: key.2,
            stored: stored.map(Figures::from),
            recomputed: Figures::from(&recomputed),
            counting_punches: counting.len() as u64,
            withdrawn_punches: (rows.len() - counting.len()) as u64,
            detail,
        },
        limit,
    );
}

/// `field stored -> recomputed` for each differing field.
fn differences(stored: &DayFigures, recomputed: &DayFigures) -> Vec<String> {
    let mut out = Vec::new();
    let time = |t: Option<i64>| {
        t.and_then(DateTime::from_timestamp_millis).map_or_else(
            || "none".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    };
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name} {a} -> {b}"));
        }
    };
    field("first_in", time(stored.first_in), time(recomputed.first_in));
    field("last_out", time(stored.last_out), time(recomputed.last_out));
    field(
        "worked_minutes",
        stored.worked_minutes.to_string(),
        recomputed.worked_minutes.to_string(),
    );
    field(
        "break_minutes",
        stored.break_minutes.to_string(),
        recomputed.break_minutes.to_string(),
    );
    field(
        "night_minutes",
        stored.night_minutes.to_string(),
        recomputed.night_minutes.to_string(),
    );
    field(
        "overtime_minutes",
        stored.overtime_minutes.to_string(),
        recomputed.overtime_minutes.to_string(),
    );
    field(
        "punch_count",
        stored.punch_count.to_string(),
        recomputed.punch_count.to_string(),
    );
    field(
        "double_taps",
        stored.double_taps.to_string(),
        recomputed.double_taps.to_string(),
    );
    field(
        "anomalies",
        format!("[{}]", stored.anomaly_codes().join(",")),
        format!("[{}]", recomputed.anomaly_codes().join(",")),
    );
    out
}

/// Punches the log expects stored that the day-by-day stream did not meet: looked up by id
/// (a row whose stored work date falls outside `--from`/`--to` is still found), then missing.
async fn judge_unstored(
    request: &AuditRequest,
    tx: &Transaction<'_>,
    log: &Log,
    report: &mut AuditReport,
) -> Result<(), AuditError> {
    let limit = request.limit;
    let stage = &mut report.stored;
    let mut candidates: Vec<Uuid> = Vec::new();
    for (&id, e) in &log.entries {
        if !in_dates(request, e.work_date) {
            continue;
        }
        stage.set_aside += u64::from(e.set_aside);
        if e.accepted + e.rejected == 0 {
            continue;
        }
        if e.pending {
            stage.pending += 1;
            continue;
        }
        match e.latest {
            Some(latest) if latest.rank == 0 => {
                stage.expected += 1;
                if !e.stored {
                    candidates.push(id);
                }
            }
            Some(_) => stage.rejected += 1,
            None => {}
        }
    }
    let mut elsewhere: HashMap<Uuid, bool> = HashMap::new();
    for chunk in candidates.chunks(10_000) {
        for row in tx
            .query(
                "SELECT punch_id, withdrawn FROM punches WHERE punch_id = ANY($1)",
                &[&chunk],
            )
            .await?
        {
            elsewhere.insert(row.get(0), row.get(1));
        }
    }
    for id in candidates {
        let Some(e) = log.entries.get(&id) else {
            continue;
        };
        let detail = match elsewhere.get(&id) {
            Some(false) => continue,
            Some(true) => "withdrawn, but its latest verdict is accepted",
            None => "not in punches, but its latest verdict is accepted",
        };
        stage
            .missing
            .offer(log.finding(id, e, detail.to_owned()), limit);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// `punchctl audit` flags.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// The tenant group to audit.
    #[arg(long, value_parser = parse_group)]
    pub group: GroupId,
    /// Only this tenant's punches and days.
    #[arg(long, value_parser = parse_tenant)]
    pub tenant: Option<TenantId>,
    /// First work date in scope (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<NaiveDate>,
    /// Last work date in scope (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<NaiveDate>,
    /// Examples shown per kind of finding (all are counted).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Print the report as JSON (one object) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Longest wait for one Kafka operation, and longest stall of a topic scan, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
}

fn parse_group(s: &str) -> Result<GroupId, String> {
    s.parse::<GroupId>().map_err(|e| e.to_string())
}

fn parse_tenant(s: &str) -> Result<TenantId, String> {
    s.parse::<TenantId>().map_err(|e| e.to_string())
}

/// The shared progress bar (drawn on stderr only when it is a terminal).
impl AuditProgress for crate::progress::Bar {
    fn phase(&self, what: &str, total: u64) {
        self.stage(what, total);
    }

    fn advance(&self, n: u64) {
        crate::progress::Bar::advance(self, n);
    }
}

/// Runs `punchctl audit`: the report on `out`; exit 0 when clean, 1 when anything is off,
/// 2 when the audit could not be done (the error on `err`).
pub async fn command(
    args: AuditArgs,
    brokers: &str,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let request = AuditRequest {
        brokers: brokers.to_owned(),
        database_url: database_url.to_owned(),
        group: args.group,
        tenant: args.tenant,
        from: args.from,
        to: args.to,
        limit: args.limit,
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
    };
    let bar = crate::progress::Bar::new();
    let report = run(&request, Arc::new(bar.clone())).await;
    bar.finish();
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            writeln!(err, "punchctl: error: {error}")?;
            return Ok(ExitCode::from(2));
        }
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write_report(&report, out)?;
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The report as text, in the shape of every long command's summary
/// ([`crate::progress::Summary`]): a title with the duration, then `label: value` lines (each
/// finding's examples indented under its line), then `result: clean` or `result: N problems`.
pub fn write_report(report: &AuditReport, out: &mut dyn Write) -> std::io::Result<()> {
    let mut scope = format!("group {}", report.group);
    if let Some(tenant) = &report.tenant {
        scope.push_str(&format!(", tenant {tenant}"));
    }
    if report.from.is_some() || report.to.is_some() {
        scope.push_str(&format!(
            ", work dates {} to {}",
            report
                .from
                .map_or_else(|| "the first".to_owned(), |d| d.to_string()),
            report
                .to
                .map_or_else(|| "the last".to_owned(), |d| d.to_string())
        ));
    }
    writeln!(
        out,
        "audit of {scope}: done in {}",
        crate::progress::human(Duration::from_secs_f64(report.duration_seconds.max(0.0)))
    )?;
    writeln!(
        out,
        "  scope: committed by {}; later punches are not audited",
        report.started_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )?;

    let c = &report.checked;
    writeln!(
        out,
        "  raw records: {} ({} punches; {} not yet judged by licence-check; {} undecodable)",
        c.raw_records, c.raw_punches, c.raw_not_yet_checked, c.raw_undecodable
    )?;
    writeln!(
        out,
        "  verdicts: {} ({} accepted, {} rejected; {} undecodable)",
        c.verdicts, c.accepted, c.rejected, c.verdicts_undecodable
    )?;
    punch_findings(out, "verdicts missing", &c.missing)?;
    punch_findings(out, "verdicts doubled", &c.doubled)?;
    punch_findings(out, "verdicts unexpected", &c.unexpected)?;

    let s = &report.stored;
    writeln!(
        out,
        "  punches expected: {} accepted ({} rejected; {} not yet applied by attendance; {} verdicts set aside)",
        s.expected, s.rejected, s.pending, s.set_aside
    )?;
    writeln!(
        out,
        "  punches stored: {} rows ({} withdrawn; {} unverifiable)",
        s.stored, s.withdrawn, s.unverifiable
    )?;
    punch_findings(out, "punches missing", &s.missing)?;
    punch_findings(out, "punches unexpected", &s.unexpected)?;
    punch_findings(out, "punches doubled", &s.doubled)?;

    let d = &report.days;
    writeln!(
        out,
        "  days checked: {} ({} attendance_days rows)",
        d.checked, d.rows
    )?;
    writeln!(out, "  days differing: {}", d.differing.count)?;
    for day in &d.differing.examples {
        writeln!(
            out,
            "    {}/{}/{}: {} ({} counting, {} withdrawn punches)",
            day.tenant,
            day.employee,
            day.work_date,
            day.detail,
            day.counting_punches,
            day.withdrawn_punches
        )?;
    }
    more(out, &d.differing)?;
    for note in &report.notes {
        writeln!(out, "  note: {note}")?;
    }
    let problems = report.problems();
    if problems == 0 {
        writeln!(out, "  result: clean")
    } else {
        writeln!(out, "  result: {problems} problems")
    }
}

fn punch_findings(
    out: &mut dyn Write,
    label: &str,
    findings: &Findings<PunchFinding>,
) -> std::io::Result<()> {
    writeln!(out, "  {label}: {}", findings.count)?;
    for f in &findings.examples {
        writeln!(
            out,
            "    {} {}/{}/{} {} {} {}: {}",
            f.punch_id,
            f.tenant,
            f.device,
            f.seq,
            f.employee.as_deref().unwrap_or("-"),
            f.kind,
            f.at.map_or_else(
                || "?".to_owned(),
                |t| t.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            f.detail
        )?;
    }
    more(out, findings)
}

fn more<T>(out: &mut dyn Write, findings: &Findings<T>) -> std::io::Result<()> {
    let shown = findings.examples.len() as u64;
    if findings.count > shown {
        writeln!(
            out,
            "    ... and {} more (--limit, --json)",
            findings.count - shown
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(tenant: &str, seq: u64) -> PunchFinding {
        let t: TenantId = tenant.parse().expect("tenant");
        let d: DeviceId = "PT-1".parse().expect("device");
        PunchFinding {
            punch_id: *PunchId::derive(&t, &d, seq).as_uuid(),
            tenant: tenant.into(),
            device: "PT-1".into(),
            seq,
            employee: None,
            kind: "clock_in".into(),
            at: None,
            work_date: NaiveDate::from_ymd_opt(2020, 12, 1).expect("date"),
            detail: String::new(),
        }
    }

    #[test]
    fn findings_count_everything_and_keep_the_first_examples_in_order() {
        let mut findings = Findings::default();
        for seq in (0..100).rev() {
            findings.offer(finding("acme", seq), 3);
        }
        findings.trim(3);
        assert_eq!(findings.count, 100);
        let seqs: Vec<u64> = findings.examples.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
    }

    #[test]
    fn differences_name_each_field_with_both_values() {
        let stored = DayFigures {
            worked_minutes: 480,
            punch_count: 4,
            ..DayFigures::default()
        };
        let recomputed = DayFigures {
            worked_minutes: 420,
            punch_count: 4,
            double_taps: 1,
            ..DayFigures::default()
        };
        assert_eq!(
            differences(&stored, &recomputed),
            ["worked_minutes 480 -> 420", "double_taps 0 -> 1"]
        );
        assert!(differences(&stored, &stored).is_empty());
    }

    #[test]
    fn an_empty_report_is_clean_and_says_so() {
        let report = AuditReport {
            group: "g1".parse().expect("group"),
            tenant: None,
            from: None,
            to: None,
            started_at: Utc::now(),
            duration_seconds: 0.0,
            checked: CheckedStage::default(),
            stored: StoredStage::default(),
            days: DaysStage::default(),
            notes: Vec::new(),
        };
        assert!(report.is_clean());
        let mut text = Vec::new();
        write_report(&report, &mut text).expect("write");
        let text = String::from_utf8(text).expect("utf-8");
        assert!(text.starts_with("audit of group g1: done in "), "{text}");
        assert!(text.ends_with("  result: clean\n"), "{text}");
    }
}
