//! The audit's first stage: read what was committed when it began. Postgres in one
//! `REPEATABLE READ` snapshot (positions, calendars, conflicts, replays, then punches and days
//! streamed day by day), Kafka's checked and raw topics `read_committed` up to their ends.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use dakoku_kafka::scan::{OnRecord, scan_range};
use dakoku_kafka::{Admin, Reader};
use dakoku_schemas::{
    CheckedPunch, ConsumerGroup, RawPunch, TenantId, Topic, Verdict, VerdictKey, decode,
};
use rdkafka::consumer::Consumer as _;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

use super::model::{CorrectionRow, DayRow, EmployeeKey, Log, MonthRow, NONE, Rules, StoredRow};
use super::request::{AuditError, AuditProgress, AuditRequest};
use crate::ops::lag;
use dakoku_rules::v2::Correction;

/// Rows fetched per round trip when streaming Postgres.
const FETCH_ROWS: i32 = 5_000;

/// What the snapshot says before Kafka is read.
pub(crate) struct Snapshot {
    /// Attendance's stored positions on the checked topic.
    pub(crate) applied: BTreeMap<i32, i64>,
    /// Each tenant's calendar, by tenant id.
    pub(crate) calendars: HashMap<String, Rules>,
    /// (partition, offset) of verdicts attendance set aside as conflicts.
    pub(crate) conflicts: HashSet<(i32, i64)>,
    /// licence-check replays of the raw topic: partition -> [from, to) ranges.
    pub(crate) replays: HashMap<i32, Vec<(i64, i64)>>,
}

/// Reads the snapshot's first part. It begins with attendance's positions: everything it
/// applied below them is in this snapshot, nothing beyond.
pub(crate) async fn read_snapshot(
    tx: &Transaction<'_>,
    request: &AuditRequest,
) -> Result<Snapshot, AuditError> {
    let applied = lag::attendance_positions(tx, &request.group).await?;
    let calendars = calendars(tx).await?;
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
                &ConsumerGroup::LicenceCheck(request.group.clone()).name(),
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
    Ok(Snapshot {
        applied,
        calendars,
        conflicts,
        replays,
    })
}

/// Every tenant's work rules (the audit judges own work dates and recomputes with them).
async fn calendars(tx: &Transaction<'_>) -> Result<HashMap<String, Rules>, AuditError> {
    let tenants: Vec<String> = tx
        .query("SELECT tenant_id FROM tenants", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ids: Vec<&str> = tenants.iter().map(String::as_str).collect();
    Ok(dakoku_store::master::rules::rulebooks(tx, &ids).await?)
}

/// What the Kafka phase needs from Postgres.
pub(crate) struct KafkaInput {
    pub(crate) request: AuditRequest,
    pub(crate) calendars: HashMap<String, Rules>,
    /// Attendance's stored positions on the checked topic.
    pub(crate) applied: BTreeMap<i32, i64>,
    /// (partition, offset) of verdicts attendance set aside as conflicts.
    pub(crate) conflicts: HashSet<(i32, i64)>,
    /// licence-check replays of the raw topic: partition -> [from, to) ranges.
    pub(crate) replays: HashMap<i32, Vec<(i64, i64)>>,
}

/// Reads a topic from its low watermarks to `ends` (exclusive), `read_committed`, calling `on`
/// with each record and reporting progress.
fn scan_topic(
    consumer: &Reader,
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

/// The Kafka phase (blocking): positions and both topics, in the order the module docs give.
pub(crate) fn read_log(
    input: &KafkaInput,
    progress: &dyn AuditProgress,
) -> Result<Log, AuditError> {
    let request = &input.request;
    let timeout = request.timeout;
    let group = &request.group;
    let raw_topic = Topic::Raw(group.clone()).name();
    let checked_topic = Topic::Checked(group.clone()).name();
    let licence_group = ConsumerGroup::LicenceCheck(group.clone()).name();
    let tenant = request.tenant.as_ref().map(TenantId::as_str);

    let admin = Admin::new(&request.kafka, "punchctl-audit", timeout)?;
    let reader = || -> Result<Reader, AuditError> {
        Ok(request
            .kafka
            .reader("punchctl-audit")
            .create()
            .map_err(lag::LagError::from)?)
    };
    let meta = reader()?;
    let watermarks = |topic: &str, partitions: &[i32]| {
        dakoku_kafka::admin::watermarks(meta.client(), topic, partitions, timeout)
            .map_err(lag::LagError::from)
    };
    let raw_partitions = lag::partitions(&admin, &raw_topic)?;
    let checked_partitions = lag::partitions(&admin, &checked_topic)?;
    let judged = admin
        .committed_offsets(&licence_group, &raw_topic, &raw_partitions)
        .map_err(lag::LagError::from)?;
    let checked_marks = watermarks(&checked_topic, &checked_partitions)?;

    let mut log = Log {
        checked_low: checked_marks
            .iter()
            .map(|(&p, &(low, _))| (p, low))
            .collect(),
        checked_truncated: checked_marks.values().any(|&(low, _)| low > 0),
        ..Log::default()
    };

    let consumer = reader()?;
    scan_topic(
        &consumer,
        &checked_topic,
        &checked_marks,
        timeout,
        progress,
        &mut |partition, offset, payload| {
            add_verdict(&mut log, input, tenant, (partition, offset), payload);
        },
    )?;
    drop(consumer);

    // After the checked scan: every verdict read was committed with offsets up to these.
    let bound = admin
        .committed_offsets(&licence_group, &raw_topic, &raw_partitions)
        .map_err(lag::LagError::from)?;
    let raw_marks = watermarks(&raw_topic, &raw_partitions)?;
    log.raw_truncated = raw_marks.values().any(|&(low, _)| low > 0);
    let consumer = reader()?;
    scan_topic(
        &consumer,
        &raw_topic,
        &raw_marks,
        timeout,
        progress,
        &mut |partition, offset, payload| {
            add_raw(
                &mut log,
                input,
                tenant,
                (&judged, &bound),
                (partition, offset),
                payload,
            );
        },
    )?;
    Ok(log)
}

/// Counts one verdict of the checked topic into its punch's entry.
fn add_verdict(
    log: &mut Log,
    input: &KafkaInput,
    tenant: Option<&str>,
    (partition, offset): (i32, i64),
    payload: Option<&[u8]>,
) {
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
    if input.conflicts.contains(&(partition, offset)) || (accepted && verdict.employee_id.is_none())
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
}

/// Counts one raw record into its punch's entry; `judged` and `bound` are licence-check's
/// committed offsets before and after the checked scan.
fn add_raw(
    log: &mut Log,
    input: &KafkaInput,
    tenant: Option<&str>,
    (judged, bound): (&BTreeMap<i32, i64>, &BTreeMap<i32, i64>),
    (partition, offset): (i32, i64),
    payload: Option<&[u8]>,
) {
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
}

/// Stored punches in scope, for the progress bar.
pub(crate) async fn count_punches(
    tx: &Transaction<'_>,
    request: &AuditRequest,
) -> Result<i64, tokio_postgres::Error> {
    Ok(tx
        .query_one(
            "SELECT count(*) FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2)",
            &[
                &request.group.as_str(),
                &request.tenant.as_ref().map(TenantId::as_str),
            ],
        )
        .await?
        .get(0))
}

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

/// Streams the stored punches, days and months in scope, calling `on_employee` once per
/// `(tenant, employee)` in `COLLATE "C"` order with all of the employee's punch rows (in time
/// order), day rows and month rows. The recompute needs the whole history, so `--from`/`--to`
/// narrow what is judged, not what is read.
pub(crate) async fn for_each_employee(
    tx: &Transaction<'_>,
    request: &AuditRequest,
    mut on_employee: impl FnMut(&EmployeeKey, &[StoredRow], &[DayRow], &[MonthRow], &[Correction]),
) -> Result<(), AuditError> {
    let group = request.group.as_str();
    let tenant = request.tenant.as_ref().map(TenantId::as_str);
    let params: [&(dyn ToSql + Sync); 2] = [&group, &tenant];
    let mut punches = Cursor::open(tx, StoredRow::SQL, &params, StoredRow::of).await?;
    let mut days = Cursor::open(tx, &DayRow::sql(), &params, DayRow::of).await?;
    let mut months = Cursor::open(tx, &MonthRow::sql(), &params, MonthRow::of).await?;
    let mut corrections = Cursor::open(tx, CorrectionRow::SQL, &params, CorrectionRow::of).await?;
    loop {
        punches.fill().await?;
        days.fill().await?;
        months.fill().await?;
        corrections.fill().await?;
        let candidates = [
            punches.peek().map(StoredRow::employee_key),
            days.peek().map(|d| (d.key.0.clone(), d.key.1.clone())),
            months.peek().map(|m| m.employee.clone()),
            corrections.peek().map(|c| c.employee.clone()),
        ];
        let Some(key) = candidates.into_iter().flatten().min() else {
            break;
        };
        let mut rows = Vec::new();
        while let Some(p) = punches.peek()
            && p.tenant == key.0
            && p.employee == key.1
        {
            rows.extend(punches.pop());
            punches.fill().await?;
        }
        let mut day_rows = Vec::new();
        while let Some(d) = days.peek()
            && d.key.0 == key.0
            && d.key.1 == key.1
        {
            day_rows.extend(days.pop());
            days.fill().await?;
        }
        let mut month_rows = Vec::new();
        while let Some(m) = months.peek()
            && m.employee == key
        {
            month_rows.extend(months.pop());
            months.fill().await?;
        }
        let mut correction_rows = Vec::new();
        while let Some(c) = corrections.peek()
            && c.employee == key
        {
            correction_rows.extend(corrections.pop().and_then(|c| c.correction));
            corrections.fill().await?;
        }
        on_employee(&key, &rows, &day_rows, &month_rows, &correction_rows);
    }
    Ok(())
}

/// For punches the day-by-day stream did not meet, whether a row with that id exists anywhere
/// (a row whose stored work date falls outside `--from`/`--to` is still found) and is
/// withdrawn.
pub(crate) async fn stored_elsewhere(
    tx: &Transaction<'_>,
    candidates: &[Uuid],
) -> Result<HashMap<Uuid, bool>, tokio_postgres::Error> {
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
    Ok(elsewhere)
}
