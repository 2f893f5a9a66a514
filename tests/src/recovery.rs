//! Fixtures for the recovery tests (`punchctl replay`, `rebuild`, `recheck`): running punchctl
//! verbs through the real dispatcher, waiting for a consumer group to gain or lose members,
//! raw punches with chosen record timestamps, and the exact content of `attendance_days`.
//!
//! # Layout
//! - [`punchctl`]: one punchctl command against a test database and the stack's broker.
//! - [`wait_for_members`], [`wait_until_idle`]: a consumer group's membership, as `replay` and
//!   `rebuild` see it.
//! - [`raw_of`]: a [`Scenario`] through the whole pipeline, starting from raw punches (seed
//!   it with `Scenario::seed`, produce with `dakoku_testkit::produce::produce_raw_at`).
//! - [`checked_records`], [`stored_offsets`], [`wait_caught_up`]: the checked topic with
//!   offsets and timestamps, and attendance's position on it (offsets count transaction
//!   markers too, so positions are compared with data offsets, never with record counts).
//! - [`exact_days`]: every column of every `attendance_days` row, as text.
//! - [`prepared_rebuild`], [`interrupted_rebuild`], [`unfinished_rebuild_row`]: a rebuild
//!   driven through the library's steps and stopped after one of them, as a killed `punchctl
//!   rebuild` leaves it, and the `attendance_rebuilds` row that records it.
//! - [`wait_refused`]: the error an attendance service stops with on its own.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use dakoku_attendance::rebuild::{NoProgress, Plan, Rebuild, RebuildRequest, Scope};
use dakoku_kafka::LogContext;
use dakoku_kafka::rdkafka::consumer::{Consumer as _, StreamConsumer};
use dakoku_kafka::rdkafka::message::Message as _;
use dakoku_schemas::{CheckedPunch, ConsumerGroup, GroupId, RawPunch, Topic, decode};
use dakoku_testkit::{DayKey, Scenario, Stack, TestDatabase, eventually, unique_suffix};
use punchctl::replay::{Member, live_members};

use crate::attendance::TestAttendance;

/// Runs `punchctl <args>` through the real dispatcher against `db` and the stack's broker;
/// returns its standard output, or its error (downcast it to the verb's error type).
pub async fn punchctl(stack: &Stack, db: &TestDatabase, args: &[&str]) -> anyhow::Result<String> {
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
    anyhow::ensure!(
        code == std::process::ExitCode::SUCCESS,
        "punchctl {args:?} exited with {code:?}"
    );
    Ok(String::from_utf8(out)?)
}

/// Waits until `consumer_group` has at least one live member; returns the members.
pub async fn wait_for_members(stack: &Stack, consumer_group: &str) -> anyhow::Result<Vec<Member>> {
    eventually(
        &format!("a live member in {consumer_group}"),
        Duration::from_secs(60),
        || async move {
            let members =
                live_members(&stack.brokers, consumer_group, Duration::from_secs(10)).await?;
            Ok((!members.is_empty()).then_some(members))
        },
    )
    .await
}

/// Waits until `consumer_group` has no live member (a stopped licence-check instance is a
/// static member until its session timeout).
pub async fn wait_until_idle(stack: &Stack, consumer_group: &str) -> anyhow::Result<()> {
    eventually(
        &format!("{consumer_group} without members"),
        Duration::from_secs(90),
        || async move {
            let members =
                live_members(&stack.brokers, consumer_group, Duration::from_secs(10)).await?;
            Ok(members.is_empty().then_some(()))
        },
    )
    .await
}

/// The raw punches behind the scenario's verdicts, as the acceptor would have written them.
pub fn raw_of(scenario: &Scenario) -> Vec<RawPunch> {
    scenario.punches.iter().map(|p| p.raw()).collect()
}

/// Every `attendance_days` row in full (all columns as JSON text), by day: equal maps mean
/// byte-for-byte equal rows, revisions and `computed_at` included.
pub async fn exact_days(db: &TestDatabase) -> anyhow::Result<BTreeMap<DayKey, String>> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT tenant_id, employee_id, work_date, row_to_json(d)::text \
             FROM attendance_days d",
            &[],
        )
        .await
        .context("reading attendance_days")?;
    Ok(rows
        .iter()
        .map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3)))
        .collect())
}

/// A verdict of the checked topic with its place and timestamp.
#[derive(Debug, Clone)]
pub struct Positioned {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Record timestamp (licence-check's produce time), milliseconds since the epoch.
    pub timestamp: i64,
    /// The verdict.
    pub verdict: CheckedPunch,
}

/// The first `count` committed verdicts of `group`'s checked topic, from the beginning.
pub async fn checked_records(
    stack: &Stack,
    group: &GroupId,
    count: usize,
) -> anyhow::Result<Vec<Positioned>> {
    let topic = Topic::Checked(group.clone()).name();
    let consumer: StreamConsumer<LogContext> = stack
        .kafka()
        .client("e2e-positions")
        .set("group.id", format!("e2e-positions-{}", unique_suffix()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    consumer.subscribe(&[topic.as_str()])?;
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut records = Vec::with_capacity(count);
    while records.len() < count {
        let message = tokio::time::timeout_at(until, consumer.recv())
            .await
            .with_context(|| {
                format!("{} of {count} verdicts read from {topic}", records.len())
            })??;
        records.push(Positioned {
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis().unwrap_or_default(),
            verdict: decode(message.payload().unwrap_or_default())?,
        });
    }
    Ok(records)
}

/// attendance's stored next offsets on `group`'s checked topic, by partition.
pub async fn stored_offsets(
    db: &TestDatabase,
    group: &GroupId,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT partition, next_offset FROM consumer_offsets WHERE consumer_group = $1",
            &[&ConsumerGroup::Attendance(group.clone()).name()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Waits until attendance has applied the first `count` verdicts of `group`'s checked topic
/// (its stored offset is past the last of them on every partition); returns them.
pub async fn wait_caught_up(
    stack: &Stack,
    db: &TestDatabase,
    group: &GroupId,
    count: usize,
) -> anyhow::Result<Vec<Positioned>> {
    let records = checked_records(stack, group, count).await?;
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for r in &records {
        let end = ends.entry(r.partition).or_default();
        *end = (*end).max(r.offset + 1);
    }
    let ends = &ends;
    eventually(
        &format!("attendance past {count} verdicts"),
        Duration::from_secs(90),
        || async move {
            let stored = stored_offsets(db, group).await?;
            Ok(ends
                .iter()
                .all(|(p, end)| stored.get(p).is_some_and(|s| s >= end))
                .then_some(()))
        },
    )
    .await?;
    Ok(records)
}

/// A rebuild of `scope` in `group`, prepared through the library as `punchctl rebuild` does:
/// it holds the group's lock and has changed nothing yet.
pub async fn prepared_rebuild(
    stack: &Stack,
    db: &TestDatabase,
    group: &GroupId,
    scope: Scope,
) -> anyhow::Result<Rebuild> {
    Ok(Rebuild::prepare(RebuildRequest {
        brokers: stack.brokers.clone(),
        database_url: db.url.clone(),
        group: group.clone(),
        scope,
        timeout: Duration::from_secs(30),
    })
    .await?)
}

/// The last step an [`interrupted_rebuild`] completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildStage {
    /// The scope's punches are cleared and the offsets reset; nothing replayed.
    Clear,
    /// The whole log is replayed (the scope's days deferred); nothing recomputed.
    Replay,
}

/// A rebuild of `scope` in `group` stopped after `stage`, as a `punchctl rebuild` killed
/// there leaves it: the library's steps up to `stage`, then its connection is closed (the
/// group's lock goes with it) and the recompute never runs. Returns the rebuild's plan.
pub async fn interrupted_rebuild(
    stack: &Stack,
    db: &TestDatabase,
    group: &GroupId,
    scope: Scope,
    stage: RebuildStage,
) -> anyhow::Result<Plan> {
    let mut rebuild = prepared_rebuild(stack, db, group, scope).await?;
    let plan = rebuild.plan().clone();
    rebuild.clear().await?;
    if stage == RebuildStage::Replay {
        rebuild.replay(500, &NoProgress).await?;
    }
    drop(rebuild);
    Ok(plan)
}

/// `group`'s row of `attendance_rebuilds`: `Some((tenant_id, started_by))`, a `None` tenant
/// being the whole group; `None` without a row.
pub async fn unfinished_rebuild_row(
    db: &TestDatabase,
    group: &GroupId,
) -> anyhow::Result<Option<(Option<String>, String)>> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "SELECT tenant_id, started_by FROM attendance_rebuilds WHERE consumer_group = $1",
            &[&ConsumerGroup::Attendance(group.clone()).name()],
        )
        .await
        .context("reading attendance_rebuilds")?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Waits until `attendance` has stopped on its own and returns the error it stopped with
/// (downcast it to `AttendanceError`); fails if it stopped cleanly or keeps running.
pub async fn wait_refused(attendance: TestAttendance) -> anyhow::Result<anyhow::Error> {
    let running = &attendance;
    eventually(
        "the attendance service to stop on its own",
        Duration::from_secs(60),
        || async move { Ok(running.is_finished().then_some(())) },
    )
    .await?;
    attendance
        .stop()
        .await
        .err()
        .context("the attendance service stopped without an error")
}
