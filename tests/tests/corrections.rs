//! Corrections and closed months on the real stack (CONTRACT §4.6, §4.7): a forgotten
//! clock_out fixed by an added punch and undone by a void, exactly once and reproduced by a
//! rebuild; a closed month that stays as paid while a late punch makes an adjustment.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use dakoku_e2e::employee::OneEmployee;
use dakoku_e2e::recovery::punchctl;
use dakoku_kafka::Admin;
use dakoku_schemas::{MonthlyAttendance, MonthlyRecordKind, PunchKind, Topic};
use dakoku_testkit::days::read_days;
use dakoku_testkit::produce::produce_checked;
use dakoku_testkit::{TestDatabase, eventually};
use punchctl::audit::{AuditRequest, NoProgress};

const WAIT: Duration = Duration::from_secs(60);

/// The world of these tests: one employee from 2020-11-02.
async fn world() -> anyhow::Result<OneEmployee> {
    OneEmployee::new(NaiveDate::from_ymd_opt(2020, 11, 2).context("date")?).await
}

/// `(worked_seconds, anomalies, corrected, correction_ids, revision)` of a stored day.
type Seen = (i64, Vec<String>, bool, Vec<String>, i64);

async fn day(db: &TestDatabase, date: &str) -> anyhow::Result<Option<Seen>> {
    let client = db.client().await?;
    let date: NaiveDate = date.parse()?;
    let row = client
        .query_opt(
            "SELECT worked_seconds, anomalies, corrected, correction_ids, revision \
             FROM attendance_days WHERE work_date = $1",
            &[&date],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_clock_out_is_added_voided_and_rebuilt_byte_for_byte() -> anyhow::Result<()> {
    let world = world().await?;
    let consumer = world.consumer();
    let clock_in = world.punch(1, PunchKind::ClockIn, "2020-11-04T09:00:00")?;
    produce_checked(&world.stack, &world.group.group, &[clock_in]).await?;
    let forgotten = eventually("the day with its missing clock_out", WAIT, || async {
        day(&world.db, "2020-11-04").await
    })
    .await?;
    assert_eq!(forgotten.0, 0);
    assert_eq!(forgotten.1, vec!["missing_clock_out".to_owned()]);
    assert!(!forgotten.2);

    let add = world.add(PunchKind::ClockOut, "2020-11-04T18:00:30")?;
    world.submit(&add).await?;
    let fixed = eventually("the added clock_out counted", WAIT, || async {
        Ok(day(&world.db, "2020-11-04").await?.filter(|d| d.0 > 0))
    })
    .await?;
    let add_id = add.correction_id.to_string();
    assert_eq!(fixed.0, 9 * 3_600 + 30, "09:00 to 18:00:30, to the second");
    assert!(fixed.1.contains(&"break_short".to_owned()), "{fixed:?}");
    assert!(!fixed.1.contains(&"missing_clock_out".to_owned()));
    assert!(fixed.2, "a day an added punch is assigned to is corrected");
    assert_eq!(fixed.3, vec![add_id.clone()]);

    // The same correction again (a resent record) changes nothing: the first stands.
    world.submit(&add).await?;
    // The void through `punchctl correct void`, which finds the add stored by now.
    let tenant = world.scenario.tenant.as_str();
    let out = punchctl(
        &world.stack,
        &world.db,
        &[
            "correct",
            "void",
            "--tenant",
            tenant,
            "--target",
            &add_id,
            "--reason",
            "entered on the wrong day",
        ],
    )
    .await?;
    let void_id: uuid::Uuid = out
        .lines()
        .next()
        .context("punchctl prints the correction id first")?
        .trim()
        .parse()?;
    let undone = eventually("the void applied", WAIT, || async {
        Ok(day(&world.db, "2020-11-04").await?.filter(|d| d.0 == 0))
    })
    .await?;
    assert_eq!(undone.1, vec!["missing_clock_out".to_owned()]);
    assert!(undone.2, "the voided punch's own date stays corrected");
    let mut ids = vec![add_id, void_id.to_string()];
    ids.sort();
    assert_eq!(undone.3, ids);
    assert_eq!(
        undone.4,
        fixed.4 + 1,
        "one revision per change, none for the resend"
    );
    let client = world.db.client().await?;
    let stored: i64 = client
        .query_one("SELECT count(*) FROM corrections", &[])
        .await?
        .get(0);
    assert_eq!(stored, 2, "each correction stored once");

    // The audit recomputes with the stored corrections: the corrected day agrees.
    let request = AuditRequest::new(
        &world.stack.brokers,
        &world.db.url,
        world.group.group.clone(),
    );
    let report = punchctl::audit::run(&request, Arc::new(NoProgress)).await?;
    assert_eq!(report.days.checked, 1);
    assert_eq!(
        report.days.differing.count, 0,
        "{:?}",
        report.days.differing
    );

    // A rebuild (service stopped) reproduces every day exactly: the corrections count.
    let before = read_days(&client).await?;
    consumer.stop().await?;
    punchctl(
        &world.stack,
        &world.db,
        &["rebuild", "--group", world.group.group.as_str()],
    )
    .await?;
    let after = read_days(&client).await?;
    assert_eq!(before, after);

    // A correction lost from Postgres is reported, and so is the day it leaves wrong.
    client
        .execute(
            "DELETE FROM corrections WHERE correction_id = $1",
            &[&void_id],
        )
        .await?;
    let report = punchctl::audit::run(&request, Arc::new(NoProgress)).await?;
    assert_eq!(report.corrections.missing.count, 1);
    assert_eq!(
        report.corrections.missing.examples[0].correction_id,
        void_id
    );
    assert_eq!(report.days.differing.count, 1);
    world.finish().await
}

/// Closes a month with `punchctl close`.
async fn close(world: &OneEmployee, month: &str) -> anyhow::Result<()> {
    let tenant = world.scenario.tenant.as_str();
    let out = punchctl(
        &world.stack,
        &world.db,
        &["close", "--tenant", tenant, "--month", month],
    )
    .await?;
    anyhow::ensure!(out.starts_with("closed "), "punchctl close: {out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_month_stays_as_paid_and_a_late_punch_makes_an_adjustment() -> anyhow::Result<()> {
    let world = world().await?;
    let consumer = world.consumer();
    let november = [
        world.punch(1, PunchKind::ClockIn, "2020-11-04T09:00:00")?,
        world.punch(2, PunchKind::ClockOut, "2020-11-04T17:00:00")?,
    ];
    produce_checked(&world.stack, &world.group.group, &november).await?;
    let employee = world.employee()?;
    let key = format!("{}/{}/2020-11", world.scenario.tenant, employee);
    let paid = world
        .latest_months(WAIT, |m| {
            m.get(&key).is_some_and(|m| m.worked_seconds == 8 * 3_600)
        })
        .await?;
    let paid_revision = paid[&key].revision;
    close(&world, "2020-11").await?;
    eventually("the close served", WAIT, || async {
        let client = world.db.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM month_closings WHERE served_at IS NOT NULL",
                &[],
            )
            .await?;
        Ok((row.get::<_, i64>(0) == 1).then_some(()))
    })
    .await?;

    // A late punch pair for another November day: the day and the live month change, the
    // paid month does not; an adjustment carries the difference into December's export.
    let late = [
        world.punch(3, PunchKind::ClockIn, "2020-11-05T09:00:00")?,
        world.punch(4, PunchKind::ClockOut, "2020-11-05T10:30:00")?,
    ];
    produce_checked(&world.stack, &world.group.group, &late).await?;
    let adjustment_key = format!("{key}/adjustment/1");
    let seen = world
        .latest_months(WAIT, |m| {
            m.contains_key(&adjustment_key) && m.contains_key(&key)
        })
        .await?;
    let adjustment = &seen[&adjustment_key];
    assert_eq!(adjustment.record, MonthlyRecordKind::Adjustment);
    assert_eq!(adjustment.month, "2020-11");
    assert_eq!(adjustment.export_month.as_deref(), Some("2020-12"));
    assert_eq!(adjustment.worked_seconds, 5_400);
    assert_eq!(adjustment.days_worked, 1);
    assert_eq!(adjustment.worked_minutes, 90);
    assert!(
        adjustment
            .causes
            .iter()
            .any(|c| c == &format!("punch:{}", late[0].punch_id)),
        "{:?}",
        adjustment.causes
    );
    let month = &seen[&key];
    assert_eq!(month.record, MonthlyRecordKind::Month);
    assert_eq!(
        month.worked_seconds,
        8 * 3_600,
        "the paid month stays as paid"
    );
    assert_eq!(month.revision, paid_revision);
    let client = world.db.client().await?;
    let live: i64 = client
        .query_one(
            "SELECT worked_seconds FROM attendance_months WHERE month = '2020-11'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(live, 8 * 3_600 + 5_400, "the live month has every day");
    let stored: (i64, String) = client
        .query_one(
            "SELECT worked_seconds, export_month FROM attendance_adjustments WHERE seq = 1",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))?;
    assert_eq!(stored, (5_400, "2020-12".to_owned()));

    // Corrections to the closed month: a half-hour break on the 4th, added as two punches.
    // They may be applied in one transaction or two (then the first makes an unclosed break);
    // either way the adjustments after the first add up to exactly that difference and name
    // the corrections.
    let start = world.add(PunchKind::BreakStart, "2020-11-04T12:00:00")?;
    let end = world.add(PunchKind::BreakEnd, "2020-11-04T12:30:00")?;
    world.submit(&start).await?;
    world.submit(&end).await?;
    let later = |m: &BTreeMap<String, MonthlyAttendance>| -> Vec<MonthlyAttendance> {
        m.iter()
            .filter(|(k, a)| {
                k.starts_with(&format!("{key}/adjustment/")) && a.adjustment_seq > Some(1)
            })
            .map(|(_, a)| a.clone())
            .collect()
    };
    let seen = world
        .latest_months(WAIT, |m| {
            let later = later(m);
            later.iter().map(|a| a.worked_seconds).sum::<i64>() == -1_800
                && later.iter().map(|a| a.break_seconds).sum::<i64>() == 1_800
        })
        .await?;
    let later = later(&seen);
    let causes: Vec<&String> = later.iter().flat_map(|a| &a.causes).collect();
    for id in [&start.correction_id, &end.correction_id] {
        assert!(causes.contains(&&format!("correction:{id}")), "{causes:?}");
    }
    assert!(
        later
            .iter()
            .all(|a| a.export_month.as_deref() == Some("2020-12"))
    );

    // The exports: November as paid; December with the adjustments as rows of their own,
    // adding up to the month as it is now.
    let tenant = world.scenario.tenant.as_str();
    let november = punchctl(
        &world.stack,
        &world.db,
        &[
            "payroll", "export", "--tenant", tenant, "--month", "2020-11",
        ],
    )
    .await?;
    let rows: Vec<&str> = november.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{november}");
    assert!(
        rows[0].contains(",month,") && rows[0].contains(",28800,"),
        "{november}"
    );
    let december = punchctl(
        &world.stack,
        &world.db,
        &[
            "payroll", "export", "--tenant", tenant, "--month", "2020-12",
        ],
    )
    .await?;
    let header: Vec<&str> = december
        .lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .collect();
    let worked = header
        .iter()
        .position(|h| *h == "worked_seconds")
        .context("worked_seconds column")?;
    let rows: Vec<Vec<&str>> = december
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 1 + later.len(), "{december}");
    assert!(
        rows.iter()
            .all(|r| r[2] == "adjustment" && r[25] == "2020-11"),
        "{december}"
    );
    let total: i64 = rows
        .iter()
        .map(|r| r[worked].parse::<i64>().unwrap_or(i64::MIN))
        .sum();
    assert_eq!(
        28_800 + total,
        8 * 3_600 + 5_400 - 1_800,
        "paid + adjustments = now"
    );

    consumer.stop().await?;
    world.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_without_a_corrections_topic_still_serves_its_closings() -> anyhow::Result<()> {
    // A group whose topics were made before corrections existed.
    let world = world().await?;
    let admin = Admin::new(&world.stack.kafka(), "dakoku-test", WAIT)?;
    let corrections = Topic::Corrections(world.group.group.clone()).name();
    admin.delete_topics(&[corrections.as_str()]).await?;
    let consumer = world.consumer();
    let punches = [
        world.punch(1, PunchKind::ClockIn, "2020-11-04T09:00:00")?,
        world.punch(2, PunchKind::ClockOut, "2020-11-04T17:00:00")?,
    ];
    produce_checked(&world.stack, &world.group.group, &punches).await?;
    eventually("the day", WAIT, || async {
        Ok(day(&world.db, "2020-11-04")
            .await?
            .filter(|d| d.0 == 8 * 3_600))
    })
    .await?;
    close(&world, "2020-11").await?;
    eventually("the close served", WAIT, || async {
        let client = world.db.client().await?;
        let served: i64 = client
            .query_one(
                "SELECT count(*) FROM month_closings WHERE served_at IS NOT NULL",
                &[],
            )
            .await?
            .get(0);
        Ok((served == 1).then_some(()))
    })
    .await?;
    consumer.stop().await?;
    world.db.drop_db().await?;
    let rest: Vec<String> = Topic::for_group(&world.group.group)
        .iter()
        .map(Topic::name)
        .filter(|t| *t != corrections)
        .collect();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    admin.delete_topics(&rest).await?;
    Ok(())
}
