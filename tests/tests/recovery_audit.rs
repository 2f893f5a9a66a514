//! `punchctl audit`, `punchctl lag` and `punchctl intake status` on the real stack.
//!
//! A whole pipeline of one group (raw punches -> licence-check -> attendance) settles on a
//! realistic week with resends and a rejected punch; then:
//! - the audit is clean, and stays clean after `recheck` adds a verdict and after a replay of
//!   licence-check re-judges every raw record (recorded in `consumer_replays`);
//! - a punch deleted from Postgres behind the consumer's back, and a stored punch copied under
//!   another seq, are each reported (missing; unexpected and doubled; their days differ), the
//!   exit status is 1, and a scoped audit sees only its scope;
//! - a verdict published twice and a verdict with no raw record are reported in the log stage;
//! - under live traffic the audit ends and stays clean (newer punches are out of scope);
//! - `lag` shows a stopped consumer's backlog and its oldest record, and 0 once caught up;
//! - `intake status` says since when each pause holds.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use clap::Parser as _;
use dakoku_e2e::attendance::TestAttendance;
use dakoku_e2e::audit::{AuditPipeline, STRANGER_CARD};
use dakoku_e2e::licence::{TestLicenceCheck, test_config};
use dakoku_schemas::{CheckedPunch, DeviceId, PunchId, RawPunch, TenantId, Verdict};
use dakoku_testkit::days::{punch_counts, wait_for_days};
use dakoku_testkit::produce::{produce_checked, produce_raw};
use dakoku_testkit::{
    EmployeeSeed, Scenario, Stack, TenantSeed, TestDatabase, eventually, raw_punch, unique_suffix,
};
use punchctl::lag::{LagRequest, Stage};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_is_clean_on_a_healthy_pipeline_and_after_a_recheck() -> anyhow::Result<()> {
    let pipeline = AuditPipeline::start(4, 7).await?;
    let expected = pipeline.settle().await?;
    let punches = pipeline.scenario.punches.len() as u64;
    let raw = pipeline.raw.len() as u64;

    let report = pipeline.audit(&pipeline.request()).await?;
    assert!(report.is_clean(), "{report:#?}");
    let c = &report.checked;
    assert_eq!(
        c.raw_records, raw,
        "every raw record read, resends included"
    );
    assert_eq!(c.raw_punches, punches + 1, "the week and the stranger");
    assert_eq!(c.raw_not_yet_checked, 0);
    assert_eq!(
        (c.verdicts, c.accepted, c.rejected),
        (raw, raw - 1, 1),
        "one verdict per raw record"
    );
    let s = &report.stored;
    assert_eq!((s.expected, s.rejected, s.pending), (punches, 1, 0));
    assert_eq!((s.stored, s.withdrawn, s.unverifiable), (punches, 0, 0));
    assert_eq!(report.days.checked, expected.len() as u64);
    assert_eq!(report.days.rows, expected.len() as u64);

    let (code, out, _) = pipeline
        .punchctl(&["audit", "--group", pipeline.group().as_str()])
        .await?;
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.contains("  result: clean"), "{out}");
    assert!(
        out.contains(&format!("  punches stored: {punches} rows")),
        "{out}"
    );

    // The stranger's card is registered and `recheck` accepts the punch: one verdict more
    // than raw records for that punch, which recheck is allowed to add, and still clean.
    EmployeeSeed::licensed("E9999", STRANGER_CARD)
        .seed(&pipeline.db, pipeline.tenant())
        .await?;
    let (code, out, _) = pipeline
        .punchctl(&["recheck", "--group", pipeline.group().as_str()])
        .await?;
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let db = &pipeline.db;
    eventually(
        "the rechecked punch stored",
        Duration::from_secs(60),
        || async move { Ok((punch_counts(db).await?.0 == punches as i64 + 1).then_some(())) },
    )
    .await?;
    let report = pipeline.audit(&pipeline.request()).await?;
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(
        (
            report.checked.verdicts,
            report.checked.accepted,
            report.checked.rejected
        ),
        (raw + 1, raw, 1)
    );
    assert_eq!(
        (report.stored.expected, report.stored.rejected),
        (punches + 1, 0)
    );
    assert_eq!(report.days.checked, expected.len() as u64 + 1);

    pipeline.stop().await
}

/// A replay of licence-check on purpose gives every raw record a second verdict: recorded in
/// `consumer_replays` by `punchctl replay`, so the audit allows it; without that record the
/// same log is reported as doubled verdicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_licence_check_replay_is_not_reported_as_doubled_verdicts() -> anyhow::Result<()> {
    let mut pipeline = AuditPipeline::start(3, 11).await?;
    pipeline.settle().await?;
    let raw = pipeline.raw.len() as u64;
    let group = pipeline.group().as_str().to_owned();

    if let Some(licence) = pipeline.licence.take() {
        licence.stop().await?;
    }
    // A stopped instance stays a static member until its session times out (10 s here):
    // the replay refuses until then, and says why.
    let pipeline_ref = &pipeline;
    let group_ref = group.as_str();
    eventually(
        "the replay accepted once the group is empty",
        Duration::from_secs(60),
        || async move {
            let replay = pipeline_ref
                .punchctl(&[
                    "replay",
                    "--consumer",
                    "licence-check",
                    "--group",
                    group_ref,
                    "--from",
                    "earliest",
                ])
                .await;
            match replay {
                Ok((code, out, err)) => {
                    assert_eq!(code, ExitCode::SUCCESS, "{out}{err}");
                    Ok(Some(()))
                }
                Err(error) if error.to_string().contains("live member") => Ok(None),
                Err(error) => Err(error),
            }
        },
    )
    .await?;
    pipeline.licence = Some(
        TestLicenceCheck::start(test_config(
            &pipeline.stack,
            &pipeline.db,
            std::slice::from_ref(pipeline.group()),
        ))
        .await?,
    );
    let request = pipeline.request();
    let pipeline_ref = &pipeline;
    let report = eventually(
        "every raw record judged a second time and applied",
        Duration::from_secs(90),
        || {
            let request = request.clone();
            async move {
                let report = pipeline_ref.audit(&request).await?;
                Ok(
                    (report.checked.verdicts == 2 * raw && report.stored.pending == 0)
                        .then_some(report),
                )
            }
        },
    )
    .await?;
    assert!(report.is_clean(), "{report:#?}");

    // The same log without the replay's record: every punch's verdicts are doubled.
    pipeline
        .db
        .client()
        .await?
        .execute("DELETE FROM consumer_replays", &[])
        .await?;
    let report = pipeline.audit(&pipeline.request()).await?;
    assert!(!report.is_clean());
    assert_eq!(
        report.checked.doubled.count, report.checked.raw_punches,
        "{report:#?}"
    );
    pipeline.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_catches_a_deleted_punch_and_a_duplicated_row() -> anyhow::Result<()> {
    let pipeline = AuditPipeline::start(4, 11).await?;
    pipeline.settle().await?;
    assert!(pipeline.audit(&pipeline.request()).await?.is_clean());

    // Behind the consumer's back: delete one stored punch, and copy another (of another work
    // date) under a new seq, with the punch_id that seq derives, so that it looks plausible.
    let stored = pipeline.stored_punches().await?;
    let deleted = stored
        .iter()
        .find(|p| p.kind == "clock_out")
        .cloned()
        .expect("a clock-out is stored");
    let original = stored
        .iter()
        .find(|p| p.kind == "clock_in" && p.work_date != deleted.work_date)
        .cloned()
        .expect("a clock-in of another day is stored");
    let tenant: TenantId = pipeline.tenant().parse()?;
    let device: DeviceId = original.device.parse()?;
    let copy_seq = original.seq + 1_000_000;
    let copy_id = *PunchId::derive(&tenant, &device, u64::try_from(copy_seq)?).as_uuid();
    let client = pipeline.db.client().await?;
    let removed = client
        .execute(
            "DELETE FROM punches WHERE punch_id = $1",
            &[&deleted.punch_id],
        )
        .await?;
    assert_eq!(removed, 1);
    let copied = client
        .execute(
            "INSERT INTO punches (punch_id, tenant_id, group_id, device_id, seq, card_id, \
             employee_id, kind, at, at_offset_minutes, work_date, received_at, \
             master_data_version, source_topic, source_partition, source_offset, withdrawn, \
             verdict_master_data_version, verdict_checked_at, verdict_source_partition, \
             verdict_source_offset) \
             SELECT $2, tenant_id, group_id, device_id, $3, card_id, employee_id, kind, at, \
             at_offset_minutes, work_date, received_at, master_data_version, source_topic, \
             source_partition, source_offset, withdrawn, verdict_master_data_version, \
             verdict_checked_at, verdict_source_partition, verdict_source_offset \
             FROM punches WHERE punch_id = $1",
            &[&original.punch_id, &copy_id, &copy_seq],
        )
        .await?;
    assert_eq!(copied, 1);

    let report = pipeline.audit(&pipeline.request()).await?;
    let c = &report.checked;
    assert_eq!(
        (c.missing.count, c.doubled.count, c.unexpected.count),
        (0, 0, 0),
        "the log itself is whole: {report:#?}"
    );
    let s = &report.stored;
    assert_eq!(s.missing.count, 1, "{report:#?}");
    assert_eq!(s.missing.examples[0].punch_id, deleted.punch_id);
    assert!(
        s.missing.examples[0].detail.contains("not in punches"),
        "{:?}",
        s.missing.examples[0]
    );
    assert_eq!(s.unexpected.count, 1, "{report:#?}");
    assert_eq!(s.unexpected.examples[0].punch_id, copy_id);
    assert!(
        s.unexpected.examples[0].detail.contains("no verdict"),
        "{:?}",
        s.unexpected.examples[0]
    );
    assert_eq!(s.doubled.count, 1, "{report:#?}");
    assert_eq!(
        s.doubled.examples[0].punch_id, copy_id,
        "the row the log does not back is the extra one"
    );
    let doubled = &s.doubled.examples[0].detail;
    for id in [original.punch_id, copy_id] {
        assert!(doubled.contains(&id.to_string()), "{doubled}");
    }
    let differing: HashSet<(String, NaiveDate)> = report
        .days
        .differing
        .examples
        .iter()
        .map(|d| (d.employee.clone(), d.work_date))
        .collect();
    // The copy is a double tap of its original (same kind and instant), which the rules
    // ignore, so its day's figures stand; the doubled stage above names it. The deleted punch
    // changes its day and its payroll month.
    assert_eq!(
        differing,
        HashSet::from([(deleted.employee.clone(), deleted.work_date)]),
        "{report:#?}"
    );
    assert_eq!(report.days.months_differing.count, 1, "{report:#?}");
    assert_eq!(
        report.days.months_differing.examples[0].employee, deleted.employee,
        "{report:#?}"
    );
    assert_eq!(report.problems(), 5);

    // The command line: exit 1 (for cron), the findings named; JSON for machines.
    let group = pipeline.group().as_str();
    let (code, out, _) = pipeline.punchctl(&["audit", "--group", group]).await?;
    assert_eq!(code, ExitCode::from(1), "{out}");
    for part in [
        "  punches missing: 1",
        "  punches unexpected: 1",
        "  punches doubled: 1",
        "  days differing: 1",
        "  months checked: ",
        "  result: 5 problems",
    ] {
        assert!(out.contains(part), "{part:?} missing in:\n{out}");
    }
    assert!(out.contains(&deleted.punch_id.to_string()), "{out}");
    let (code, out, _) = pipeline
        .punchctl(&["audit", "--group", group, "--json"])
        .await?;
    assert_eq!(code, ExitCode::from(1));
    let json: Value = serde_json::from_str(&out)?;
    assert_eq!(json["stored"]["missing"]["count"], 1);
    assert_eq!(
        json["stored"]["missing"]["examples"][0]["punch_id"],
        deleted.punch_id.to_string()
    );
    assert_eq!(json["days"]["differing"]["count"], 1);
    assert_eq!(json["days"]["months_differing"]["count"], 1);

    // Scoped to the deleted punch's work date: only what is in scope.
    let date = deleted.work_date.to_string();
    let (code, out, _) = pipeline
        .punchctl(&[
            "audit",
            "--group",
            group,
            "--tenant",
            pipeline.tenant(),
            "--from",
            &date,
            "--to",
            &date,
            "--json",
        ])
        .await?;
    assert_eq!(code, ExitCode::from(1), "{out}");
    let json: Value = serde_json::from_str(&out)?;
    assert_eq!(json["stored"]["missing"]["count"], 1, "{out}");
    assert_eq!(json["stored"]["unexpected"]["count"], 0, "{out}");
    assert_eq!(json["stored"]["doubled"]["count"], 0, "{out}");
    assert_eq!(json["days"]["differing"]["count"], 1, "{out}");

    // Usage errors are 2, not 1: cron can tell "could not audit" from "found something".
    let (code, _, err) = pipeline
        .punchctl(&[
            "audit",
            "--group",
            group,
            "--from",
            "2020-12-05",
            "--to",
            "2020-12-01",
        ])
        .await?;
    assert_eq!(code, ExitCode::from(2));
    assert!(err.contains("is after --to"), "{err}");
    let (code, _, err) = pipeline
        .punchctl(&["audit", "--group", &format!("t-{}", unique_suffix())])
        .await?;
    assert_eq!(code, ExitCode::from(2));
    assert!(err.contains("does not exist"), "{err}");

    drop(client);
    pipeline.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_catches_doubled_and_unexpected_verdicts_in_the_log() -> anyhow::Result<()> {
    let pipeline = AuditPipeline::start(3, 17).await?;
    pipeline.settle().await?;
    let stored_before = punch_counts(&pipeline.db).await?.0;

    // Straight into punches.checked, past licence-check: a verdict published a second time
    // (a raw record judged twice), and a verdict of a punch no recorder ever sent.
    let verdicts = dakoku_e2e::licence::verdicts(&pipeline.stack, pipeline.group()).await?;
    let (_, judged) = verdicts
        .iter()
        .find(|(_, v)| v.verdict == Verdict::Accepted && v.seq % 2 == 1)
        .cloned()
        .expect("an accepted verdict");
    let judged_raw = pipeline
        .raw
        .iter()
        .filter(|r| r.punch_id == judged.punch_id)
        .count();
    let twice: Vec<CheckedPunch> = (0..judged_raw)
        .map(|i| CheckedPunch {
            checked_at: judged.checked_at + 1_000 * (i as i64 + 1),
            ..judged.clone()
        })
        .collect();
    let mut forged = judged.clone();
    forged.seq += 900_000;
    forged.punch_id = PunchId::derive(&forged.tenant_id, &forged.device_id, forged.seq);
    forged.at += 3_600_000;
    let mut extra = twice;
    extra.push(forged.clone());
    produce_checked(&pipeline.stack, pipeline.group(), &extra).await?;
    // attendance stores the forged punch like any other (it trusts its input): wait for it,
    // so that nothing is pending and the Postgres stage agrees with the log.
    let db = &pipeline.db;
    eventually(
        "the forged verdict applied",
        Duration::from_secs(60),
        || async move { Ok((punch_counts(db).await?.0 == stored_before + 1).then_some(())) },
    )
    .await?;

    let report = pipeline.audit(&pipeline.request()).await?;
    let c = &report.checked;
    assert_eq!(c.missing.count, 0, "{report:#?}");
    assert_eq!(c.doubled.count, 1, "{report:#?}");
    assert_eq!(c.doubled.examples[0].punch_id, *judged.punch_id.as_uuid());
    assert!(
        c.doubled.examples[0]
            .detail
            .contains(&format!("{judged_raw} raw records")),
        "{:?}",
        c.doubled.examples[0]
    );
    assert_eq!(c.unexpected.count, 1, "{report:#?}");
    assert_eq!(
        c.unexpected.examples[0].punch_id,
        *forged.punch_id.as_uuid()
    );
    assert!(
        c.unexpected.examples[0].detail.contains("no raw record"),
        "{:?}",
        c.unexpected.examples[0]
    );
    let s = &report.stored;
    assert_eq!(
        (s.missing.count, s.unexpected.count, s.doubled.count),
        (0, 0, 0),
        "Postgres follows the log it was given: {report:#?}"
    );
    assert_eq!(report.days.differing.count, 0, "{report:#?}");
    assert_eq!(report.problems(), 2);

    let (code, out, _) = pipeline
        .punchctl(&["audit", "--group", pipeline.group().as_str()])
        .await?;
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert!(out.contains("  verdicts doubled: 1"), "{out}");
    assert!(out.contains("  verdicts unexpected: 1"), "{out}");

    pipeline.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_ends_and_stays_clean_under_live_traffic() -> anyhow::Result<()> {
    let pipeline = AuditPipeline::start(3, 23).await?;
    pipeline.settle().await?;

    // A second tenant of the group keeps posting while the audits run.
    let live_tenant = format!("b{}", unique_suffix());
    let start = NaiveDate::from_ymd_opt(2020, 12, 7).unwrap_or_default();
    let live = Scenario::realistic_week(&live_tenant, pipeline.group(), 6, start, 5)?;
    let mut seed = TenantSeed::new(&live_tenant, pipeline.group()).licence(50);
    for (employee, card) in &live.employees {
        seed = seed.licensed(employee.as_str(), card.as_str());
    }
    seed.seed(&pipeline.db).await?;
    let raw: Vec<RawPunch> = live.punches.iter().map(|p| p.raw()).collect();
    let stack = pipeline.stack.clone();
    let group = pipeline.group().clone();
    let producer = tokio::spawn(async move {
        let mut pace = tokio::time::interval(Duration::from_millis(40));
        for chunk in raw.chunks(4) {
            pace.tick().await;
            produce_raw(&stack, &group, chunk).await?;
        }
        anyhow::Ok(())
    });

    let mut audits = 0;
    while !producer.is_finished() || audits < 2 {
        let report = pipeline.audit(&pipeline.request()).await?;
        assert!(
            report.is_clean(),
            "audit {audits} under traffic: {report:#?}"
        );
        audits += 1;
    }
    producer.await??;

    // Once the traffic has settled, everything is in scope and still clean.
    let mut expected = pipeline.scenario.expected();
    expected.extend(live.expected());
    wait_for_days(&pipeline.db, &expected, Duration::from_secs(120)).await?;
    let report = pipeline.audit(&pipeline.request()).await?;
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(
        report.stored.stored,
        (pipeline.scenario.punches.len() + live.punches.len()) as u64
    );
    assert_eq!(report.stored.pending, 0);
    assert_eq!(report.checked.raw_not_yet_checked, 0);

    pipeline.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_shows_a_stopped_consumers_backlog_and_zero_once_caught_up() -> anyhow::Result<()> {
    let mut pipeline = AuditPipeline::start(2, 3).await?;
    pipeline.settle().await?;
    let group = pipeline.group().clone();
    let request = LagRequest {
        brokers: pipeline.stack.brokers.clone(),
        database_url: pipeline.db.url.clone(),
        groups: vec![group.clone()],
        timeout: Duration::from_secs(10),
    };

    // Caught up: both consumers at 0, though the checked topic ends in transaction markers.
    let report = eventually("both consumers caught up", Duration::from_secs(60), || {
        let request = &request;
        async move {
            let report = punchctl::lag::measure(request).await?;
            let caught_up = report.consumers().all(|(_, c)| c.total_lag == 0);
            Ok(caught_up.then_some(report))
        }
    })
    .await?;
    let attendance = report
        .consumer(&group, Stage::Attendance)
        .expect("attendance");
    assert_eq!(attendance.partitions.len(), 3);
    assert!(
        attendance
            .partitions
            .iter()
            .all(|p| p.high == 0 || p.position.is_some()),
        "every partition with verdicts has a position in Postgres: {attendance:#?}"
    );

    // attendance stops; 20 more punches go through licence-check only.
    if let Some(attendance) = pipeline.attendance.take() {
        attendance.stop().await?;
    }
    let before = Utc::now();
    let more: Vec<RawPunch> = (2..22)
        .map(|seq| {
            raw_punch(
                &group,
                pipeline.tenant(),
                "PT-000009",
                seq,
                STRANGER_CARD,
                "2020-12-02T09:00:00+09:00",
            )
        })
        .collect::<anyhow::Result<_>>()?;
    produce_raw(&pipeline.stack, &group, &more).await?;
    let report = eventually(
        "licence-check caught up, attendance behind",
        Duration::from_secs(60),
        || {
            let request = &request;
            async move {
                let report = punchctl::lag::measure(request).await?;
                let checked = report
                    .consumer(request.groups.first().expect("group"), Stage::LicenceCheck)
                    .is_some_and(|c| c.total_lag == 0);
                Ok(checked.then_some(report))
            }
        },
    )
    .await?;
    let attendance = report
        .consumer(&group, Stage::Attendance)
        .expect("attendance");
    assert!(
        attendance.total_lag >= 20,
        "20 verdicts (plus markers) wait: {attendance:#?}"
    );
    let oldest = attendance.oldest_age_seconds.expect("an oldest record");
    let waited_at_most = (Utc::now() - before).num_milliseconds() as f64 / 1_000.0 + 1.0;
    assert!(
        (0.0..=waited_at_most).contains(&oldest),
        "the oldest record entered the topic after the stop: {oldest} s, {attendance:#?}"
    );

    let name = group.as_str();
    let (code, out, err) = pipeline
        .punchctl(&["lag", "--group", name, "--max-lag", "5"])
        .await?;
    assert_eq!(code, ExitCode::from(1), "{out}{err}");
    assert!(
        err.contains(&format!("attendance.{name} is")),
        "names the consumer: {err}"
    );
    assert!(
        out.contains(&format!(
            "group {name}: licence-check (licence-check.{name}"
        )),
        "{out}"
    );
    let (code, out, _) = pipeline
        .punchctl(&["lag", "--group", name, "--json"])
        .await?;
    assert_eq!(code, ExitCode::SUCCESS, "no thresholds, no failure: {out}");
    let json: Value = serde_json::from_str(&out)?;
    let consumers = &json["groups"][0]["consumers"];
    assert_eq!(consumers[1]["stage"], "attendance");
    assert_eq!(consumers[1]["positions_from"], "postgres");
    assert!(
        consumers[1]["total_lag"].as_i64().unwrap_or(0) >= 20,
        "{out}"
    );

    // attendance resumes from its Postgres offsets and catches up: 0 again, thresholds pass.
    pipeline.attendance = Some(TestAttendance::start(
        &pipeline.stack,
        &pipeline.db.url,
        &group,
        |_| {},
    ));
    eventually("attendance caught up", Duration::from_secs(60), || {
        let request = &request;
        let group = &group;
        async move {
            let report = punchctl::lag::measure(request).await?;
            Ok(report
                .consumer(group, Stage::Attendance)
                .is_some_and(|c| c.total_lag == 0)
                .then_some(()))
        }
    })
    .await?;
    let (code, out, err) = pipeline
        .punchctl(&["lag", "--max-lag", "0", "--max-age", "3600"])
        .await?;
    assert_eq!(code, ExitCode::SUCCESS, "{out}{err}");
    assert!(out.contains(&format!("group {name}: attendance")), "{out}");
    assert!(out.contains("caught up"), "{out}");

    // A group without topics is reported, and fails the check.
    let missing = format!("t-{}", unique_suffix());
    let (code, out, _) = pipeline.punchctl(&["lag", "--group", &missing]).await?;
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert!(out.contains("does not exist"), "{out}");

    pipeline.stop().await
}

#[tokio::test]
async fn intake_status_says_since_when_each_pause_holds() -> anyhow::Result<()> {
    let db = TestDatabase::create(&Stack::from_env()).await?;
    let tenant = format!("c{}", unique_suffix());
    let group = format!("g-{}", unique_suffix());
    punchctl_db(
        &db,
        &[
            "tenant", "add", "--tenant", &tenant, "--name", "C", "--group", &group,
        ],
    )
    .await?;
    punchctl_db(
        &db,
        &[
            "intake",
            "pause",
            "--tenant",
            &tenant,
            "--retry-after",
            "120",
            "--reason",
            "month-end storm",
        ],
    )
    .await?;
    punchctl_db(&db, &["intake", "pause", "--group", &group]).await?;
    // The tenant's pause began two hours and five minutes ago.
    let client = db.client().await?;
    let since: DateTime<Utc> = client
        .query_one(
            "UPDATE intake_pauses SET paused_at = now() - interval '2 hours 5 minutes' \
             WHERE scope = 'tenant' RETURNING paused_at",
            &[],
        )
        .await?
        .get(0);

    let out = punchctl_db(&db, &["intake", "status"]).await?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for header in ["SCOPE", "TARGET", "RETRY-AFTER", "SINCE", "BY", "REASON"] {
        assert!(lines[0].contains(header), "{out}");
    }
    // Oldest first: the tenant's pause, with its start and how long ago that was.
    assert!(lines[1].starts_with("tenant"), "{out}");
    for part in [
        tenant.as_str(),
        "120s",
        &since.to_rfc3339_opts(SecondsFormat::Secs, true),
        "(2h 5m ago)",
        "month-end storm",
    ] {
        assert!(lines[1].contains(part), "{part:?} missing: {}", lines[1]);
    }
    assert!(lines[2].starts_with("group"), "{out}");
    assert!(lines[2].contains("300s"), "{out}");
    assert!(lines[2].contains("s ago)"), "{out}");

    drop(client);
    db.drop_db().await
}

/// `punchctl <args>` on `db` alone (no Kafka needed); must succeed.
async fn punchctl_db(db: &TestDatabase, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["punchctl", "--database-url", db.url.as_str()];
    argv.extend_from_slice(args);
    let cli = punchctl::Cli::try_parse_from(argv)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = punchctl::run_with_output(cli, &mut out, &mut err).await?;
    assert_eq!(code, ExitCode::SUCCESS, "{}", String::from_utf8_lossy(&err));
    Ok(String::from_utf8(out)?)
}
