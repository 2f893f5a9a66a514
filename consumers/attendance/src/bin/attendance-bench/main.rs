//! `attendance-bench`: punches per second from `punches.checked.<group>` to committed
//! `attendance_days`, against a bare batched insert of the same punch rows into a table with
//! the same columns and indexes, in the same run on the same stack.
//!
//! It creates a database of its own (dropped at the end unless `--keep`) and a tenant group
//! with fresh topics, pre-produces a month of checked punches (default ~200k records: 1,000
//! employees over 30 days, with resends), then measures:
//! - **bare**: `INSERT .. SELECT FROM UNNEST(..)` of the distinct punch rows into
//!   `bench_bare_punches (LIKE punches INCLUDING ALL)`, in batches of `--batch-max-records`,
//!   one transaction each (and, for reference, one `COPY` of all rows);
//! - **attendance**: the consumer (`dakoku_attendance::run_with_listener`) from an empty
//!   database until its stored offsets cover every record: punches stored once, every touched
//!   day recomputed and upserted, offsets stored, days published.
//!
//! Run (release, on the local stack): see `consumers/attendance/BENCHMARK.md`.
//!
//! # Layout
//! - `args`: the flags and one round's timings.
//! - `data`: the generated month of punches, produced to the checked topic.
//! - `baseline`: the bare batched inserts and the COPY.
//! - `report`: rates, medians, the printed report.

mod args;
mod baseline;
mod data;
mod report;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

use crate::args::{Args, Round};
use crate::baseline::baselines;
use crate::data::{generate, produce};
use crate::report::report;
use dakoku_attendance::Config;
use dakoku_kafka::{Admin, ClientFactory, TopicSpec};
use dakoku_schemas::{CheckedPunch, ConsumerGroup, GroupId, TenantId, Topic};
use dakoku_store::ScratchDatabase;

/// How long dropping a round's database waits for autovacuum, which the round's hundreds of
/// thousands of fresh rows set to work and which `DROP DATABASE .. WITH (FORCE)` cannot end.
const DROP_WAIT: Duration = Duration::from_secs(5 * 60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    anyhow::ensure!(args.rounds >= 1, "--rounds must be at least 1");
    let suffix = format!("{:08x}", rand::random::<u32>());
    let group: GroupId = format!("bench-{suffix}").parse()?;
    let tenants: Vec<TenantId> = (0..10)
        .map(|i| format!("bench-tenant-{i}").parse())
        .collect::<Result<_, _>>()?;

    // Topics of our own, filled once; every round reads them from the start.
    let kafka = args.kafka.factory()?;
    let (admin, topics) = create_topics(&kafka, &args, &group).await?;
    let started = Instant::now();
    let (records, distinct) = generate(&args, &group, &tenants)?;
    eprintln!(
        "generated {} records ({} distinct punches) in {:.1}s",
        records.len(),
        distinct.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    produce(&kafka, &group, &records).await?;
    eprintln!(
        "produced to the checked topic in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let mut rounds = Vec::with_capacity(args.rounds);
    let mut result = Ok(());
    for round in 0..args.rounds {
        let db = ScratchDatabase::create(
            &args.database_url,
            &format!("dakoku_bench_{suffix}_{round}"),
        )
        .await?;
        let measured = self::round(&args, &group, &tenants, db.url(), &records, &distinct).await;
        let last = round + 1 == args.rounds;
        if !(args.keep && last) {
            db.drop(DROP_WAIT).await?;
        } else {
            eprintln!("kept database {}", db.name());
        }
        match measured {
            Ok(m) => {
                eprintln!("round {}: {m:?}", round + 1);
                rounds.push(m);
            }
            Err(error) => {
                result = Err(error);
                break;
            }
        }
    }
    if !args.keep {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let _ = admin.delete_topics(&names).await;
    } else {
        eprintln!("kept topics of group {group}");
    }
    result?;
    report(&args, &rounds, records.len(), distinct.len());
    Ok(())
}

/// The bench's own checked and daily topics.
async fn create_topics(
    kafka: &ClientFactory,
    args: &Args,
    group: &GroupId,
) -> anyhow::Result<(Admin, [String; 3])> {
    let admin = Admin::new(kafka, "attendance-bench", Duration::from_secs(30))?;
    let topics = [
        Topic::Checked(group.clone()).name(),
        Topic::AttendanceDaily(group.clone()).name(),
        Topic::PayrollMonthly(group.clone()).name(),
    ];
    let spec = |name: &str, configs: Vec<(String, String)>| TopicSpec {
        name: name.to_owned(),
        partitions: args.partitions,
        replication_factor: 1,
        configs,
    };
    let specs = [
        spec(&topics[0], Vec::new()),
        spec(
            &topics[1],
            vec![("cleanup.policy".to_owned(), "compact".to_owned())],
        ),
        spec(
            &topics[2],
            vec![("cleanup.policy".to_owned(), "compact".to_owned())],
        ),
    ];
    for (topic, created) in admin.create_topics(&specs).await? {
        // A fresh random group: an existing topic means a name clash, not a rerun.
        anyhow::ensure!(
            created == dakoku_kafka::Created::Created,
            "creating {topic}: it exists already"
        );
    }
    Ok((admin, topics))
}

async fn round(
    args: &Args,
    group: &GroupId,
    tenants: &[TenantId],
    db_url: &str,
    records: &[CheckedPunch],
    distinct: &[CheckedPunch],
) -> anyhow::Result<Round> {
    // Migrated by `ScratchDatabase::create`.
    let mut db = dakoku_store::connect(db_url).await?;
    db.execute(
        "INSERT INTO tenant_groups (group_id) VALUES ($1)",
        &[&group.as_str()],
    )
    .await?;
    for tenant in tenants {
        db.execute(
            "INSERT INTO tenants (tenant_id, name, group_id) VALUES ($1, $1, $2)",
            &[&tenant.as_str(), &group.as_str()],
        )
        .await?;
    }

    let (bare, bare_distinct, copy) = baselines(args, &mut db, records, distinct).await?;

    // The consumer, from an empty projection to every record committed.
    let (started, first, done) = consume(args, group, &db, db_url, records.len() as i64).await?;
    let (first_at, first_records) = first.context("no batch committed")?;
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM punches), (SELECT count(*) FROM attendance_days)",
            &[],
        )
        .await?;
    let (stored, days): (i64, i64) = (row.get(0), row.get(1));
    anyhow::ensure!(
        stored == distinct.len() as i64,
        "stored {stored} punches, expected {}",
        distinct.len()
    );
    Ok(Round {
        bare,
        bare_distinct,
        copy,
        steady: done - first_at,
        first_records,
        wall: done - started,
        days,
    })
}

/// Runs the consumer from an empty projection until every record is committed: its start,
/// its first commit (when, records) and its last commit.
async fn consume(
    args: &Args,
    group: &GroupId,
    db: &tokio_postgres::Client,
    db_url: &str,
    total: i64,
) -> anyhow::Result<(Instant, Option<(Instant, i64)>, Instant)> {
    let mut config = Config::new(&args.kafka.brokers, db_url, vec![group.clone()]);
    config.kafka = args.kafka.clone();
    config.batch_max_records = args.batch_max_records;
    config.batch_max_wait_ms = 100;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(dakoku_attendance::run_with_listener(config, None, async {
        let _ = stop_rx.await;
    }));
    let consumer_group = ConsumerGroup::Attendance(group.clone()).name();
    let mut first: Option<(Instant, i64)> = None;
    let done = loop {
        let committed = dakoku_store::offsets::total(db, &consumer_group).await?;
        let now = Instant::now();
        if committed > 0 && first.is_none() {
            first = Some((now, committed));
        }
        if committed >= total {
            break now;
        }
        if task.is_finished() {
            anyhow::bail!("the consumer stopped early: {:?}", task.await);
        }
        if started.elapsed() > Duration::from_secs(1800) {
            anyhow::bail!("not done after 30 minutes: {committed} of {total}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let _ = stop_tx.send(());
    task.await??;
    Ok((started, first, done))
}
