//! The `attendance` binary killed with SIGKILL in the middle of a batch transaction, twice, and
//! restarted: the rows are exactly the expected ones and every punch is stored once. And
//! SIGTERM in the middle of a batch commits that batch before exiting with success.
//!
//! `--debug-batch-delay-ms` holds each batch transaction open (writes done, COMMIT not yet
//! sent), and the test waits until Postgres reports the consumer's session `idle in
//! transaction` before it kills, so the kill lands mid-batch every time.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use dakoku_schemas::{Correction, GroupId, PunchId, PunchKind, Topic, correction_key, encode};
use dakoku_testkit::days::{
    latest_daily, punch_counts, rows_as_topic, stored_offsets_total, topic_figures, wait_for_days,
};
use dakoku_testkit::produce::{produce_bytes, produce_checked};
use dakoku_testkit::scenario::resent;
use dakoku_testkit::{Scenario, Stack, TestDatabase, TestGroup, eventually, unique_suffix};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(90);

/// Starts the real binary for `group` on `db`, logging to a file.
fn spawn(
    stack: &Stack,
    db: &TestDatabase,
    group: &GroupId,
    delay_ms: u64,
    log: &PathBuf,
) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Ok(Command::new(env!("CARGO_BIN_EXE_attendance"))
        .args([
            "--group",
            group.as_str(),
            "--batch-max-records",
            "40",
            "--batch-max-wait-ms",
            "20",
            "--metrics-listen",
            "none",
            // A killed member holds its partitions until its session expires: keep it short.
            "--session-timeout-ms",
            "6000",
            "--drain-timeout-ms",
            "5000",
            "--debug-batch-delay-ms",
            &delay_ms.to_string(),
        ])
        .env("KAFKA_BROKERS", &stack.brokers)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?)
}

/// Waits until the consumer holds a batch transaction open (writes done, not committed) and
/// has committed at least `min_committed` records before it; returns the committed offsets.
async fn wait_mid_batch(
    db: &TestDatabase,
    group: &GroupId,
    min_committed: i64,
) -> anyhow::Result<i64> {
    let client = db.client().await?;
    eventually("a batch transaction open mid-way", WAIT, || {
        let client = &client;
        async move {
            let open: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND state = 'idle in transaction' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await?
                .get(0);
            let committed = stored_offsets_total(db, group).await?;
            Ok((open > 0 && committed >= min_committed).then_some(committed))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_batch_and_restart_gives_the_same_rows_and_every_punch_once()
-> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 3).await?;
    let db = TestDatabase::create(&stack).await?;
    let start = NaiveDate::from_ymd_opt(2020, 11, 30).context("date")?;
    let scenario = Scenario::realistic_week(
        &format!("t{}", unique_suffix()),
        &group.group,
        10,
        start,
        21,
    )?;
    scenario.seed(&db).await?;
    let arrivals = resent(&scenario.punches, 1.0, 22);
    let total = arrivals.len() as i64;
    produce_checked(&stack, &group.group, &arrivals).await?;
    let log = std::env::temp_dir().join(format!("attendance-crash-{}.log", unique_suffix()));
    let context = || format!("consumer log: {}", log.display());

    // Two kills, each mid-batch, each after some progress.
    let mut committed = 0;
    for round in 0..2 {
        let mut child = spawn(&stack, &db, &group.group, 3_000, &log)?;
        let before = wait_mid_batch(&db, &group.group, committed + 1)
            .await
            .with_context(context)?;
        child.start_kill()?;
        child.wait().await?;
        let after = stored_offsets_total(&db, &group.group).await?;
        assert_eq!(
            after, before,
            "round {round}: the killed batch was not committed"
        );
        assert!(after < total, "round {round}: killed before the end");
        committed = after;
    }
    let (stored, _, _, _) = punch_counts(&db).await?;
    assert!(stored > 0 && stored < scenario.punches.len() as i64);

    // Restart: the rest is applied, nothing twice.
    let mut child = spawn(&stack, &db, &group.group, 0, &log)?;
    let expected = scenario.expected();
    let rows = wait_for_days(&db, &expected, WAIT)
        .await
        .with_context(context)?;
    eventually("every record applied", WAIT, || async {
        Ok((stored_offsets_total(&db, &group.group).await? >= total).then_some(()))
    })
    .await?;
    let (punches, withdrawn, conflicts, rejections) = punch_counts(&db).await?;
    assert_eq!(
        (punches, withdrawn, conflicts, rejections),
        (scenario.punches.len() as i64, 0, 0, 0),
        "every punch stored exactly once"
    );
    // The topic caught up too (batches committed before a kill but unpublished are
    // republished at start-up).
    let want = rows_as_topic(&rows);
    let latest = latest_daily(&stack, &group.group, WAIT, |latest| {
        want.iter()
            .all(|(key, (_, rev))| latest.get(key).is_some_and(|d| d.revision >= *rev))
    })
    .await?;
    for (key, (figures, revision)) in &want {
        let day = &latest[key];
        assert_eq!(
            (topic_figures(day), day.revision),
            (figures.clone(), *revision),
            "{key}"
        );
    }
    child.start_kill()?;
    child.wait().await?;
    let _ = std::fs::remove_file(&log);
    db.drop_db().await?;
    group.delete_topics().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_batch_commits_the_open_batch_and_exits_cleanly() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 1).await?;
    let db = TestDatabase::create(&stack).await?;
    let start = NaiveDate::from_ymd_opt(2020, 11, 30).context("date")?;
    let scenario =
        Scenario::realistic_week(&format!("t{}", unique_suffix()), &group.group, 4, start, 23)?;
    scenario.seed(&db).await?;
    produce_checked(&stack, &group.group, &scenario.punches).await?;
    let log = std::env::temp_dir().join(format!("attendance-term-{}.log", unique_suffix()));

    let mut child = spawn(&stack, &db, &group.group, 2_000, &log)?;
    let before = wait_mid_batch(&db, &group.group, 0).await?;
    let pid = child.id().context("child pid")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid)?),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .context("exits within the drain budget")??;
    assert!(status.success(), "clean exit: {status}");
    let after = stored_offsets_total(&db, &group.group).await?;
    assert!(
        after > before,
        "the open batch was committed ({before} -> {after})"
    );
    let log_text = std::fs::read_to_string(&log)?;
    assert!(log_text.contains("stopped"), "{log_text}");
    let _ = std::fs::remove_file(&log);
    db.drop_db().await?;
    group.delete_topics().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_correction_and_restart_applies_it_exactly_once() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 3).await?;
    let db = TestDatabase::create(&stack).await?;
    let start = NaiveDate::from_ymd_opt(2020, 11, 30).context("date")?;
    let scenario =
        Scenario::realistic_week(&format!("t{}", unique_suffix()), &group.group, 1, start, 5)?;
    scenario.seed(&db).await?;
    produce_checked(&stack, &group.group, &scenario.punches).await?;
    let log = std::env::temp_dir().join(format!("attendance-crash-{}.log", unique_suffix()));
    let context = || format!("consumer log: {}", log.display());
    let mut child = spawn(&stack, &db, &group.group, 0, &log)?;
    wait_for_days(&db, &scenario.expected(), WAIT)
        .await
        .with_context(context)?;
    child.start_kill()?;
    child.wait().await?;

    // A break start an hour into the first shift: it changes that day's figures.
    let first = &scenario.punches[0];
    let employee = first.employee_id.clone().context("an accepted verdict")?;
    let add = Correction::add(
        PunchId::random(),
        first.tenant_id.clone(),
        employee.clone(),
        PunchKind::BreakStart,
        first.at + 3_600_000,
        "cli:test".into(),
        "break taken, not punched".into(),
        first.at,
    );
    let id = add.correction_id.to_string();
    produce_bytes(
        &stack,
        &Topic::Corrections(group.group.clone()).name(),
        &correction_key(&add.tenant_id, &add.employee_id),
        Some(&encode(&add)?),
    )
    .await?;
    let client = db.client().await?;
    let revision_before: i64 = client
        .query_one(
            "SELECT max(revision) FROM attendance_days WHERE employee_id = $1",
            &[&employee.as_str()],
        )
        .await?
        .get(0);

    // Killed while the correction's transaction is open: nothing of it stays.
    let mut child = spawn(&stack, &db, &group.group, 3_000, &log)?;
    wait_mid_batch(&db, &group.group, 0)
        .await
        .with_context(context)?;
    child.start_kill()?;
    child.wait().await?;
    let stored: i64 = client
        .query_one("SELECT count(*) FROM corrections", &[])
        .await?
        .get(0);
    assert_eq!(stored, 0, "the killed transaction stored nothing");

    // Restarted: applied once, the day changed once.
    let mut child = spawn(&stack, &db, &group.group, 0, &log)?;
    let (revision, ids) = eventually("the correction applied", WAIT, || async {
        let row = client
            .query_opt(
                "SELECT revision, correction_ids FROM attendance_days \
                 WHERE employee_id = $1 AND $2 = ANY(correction_ids)",
                &[&employee.as_str(), &id],
            )
            .await?;
        Ok(row.map(|r| (r.get::<_, i64>(0), r.get::<_, Vec<String>>(1))))
    })
    .await
    .with_context(context)?;
    assert_eq!(ids, vec![id.clone()]);
    assert!(
        revision <= revision_before + 1,
        "changed once: {revision} vs {revision_before}"
    );
    let (stored, offsets): (i64, i64) = client
        .query_one(
            "SELECT (SELECT count(*) FROM corrections), \
             (SELECT COALESCE(sum(next_offset), 0)::bigint FROM consumer_offsets \
              WHERE topic = $1)",
            &[&Topic::Corrections(group.group.clone()).name()],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))?;
    assert_eq!((stored, offsets), (1, 1), "stored once, its offset with it");
    child.start_kill()?;
    child.wait().await?;
    let _ = std::fs::remove_file(&log);
    db.drop_db().await?;
    group.delete_topics().await
}
