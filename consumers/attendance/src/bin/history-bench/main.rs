//! `history-bench`: the attendance consumer's cost per batch for an employee with a week of
//! history against one with a year of it. A batch recomputes the window of punches and work
//! dates its punches can affect (the engine's plan), not the employee's history, so the two
//! should cost about the same; a full recompute of the year is timed beside them to show what
//! the window saves.
//!
//! It drives the consumer's own store (`Store::apply`, one transaction per batch, exactly as
//! the service runs it) on a scratch database, without Kafka: the cost measured is Postgres
//! and the rules. Run (release, local stack):
//! `cargo run --release -p dakoku-attendance --bin history-bench`.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone as _, Utc};
use clap::Parser;
use dakoku_attendance::store::{Incoming, Store};
use dakoku_schemas::{
    CardId, CheckedPunch, DeviceId, EmployeeId, GroupId, PunchId, PunchKind, TenantId, Verdict,
};
use dakoku_store::ScratchDatabase;

/// Flags.
#[derive(Debug, Parser)]
#[command(name = "history-bench", version, about)]
struct Args {
    /// A Postgres URL whose role may create databases.
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Days of history of the long employee.
    #[arg(long, default_value_t = 365)]
    long_days: u32,
    /// Days of history of the short employee.
    #[arg(long, default_value_t = 7)]
    short_days: u32,
    /// Timed batches per employee (one late punch each).
    #[arg(long, default_value_t = 200)]
    batches: usize,
}

/// Makes the verdicts of one tenant's employees.
struct Punches {
    tenant: TenantId,
    group: GroupId,
    device: DeviceId,
    seq: u64,
}

impl Punches {
    fn accepted(&mut self, employee: &str, kind: PunchKind, at: DateTime<Utc>) -> CheckedPunch {
        self.seq += 1;
        let at = at.timestamp_millis();
        CheckedPunch {
            punch_id: PunchId::derive(&self.tenant, &self.device, self.seq),
            tenant_id: self.tenant.clone(),
            group: self.group.clone(),
            device_id: self.device.clone(),
            seq: self.seq,
            card_id: CardId::try_from(format!("C-{employee}")).expect("card"),
            kind,
            at,
            at_offset_minutes: 540,
            received_at: at,
            acceptor_id: "history-bench".into(),
            verdict: Verdict::Accepted,
            reason: None,
            employee_id: Some(EmployeeId::try_from(employee).expect("employee")),
            master_data_version: 1,
            checked_at: at + 1_000,
        }
    }

    /// A working day 09:00-18:00 (Tokyo) with a lunch break.
    fn day(&mut self, employee: &str, date: NaiveDate) -> Vec<CheckedPunch> {
        [
            (PunchKind::ClockIn, 9, 0),
            (PunchKind::BreakStart, 12, 0),
            (PunchKind::BreakEnd, 13, 0),
            (PunchKind::ClockOut, 18, 0),
        ]
        .into_iter()
        .map(|(kind, h, m)| self.accepted(employee, kind, tokyo(date, h, m)))
        .collect()
    }
}

fn tokyo(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(hour, minute, 0).expect("time");
    chrono_tz::Asia::Tokyo
        .from_local_datetime(&date.and_time(time))
        .single()
        .expect("Tokyo has no gaps")
        .with_timezone(&Utc)
}

/// Feeds verdicts as records of partition 0.
struct Feed {
    offset: i64,
}

impl Feed {
    fn records(&mut self, verdicts: Vec<CheckedPunch>) -> Vec<Incoming> {
        verdicts
            .into_iter()
            .map(|verdict| {
                self.offset += 1;
                Incoming {
                    partition: 0,
                    offset: self.offset - 1,
                    verdict: Some(verdict),
                }
            })
            .collect()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let suffix = format!("{:08x}", rand::random::<u32>());
    let db =
        ScratchDatabase::create(&args.database_url, &format!("dakoku_history_{suffix}")).await?;
    let result = run(&args, db.url(), &suffix).await;
    db.drop(Duration::from_secs(300)).await?;
    result
}

async fn run(args: &Args, url: &str, suffix: &str) -> anyhow::Result<()> {
    let group: GroupId = format!("hist-{suffix}").parse()?;
    let tenant: TenantId = "history".parse()?;
    let client = dakoku_store::connect(url).await?;
    client
        .execute(
            "INSERT INTO tenant_groups (group_id) VALUES ($1)",
            &[&group.as_str()],
        )
        .await?;
    client
        .execute(
            "INSERT INTO tenants (tenant_id, name, group_id) VALUES ($1, 'History', $2)",
            &[&tenant.as_str(), &group.as_str()],
        )
        .await?;
    let mut store = Store::connect(url, &group, Duration::from_secs(120)).await?;
    let mut punches = Punches {
        tenant,
        group: group.clone(),
        device: "PT-1".parse()?,
        seq: 0,
    };
    let mut feed = Feed { offset: 0 };
    let first = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    let days = |n: u32| (0..n).map(move |d| first + chrono::Days::new(u64::from(d)));
    let mut history = Vec::new();
    for date in days(args.long_days) {
        history.extend(punches.day("E-long", date));
    }
    for date in days(args.short_days) {
        history.extend(punches.day("E-short", date));
    }
    let loading = Instant::now();
    for chunk in history.chunks(2_000) {
        store
            .apply(&feed.records(chunk.to_vec()), None, Utc::now())
            .await?;
    }
    eprintln!(
        "history: {} punches ({} + {} days) in {:.1} s",
        history.len(),
        args.long_days,
        args.short_days,
        loading.elapsed().as_secs_f64()
    );

    let mut report = Vec::new();
    for (employee, span) in [("E-short", args.short_days), ("E-long", args.long_days)] {
        let mut took = Vec::with_capacity(args.batches);
        for i in 0..args.batches {
            // A late stray clock-in in the evening of a day in the middle of the history: it
            // changes that day (and its week and month), nothing else. Each a minute apart
            // from the last on its day, so none is a double tap.
            let date = first + chrono::Days::new(u64::from(span / 2) + (i as u64 % 3));
            let at = tokyo(date, 20, 0) + chrono::Duration::seconds(61 * i as i64);
            let late = punches.accepted(employee, PunchKind::ClockIn, at);
            let batch = feed.records(vec![late]);
            let started = Instant::now();
            let applied = store.apply(&batch, None, Utc::now()).await?;
            took.push(started.elapsed());
            anyhow::ensure!(
                applied.counts.days_changed > 0,
                "a late punch (batch {i} of {employee}) must change its day: {:?}",
                applied.counts
            );
        }
        took.sort();
        report.push((employee, span, took));
    }
    let started = Instant::now();
    let full = store
        .recompute(&[("history".to_owned(), "E-long".to_owned())], Utc::now())
        .await?;
    let full_took = started.elapsed();

    println!(
        "history-bench: one late punch per batch, {} batches per employee",
        args.batches
    );
    println!("| employee | history | median batch | p90 batch | mean batch |");
    println!("|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (employee, span, took) in &report {
        let median = took[took.len() / 2];
        let p90 = took[took.len() * 9 / 10];
        let mean = took.iter().sum::<Duration>() / took.len() as u32;
        medians.push(median);
        println!(
            "| {employee} | {span} days ({} punches) | {:.2} ms | {:.2} ms | {:.2} ms |",
            span * 4,
            ms(median),
            ms(p90),
            ms(mean)
        );
    }
    println!(
        "median batch, long / short history: {:.2}",
        ms(medians[1]) / ms(medians[0])
    );
    println!(
        "for reference, a full recompute of E-long ({} days): {:.2} ms ({} unchanged)",
        args.long_days,
        ms(full_took),
        full.unchanged
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
