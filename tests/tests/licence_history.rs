//! Master data as history end to end (CONTRACT §3), on the real broker and Postgres: a punch
//! is judged by what was in force at its `at`, the first verdict of a `punch_id` stands on
//! every resend (so a licence removed today never erases yesterday's worked time), and only
//! `punchctl recheck` re-judges, accepted punches too when asked.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{Days, Utc};
use clap::Parser as _;
use dakoku_e2e::attendance::TestAttendance;
use dakoku_e2e::licence::{TestLicenceCheck, test_config, verdicts, wait_for_verdicts};
use dakoku_schemas::{CheckedPunch, PunchId, PunchKind, RawPunch, RejectReason, Verdict};
use dakoku_testkit::master::master_data_version;
use dakoku_testkit::produce::produce_raw;
use dakoku_testkit::{Stack, TenantSeed, TestDatabase, TestGroup, eventually, raw_punch};

const WAIT: Duration = Duration::from_secs(60);

/// Runs `punchctl <args>` through the real dispatcher against `db` and the stack's broker.
async fn punchctl(stack: &Stack, db: &TestDatabase, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec![
        "punchctl",
        "--database-url",
        db.url.as_str(),
        "--brokers",
        stack.brokers.as_str(),
    ];
    argv.extend_from_slice(args);
    let cli = punchctl::Cli::try_parse_from(argv)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = punchctl::run_with_output(cli, &mut out, &mut err).await?;
    assert_eq!(code, ExitCode::SUCCESS, "{}", String::from_utf8_lossy(&err));
    Ok(String::from_utf8(out)?)
}

/// Waits until licence-check runs on master data at least as new as the database's.
async fn wait_for_master_data(lc: &TestLicenceCheck, db: &TestDatabase) -> anyhow::Result<()> {
    let changed = master_data_version(db).await?;
    eventually("the new master data in licence-check", WAIT, || {
        let version = lc.service.snapshot_version();
        async move { Ok(version.filter(|v| *v >= changed)) }
    })
    .await?;
    Ok(())
}

/// Every verdict of `punch`, in log order.
fn of(all: &[(String, CheckedPunch)], punch: PunchId) -> Vec<CheckedPunch> {
    all.iter()
        .filter(|(_, v)| v.punch_id == punch)
        .map(|(_, v)| v.clone())
        .collect()
}

/// `(employee, work date) -> (worked minutes, revision)` of the attendance projection.
async fn days(db: &TestDatabase) -> anyhow::Result<BTreeMap<(String, String), (i32, i64)>> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT employee_id, work_date::text, worked_minutes, revision FROM attendance_days",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ((row.get(0), row.get(1)), (row.get(2), row.get(3))))
        .collect())
}

fn shift(raw: anyhow::Result<RawPunch>, kind: PunchKind) -> anyhow::Result<RawPunch> {
    Ok(RawPunch { kind, ..raw? })
}

/// The bug: yesterday's punches accepted, the licence removed from today, yesterday's
/// punches resent verbatim. The resend is published with the first verdict, identical, and
/// yesterday's worked time stays; a punch of today is rejected (the change is in force).
#[tokio::test]
async fn a_licence_removed_today_leaves_yesterdays_resent_punches_and_worked_time_alone()
-> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let g = group.group.clone();
    let db = TestDatabase::create(&stack).await?;
    TenantSeed::new("acme", &g)
        .licence(5)
        .licensed("E-1", "CARD-1")
        .seed(&db)
        .await?;
    let tokyo = Utc::now().with_timezone(&chrono_tz::Asia::Tokyo);
    let today = tokyo.date_naive();
    let yesterday = today.checked_sub_days(Days::new(1)).context("yesterday")?;
    let at = |time: &str| format!("{yesterday}T{time}+09:00");
    let yesterdays = vec![
        shift(
            raw_punch(&g, "acme", "PT-1", 1, "CARD-1", &at("09:00:00")),
            PunchKind::ClockIn,
        )?,
        shift(
            raw_punch(&g, "acme", "PT-1", 2, "CARD-1", &at("18:00:00")),
            PunchKind::ClockOut,
        )?,
    ];
    let lc = TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&g))).await?;
    let attendance = TestAttendance::start(&stack, &db.url, &g, |_| {});
    produce_raw(&stack, &g, &yesterdays).await?;
    let first = wait_for_verdicts(&stack, &g, 2).await?;
    assert!(first.iter().all(|(_, v)| v.verdict == Verdict::Accepted));
    let key = ("E-1".to_owned(), yesterday.to_string());
    let before = eventually("yesterday's worked time", WAIT, || {
        let db = &db;
        let key = key.clone();
        async move { Ok(days(db).await?.get(&key).copied().filter(|d| d.0 > 0)) }
    })
    .await?;

    let out = punchctl(
        &stack,
        &db,
        &[
            "licence",
            "set",
            "--tenant",
            "acme",
            "--employee",
            "E-1",
            "--revoke",
            "--from",
            &today.to_string(),
        ],
    )
    .await?;
    assert!(out.contains("recorded: revoked from"), "{out}");
    wait_for_master_data(&lc, &db).await?;
    let now = Utc::now().to_rfc3339();
    let todays = raw_punch(&g, "acme", "PT-1", 3, "CARD-1", &now)?;
    let mut second = yesterdays.clone();
    second.push(todays.clone());
    produce_raw(&stack, &g, &second).await?;
    let all = wait_for_verdicts(&stack, &g, 5).await?;
    for punch in &yesterdays {
        let seen = of(&all, punch.punch_id);
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0], seen[1],
            "the resend is the first verdict, identical"
        );
        assert_eq!(seen[1].verdict, Verdict::Accepted);
    }
    let today_verdict = &of(&all, todays.punch_id)[0];
    assert_eq!(today_verdict.reason, Some(RejectReason::NotLicensed));
    // Today's punch is behind the resends on the same key (so partition): once attendance
    // remembers its rejection, it has read the resends.
    eventually("attendance to read every verdict", WAIT, || {
        let (db, id) = (&db, todays.punch_id.to_string());
        async move {
            let client = db.client().await?;
            let row = client
                .query_one(
                    "SELECT count(*) FROM punch_rejections WHERE punch_id::text = $1",
                    &[&id],
                )
                .await?;
            Ok((row.get::<_, i64>(0) == 1).then_some(()))
        }
    })
    .await?;
    assert_eq!(
        days(&db).await?.get(&key).copied(),
        Some(before),
        "yesterday's worked time and revision are unchanged"
    );
    attendance.stop().await?;
    lc.stop().await?;
    db.drop_db().await?;
    group.delete_topics().await
}

/// A licence removed retroactively (from always) does not flip an already judged punch on
/// resend; a new punch of the same time is judged by the history and rejected. `recheck`
/// leaves accepted punches alone unless `--include-accepted`, which publishes the rejection
/// and replaces the stored verdict, so later resends repeat the new one.
#[tokio::test]
async fn a_retroactive_removal_changes_a_judged_punch_only_through_recheck_include_accepted()
-> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let g = group.group.clone();
    let db = TestDatabase::create(&stack).await?;
    TenantSeed::new("acme", &g)
        .licence(5)
        .licensed("E-1", "CARD-1")
        .seed(&db)
        .await?;
    let at = "2020-12-02T09:00:00+09:00";
    let judged = raw_punch(&g, "acme", "PT-1", 1, "CARD-1", at)?;
    let late = raw_punch(&g, "acme", "PT-1", 2, "CARD-1", at)?;
    let lc = TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&g))).await?;
    produce_raw(&stack, &g, std::slice::from_ref(&judged)).await?;
    let first = wait_for_verdicts(&stack, &g, 1).await?[0].1.clone();
    assert_eq!(first.verdict, Verdict::Accepted);

    let revoke = [
        "licence",
        "set",
        "--tenant",
        "acme",
        "--employee",
        "E-1",
        "--revoke",
        "--from",
        "always",
    ];
    let out = punchctl(&stack, &db, &revoke).await?;
    assert!(
        out.contains("recorded: revoked from always until open"),
        "{out}"
    );
    let again = punchctl(&stack, &db, &revoke).await?;
    assert!(again.contains("unchanged"), "idempotent: {again}");
    wait_for_master_data(&lc, &db).await?;
    produce_raw(&stack, &g, &[judged.clone(), late.clone()]).await?;
    let all = wait_for_verdicts(&stack, &g, 3).await?;
    assert_eq!(
        of(&all, judged.punch_id),
        vec![first.clone(), first.clone()]
    );
    assert_eq!(
        of(&all, late.punch_id)[0].reason,
        Some(RejectReason::NotLicensed),
        "a punch judged for the first time follows the history"
    );
    lc.stop().await?;

    let out = punchctl(&stack, &db, &["recheck", "--tenant", "acme"]).await?;
    assert!(out.contains("already accepted: 1"), "{out}");
    assert!(out.contains("still rejected: not_licensed 1"), "{out}");
    assert!(out.contains("now accepted: 0; published 0"), "{out}");
    let out = punchctl(
        &stack,
        &db,
        &["recheck", "--tenant", "acme", "--include-accepted"],
    )
    .await?;
    assert!(out.contains("now rejected: 1"), "{out}");
    assert!(out.contains("published 1"), "{out}");
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT verdict, reason, rechecks FROM punch_verdicts WHERE punch_id::text = $1",
            &[&judged.punch_id.to_string()],
        )
        .await?;
    let stored: (String, Option<String>, i32) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        stored,
        ("rejected".into(), Some("not_licensed".into()), 1),
        "recheck replaced the stored verdict"
    );
    let rechecked = of(&verdicts(&stack, &g).await?, judged.punch_id);
    assert_eq!(rechecked.len(), 3);
    let new = rechecked[2].clone();
    assert_eq!(new.reason, Some(RejectReason::NotLicensed));

    // A resend now repeats the recheck's verdict.
    let lc = TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&g))).await?;
    produce_raw(&stack, &g, std::slice::from_ref(&judged)).await?;
    let all = wait_for_verdicts(&stack, &g, 5).await?;
    let seen = of(&all, judged.punch_id);
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[3], new);
    lc.stop().await?;
    db.drop_db().await?;
    group.delete_topics().await
}
