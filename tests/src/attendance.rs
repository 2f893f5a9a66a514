//! Fixtures for the attendance consumer's end-to-end tests: realistic checked-punch scenarios,
//! a producer for `punches.checked.<group>`, the consumer run in-process, the expected days
//! computed independently of Postgres from the pure rules (the oracle), and readers of what the
//! consumer wrote (table rows, the compacted topic).
//!
//! # Layout
//! - [`Scenario`]: a tenant with employees and their accepted punches over some days.
//! - [`resent`]: the same punches shuffled, with resends (new `received_at`/`checked_at`).
//! - [`produce_checked`]: writes verdicts to the checked topic, keyed as licence-check keys them.
//! - [`expected_days`]: the oracle: latest verdict per punch, [`compute_day`] per work date.
//! - [`read_days`], [`DayRow`]: `attendance_days` as the consumer left it.
//! - [`TestAttendance`]: `dakoku_attendance::run_with_listener` on a task, stoppable.
//! - [`proxy`]: a TCP proxy to Postgres that a test can sever and restore.

pub mod proxy;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use dakoku_attendance::rules::{self, DayFigures, Punch};
use dakoku_attendance::store::VerdictKey;
use dakoku_attendance::{AttendanceError, Config};
use dakoku_schemas::{
    AttendanceDay, CardId, CheckedPunch, DeviceId, EmployeeId, GroupId, PunchId, PunchKind,
    TenantId, Topic, Verdict, checked_key, encode,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Stack, TestDatabase, eventually};

/// `(tenant, employee, work date)`: the key of `attendance_days`.
pub type DayKey = (String, String, NaiveDate);

/// A tenant, its calendar and its employees' accepted punches.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The tenant.
    pub tenant: TenantId,
    /// Its group.
    pub group: GroupId,
    /// Its time zone.
    pub tz: Tz,
    /// Its day-change time.
    pub day_change: NaiveTime,
    /// `(employee, card)` pairs.
    pub employees: Vec<(EmployeeId, CardId)>,
    /// Distinct accepted verdicts, in the order a recorder would send them.
    pub punches: Vec<CheckedPunch>,
}

/// Master-data version the scenario's verdicts claim.
pub const SCENARIO_MDV: i64 = 10;

impl Scenario {
    /// A realistic week (from Monday `start`) of `employees` employees of `tenant` in Tokyo
    /// (day change 05:00), deterministic for a `seed`: day workers 9-18 with a lunch break,
    /// some overtime, night-shift workers 21:00-04:30 (crossing midnight, not the day change),
    /// weekends off, and the usual noise: a double tap, a forgotten clock-out, a break punched
    /// outside a span. Two recorders per tenant, each with its own sequence numbers.
    pub fn realistic_week(
        tenant: &str,
        group: &GroupId,
        employees: usize,
        start: NaiveDate,
        seed: u64,
    ) -> anyhow::Result<Self> {
        Self::generate(
            tenant,
            group,
            employees,
            start,
            7,
            seed,
            chrono_tz::Asia::Tokyo,
        )
    }

    /// Like [`Scenario::realistic_week`], over `days` days in time zone `tz`.
    pub fn generate(
        tenant: &str,
        group: &GroupId,
        employees: usize,
        start: NaiveDate,
        days: u32,
        seed: u64,
        tz: Tz,
    ) -> anyhow::Result<Self> {
        let tenant: TenantId = tenant.parse()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let devices: [DeviceId; 2] = ["PT-000001".parse()?, "PT-000002".parse()?];
        let mut seqs = [1000u64, 5000u64];
        let staff: Vec<(EmployeeId, CardId)> = (0..employees)
            .map(|i| Ok((format!("E{i:04}").parse()?, format!("CARD{i:08X}").parse()?)))
            .collect::<anyhow::Result<_>>()?;
        let mut planned: Vec<(usize, usize, PunchKind, i64)> = Vec::new();
        for (e, _) in staff.iter().enumerate() {
            let night_worker = e % 5 == 4;
            let device = e % 2;
            for d in 0..days {
                let date = start + ChronoDuration::days(i64::from(d));
                let weekday = date.format("%u").to_string();
                if (weekday == "6" || weekday == "7") && !night_worker {
                    continue;
                }
                let at = |h: u32, m: u32, s: u32, next_day: bool| -> anyhow::Result<i64> {
                    let day = if next_day {
                        date + ChronoDuration::days(1)
                    } else {
                        date
                    };
                    let local = day.and_hms_opt(h, m, s).context("valid local time")?;
                    Ok(tz
                        .from_local_datetime(&local)
                        .earliest()
                        .context("local time exists")?
                        .timestamp_millis())
                };
                let jitter = |rng: &mut StdRng| rng.random_range(0..20u32);
                let mut day_punches = if night_worker {
                    vec![
                        (PunchKind::ClockIn, at(21, jitter(&mut rng), 5, false)?),
                        (PunchKind::BreakStart, at(1, jitter(&mut rng), 0, true)?),
                        (
                            PunchKind::BreakEnd,
                            at(1, 45 + jitter(&mut rng) / 2, 0, true)?,
                        ),
                        (PunchKind::ClockOut, at(4, 30 + jitter(&mut rng), 0, true)?),
                    ]
                } else {
                    let overtime = rng.random_range(0..3u32);
                    vec![
                        (PunchKind::ClockIn, at(8, 40 + jitter(&mut rng), 12, false)?),
                        (PunchKind::BreakStart, at(12, jitter(&mut rng), 3, false)?),
                        (PunchKind::BreakEnd, at(13, jitter(&mut rng), 9, false)?),
                        (
                            PunchKind::ClockOut,
                            at(18 + overtime, jitter(&mut rng) * 2, 41, false)?,
                        ),
                    ]
                };
                // Noise, deterministic per employee and day.
                match (e + d as usize) % 11 {
                    0 => {
                        // Double tap on clock-in, 20 s later.
                        let (kind, t) = day_punches[0];
                        day_punches.insert(1, (kind, t + 20_000));
                    }
                    3 => {
                        // Forgot to clock out.
                        day_punches.pop();
                    }
                    7 => {
                        // A stray break_end before the day starts.
                        let (_, t) = day_punches[0];
                        day_punches.insert(0, (PunchKind::BreakEnd, t - 600_000));
                    }
                    _ => {}
                }
                for (kind, t) in day_punches {
                    planned.push((e, device, kind, t));
                }
            }
        }
        // Recorders number punches in time order.
        planned.sort_by_key(|&(e, device, _, t)| (t, device, e));
        let mut punches = Vec::with_capacity(planned.len());
        for (e, device, kind, at) in planned {
            let seq = seqs[device];
            seqs[device] += 1;
            let (employee, card) = &staff[e];
            punches.push(CheckedPunch {
                punch_id: PunchId::derive(&tenant, &devices[device], seq),
                tenant_id: tenant.clone(),
                group: group.clone(),
                device_id: devices[device].clone(),
                seq,
                card_id: card.clone(),
                kind,
                at,
                at_offset_minutes: tz
                    .offset_from_utc_datetime(
                        &DateTime::from_timestamp_millis(at)
                            .context("instant in range")?
                            .naive_utc(),
                    )
                    .fix_minutes(),
                received_at: at + 1_000,
                acceptor_id: "test-acceptor".into(),
                verdict: Verdict::Accepted,
                reason: None,
                employee_id: Some(employee.clone()),
                master_data_version: SCENARIO_MDV,
                checked_at: at + 2_000,
            });
        }
        Ok(Self {
            tenant,
            group: group.clone(),
            tz,
            day_change: rules::DEFAULT_DAY_CHANGE,
            employees: staff,
            punches,
        })
    }

    /// Inserts the tenant (with its calendar) and its employees into the master data.
    pub async fn seed(&self, db: &TestDatabase) -> anyhow::Result<()> {
        let client = db.client().await?;
        client
            .execute(
                "INSERT INTO tenant_groups (group_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&self.group.as_str()],
            )
            .await?;
        client
            .execute(
                "INSERT INTO tenants (tenant_id, name, group_id, time_zone, day_change_time) \
                 VALUES ($1, $1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &self.tenant.as_str(),
                    &self.group.as_str(),
                    &self.tz.name(),
                    &self.day_change,
                ],
            )
            .await?;
        for (employee, card) in &self.employees {
            client
                .execute(
                    "INSERT INTO employees (tenant_id, employee_id, card_id, licensed) \
                     VALUES ($1, $2, $3, true) ON CONFLICT DO NOTHING",
                    &[&self.tenant.as_str(), &employee.as_str(), &card.as_str()],
                )
                .await?;
        }
        Ok(())
    }

    /// The expected days of the scenario's punches (see [`expected_days`]).
    pub fn expected(&self) -> BTreeMap<DayKey, DayFigures> {
        expected_days(&self.punches, self.tz, self.day_change)
    }
}

/// A UTC offset in whole minutes.
trait FixMinutes {
    fn fix_minutes(&self) -> i32;
}

impl<O: chrono::Offset> FixMinutes for O {
    fn fix_minutes(&self) -> i32 {
        self.fix().local_minus_utc() / 60
    }
}

/// `punches` in a shuffled arrival order with about `ratio` (0.0-1.0 and beyond) resends, each
/// a copy with a later `received_at` and `checked_at` (a recorder resending, licence-check
/// judging it again with the same master data).
pub fn resent(punches: &[CheckedPunch], ratio: f64, seed: u64) -> Vec<CheckedPunch> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = punches.to_vec();
    let resends = (punches.len() as f64 * ratio).round() as usize;
    for i in 0..resends {
        let mut copy = punches[rng.random_range(0..punches.len())].clone();
        let later = 60_000 * (i as i64 + 1);
        copy.received_at += later;
        copy.checked_at += later;
        out.push(copy);
    }
    out.shuffle(&mut rng);
    out
}

/// Produces `verdicts` to the group's checked topic, keyed `<tenant>/<employee or card>` as
/// licence-check keys them, and waits until Kafka has all of them.
pub async fn produce_checked(
    stack: &Stack,
    group: &GroupId,
    verdicts: &[CheckedPunch],
) -> anyhow::Result<()> {
    let producer: FutureProducer = stack
        .kafka_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()?;
    let topic = Topic::Checked(group.clone()).name();
    let records: Vec<(String, Vec<u8>)> = verdicts
        .iter()
        .map(|v| {
            Ok((
                checked_key(&v.tenant_id, v.employee_id.as_ref(), &v.card_id),
                encode(v)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    produce_raw(&producer, &topic, &records).await
}

/// Produces raw `(key, payload)` records to `topic` and waits for every delivery.
pub async fn produce_raw(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let mut deliveries = Vec::with_capacity(records.len());
    for (key, payload) in records {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        deliveries.push(producer.send(record, Duration::from_secs(30)));
    }
    for delivery in futures::future::join_all(deliveries).await {
        delivery.map_err(|(error, _)| anyhow::anyhow!("produce to {topic}: {error}"))?;
    }
    Ok(())
}

/// The oracle: for each punch the latest verdict (by [`VerdictKey`]) decides; the accepted
/// ones are grouped by employee and work date and [`rules::compute_day`] gives each day. Days
/// where nothing counts are absent. Independent of Postgres and of the consumer's batching.
pub fn expected_days(
    verdicts: &[CheckedPunch],
    tz: Tz,
    day_change: NaiveTime,
) -> BTreeMap<DayKey, DayFigures> {
    let mut latest: HashMap<PunchId, &CheckedPunch> = HashMap::new();
    for v in verdicts {
        let entry = latest.entry(v.punch_id).or_insert(v);
        if VerdictKey::of(v) > VerdictKey::of(entry) {
            *entry = v;
        }
    }
    let mut days: BTreeMap<DayKey, Vec<Punch>> = BTreeMap::new();
    for v in latest.values() {
        if v.verdict != Verdict::Accepted {
            continue;
        }
        let Some(employee) = &v.employee_id else {
            continue;
        };
        days.entry((
            v.tenant_id.to_string(),
            employee.to_string(),
            rules::work_date(v.at, tz, day_change),
        ))
        .or_default()
        .push(Punch {
            punch_id: *v.punch_id.as_uuid(),
            seq: v.seq,
            kind: v.kind,
            at: v.at,
        });
    }
    days.into_iter()
        .map(|(key, punches)| (key, rules::compute_day(&punches, tz)))
        .filter(|(_, f)| *f != DayFigures::default())
        .collect()
}

/// One `attendance_days` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// The figures (contract columns and `double_taps`).
    pub figures: DayFigures,
    /// The row's revision.
    pub revision: i64,
    /// The row's group.
    pub group: String,
}

/// Every `attendance_days` row.
pub async fn read_days(
    client: &tokio_postgres::Client,
) -> anyhow::Result<BTreeMap<DayKey, DayRow>> {
    let rows = client
        .query(
            "SELECT tenant_id, employee_id, work_date, first_in, last_out, worked_minutes, \
             break_minutes, night_minutes, overtime_minutes, punch_count, anomalies, \
             double_taps, revision, group_id FROM attendance_days",
            &[],
        )
        .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let codes: Vec<String> = row.get(10);
        let anomalies = codes
            .iter()
            .map(|c| rules::Anomaly::parse(c).with_context(|| format!("unknown anomaly {c}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        out.insert(
            (row.get(0), row.get(1), row.get(2)),
            DayRow {
                figures: DayFigures {
                    first_in: row
                        .get::<_, Option<DateTime<Utc>>>(3)
                        .map(|t| t.timestamp_millis()),
                    last_out: row
                        .get::<_, Option<DateTime<Utc>>>(4)
                        .map(|t| t.timestamp_millis()),
                    worked_minutes: row.get(5),
                    break_minutes: row.get(6),
                    night_minutes: row.get(7),
                    overtime_minutes: row.get(8),
                    punch_count: row.get(9),
                    anomalies,
                    double_taps: row.get(11),
                },
                revision: row.get(12),
                group: row.get(13),
            },
        );
    }
    Ok(out)
}

/// The figures of every row where something counts (an emptied day keeps a zero row so its
/// revision keeps rising; to payroll it is the same as no row).
pub fn figures_of(rows: &BTreeMap<DayKey, DayRow>) -> BTreeMap<DayKey, DayFigures> {
    rows.iter()
        .filter(|(_, r)| r.figures != DayFigures::default())
        .map(|(k, r)| (k.clone(), r.figures.clone()))
        .collect()
}

/// Waits until the table's figures equal `expected`; on timeout, fails naming the first
/// differences.
pub async fn wait_for_days(
    db: &TestDatabase,
    expected: &BTreeMap<DayKey, DayFigures>,
    deadline: Duration,
) -> anyhow::Result<BTreeMap<DayKey, DayRow>> {
    let client = db.client().await?;
    let found = eventually(
        "attendance_days to match the expected days",
        deadline,
        || {
            let client = &client;
            async move {
                let rows = read_days(client).await?;
                Ok((figures_of(&rows) == *expected).then_some(rows))
            }
        },
    )
    .await;
    match found {
        Ok(rows) => Ok(rows),
        Err(error) => {
            let rows = figures_of(&read_days(&client).await?);
            let mut diffs = Vec::new();
            for (key, want) in expected {
                match rows.get(key) {
                    Some(got) if got == want => {}
                    got => diffs.push(format!("{key:?}: expected {want:?}, got {got:?}")),
                }
            }
            for key in rows.keys().filter(|k| !expected.contains_key(*k)) {
                diffs.push(format!("{key:?}: unexpected row {:?}", rows[key]));
            }
            diffs.truncate(5);
            Err(error.context(format!(
                "{} expected days, {} rows; first differences:\n{}",
                expected.len(),
                rows.len(),
                diffs.join("\n")
            )))
        }
    }
}

/// Counts of the punch tables: `(punches, withdrawn punches, conflicts, rejections)`.
pub async fn punch_counts(db: &TestDatabase) -> anyhow::Result<(i64, i64, i64, i64)> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM punches), \
                    (SELECT count(*) FROM punches WHERE withdrawn), \
                    (SELECT count(*) FROM punch_conflicts), \
                    (SELECT count(*) FROM punch_rejections)",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
}

/// The latest value per key of the group's compacted `attendance.daily` topic (the record with
/// the highest revision, as payroll consumers keep it), read until `until` holds for the map.
pub async fn latest_daily(
    stack: &Stack,
    group: &GroupId,
    deadline: Duration,
    mut until: impl FnMut(&BTreeMap<String, AttendanceDay>) -> bool,
) -> anyhow::Result<BTreeMap<String, AttendanceDay>> {
    let mut latest: BTreeMap<String, AttendanceDay> = BTreeMap::new();
    let topic = Topic::AttendanceDaily(group.clone()).name();
    let mut failed = None;
    let result = crate::acceptor::read_topic(stack, &topic, deadline, |record| {
        match dakoku_schemas::decode::<AttendanceDay>(&record.payload) {
            Ok(day) => {
                let keep = latest
                    .get(&record.key)
                    .is_none_or(|old| day.revision >= old.revision);
                if keep {
                    latest.insert(record.key.clone(), day);
                }
            }
            Err(error) => failed = Some(error),
        }
        failed.is_some() || until(&latest)
    })
    .await;
    if let Some(error) = failed {
        anyhow::bail!("attendance.daily holds an undecodable record: {error}");
    }
    result?;
    Ok(latest)
}

/// The rows as the compacted topic should carry them: key -> (figures, revision).
pub fn rows_as_topic(rows: &BTreeMap<DayKey, DayRow>) -> BTreeMap<String, (DayFigures, i64)> {
    rows.iter()
        .map(|((tenant, employee, date), row)| {
            let key = format!("{tenant}/{employee}/{}", date.format("%Y-%m-%d"));
            (key, (row.figures.clone(), row.revision))
        })
        .collect()
}

/// The figures a published day carries (double taps are not on the topic: taken from `row`).
pub fn topic_figures(day: &AttendanceDay, double_taps: i32) -> DayFigures {
    DayFigures {
        first_in: day.first_in,
        last_out: day.last_out,
        worked_minutes: day.worked_minutes,
        break_minutes: day.break_minutes,
        night_minutes: day.night_minutes,
        overtime_minutes: day.overtime_minutes,
        punch_count: day.punch_count,
        anomalies: day
            .anomalies
            .iter()
            .filter_map(|c| rules::Anomaly::parse(c))
            .collect(),
        double_taps,
    }
}

/// The attendance consumer running in-process on a task.
#[derive(Debug)]
pub struct TestAttendance {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), AttendanceError>>>,
}

impl TestAttendance {
    /// Starts the consumer of `group` on `database_url` with test-friendly settings (small
    /// batches, short waits and retries), changed by `tweak`.
    pub fn start(
        stack: &Stack,
        database_url: &str,
        group: &GroupId,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::new(&stack.brokers, database_url, vec![group.clone()]);
        config.batch_max_records = 500;
        config.batch_max_wait_ms = 50;
        config.retry_initial_ms = 50;
        config.retry_max_ms = 1_000;
        config.statement_timeout_ms = 10_000;
        config.session_timeout_ms = 10_000;
        config.drain_timeout_ms = 5_000;
        config.client_id = Some(format!("test-attendance-{group}"));
        tweak(&mut config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(dakoku_attendance::run_with_listener(config, None, async {
            let _ = rx.await;
        }));
        Self {
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Asks the consumer to stop and waits until it has drained and returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .context("attendance did not stop within 60 s")???;
        }
        Ok(())
    }

    /// Whether the consumer task has ended (it only ends on its own with an error).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for TestAttendance {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Next offsets stored by the attendance consumer of `group`, summed over partitions.
pub async fn stored_offsets_total(db: &TestDatabase, group: &GroupId) -> anyhow::Result<i64> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT COALESCE(sum(next_offset), 0)::bigint FROM consumer_offsets \
             WHERE consumer_group = $1",
            &[&format!("attendance.{group}")],
        )
        .await?;
    Ok(row.get(0))
}
