//! Recovery on the real broker and Postgres (DESIGN "Recovery", CONTRACT §5): `punchctl
//! rebuild` gives back the same `attendance_days` and repairs one tenant without touching the
//! others; an interrupted rebuild stops the attendance service of the group until it is run
//! again, and a rebuild of another tenant is refused until then; `punchctl replay` to a moment
//! processes exactly the records after it again, with no punch doubled, and refuses while a
//! consumer of the group runs; a bad master-data change followed by a fix and `punchctl
//! recheck` ends with the right attendance.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{NaiveDate, SecondsFormat, TimeZone as _, Utc};
use dakoku_attendance::rebuild::{self, Scope};
use dakoku_attendance::{AttendanceError, ConsumerError};
use dakoku_e2e::attendance::TestAttendance;
use dakoku_e2e::licence::{TestLicenceCheck, quarantined_from, test_config, wait_for_verdicts};
use dakoku_e2e::recovery::{
    RebuildStage, exact_days, interrupted_rebuild, prepared_rebuild, punchctl, raw_of,
    stored_offsets, unfinished_rebuild_row, wait_caught_up, wait_for_members, wait_refused,
    wait_until_idle,
};
use dakoku_rules::v2::DayFigures;
use dakoku_schemas::{CardId, CheckedPunch, PunchId, RejectReason, TenantId, Topic, Verdict};
use dakoku_testkit::days::{
    figures_of, latest_daily, punch_counts, read_days, stored_offsets_total, wait_for_days,
};
use dakoku_testkit::master::master_data_version;
use dakoku_testkit::produce::{produce_bytes, produce_checked, produce_raw, produce_raw_at};
use dakoku_testkit::read::committed_offsets;
use dakoku_testkit::scenario::{expected_days, resent};
use dakoku_testkit::{Scenario, Stack, TestDatabase, TestGroup, eventually, unique_suffix};
use punchctl::rebuild::RebuildError;
use punchctl::replay::ReplayError;

const WAIT: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 3;

/// One test's world: its own topics and database.
struct World {
    stack: Stack,
    group: TestGroup,
    db: TestDatabase,
}

impl World {
    async fn new() -> anyhow::Result<Self> {
        let stack = Stack::from_env();
        let group = TestGroup::create(&stack, PARTITIONS).await?;
        let db = TestDatabase::create(&stack).await?;
        Ok(Self { stack, group, db })
    }

    fn g(&self) -> &str {
        self.group.group.as_str()
    }

    /// A realistic week (from Monday 2020-11-30) of a fresh tenant of the world's group.
    fn week(&self, prefix: &str, employees: usize, seed: u64) -> anyhow::Result<Scenario> {
        let start = NaiveDate::from_ymd_opt(2020, 11, 30).context("date")?;
        Scenario::realistic_week(
            &format!("{prefix}{}", unique_suffix()),
            &self.group.group,
            employees,
            start,
            seed,
        )
    }

    fn attendance(&self) -> TestAttendance {
        TestAttendance::start(&self.stack, &self.db.url, &self.group.group, |_| {})
    }

    async fn licence_check(&self) -> anyhow::Result<TestLicenceCheck> {
        TestLicenceCheck::start(test_config(
            &self.stack,
            &self.db,
            std::slice::from_ref(&self.group.group),
        ))
        .await
    }

    async fn punchctl(&self, args: &[&str]) -> anyhow::Result<String> {
        punchctl(&self.stack, &self.db, args).await
    }

    async fn wait_until_idle(&self, consumer_group: &str) -> anyhow::Result<()> {
        wait_until_idle(&self.stack, consumer_group).await
    }

    /// Seeds `scenarios`, produces their verdicts (with resends) and runs the attendance
    /// service until it has applied every record, then stops it; returns the log.
    async fn settled(&self, scenarios: &[&Scenario]) -> anyhow::Result<Vec<CheckedPunch>> {
        let mut log = Vec::new();
        for (i, scenario) in scenarios.iter().enumerate() {
            scenario.seed(&self.db).await?;
            log.extend(resent(&scenario.punches, 0.2, i as u64 + 1));
        }
        produce_checked(&self.stack, &self.group.group, &log).await?;
        let consumer = self.attendance();
        let total = log.len() as i64;
        eventually("every record applied", WAIT, || async {
            Ok((stored_offsets_total(&self.db, &self.group.group).await? == total).then_some(()))
        })
        .await?;
        consumer.stop().await?;
        self.wait_until_idle(&format!("attendance.{}", self.g()))
            .await?;
        Ok(log)
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.db.drop_db().await?;
        self.group.delete_topics().await
    }
}

/// A later rejection of `punch` (newer master data): attendance withdraws it.
fn rejected_later(punch: &CheckedPunch, reason: RejectReason) -> CheckedPunch {
    let mut rejected = punch.clone();
    rejected.verdict = Verdict::Rejected;
    rejected.reason = Some(reason);
    rejected.master_data_version += 1;
    rejected.checked_at += 60_000;
    rejected
}

/// A punch of a card nobody holds: rejected, never stored as a punch.
fn unknown_card(scenario: &Scenario) -> anyhow::Result<CheckedPunch> {
    let mut punch = scenario.punches.first().context("a punch")?.clone();
    punch.seq = 999_999;
    punch.punch_id = PunchId::derive(&punch.tenant_id, &punch.device_id, punch.seq);
    punch.card_id = "NOBODY".parse::<CardId>()?;
    punch.employee_id = None;
    punch.verdict = Verdict::Rejected;
    punch.reason = Some(RejectReason::UnknownCard);
    Ok(punch)
}

fn of_tenant<V: Clone>(
    rows: &BTreeMap<(String, String, NaiveDate), V>,
    tenant: &TenantId,
) -> BTreeMap<(String, String, NaiveDate), V> {
    rows.iter()
        .filter(|((t, _, _), _)| t == tenant.as_str())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `rebuild` of a whole group gives back the same table, row for row, revisions and
/// `computed_at` included (unchanged days are not rewritten); a tenant's rebuild repairs that
/// tenant (wrong figures, lost punches, a stray row) and leaves every other tenant's rows as
/// they were; the repaired days get new revisions, which the service publishes when it starts.
/// Refused while the attendance service runs. An invalid record is skipped as the service
/// skips it, and quarantined only if the service never saw it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_gives_back_the_same_table_and_repairs_one_tenant_alone() -> anyhow::Result<()> {
    let world = World::new().await?;
    let (a, b) = (world.week("a", 6, 11)?, world.week("b", 4, 12)?);
    a.seed(&world.db).await?;
    b.seed(&world.db).await?;
    // Resends, a punch withdrawn by a later rejection, a card nobody holds.
    let mut log = resent(&a.punches, 0.3, 1);
    log.extend(resent(&b.punches, 0.3, 2));
    log.push(rejected_later(&a.punches[5], RejectReason::NotLicensed));
    log.push(unknown_card(&a)?);
    produce_checked(&world.stack, &world.group.group, &log).await?;
    // Poison, which the service quarantines.
    let checked_topic = Topic::Checked(world.group.group.clone()).name();
    let seen_poison = produce_bytes(&world.stack, &checked_topic, "x/y", Some(b"garbage")).await?;
    let expected = expected_days(&log, a.tz, a.day_change);
    let consumer = world.attendance();
    wait_for_days(&world.db, &expected, WAIT).await?;
    let total = log.len() as i64 + 1;
    eventually("every record applied", WAIT, || async {
        Ok((stored_offsets_total(&world.db, &world.group.group).await? == total).then_some(()))
    })
    .await?;

    // Refused while the service runs, naming it; nothing changed.
    let before = exact_days(&world.db).await?;
    let error = world
        .punchctl(&["rebuild", "--group", world.g()])
        .await
        .expect_err("a rebuild while attendance runs");
    match error.downcast_ref::<RebuildError>() {
        Some(RebuildError::Group(ReplayError::LiveMembers { members, .. })) => {
            let client = format!("test-attendance-{}", world.g());
            assert!(members.iter().any(|m| m.client_id == client), "{members:?}");
        }
        other => panic!("expected LiveMembers, got {other:?} ({error:#})"),
    }
    assert!(
        error.to_string().contains("Stop the attendance consumer"),
        "{error}"
    );
    assert_eq!(exact_days(&world.db).await?, before);
    consumer.stop().await?;
    world
        .wait_until_idle(&format!("attendance.{}", world.g()))
        .await?;

    // Poison the service never saw: the rebuild must quarantine it.
    let new_poison = produce_bytes(&world.stack, &checked_topic, "x/z", Some(b"junk")).await?;
    let total = total + 1;

    // A dry run says what it would do and does nothing.
    let counts_before = punch_counts(&world.db).await?;
    let (punches, withdrawn, conflicts, rejections) = counts_before;
    assert_eq!((withdrawn, conflicts, rejections), (1, 0, 1));
    let out = world
        .punchctl(&["rebuild", "--group", world.g(), "--dry-run"])
        .await?;
    assert!(
        out.contains(&format!(
            "would clear: {punches} punches (1 withdrawn), 1 rejections, 0 conflicts"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("would replay: {total} records")),
        "{out}"
    );
    assert_eq!(exact_days(&world.db).await?, before);
    assert_eq!(punch_counts(&world.db).await?, counts_before);

    // The rebuild of the group: the same table, byte for byte.
    let employees = before
        .keys()
        .map(|(tenant, employee, _)| (tenant, employee))
        .collect::<BTreeSet<_>>()
        .len();
    let out = world.punchctl(&["rebuild", "--group", world.g()]).await?;
    assert!(out.contains(&format!("replayed: {total} records")), "{out}");
    assert!(
        out.contains(&format!("{employees} employees recomputed in"))
            && out.contains(": 0 days and months changed,"),
        "{out}"
    );
    assert!(out.contains("publish: nothing changed"), "{out}");
    assert!(
        out.contains("invalid records: 2 skipped (1 quarantined now"),
        "{out}"
    );
    let mut quarantined: Vec<(i32, i64)> = quarantined_from(&world.stack, &checked_topic)
        .await?
        .iter()
        .map(|q| {
            (
                q.origin_partition.unwrap_or(-1),
                q.origin_offset.unwrap_or(-1),
            )
        })
        .collect();
    quarantined.sort_unstable();
    let mut poison = vec![seen_poison, new_poison];
    poison.sort_unstable();
    assert_eq!(quarantined, poison, "each invalid record quarantined once");
    assert_eq!(exact_days(&world.db).await?, before, "row for row");
    assert_eq!(punch_counts(&world.db).await?, counts_before);
    assert_eq!(
        stored_offsets_total(&world.db, &world.group.group).await?,
        total
    );

    // Damage tenant a: wrong figures on a day, lost punches, a stray day.
    let client = world.db.client().await?;
    let wrong_day = expected
        .keys()
        .find(|(t, _, _)| t == a.tenant.as_str())
        .context("a day of a")?
        .clone();
    client
        .execute(
            "UPDATE attendance_days SET worked_seconds = worked_seconds + 3600, \
             worked_minutes = worked_minutes + 60 \
             WHERE tenant_id = $1 AND employee_id = $2 AND work_date = $3",
            &[&wrong_day.0, &wrong_day.1, &wrong_day.2],
        )
        .await?;
    let lost = client
        .execute(
            "DELETE FROM punches WHERE tenant_id = $1 AND employee_id = 'E0002'",
            &[&a.tenant.as_str()],
        )
        .await?;
    assert!(lost > 0);
    let stray_date = NaiveDate::from_ymd_opt(2020, 12, 25).context("date")?;
    client
        .execute(
            "INSERT INTO attendance_days (tenant_id, employee_id, work_date, group_id, \
             worked_minutes, break_minutes, night_minutes, overtime_minutes, punch_count, \
             revision, computed_at) VALUES ($1, 'E0000', $2, $3, 100, 0, 0, 0, 2, 3, now())",
            &[&a.tenant.as_str(), &stray_date, &world.g()],
        )
        .await?;
    let damaged = exact_days(&world.db).await?;

    let out = world
        .punchctl(&["rebuild", "--tenant", a.tenant.as_str()])
        .await?;
    assert!(out.contains(": 2 days and months changed,"), "{out}");
    assert!(
        out.contains("2 changed days and months go to attendance.daily."),
        "{out}"
    );
    let rows = read_days(&client).await?;
    assert_eq!(figures_of(&rows), expected, "tenant a repaired");
    let after = exact_days(&world.db).await?;
    assert_eq!(
        of_tenant(&after, &b.tenant),
        of_tenant(&before, &b.tenant),
        "tenant b untouched"
    );
    let old_revision = read_revision(&before[&wrong_day])?;
    assert_eq!(rows[&wrong_day].revision, old_revision + 1);
    let stray = &rows[&(a.tenant.to_string(), "E0000".to_owned(), stray_date)];
    assert_eq!(
        (stray.figures.clone(), stray.revision),
        (DayFigures::default(), 4),
        "a stray day is zeroed with a new revision, never deleted"
    );
    for (key, row) in of_tenant(&damaged, &a.tenant) {
        if key != wrong_day && key.2 != stray_date {
            assert_eq!(after[&key], row, "unchanged day {key:?} not rewritten");
        }
    }
    assert_eq!(
        punch_counts(&world.db).await?,
        counts_before,
        "lost punches back"
    );

    // The service publishes the two repaired days when it starts.
    let consumer = world.attendance();
    let wrong_key = format!(
        "{}/{}/{}",
        wrong_day.0,
        wrong_day.1,
        wrong_day.2.format("%Y-%m-%d")
    );
    let topic = latest_daily(&world.stack, &world.group.group, WAIT, |days| {
        days.get(&wrong_key)
            .is_some_and(|d| d.revision == old_revision + 1)
    })
    .await?;
    assert_eq!(
        topic[&wrong_key].worked_seconds,
        Some(expected[&wrong_day].worked_seconds)
    );
    consumer.stop().await?;
    world.finish().await
}

fn read_revision(row_json: &str) -> anyhow::Result<i64> {
    let value: serde_json::Value = serde_json::from_str(row_json)?;
    value["revision"].as_i64().context("a revision")
}

/// The unfinished rebuild the attendance service stopped with (it must be that error).
fn refused_for(error: &anyhow::Error) -> &rebuild::UnfinishedRebuild {
    match error.downcast_ref::<AttendanceError>() {
        Some(AttendanceError::Consumer(ConsumerError::UnfinishedRebuild(unfinished))) => unfinished,
        other => panic!("expected UnfinishedRebuild, got {other:?} ({error:#})"),
    }
}

/// A rebuild interrupted after its replay, before its recompute: its row stays in
/// `attendance_rebuilds`; the attendance service refuses the group, naming the command, and
/// stores nothing; the dry run reports it; the same rebuild run again finishes it (the table
/// equals the one before, row for row) and removes the row, and the service consumes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rebuild_stops_the_service_until_it_is_run_again() -> anyhow::Result<()> {
    let world = World::new().await?;
    let a = world.week("a", 4, 21)?;
    let log = world.settled(&[&a]).await?;
    let expected = expected_days(&log, a.tz, a.day_change);
    let before = exact_days(&world.db).await?;
    assert_eq!(
        figures_of(&read_days(&world.db.client().await?).await?),
        expected
    );
    let counts_before = punch_counts(&world.db).await?;

    let group = &world.group.group;
    interrupted_rebuild(
        &world.stack,
        &world.db,
        group,
        Scope::Group,
        RebuildStage::Replay,
    )
    .await?;
    let (tenant, started_by) = unfinished_rebuild_row(&world.db, group)
        .await?
        .context("the interrupted rebuild's row")?;
    assert_eq!(tenant, None, "a whole-group rebuild");
    assert!(!started_by.is_empty());
    assert_eq!(
        exact_days(&world.db).await?,
        before,
        "days not recomputed yet"
    );

    // The service refuses the group before reading anything, and says what to run.
    let offsets = stored_offsets(&world.db, group).await?;
    let error = wait_refused(world.attendance()).await?;
    let unfinished = refused_for(&error);
    assert_eq!(
        (&unfinished.group, &unfinished.scope),
        (group, &Scope::Group)
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("run `punchctl rebuild --group {}`", world.g())),
        "{message}"
    );
    assert_eq!(stored_offsets(&world.db, group).await?, offsets);
    assert!(unfinished_rebuild_row(&world.db, group).await?.is_some());

    // The dry run reports it and changes nothing; the rebuild again finishes it.
    let out = world
        .punchctl(&["rebuild", "--group", world.g(), "--dry-run"])
        .await?;
    assert!(
        out.contains(&format!(
            "unfinished: the rebuild of group {} started at",
            world.g()
        )) && out.contains("this rebuild finishes it"),
        "{out}"
    );
    assert!(unfinished_rebuild_row(&world.db, group).await?.is_some());
    let out = world.punchctl(&["rebuild", "--group", world.g()]).await?;
    assert!(out.contains(": 0 days and months changed,"), "{out}");
    assert_eq!(unfinished_rebuild_row(&world.db, group).await?, None);
    assert_eq!(exact_days(&world.db).await?, before, "row for row");
    assert_eq!(punch_counts(&world.db).await?, counts_before);

    // The service consumes the group again: a later rejection withdraws a punch.
    let consumer = world.attendance();
    let withdrawn = rejected_later(&a.punches[3], RejectReason::NotLicensed);
    produce_checked(&world.stack, group, std::slice::from_ref(&withdrawn)).await?;
    eventually("the later rejection applied", WAIT, || async {
        Ok((punch_counts(&world.db).await?.1 == counts_before.1 + 1).then_some(()))
    })
    .await?;
    assert!(!consumer.is_finished());
    consumer.stop().await?;
    world.finish().await
}

/// With tenant a's rebuild interrupted right after its clear, a rebuild of tenant b is
/// refused (dry run too), naming the command that finishes a's, and changes nothing; the
/// service names a's command; a whole-group rebuild covers a's, removes the row and gives
/// back the table as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_of_another_scope_is_refused_until_the_interrupted_one_is_finished()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let (a, b) = (world.week("a", 3, 31)?, world.week("b", 3, 32)?);
    world.settled(&[&a, &b]).await?;
    let before = exact_days(&world.db).await?;
    let counts_before = punch_counts(&world.db).await?;
    let group = &world.group.group;

    let scope_a = Scope::Tenant(a.tenant.clone());
    interrupted_rebuild(
        &world.stack,
        &world.db,
        group,
        scope_a.clone(),
        RebuildStage::Clear,
    )
    .await?;
    assert_eq!(
        unfinished_rebuild_row(&world.db, group)
            .await?
            .map(|(tenant, _)| tenant),
        Some(Some(a.tenant.to_string()))
    );
    let cleared = punch_counts(&world.db).await?;
    assert!(cleared.0 < counts_before.0, "a's punches cleared");

    for dry_run in [true, false] {
        let mut args = vec!["rebuild", "--tenant", b.tenant.as_str()];
        if dry_run {
            args.push("--dry-run");
        }
        let error = world
            .punchctl(&args)
            .await
            .expect_err("a rebuild of b while a's is unfinished");
        match error.downcast_ref::<RebuildError>() {
            Some(RebuildError::Rebuild(rebuild::RebuildError::Unfinished { unfinished })) => {
                assert_eq!(unfinished.scope, scope_a);
            }
            other => panic!("expected Unfinished, got {other:?} ({error:#})"),
        }
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "finish it first: punchctl rebuild --tenant {}",
                a.tenant
            )) && message.contains(&format!("punchctl rebuild --group {}", world.g())),
            "{message}"
        );
        assert_eq!(punch_counts(&world.db).await?, cleared, "nothing changed");
        assert_eq!(exact_days(&world.db).await?, before);
    }

    let error = wait_refused(world.attendance()).await?;
    assert_eq!(refused_for(&error).scope, scope_a);
    assert!(
        error
            .to_string()
            .contains(&format!("run `punchctl rebuild --tenant {}`", a.tenant)),
        "{error}"
    );

    // The whole group covers a's rebuild.
    let out = world.punchctl(&["rebuild", "--group", world.g()]).await?;
    assert!(
        out.contains(&format!(
            "unfinished: the rebuild of tenant {} (group",
            a.tenant
        )),
        "{out}"
    );
    assert_eq!(unfinished_rebuild_row(&world.db, group).await?, None);
    assert_eq!(exact_days(&world.db).await?, before, "row for row");
    assert_eq!(punch_counts(&world.db).await?, counts_before);
    world.finish().await
}

/// An attendance service started by mistake during a rebuild (after the rebuild checked the
/// group was idle) waits for the rebuild's lock; if the rebuild is then interrupted, its next
/// batch finds the unfinished rebuild and the group stops, writing nothing: neither the new
/// record nor offsets that would skip the cleared punches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_started_during_a_rebuild_stops_when_the_rebuild_is_interrupted()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let a = world.week("a", 3, 51)?;
    world.settled(&[&a]).await?;
    let group = &world.group.group;

    let mut rebuild = prepared_rebuild(&world.stack, &world.db, group, Scope::Group).await?;
    let consumer = world.attendance();
    wait_for_members(&world.stack, &format!("attendance.{}", world.g())).await?;
    let late = rejected_later(&a.punches[2], RejectReason::NotLicensed);
    produce_checked(&world.stack, group, std::slice::from_ref(&late)).await?;
    rebuild.clear().await?;
    let offsets = stored_offsets(&world.db, group).await?;
    drop(rebuild);

    let error = wait_refused(consumer).await?;
    assert_eq!(refused_for(&error).scope, Scope::Group);
    assert_eq!(punch_counts(&world.db).await?.0, 0, "nothing stored again");
    assert_eq!(
        stored_offsets(&world.db, group).await?,
        offsets,
        "no offset moved"
    );
    assert!(unfinished_rebuild_row(&world.db, group).await?.is_some());
    world.finish().await
}

/// `replay` refuses while a consumer of the group runs, naming its members, and changes
/// nothing; once the consumer is stopped it goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_refuses_while_a_consumer_of_the_group_runs() -> anyhow::Result<()> {
    let world = World::new().await?;
    let a = world.week("a", 3, 21)?;
    a.seed(&world.db).await?;
    let raw = raw_of(&a);
    produce_raw(&world.stack, &world.group.group, &raw).await?;
    let licence = world.licence_check().await?;
    let attendance = world.attendance();
    wait_for_verdicts(&world.stack, &world.group.group, raw.len()).await?;
    wait_for_days(&world.db, &a.expected(), WAIT).await?;
    wait_caught_up(&world.stack, &world.db, &world.group.group, raw.len()).await?;
    let stored_before = stored_offsets(&world.db, &world.group.group).await?;

    for (consumer, client_id) in [
        ("licence-check", format!("licence-check.{}", world.g())),
        ("attendance", format!("test-attendance-{}", world.g())),
    ] {
        let consumer_group = format!("{consumer}.{}", world.g());
        wait_for_members(&world.stack, &consumer_group).await?;
        let error = world
            .punchctl(&[
                "replay",
                "--consumer",
                consumer,
                "--group",
                world.g(),
                "--from",
                "earliest",
            ])
            .await
            .expect_err("a replay while the consumer runs");
        match error.downcast_ref::<ReplayError>() {
            Some(ReplayError::LiveMembers {
                consumer_group: named,
                members,
                ..
            }) => {
                assert_eq!(named, &consumer_group);
                assert!(
                    members.iter().any(|m| m.client_id == client_id),
                    "{members:?}"
                );
            }
            other => panic!("expected LiveMembers, got {other:?} ({error:#})"),
        }
        let text = error.to_string();
        assert!(
            text.contains(&client_id) && text.contains("Stop the"),
            "{text}"
        );
    }
    assert_eq!(
        stored_offsets(&world.db, &world.group.group).await?,
        stored_before,
        "attendance's offsets unchanged"
    );
    let raw_topic = format!("punches.raw.{}", world.g());
    let lc_group = format!("licence-check.{}", world.g());
    let committed = committed_offsets(&world.stack, &lc_group, &raw_topic, PARTITIONS).await?;
    assert_eq!(
        committed.values().sum::<i64>(),
        raw.len() as i64,
        "licence-check's unchanged"
    );

    // Stopped, the replay goes through.
    attendance.stop().await?;
    world
        .wait_until_idle(&format!("attendance.{}", world.g()))
        .await?;
    let out = world
        .punchctl(&[
            "replay",
            "--consumer",
            "attendance",
            "--group",
            world.g(),
            "--from",
            "earliest",
        ])
        .await?;
    let span: i64 = stored_before.values().sum();
    assert!(
        out.contains(&format!("process again: {span} records")),
        "{out}"
    );
    let stored = stored_offsets(&world.db, &world.group.group).await?;
    assert!(stored.values().all(|o| *o == 0), "{stored:?}");
    licence.stop().await?;
    world.finish().await
}

/// `replay --from <moment>`: licence-check judges exactly the raw punches produced after the
/// moment again (one more verdict each, none for the others); attendance, replayed to a moment
/// between the two passes, applies exactly those verdicts again and doubles nothing: the same
/// punches, the same rows, revisions included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_to_a_moment_processes_exactly_the_later_records_again_and_doubles_nothing()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let a = world.week("a", 5, 31)?;
    a.seed(&world.db).await?;
    let raw = raw_of(&a);
    let (early, late) = raw.split_at(raw.len() / 2);
    // Record timestamps an hour ago, two minutes apart; the moment lies between them.
    let moment = Utc::now().timestamp_millis() - 3_600_000;
    produce_raw_at(&world.stack, &world.group.group, early, moment - 60_000).await?;
    produce_raw_at(&world.stack, &world.group.group, late, moment + 60_000).await?;
    let moment_text = Utc
        .timestamp_millis_opt(moment)
        .single()
        .context("moment")?
        .to_rfc3339_opts(SecondsFormat::Millis, true);

    let licence = world.licence_check().await?;
    let attendance = world.attendance();
    wait_for_verdicts(&world.stack, &world.group.group, raw.len()).await?;
    wait_for_days(&world.db, &a.expected(), WAIT).await?;
    wait_caught_up(&world.stack, &world.db, &world.group.group, raw.len()).await?;
    let before = exact_days(&world.db).await?;
    licence.stop().await?;
    attendance.stop().await?;
    let lc_group = format!("licence-check.{}", world.g());
    world.wait_until_idle(&lc_group).await?;

    // licence-check back to the moment: the dry run shows it, the replay does it.
    let total = raw.len() as i64;
    let raw_topic = format!("punches.raw.{}", world.g());
    let replay = [
        "replay",
        "--consumer",
        "licence-check",
        "--group",
        world.g(),
        "--from",
        moment_text.as_str(),
    ];
    let out = world
        .punchctl(&[&replay[..], &["--dry-run"][..]].concat())
        .await?;
    let again = format!("process again: {} records", late.len());
    assert!(out.contains(&again) && out.contains("dry run"), "{out}");
    let committed = committed_offsets(&world.stack, &lc_group, &raw_topic, PARTITIONS).await?;
    assert_eq!(
        committed.values().sum::<i64>(),
        total,
        "a dry run changes nothing"
    );
    let out = world.punchctl(&replay).await?;
    assert!(out.contains(&again), "{out}");
    let committed = committed_offsets(&world.stack, &lc_group, &raw_topic, PARTITIONS).await?;
    assert_eq!(committed.values().sum::<i64>(), early.len() as i64);

    // Both consumers again: one more verdict for each later punch, none for the earlier ones;
    // attendance stores nothing twice and rewrites no day.
    let first_pass_done = Utc::now();
    let licence = world.licence_check().await?;
    let attendance = world.attendance();
    let count = raw.len() + late.len();
    wait_for_verdicts(&world.stack, &world.group.group, count).await?;
    let all = wait_caught_up(&world.stack, &world.db, &world.group.group, count).await?;
    let mut per_punch: HashMap<PunchId, usize> = HashMap::new();
    for record in &all {
        *per_punch.entry(record.verdict.punch_id).or_default() += 1;
    }
    let late_ids: BTreeSet<PunchId> = late.iter().map(|p| p.punch_id).collect();
    let judged_twice: BTreeSet<PunchId> = per_punch
        .iter()
        .filter(|(_, n)| **n == 2)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        judged_twice, late_ids,
        "exactly the punches after the moment, once more each"
    );
    assert!(per_punch.values().all(|n| *n <= 2));
    assert_eq!(exact_days(&world.db).await?, before, "no day rewritten");
    assert_eq!(
        punch_counts(&world.db).await?,
        (total, 0, 0, 0),
        "no punch doubled"
    );
    licence.stop().await?;
    attendance.stop().await?;
    world
        .wait_until_idle(&format!("attendance.{}", world.g()))
        .await?;

    // attendance back to a moment between the passes: each partition goes to its first
    // second-pass verdict, so exactly the second pass is applied again.
    let stored_before = stored_offsets(&world.db, &world.group.group).await?;
    let between = first_pass_done.timestamp_millis();
    let mut expected_at = stored_before.clone();
    for record in all.iter().filter(|r| r.timestamp >= between) {
        let at = expected_at.entry(record.partition).or_insert(record.offset);
        *at = (*at).min(record.offset);
    }
    let span: i64 = stored_before.iter().map(|(p, o)| o - expected_at[p]).sum();
    let between_text = first_pass_done.to_rfc3339_opts(SecondsFormat::Millis, true);
    let out = world
        .punchctl(&[
            "replay",
            "--consumer",
            "attendance",
            "--group",
            world.g(),
            "--from",
            &between_text,
        ])
        .await?;
    assert!(
        out.contains(&format!("process again: {span} records")),
        "{out}"
    );
    assert_eq!(
        stored_offsets(&world.db, &world.group.group).await?,
        expected_at
    );
    let again: Vec<PunchId> = all
        .iter()
        .filter(|r| r.offset >= expected_at[&r.partition])
        .map(|r| r.verdict.punch_id)
        .collect();
    assert_eq!(again.len(), late.len(), "the second pass, nothing more");
    assert_eq!(again.into_iter().collect::<BTreeSet<_>>(), late_ids);
    let attendance = world.attendance();
    wait_caught_up(&world.stack, &world.db, &world.group.group, count).await?;
    assert_eq!(exact_days(&world.db).await?, before, "no day rewritten");
    assert_eq!(
        punch_counts(&world.db).await?,
        (total, 0, 0, 0),
        "no punch doubled"
    );
    attendance.stop().await?;
    world.finish().await
}

/// A bad master-data change (an employee's licence revoked by mistake, retroactively) makes
/// licence-check reject that employee's new punches, so attendance drops them; a resend of
/// earlier, already judged punches keeps their first verdict (accepted). After the fix,
/// `recheck` accepts exactly the rejected punches and attendance ends as if nothing had
/// happened. (Before master data was history, the resend was re-judged and dropped too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_master_data_change_then_a_fix_and_recheck_end_with_the_right_attendance()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let a = world.week("a", 4, 41)?;
    a.seed(&world.db).await?;
    let victim = a.employees[1].0.clone();
    // Monday to Wednesday first, the rest of the week after the bad change.
    let thursday =
        a.tz.with_ymd_and_hms(2020, 12, 3, 5, 0, 0)
            .single()
            .context("Thursday")?
            .timestamp_millis();
    let (before_change, after_change): (Vec<CheckedPunch>, Vec<CheckedPunch>) =
        a.punches.iter().cloned().partition(|p| p.at < thursday);
    let monday_end = thursday - 2 * 86_400_000;
    let monday = NaiveDate::from_ymd_opt(2020, 11, 30).context("Monday")?;
    let thursday_date = NaiveDate::from_ymd_opt(2020, 12, 3).context("Thursday")?;
    let resent_monday: Vec<CheckedPunch> = before_change
        .iter()
        .filter(|p| p.employee_id.as_ref() == Some(&victim) && p.at < monday_end)
        .cloned()
        .collect();
    assert!(!resent_monday.is_empty());

    let licence = world.licence_check().await?;
    let attendance = world.attendance();
    let first: Vec<_> = before_change.iter().map(CheckedPunch::raw).collect();
    produce_raw(&world.stack, &world.group.group, &first).await?;
    wait_for_verdicts(&world.stack, &world.group.group, first.len()).await?;
    wait_for_days(
        &world.db,
        &expected_days(&before_change, a.tz, a.day_change),
        WAIT,
    )
    .await?;

    // The bad change, then the rest of the week and a resend of the victim's Monday.
    let tenant = a.tenant.as_str();
    let set = |licensed: &'static str| {
        let mut args = vec![
            "licence",
            "set",
            "--tenant",
            tenant,
            "--employee",
            victim.as_str(),
            "--from",
            "always",
        ];
        if licensed == "false" {
            args.push("--revoke");
        }
        args
    };
    world.punchctl(&set("false")).await?;
    let bad = master_data_version(&world.db).await?;
    eventually("the bad master data in licence-check", WAIT, || {
        let version = licence.service.snapshot_version();
        async move { Ok(version.filter(|v| *v >= bad)) }
    })
    .await?;
    let mut second: Vec<_> = after_change.iter().map(CheckedPunch::raw).collect();
    second.extend(resent_monday.iter().map(CheckedPunch::raw));
    produce_raw(&world.stack, &world.group.group, &second).await?;
    let judged = first.len() + second.len();
    let log = wait_for_verdicts(&world.stack, &world.group.group, judged).await?;
    let log: Vec<CheckedPunch> = log.into_iter().map(|(_, v)| v).collect();
    let bad_days = expected_days(&log, a.tz, a.day_change);
    wait_for_days(&world.db, &bad_days, WAIT).await?;
    let rejected_now = log
        .iter()
        .filter(|v| v.reason == Some(RejectReason::NotLicensed))
        .count();
    let victims_later = after_change
        .iter()
        .filter(|p| p.employee_id.as_ref() == Some(&victim))
        .count();
    assert_eq!(
        rejected_now, victims_later,
        "the resent Monday keeps its first verdict"
    );
    assert!(
        bad_days
            .keys()
            .all(|(_, e, d)| e != victim.as_str() || *d < thursday_date),
        "the victim's late week is gone while the master data is wrong"
    );
    assert!(
        bad_days
            .keys()
            .any(|(_, e, d)| e == victim.as_str() && *d == monday),
        "the victim's Monday stays: a resend never changes money"
    );

    // The fix and the recheck: exactly the victim's rejected punches are accepted again.
    world.punchctl(&set("true")).await?;
    let out = world.punchctl(&["recheck", "--tenant", tenant]).await?;
    assert!(
        out.contains(&format!(
            "now accepted: {rejected_now}; published {rejected_now}"
        )),
        "{out}"
    );
    assert!(
        out.contains("recheck of tenant") && out.contains(": done in "),
        "{out}"
    );
    wait_for_days(&world.db, &a.expected(), WAIT).await?;
    let (punches, withdrawn, _, _) = punch_counts(&world.db).await?;
    assert_eq!((punches, withdrawn), (a.punches.len() as i64, 0));
    let unchanged = world.punchctl(&["recheck", "--tenant", tenant]).await?;
    assert!(
        unchanged.contains("now accepted: 0; published 0"),
        "{unchanged}"
    );
    licence.stop().await?;
    attendance.stop().await?;
    world.finish().await
}
