//! `rebuild-bench`: how fast `punchctl rebuild` replays a log of at least a million punches
//! into the attendance projection, on the local stack (BENCHMARKS.md "Rebuild").
//!
//! It builds a world of its own with the end-to-end fixtures (a fresh tenant group with its
//! topics, a fresh migrated database, dropped at the end unless `--keep`), produces a month of
//! realistic checked punches of many tenants and employees ([`Scenario`], with the usual noise
//! and some resends), runs the attendance consumer once over all of it, stops it, and then
//! times the real `punchctl rebuild --group <g>` binary (a child process, found next to this
//! one). It reports punches replayed per second, the phases from punchctl's summary, CPU
//! seconds of punchctl, Postgres and the broker during the rebuild (from `/proc`, to say
//! what limits it), and checks the rebuilt table equals the table before, row for row.
//!
//! Run (release; the stack up):
//! `cargo build --release -p punchctl -p dakoku-e2e --bin punchctl --bin rebuild-bench && target/release/rebuild-bench`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::NaiveDate;
use clap::Parser;
use dakoku_e2e::attendance::TestAttendance;
use dakoku_e2e::recovery::wait_until_idle;
use dakoku_schemas::{CheckedPunch, ConsumerGroup};
use dakoku_testkit::days::stored_offsets_total;
use dakoku_testkit::produce::produce_checked;
use dakoku_testkit::{Scenario, Stack, TestDatabase, TestGroup, eventually};

/// How long dropping the bench's database waits for autovacuum, which is usually still at
/// work on a million fresh rows and cannot be ended by `DROP DATABASE .. WITH (FORCE)` without
/// superuser rights.
const DROP_WAIT: Duration = Duration::from_secs(30 * 60);

/// Measure `punchctl rebuild` over a log of a million punches or more.
#[derive(Debug, Parser)]
#[command(name = "rebuild-bench", version, about)]
struct Args {
    /// Tenants (each with its own calendar rows and employees).
    #[arg(long, default_value_t = 10)]
    tenants: usize,
    /// Employees per tenant.
    #[arg(long, default_value_t = 1_100)]
    employees: usize,
    /// Days of the month generated (from Sunday 2020-11-01).
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Every n-th punch is resent once (a second verdict, judged again): 0 for none.
    #[arg(long, default_value_t = 20)]
    resend_every: usize,
    /// Partitions of the group's topics.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Fewest punches (distinct) the log must hold.
    #[arg(long, default_value_t = 1_000_000)]
    min_punches: usize,
    /// The punchctl binary (default: next to this executable).
    #[arg(long)]
    punchctl: Option<PathBuf>,
    /// Keep the database and the topics afterwards (their names are printed).
    #[arg(long)]
    keep: bool,
    /// Allow a debug build (a smoke test; its figures mean nothing).
    #[arg(long)]
    allow_debug: bool,
}

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
    if cfg!(debug_assertions) && !args.allow_debug {
        bail!(
            "figures from a debug build are meaningless: `cargo build --release -p punchctl -p dakoku-e2e --bin punchctl --bin rebuild-bench` and run target/release/rebuild-bench (or pass --allow-debug for a smoke test)"
        );
    }
    let punchctl = match &args.punchctl {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench's directory")?
            .join("punchctl"),
    };
    anyhow::ensure!(
        punchctl.exists(),
        "{} not found: build it with `cargo build --release -p punchctl`",
        punchctl.display()
    );

    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, args.partitions).await?;
    let db = TestDatabase::create(&stack).await?;
    eprintln!("group {}, database {}", group.group, db.name);
    let result = measure(&args, &stack, &group, &db, &punchctl).await;
    if args.keep {
        eprintln!("kept: group {} and database {}", group.group, db.name);
    } else {
        group.delete_topics().await?;
        db.drop_within(DROP_WAIT).await?;
    }
    result
}

/// Builds the log, projects it once with the service, times the rebuild and reports.
async fn measure(
    args: &Args,
    stack: &Stack,
    group: &TestGroup,
    db: &TestDatabase,
    punchctl: &std::path::Path,
) -> anyhow::Result<()> {
    let (log, distinct) = build_log(args, stack, group, db).await?;
    let total = log.len() as i64;
    let projection = project(stack, group, db, total).await?;
    let client = db.client().await?;
    let before = table_digest(&client).await?;
    eprintln!(
        "attendance service projection: {total} records in {:.1} s ({:.0}/s); {} days",
        projection.as_secs_f64(),
        total as f64 / projection.as_secs_f64(),
        before.rows
    );
    let rebuild = rebuild(stack, group, db, punchctl).await?;
    let after = table_digest(&client).await?;
    let figures = Figures {
        total,
        distinct,
        projection,
        before,
        after,
    };
    report(args, &figures, &rebuild);
    anyhow::ensure!(
        figures.before.figures == figures.after.figures
            && figures.before.rows == figures.after.rows,
        "the rebuilt table differs from the table before"
    );
    Ok(())
}

/// The log: every tenant's month (seeded), merged in time order (as recorders send), with
/// resends, produced to the group's checked topic. Returns it and its distinct punches.
async fn build_log(
    args: &Args,
    stack: &Stack,
    group: &TestGroup,
    db: &TestDatabase,
) -> anyhow::Result<(Vec<CheckedPunch>, usize)> {
    let started = Instant::now();
    let start = NaiveDate::from_ymd_opt(2020, 11, 1).context("date")?;
    let mut punches: Vec<CheckedPunch> = Vec::new();
    for t in 0..args.tenants {
        let scenario = Scenario::generate(
            &format!("bench-{t}"),
            &group.group,
            args.employees,
            start,
            args.days,
            t as u64 + 1,
            chrono_tz::Asia::Tokyo,
        )?;
        scenario.seed(db).await?;
        punches.extend(scenario.punches);
    }
    punches.sort_by_key(|p| (p.at, p.seq));
    let distinct = punches.len();
    anyhow::ensure!(
        distinct >= args.min_punches,
        "only {distinct} punches; raise --tenants, --employees or --days"
    );
    let mut log = Vec::with_capacity(distinct + distinct / args.resend_every.max(1));
    for (i, punch) in punches.into_iter().enumerate() {
        let resend = args.resend_every > 0 && i % args.resend_every == 0;
        if resend {
            let mut again = punch.clone();
            again.received_at += 60_000;
            again.checked_at += 60_000;
            log.push(punch);
            log.push(again);
        } else {
            log.push(punch);
        }
    }
    eprintln!(
        "generated {} records ({distinct} distinct punches) in {:.1} s",
        log.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    for chunk in log.chunks(20_000) {
        produce_checked(stack, &group.group, chunk).await?;
    }
    eprintln!(
        "produced to punches.checked.{} in {:.1} s",
        group.group,
        started.elapsed().as_secs_f64()
    );
    Ok((log, distinct))
}

/// The projection, once, by the service's own code; returns how long it took, once the
/// service has stopped and left the group.
async fn project(
    stack: &Stack,
    group: &TestGroup,
    db: &TestDatabase,
    total: i64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let consumer = TestAttendance::start(stack, &db.url, &group.group, |c| {
        c.batch_max_records = 5_000;
        c.batch_max_wait_ms = 200;
        c.statement_timeout_ms = 60_000;
        c.session_timeout_ms = 45_000;
        c.drain_timeout_ms = 10_000;
    });
    eventually(
        "the attendance projection over the whole log",
        Duration::from_secs(3_600),
        || async { Ok((stored_offsets_total(db, &group.group).await? >= total).then_some(())) },
    )
    .await?;
    let projection = started.elapsed();
    consumer.stop().await?;
    wait_until_idle(
        stack,
        &ConsumerGroup::Attendance(group.group.clone()).name(),
    )
    .await?;
    Ok(projection)
}

/// What the timed rebuild took: wall time, CPU, and punchctl's summary.
struct RebuildRun {
    took: Duration,
    cpu: Cpu,
    stdout: String,
}

/// The rebuild, timed: the real binary.
async fn rebuild(
    stack: &Stack,
    group: &TestGroup,
    db: &TestDatabase,
    punchctl: &std::path::Path,
) -> anyhow::Result<RebuildRun> {
    let cpu_before = Cpu::now()?;
    let started = Instant::now();
    let output = tokio::process::Command::new(punchctl)
        .arg("--brokers")
        .arg(&stack.brokers)
        .arg("--database-url")
        .arg(&db.url)
        .args(["rebuild", "--group", group.group.as_str()])
        .output()
        .await
        .with_context(|| format!("running {}", punchctl.display()))?;
    let took = started.elapsed();
    let cpu = Cpu::now()?.since(&cpu_before);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "punchctl rebuild failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(RebuildRun { took, cpu, stdout })
}

/// The log's size, the projection's time and the table before and after the rebuild.
struct Figures {
    total: i64,
    distinct: usize,
    projection: Duration,
    before: Digest,
    after: Digest,
}

/// Prints the bench's report on standard output.
fn report(args: &Args, figures: &Figures, rebuild: &RebuildRun) {
    let Figures {
        total,
        distinct,
        projection,
        before,
        after,
    } = figures;
    let (total, distinct) = (*total, *distinct);
    let RebuildRun { took, cpu, stdout } = rebuild;
    println!("rebuild-bench");
    println!(
        "  log: {total} records on {} partitions = {distinct} distinct punches + {} resends; {} tenants x {} employees x {} days -> {} attendance days",
        args.partitions,
        total as usize - distinct,
        args.tenants,
        args.employees,
        args.days,
        before.rows
    );
    println!(
        "  punchctl rebuild (wall, whole command):  {:.1} s = {:.0} punches/s ({:.0} records/s)",
        took.as_secs_f64(),
        distinct as f64 / took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    println!(
        "  for reference, the service's first projection: {:.1} s = {:.0} records/s",
        projection.as_secs_f64(),
        total as f64 / projection.as_secs_f64()
    );
    println!(
        "  CPU during the rebuild (2 vCPU = {:.1} CPU-s available): punchctl {:.1} s, Postgres {:.1} s, Kafka broker {:.1} s, idle {:.1} s",
        2.0 * took.as_secs_f64(),
        cpu.punchctl,
        cpu.postgres,
        cpu.broker,
        cpu.idle
    );
    let yes_no = |same: bool| if same { "yes" } else { "NO" };
    println!(
        "  table after == table before: figures {}, every column {}",
        yes_no(before.figures == after.figures),
        yes_no(before.everything == after.everything)
    );
    println!("  punchctl's summary:");
    for line in stdout.lines().filter(|l| l.starts_with("  ")) {
        println!("  {line}");
    }
}

/// A digest of `attendance_days`: its figures only (what a rebuild must reproduce), and every
/// column (revisions and `computed_at` too).
struct Digest {
    rows: i64,
    figures: String,
    everything: String,
}

async fn table_digest(client: &tokio_postgres::Client) -> anyhow::Result<Digest> {
    let row = client
        .query_one(
            "SELECT count(*), \
             md5(string_agg(concat_ws('|', tenant_id, employee_id, work_date, first_in, \
                 last_out, worked_minutes, break_minutes, night_minutes, overtime_minutes, \
                 punch_count, anomalies::text, double_taps), ',' \
                 ORDER BY tenant_id, employee_id, work_date)), \
             md5(string_agg(d::text, ',' ORDER BY tenant_id, employee_id, work_date)) \
             FROM attendance_days d",
            &[],
        )
        .await?;
    Ok(Digest {
        rows: row.get(0),
        figures: row.get::<_, Option<String>>(1).unwrap_or_default(),
        everything: row.get::<_, Option<String>>(2).unwrap_or_default(),
    })
}

/// CPU seconds so far: this process's reaped children (punchctl), every `postgres` process
/// with its reaped backends (the stack is shared: other users' queries count too), the Kafka
/// broker (`java`), and the machine's idle time.
struct Cpu {
    punchctl: f64,
    postgres: f64,
    broker: f64,
    idle: f64,
}

impl Cpu {
    fn now() -> anyhow::Result<Self> {
        let ticks = 100.0; // USER_HZ on Linux
        let own = std::fs::read_to_string("/proc/self/stat")?;
        let own = stat_fields(&own);
        // Fields 16 and 17 (1-based): cutime, cstime of waited-for children.
        let children = field(&own, 16) + field(&own, 17);
        let (mut postgres, mut broker) = (0.0, 0.0);
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let comm = stat
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .map(|(comm, _)| comm.to_owned())
                .unwrap_or_default();
            let fields = stat_fields(&stat);
            let used = field(&fields, 14) + field(&fields, 15);
            if comm.starts_with("postgres") {
                // Plus reaped children: the postmaster's backends that ended (punchctl's).
                postgres += used + field(&fields, 16) + field(&fields, 17);
            } else if comm == "java" {
                broker += used;
            }
        }
        let idle = std::fs::read_to_string("/proc/stat")?
            .lines()
            .next()
            .and_then(|cpu| cpu.split_whitespace().nth(4))
            .and_then(|idle| idle.parse::<f64>().ok())
            .unwrap_or_default();
        Ok(Self {
            punchctl: children / ticks,
            postgres: postgres / ticks,
            broker: broker / ticks,
            idle: idle / ticks,
        })
    }

    fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            punchctl: self.punchctl - earlier.punchctl,
            postgres: self.postgres - earlier.postgres,
            broker: self.broker - earlier.broker,
            idle: self.idle - earlier.idle,
        }
    }
}

/// The fields of a `/proc/<pid>/stat` line, numbered from 1, with the command name (which may
/// hold spaces) as field 2.
fn stat_fields(stat: &str) -> Vec<String> {
    let (head, tail) = stat.rsplit_once(')').unwrap_or((stat, ""));
    let pid = head
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut fields = vec![String::new(), pid, "comm".to_owned()];
    fields.extend(tail.split_whitespace().map(str::to_owned));
    fields
}

fn field(fields: &[String], n: usize) -> f64 {
    fields
        .get(n)
        .and_then(|f| f.parse::<f64>().ok())
        .unwrap_or_default()
}
