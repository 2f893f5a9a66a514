//! The attendance consumer end to end on the real broker and Postgres (CONTRACT §4): verdicts
//! on `punches.checked.<group>` become the days the pure rules say, whatever the arrival order
//! and however often punches were resent; the compacted topic and the payroll CSV agree with
//! the table; the latest verdict of a punch counts; conflicts and poison are kept aside.

use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::Parser as _;
use dakoku_e2e::attendance::TestAttendance;
use dakoku_rules::v2::{Anomaly, DayFigures, Month, Punch, compute};
use dakoku_schemas::{CheckedPunch, PunchKind, QuarantinedInput, RejectReason, Topic, Verdict};
use dakoku_testkit::days::{
    figures_of, latest_daily, punch_counts, read_days, rows_as_topic, stored_offsets_total,
    topic_figures, wait_for_days,
};
use dakoku_testkit::produce::{produce_checked, produce_records};
use dakoku_testkit::scenario::{expected_days, resent, rules_of};
use dakoku_testkit::{Scenario, Stack, TestDatabase, TestGroup, eventually, unique_suffix};

const WAIT: Duration = Duration::from_secs(60);

/// One test's world: its own topics (3 partitions), database and tenant.
struct World {
    stack: Stack,
    group: TestGroup,
    db: TestDatabase,
}

impl World {
    async fn new() -> anyhow::Result<Self> {
        let stack = Stack::from_env();
        let group = TestGroup::create(&stack, 3).await?;
        let db = TestDatabase::create(&stack).await?;
        Ok(Self { stack, group, db })
    }

    fn scenario(&self, employees: usize, seed: u64) -> anyhow::Result<Scenario> {
        // Monday 2020-11-30: the week runs into December, so the payroll month is partial.
        let start = NaiveDate::from_ymd_opt(2020, 11, 30).context("date")?;
        Scenario::realistic_week(
            &format!("t{}", unique_suffix()),
            &self.group.group,
            employees,
            start,
            seed,
        )
    }

    fn consumer(&self, tweak: impl FnOnce(&mut dakoku_attendance::Config)) -> TestAttendance {
        TestAttendance::start(&self.stack, &self.db.url, &self.group.group, tweak)
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.db.drop_db().await?;
        self.group.delete_topics().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_of_resent_punches_becomes_the_expected_days_on_the_table_topic_and_csv()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let scenario = world.scenario(8, 1)?;
    scenario.seed(&world.db).await?;
    let expected = scenario.expected();
    assert!(
        expected.len() >= 40,
        "a realistic week: {} days",
        expected.len()
    );
    let with_anomalies = expected
        .values()
        .filter(|f| !f.anomalies.is_empty())
        .count();
    assert!(with_anomalies > 0, "the week has forgotten clock-outs");
    assert!(
        expected
            .values()
            .any(|f| f.night_seconds > 0 && f.anomalies.is_empty()),
        "the week has night shifts"
    );

    let arrivals = resent(&scenario.punches, 0.5, 7);
    produce_checked(&world.stack, &world.group.group, &arrivals).await?;
    let consumer = world.consumer(|c| c.batch_max_records = 97);
    let rows = wait_for_days(&world.db, &expected, WAIT).await?;

    let (punches, withdrawn, conflicts, rejections) = punch_counts(&world.db).await?;
    assert_eq!(
        punches,
        scenario.punches.len() as i64,
        "every punch stored once, resends not"
    );
    assert_eq!((withdrawn, conflicts, rejections), (0, 0, 0));
    assert!(rows.values().all(|r| r.group == world.group.group.as_str()));

    // The compacted topic's latest value per key equals the table.
    let want = rows_as_topic(&rows);
    let latest = latest_daily(&world.stack, &world.group.group, WAIT, |latest| {
        want.iter()
            .all(|(key, (_, revision))| latest.get(key).is_some_and(|d| d.revision >= *revision))
    })
    .await?;
    assert_eq!(latest.len(), want.len(), "one key per table row");
    for (key, (figures, revision)) in &want {
        let day = latest.get(key).context("day on the topic")?;
        assert_eq!(day.revision, *revision, "{key}");
        assert_eq!(topic_figures(day), *figures, "{key}");
    }

    // The payroll CSV is the monthly records, whose figures are the engine's months of the
    // same punches, computed here independently of the consumer.
    let month = "2020-12";
    let csv = payroll_csv(&world.db, scenario.tenant.as_str(), month).await?;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(punchctl::ops::payroll::HEADER.join(",").as_str())
    );
    let got: Vec<&str> = lines.collect();
    let want_csv = expected_csv(&scenario, month)?;
    assert_eq!(got.len(), scenario.employees.len(), "one row per employee");
    assert_eq!(
        got.iter().map(|l| payable(l)).collect::<Vec<_>>(),
        want_csv,
        "days worked, anomaly days, worked, overtime, night minutes"
    );

    consumer.stop().await?;
    world.finish().await
}

/// The payable columns of a CSV line: `employee_id`, then days worked, anomaly days, worked,
/// overtime and night minutes.
fn payable(line: &str) -> String {
    let cells: Vec<&str> = line.split(',').collect();
    let column = |name: &str| {
        let i = punchctl::ops::payroll::HEADER
            .iter()
            .position(|h| *h == name)
            .expect("a header column");
        cells.get(i).copied().unwrap_or_default()
    };
    [
        "employee_id",
        "days_worked",
        "anomaly_days",
        "worked_minutes",
        "overtime_minutes",
        "night_minutes",
    ]
    .map(column)
    .join(",")
}

/// The payable columns the engine gives for `month` of the scenario's punches.
fn expected_csv(scenario: &Scenario, month: &str) -> anyhow::Result<Vec<String>> {
    let month = Month::parse(month).context("month")?;
    let rules = rules_of(scenario.tz, scenario.day_change);
    let mut out = Vec::new();
    for (employee, _) in &scenario.employees {
        let punches: Vec<Punch> = scenario
            .punches
            .iter()
            .filter(|p| p.employee_id.as_ref() == Some(employee))
            .map(|p| Punch {
                id: p.punch_id.to_string(),
                seq: p.seq,
                kind: p.kind,
                at: p.at.div_euclid(1000),
                added: false,
            })
            .collect();
        let computed = compute(&rules, &punches, &[]);
        let m = computed.months.get(&month).cloned().unwrap_or_default();
        out.push(format!(
            "{employee},{},{},{},{},{}",
            m.days_worked, m.anomaly_days, m.worked_minutes, m.overtime_minutes, m.night_minutes
        ));
    }
    out.sort();
    Ok(out)
}

async fn payroll_csv(db: &TestDatabase, tenant: &str, month: &str) -> anyhow::Result<String> {
    let cli = punchctl::Cli::try_parse_from([
        "punchctl",
        "--database-url",
        &db.url,
        "payroll",
        "export",
        "--tenant",
        tenant,
        "--month",
        month,
    ])?;
    let mut out = Vec::new();
    let mut err = Vec::new();
    punchctl::run_with_output(cli, &mut out, &mut err).await?;
    Ok(String::from_utf8(out)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_resent_punches_give_identical_rows_to_the_ordered_log() -> anyhow::Result<()> {
    let ordered = World::new().await?;
    let shuffled = World::new().await?;
    // The same tenant and punches in both worlds.
    let scenario = ordered.scenario(5, 2)?;
    let mut shuffled_scenario = scenario.clone();
    shuffled_scenario.group = shuffled.group.group.clone();
    for p in &mut shuffled_scenario.punches {
        p.group = shuffled.group.group.clone();
    }
    scenario.seed(&ordered.db).await?;
    shuffled_scenario.seed(&shuffled.db).await?;

    produce_checked(&ordered.stack, &ordered.group.group, &scenario.punches).await?;
    let arrivals = resent(&shuffled_scenario.punches, 2.0, 11);
    assert!(arrivals.len() >= 3 * scenario.punches.len() - 1);
    produce_checked(&shuffled.stack, &shuffled.group.group, &arrivals).await?;

    let a = ordered.consumer(|_| {});
    // Tiny batches: a day's punches arrive over many transactions, out of order.
    let b = shuffled.consumer(|c| c.batch_max_records = 13);
    let expected = scenario.expected();
    let rows_a = wait_for_days(&ordered.db, &expected, WAIT).await?;
    let rows_b = wait_for_days(&shuffled.db, &expected, WAIT).await?;
    assert_eq!(
        figures_of(&rows_a),
        figures_of(&rows_b),
        "identical figures whatever the order"
    );
    assert_eq!(
        rows_a.keys().collect::<Vec<_>>(),
        rows_b.keys().collect::<Vec<_>>(),
        "identical rows"
    );
    assert_eq!(
        punch_counts(&ordered.db).await?,
        punch_counts(&shuffled.db).await?
    );
    // The shuffled log rewrote days as their punches trickled in; the ordered one mostly
    // wrote each day once. Revisions count changes, so they may differ (figures may not).
    assert!(rows_b.values().map(|r| r.revision).sum::<i64>() >= rows_a.len() as i64);

    a.stop().await?;
    b.stop().await?;
    ordered.finish().await?;
    shuffled.finish().await
}

/// Verdicts for hand-made punches of one employee on 2020-12-04 (Tokyo).
struct Verdicts {
    base: CheckedPunch,
}

impl Verdicts {
    fn new(scenario: &Scenario) -> Self {
        Self {
            base: scenario.punches[0].clone(),
        }
    }

    /// An accepted verdict of the punch with `seq`, `kind` at `hh:mm` local.
    fn accepted(&self, seq: u64, kind: PunchKind, hhmm: &str, mdv: i64) -> CheckedPunch {
        let at = chrono::DateTime::parse_from_rfc3339(&format!("2020-12-04T{hhmm}:00+09:00"))
            .expect("valid time")
            .timestamp_millis();
        let mut v = self.base.clone();
        v.seq = seq;
        v.punch_id = dakoku_schemas::PunchId::derive(&v.tenant_id, &v.device_id, seq);
        v.kind = kind;
        v.at = at;
        v.at_offset_minutes = 540;
        v.master_data_version = mdv;
        v.checked_at = at + mdv * 1_000;
        v
    }

    /// The same punch judged again with master data `mdv`: rejected for `reason` (keyed by card
    /// when the reason means the employee is unknown).
    fn rejected(punch: &CheckedPunch, reason: RejectReason, mdv: i64) -> CheckedPunch {
        let mut v = punch.clone();
        v.verdict = Verdict::Rejected;
        v.reason = Some(reason);
        if reason == RejectReason::UnknownCard {
            v.employee_id = None;
        }
        v.master_data_version = mdv;
        v.checked_at = punch.at + mdv * 1_000;
        v
    }

    fn again(punch: &CheckedPunch, mdv: i64) -> CheckedPunch {
        let mut v = punch.clone();
        v.verdict = Verdict::Accepted;
        v.reason = None;
        v.master_data_version = mdv;
        v.checked_at = punch.at + mdv * 1_000;
        v
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_verdict_of_a_punch_counts_whatever_the_partition_order() -> anyhow::Result<()> {
    let world = World::new().await?;
    let mut scenario = world.scenario(2, 3)?;
    scenario.punches.truncate(1);
    scenario.seed(&world.db).await?;
    let v = Verdicts::new(&scenario);
    let tz = scenario.tz;
    let day_change = scenario.day_change;
    let consumer = world.consumer(|_| {});
    let mut log: Vec<CheckedPunch> = Vec::new();

    // Phase 1: a clean day, 09:00-18:00 with a lunch break.
    let clock_in = v.accepted(1, PunchKind::ClockIn, "09:00", 10);
    let break_start = v.accepted(2, PunchKind::BreakStart, "12:00", 10);
    let break_end = v.accepted(3, PunchKind::BreakEnd, "13:00", 10);
    let clock_out = v.accepted(4, PunchKind::ClockOut, "18:00", 10);
    let phase1 = vec![
        clock_in.clone(),
        break_start.clone(),
        break_end.clone(),
        clock_out.clone(),
    ];
    log.extend(phase1.iter().cloned());
    produce_checked(&world.stack, &world.group.group, &phase1).await?;
    let expected = expected_days(&log, tz, day_change);
    let day_key = expected.keys().next().context("one day")?.clone();
    assert_eq!(expected[&day_key].worked_seconds, 28_800);
    let r1 = wait_for_days(&world.db, &expected, WAIT).await?[&day_key].revision;

    // Phase 2: the clock-out is re-judged with newer master data and rejected (licence gone):
    // it is withdrawn and the day loses its span. An OLDER rejection of the break_end (keyed by
    // card, so on another partition, read later) must not withdraw it.
    let withdraw = Verdicts::rejected(&clock_out, RejectReason::NotLicensed, 11);
    let stale = Verdicts::rejected(&break_end, RejectReason::UnknownCard, 9);
    let phase2 = vec![withdraw, stale];
    log.extend(phase2.iter().cloned());
    produce_checked(&world.stack, &world.group.group, &phase2).await?;
    let expected = expected_days(&log, tz, day_change);
    assert_eq!(expected[&day_key].worked_seconds, 0);
    assert_eq!(expected[&day_key].anomalies, vec![Anomaly::MissingClockOut]);
    wait_for_days(&world.db, &expected, WAIT).await?;
    // Wait for the stale record's offset too, then check it changed nothing.
    eventually("both phase-2 records applied", WAIT, || async {
        Ok((stored_offsets_total(&world.db, &world.group.group).await? >= 6).then_some(()))
    })
    .await?;
    let r2 = wait_for_days(&world.db, &expected, WAIT).await?[&day_key].revision;
    assert_eq!(r2, r1 + 1, "one change: the withdrawal");
    let (_, withdrawn, _, _) = punch_counts(&world.db).await?;
    assert_eq!(withdrawn, 1, "only the clock-out is withdrawn");

    // Phase 3: a recheck accepts the clock-out again (newer master data): reinstated. A punch
    // rejected as an unknown card and never accepted adds nothing; and an acceptance OLDER than
    // a stored rejection (read after it) stays out.
    let reinstate = Verdicts::again(&clock_out, 12);
    let stranger = Verdicts::rejected(
        &v.accepted(5, PunchKind::ClockIn, "19:00", 10),
        RejectReason::UnknownCard,
        12,
    );
    let late_in = v.accepted(6, PunchKind::ClockIn, "20:00", 10);
    let late_in_rejected = Verdicts::rejected(&late_in, RejectReason::EmployeeInactive, 13);
    let phase3 = vec![reinstate, stranger, late_in_rejected];
    log.extend(phase3.iter().cloned());
    produce_checked(&world.stack, &world.group.group, &phase3).await?;
    let expected = expected_days(&log, tz, day_change);
    assert_eq!(expected[&day_key].worked_seconds, 28_800);
    wait_for_days(&world.db, &expected, WAIT).await?;
    eventually("phase-3 records applied", WAIT, || async {
        Ok((stored_offsets_total(&world.db, &world.group.group).await? >= 9).then_some(()))
    })
    .await?;
    let r3 = wait_for_days(&world.db, &expected, WAIT).await?[&day_key].revision;
    assert_eq!(r3, r2 + 1, "one change: the reinstatement");
    let phase4 = vec![late_in.clone()];
    log.extend(phase4.iter().cloned());
    produce_checked(&world.stack, &world.group.group, &phase4).await?;
    eventually("phase-4 record applied", WAIT, || async {
        Ok((stored_offsets_total(&world.db, &world.group.group).await? >= 10).then_some(()))
    })
    .await?;
    let expected = expected_days(&log, tz, day_change);
    let rows = wait_for_days(&world.db, &expected, WAIT).await?;
    assert!(rows[&day_key].figures.anomalies.is_empty());
    let (punches, withdrawn, conflicts, rejections) = punch_counts(&world.db).await?;
    assert_eq!(
        (punches, withdrawn, conflicts, rejections),
        (5, 1, 0, 1),
        "the late clock-in is stored but withdrawn; the stranger is only remembered"
    );
    assert_eq!(
        rows[&day_key].revision, r3,
        "a superseded acceptance changes nothing"
    );

    // Phase 5: every punch of the day withdrawn: the row stays, zeroed, with a new revision,
    // and the topic carries that zero day as the day's latest state.
    let phase5: Vec<CheckedPunch> = [&clock_in, &break_start, &break_end, &clock_out]
        .into_iter()
        .map(|p| Verdicts::rejected(p, RejectReason::LicenceExpired, 20))
        .collect();
    log.extend(phase5.iter().cloned());
    produce_checked(&world.stack, &world.group.group, &phase5).await?;
    let expected = expected_days(&log, tz, day_change);
    assert!(expected.is_empty());
    let rows = wait_for_days(&world.db, &expected, WAIT).await?;
    let emptied = rows
        .get(&day_key)
        .context("the emptied day keeps its row")?;
    assert_eq!(emptied.figures, DayFigures::default());
    let r5 = emptied.revision;
    assert!(r5 > r3);
    let key = rows_as_topic(&rows)
        .into_keys()
        .next()
        .context("topic key")?;
    let latest = latest_daily(&world.stack, &world.group.group, WAIT, |l| {
        l.get(&key).is_some_and(|d| d.revision >= r5)
    })
    .await?;
    assert_eq!(topic_figures(&latest[&key]), DayFigures::default());

    consumer.stop().await?;
    world.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_with_different_content_is_kept_aside_and_poison_is_quarantined()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let mut scenario = world.scenario(1, 4)?;
    scenario.punches.truncate(1);
    scenario.seed(&world.db).await?;
    let v = Verdicts::new(&scenario);
    let clock_in = v.accepted(1, PunchKind::ClockIn, "09:00", 10);
    let clock_out = v.accepted(2, PunchKind::ClockOut, "18:00", 10);
    // Same punch_id as the clock-out, other content: a recorder bug, not a resend.
    let mut forged = clock_out.clone();
    forged.at -= 3 * 3_600_000;
    forged.checked_at += 1;
    let log = vec![clock_in, clock_out.clone()];
    produce_checked(&world.stack, &world.group.group, &log).await?;

    // Garbage on the checked topic, keyed like a verdict of this tenant.
    let producer: dakoku_kafka::FutureProducer =
        world.stack.kafka().producer("e2e-poison").create()?;
    let topic = Topic::Checked(world.group.group.clone()).name();
    let key = format!("{}/E0000", scenario.tenant);
    produce_records(
        &producer,
        &topic,
        &[(key.clone(), b"\xC3\x01not avro at all".to_vec())],
    )
    .await?;
    produce_checked(&world.stack, &world.group.group, &[forged]).await?;

    let consumer = world.consumer(|_| {});
    let expected = expected_days(&log, scenario.tz, scenario.day_change);
    assert_eq!(
        expected.values().next().map(|f| f.worked_seconds),
        Some(540 * 60)
    );
    wait_for_days(&world.db, &expected, WAIT).await?;
    eventually("all four records applied", WAIT, || async {
        Ok((stored_offsets_total(&world.db, &world.group.group).await? >= 4).then_some(()))
    })
    .await?;
    wait_for_days(&world.db, &expected, WAIT).await?;
    let (punches, withdrawn, conflicts, rejections) = punch_counts(&world.db).await?;
    assert_eq!((punches, withdrawn, conflicts, rejections), (2, 0, 1, 0));
    let client = world.db.client().await?;
    let stored_at: chrono::DateTime<chrono::Utc> = client
        .query_one(
            "SELECT at FROM punches WHERE punch_id = $1",
            &[clock_out.punch_id.as_uuid()],
        )
        .await?
        .get(0);
    assert_eq!(
        stored_at.timestamp_millis(),
        clock_out.at,
        "the stored punch is unchanged"
    );
    let received: serde_json::Value = client
        .query_one("SELECT received FROM punch_conflicts", &[])
        .await?
        .get(0);
    assert_eq!(
        received["at"].as_i64(),
        Some(clock_out.at - 3 * 3_600_000),
        "the conflicting content is kept"
    );

    // The garbage is in quarantine with its origin.
    let mut found = None;
    dakoku_testkit::read::read_topic(&world.stack, &Topic::Quarantine.name(), WAIT, |record| {
        if let Ok(q) = dakoku_schemas::decode::<QuarantinedInput>(&record.payload)
            && q.origin_topic.as_deref() == Some(topic.as_str())
        {
            found = Some(q);
            return true;
        }
        false
    })
    .await?;
    let q = found.context("quarantined")?;
    assert_eq!(q.source, "attendance");
    assert_eq!(q.error_code, "undecodable_verdict");
    assert_eq!(q.payload, b"\xC3\x01not avro at all");
    assert_eq!(q.tenant_id.as_deref(), Some(scenario.tenant.as_str()));
    assert!(q.origin_offset.is_some() && q.origin_partition.is_some());

    consumer.stop().await?;
    world.finish().await
}

/// Rows read straight after a fresh start equal the rows before: a restart re-reads nothing
/// (offsets stored) and a replay from the beginning changes nothing (no revision churn).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_and_a_replay_from_the_beginning_change_nothing() -> anyhow::Result<()> {
    let world = World::new().await?;
    let scenario = world.scenario(4, 5)?;
    scenario.seed(&world.db).await?;
    produce_checked(&world.stack, &world.group.group, &scenario.punches).await?;
    let expected = scenario.expected();
    let consumer = world.consumer(|_| {});
    let before = wait_for_days(&world.db, &expected, WAIT).await?;
    consumer.stop().await?;
    let client = world.db.client().await?;
    let computed_before = computed_at(&client).await?;

    // Replay: forget the stored offsets, so every verdict is read and applied again.
    client.execute("DELETE FROM consumer_offsets", &[]).await?;
    let consumer = world.consumer(|_| {});
    let total = scenario.punches.len() as i64;
    eventually("the whole log re-applied", WAIT, || async {
        Ok((stored_offsets_total(&world.db, &world.group.group).await? >= total).then_some(()))
    })
    .await?;
    let after = read_days(&client).await?;
    assert_eq!(before, after, "same figures and same revisions");
    assert_eq!(
        computed_before,
        computed_at(&client).await?,
        "no day rewritten"
    );
    consumer.stop().await?;
    world.finish().await
}

/// Every day's `computed_at`, in key order.
async fn computed_at(
    client: &tokio_postgres::Client,
) -> anyhow::Result<Vec<chrono::DateTime<chrono::Utc>>> {
    Ok(client
        .query(
            "SELECT computed_at FROM attendance_days ORDER BY tenant_id, employee_id, work_date",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Two consumers of one group: the second joining and the first leaving mid-stream each
/// rebalance the partitions; every partition continues at the offsets stored in Postgres, so
/// nothing is lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_joining_and_leaving_mid_stream_lose_and_double_nothing() -> anyhow::Result<()> {
    let world = World::new().await?;
    let scenario = world.scenario(9, 6)?;
    scenario.seed(&world.db).await?;
    let arrivals = resent(&scenario.punches, 0.5, 61);
    let total = arrivals.len() as i64;
    let (first, rest) = arrivals.split_at(arrivals.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);

    // A is slow (each batch held open 300 ms), so B joins while A is mid-stream.
    let a = world.consumer(|c| {
        c.batch_max_records = 20;
        c.debug_batch_delay_ms = 300;
    });
    produce_checked(&world.stack, &world.group.group, first).await?;
    eventually("the first consumer making progress", WAIT, || async {
        Ok((stored_offsets_total(&world.db, &world.group.group).await? > 0).then_some(()))
    })
    .await?;
    let b = world.consumer(|c| c.batch_max_records = 20);
    produce_checked(&world.stack, &world.group.group, second).await?;
    let produced = (first.len() + second.len()) as i64;
    eventually("both parts applied with two consumers", WAIT, || async {
        Ok((stored_offsets_total(&world.db, &world.group.group).await? >= produced).then_some(()))
    })
    .await?;
    a.stop().await?;
    produce_checked(&world.stack, &world.group.group, third).await?;

    let expected = scenario.expected();
    wait_for_days(&world.db, &expected, WAIT).await?;
    eventually("every record applied", WAIT, || async {
        Ok((stored_offsets_total(&world.db, &world.group.group).await? >= total).then_some(()))
    })
    .await?;
    assert_eq!(
        stored_offsets_total(&world.db, &world.group.group).await?,
        total
    );
    let (punches, withdrawn, conflicts, rejections) = punch_counts(&world.db).await?;
    assert_eq!(
        (punches, withdrawn, conflicts, rejections),
        (scenario.punches.len() as i64, 0, 0, 0)
    );
    b.stop().await?;
    world.finish().await
}
