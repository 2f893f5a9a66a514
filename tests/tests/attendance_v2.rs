//! Attendance rules v2 end to end on the real broker and Postgres: a night shift is one day of
//! exact seconds (v1 gave it 0 minutes and two anomalies), the payroll month is stored and
//! published on `payroll.monthly.<group>`, and a rules change (`punchctl rules set`) recomputes
//! and republishes the days from its date, each naming the rules version that computed it.

use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use dakoku_e2e::employee::OneEmployee;
use dakoku_e2e::recovery::punchctl;
use dakoku_rules::v2::Anomaly;
use dakoku_schemas::PunchKind;
use dakoku_testkit::days::read_days;
use dakoku_testkit::produce::produce_checked;
use dakoku_testkit::{TestDatabase, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// The world of these tests: one employee from 2020-11-30.
async fn world() -> anyhow::Result<OneEmployee> {
    OneEmployee::new(NaiveDate::from_ymd_opt(2020, 11, 30).context("date")?).await
}

/// `(worked, night, overtime_daily, rules_version, anomalies)` of a stored day.
type Seen = (i64, i64, i64, i64, Vec<String>);

async fn day(db: &TestDatabase, date: &str) -> anyhow::Result<Option<Seen>> {
    let client = db.client().await?;
    let date: NaiveDate = date.parse()?;
    let row = client
        .query_opt(
            "SELECT worked_seconds, night_seconds, overtime_daily_seconds, rules_version, \
             anomalies FROM attendance_days WHERE work_date = $1",
            &[&date],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_shift_is_one_day_of_exact_seconds_and_its_month_is_published() -> anyhow::Result<()>
{
    let world = world().await?;
    let consumer = world.consumer();
    // 22:00 to 07:00:30 the next morning (past the 05:00 day change), then a day shift with
    // seconds: v1 gave the night 0 minutes and two anomalies, and floored every day.
    let log = [
        world.punch(1, PunchKind::ClockIn, "2020-12-03T22:00:00")?,
        world.punch(2, PunchKind::ClockOut, "2020-12-04T07:00:30")?,
        world.punch(3, PunchKind::ClockIn, "2020-12-07T09:00:30")?,
        world.punch(4, PunchKind::BreakStart, "2020-12-07T12:00:00")?,
        world.punch(5, PunchKind::BreakEnd, "2020-12-07T13:00:00")?,
        world.punch(6, PunchKind::ClockOut, "2020-12-07T18:00:00")?,
    ];
    // The clock-out first: pairing must not depend on arrival order.
    let arrivals = vec![
        log[1].clone(),
        log[3].clone(),
        log[0].clone(),
        log[2].clone(),
        log[5].clone(),
        log[4].clone(),
    ];
    produce_checked(&world.stack, &world.group.group, &arrivals).await?;

    let night = eventually("the night shift's day", WAIT, || async {
        Ok(day(&world.db, "2020-12-03").await?.filter(|d| d.0 > 0))
    })
    .await?;
    assert_eq!(night.0, 32_430, "worked 22:00-07:00:30");
    assert_eq!(night.1, 25_200, "night 22:00-05:00");
    assert_eq!(night.2, 3_630, "beyond 8 h");
    assert_eq!(night.3, 1, "rules version 1 (the tenant's first)");
    assert_eq!(night.4, vec![Anomaly::BreakShort.as_str().to_owned()]);
    assert_eq!(day(&world.db, "2020-12-04").await?, None, "no second day");
    let shift = eventually("the day shift", WAIT, || async {
        Ok(day(&world.db, "2020-12-07").await?.filter(|d| d.0 > 0))
    })
    .await?;
    assert_eq!(
        shift.0, 28_770,
        "09:00:30-18:00 less the hour's break, to the second"
    );

    // The payroll month: one record per employee and month, in the table and on the topic.
    let rows = read_days(&world.db.client().await?).await?;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let key = format!(
        "{}/{}/2020-12",
        world.scenario.tenant, world.scenario.employees[0].0
    );
    let months = world
        .latest_months(WAIT, |m| {
            m.get(&key)
                .is_some_and(|m| m.worked_seconds == 32_430 + 28_770)
        })
        .await?;
    let month = &months[&key];
    assert_eq!(month.days_worked, 2);
    assert_eq!(month.anomaly_days, 1, "break_short counts");
    assert_eq!(month.night_seconds, 25_200);
    assert_eq!(month.overtime_seconds, 3_630);
    assert_eq!(month.worked_minutes, (32_430 + 28_770) / 60);
    assert_eq!(
        month.overtime_minutes, 60,
        "floor(3630 s / 60), no rounding by default"
    );
    assert_eq!(month.rules_version, 1);
    let client = world.db.client().await?;
    let stored: i64 = client
        .query_one(
            "SELECT worked_seconds FROM attendance_months WHERE month = '2020-12'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(stored, month.worked_seconds);

    consumer.stop().await?;
    world.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_change_recomputes_and_republishes_from_its_date() -> anyhow::Result<()> {
    let world = world().await?;
    let consumer = world.consumer();
    // Two 9-hour days (10 h spans with an hour's break): an hour of daily overtime each.
    let log = vec![
        world.punch(1, PunchKind::ClockIn, "2020-12-01T08:00:00")?,
        world.punch(2, PunchKind::BreakStart, "2020-12-01T12:00:00")?,
        world.punch(3, PunchKind::BreakEnd, "2020-12-01T13:00:00")?,
        world.punch(4, PunchKind::ClockOut, "2020-12-01T18:00:00")?,
        world.punch(5, PunchKind::ClockIn, "2020-12-08T08:00:00")?,
        world.punch(6, PunchKind::BreakStart, "2020-12-08T12:00:00")?,
        world.punch(7, PunchKind::BreakEnd, "2020-12-08T13:00:00")?,
        world.punch(8, PunchKind::ClockOut, "2020-12-08T18:00:00")?,
    ];
    produce_checked(&world.stack, &world.group.group, &log).await?;
    for date in ["2020-12-01", "2020-12-08"] {
        let seen = eventually("both days", WAIT, || async {
            Ok(day(&world.db, date).await?.filter(|d| d.0 > 0))
        })
        .await?;
        assert_eq!((seen.0, seen.2, seen.3), (32_400, 3_600, 1), "{date}");
    }

    // From 2020-12-05 the statutory daily limit is 7 h: the 8th gains an hour of overtime,
    // the 1st keeps its figures and its rules version.
    let out = punchctl(
        &world.stack,
        &world.db,
        &[
            "rules",
            "set",
            "--tenant",
            world.scenario.tenant.as_str(),
            "--from",
            "2020-12-05",
            "daily_limit_minutes=420",
        ],
    )
    .await?;
    assert!(out.contains("version 2"), "{out}");
    let after = eventually("the 8th recomputed", WAIT, || async {
        Ok(day(&world.db, "2020-12-08").await?.filter(|d| d.3 == 2))
    })
    .await?;
    assert_eq!((after.0, after.2), (32_400, 7_200));
    assert_eq!(
        day(&world.db, "2020-12-01").await?.map(|d| (d.2, d.3)),
        Some((3_600, 1))
    );
    let key = format!(
        "{}/{}/2020-12",
        world.scenario.tenant, world.scenario.employees[0].0
    );
    let months = world
        .latest_months(WAIT, |m| {
            m.get(&key)
                .is_some_and(|m| m.overtime_seconds == 3_600 + 7_200)
        })
        .await?;
    assert_eq!(
        months[&key].rules_version, 2,
        "in force on the month's last day"
    );
    let pending: i64 = world
        .db
        .client()
        .await?
        .query_one("SELECT count(*) FROM attendance_recompute_requests", &[])
        .await?
        .get(0);
    assert_eq!(pending, 0, "the request is served");

    consumer.stop().await?;
    world.finish().await
}
