//! `corrections-bench`: what corrections cost the attendance consumer against the same number
//! of late punches. 1,000 employees with a month of history each; then 10,000 corrections (two
//! added punches, a second break, on five days of each employee) applied as the consumer
//! applies them (`Store::apply_corrections`, chunks of 2,000), then 1,000 voids of adds; and,
//! for the ratio, 10,000 late punches of the same shape on five other days through the
//! consumer's batch (`Store::apply`, batches of 2,000). It reports corrections per second, the
//! days and months each recomputed, and checks that every corrected day says so.
//!
//! Drives the consumer's store on a scratch database without Kafka. Run (release, local stack):
//! `cargo run --release -p dakoku-attendance --bin corrections-bench`.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone as _, Utc};
use clap::Parser;
use dakoku_attendance::store::{Incoming, IncomingCorrection, Store};
use dakoku_schemas::{
    CardId, CheckedPunch, Correction, DeviceId, EmployeeId, GroupId, PunchId, PunchKind, TenantId,
    Verdict,
};
use dakoku_store::ScratchDatabase;

/// Flags.
#[derive(Debug, Parser)]
#[command(name = "corrections-bench", version, about)]
struct Args {
    /// A Postgres URL whose role may create databases.
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Employees.
    #[arg(long, default_value_t = 1_000)]
    employees: usize,
    /// Days of history per employee (working days 09:00-18:00 with a lunch break).
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Days per employee that get a second break by correction (two adds each), and as many
    /// other days that get one by late punches.
    #[arg(long, default_value_t = 5)]
    corrected_days: u32,
}

const CHUNK: usize = 2_000;

struct Maker {
    tenant: TenantId,
    group: GroupId,
    device: DeviceId,
    seq: u64,
    offset: i64,
    correction_offset: i64,
}

fn tokyo(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(hour, minute, 0).expect("time");
    chrono_tz::Asia::Tokyo
        .from_local_datetime(&date.and_time(time))
        .single()
        .expect("Tokyo has no gaps")
        .with_timezone(&Utc)
}

fn employee(i: usize) -> EmployeeId {
    EmployeeId::try_from(format!("E{i:05}")).expect("employee")
}

impl Maker {
    fn punch(&mut self, who: &EmployeeId, kind: PunchKind, at: DateTime<Utc>) -> Incoming {
        self.seq += 1;
        self.offset += 1;
        let at = at.timestamp_millis();
        Incoming {
            partition: 0,
            offset: self.offset - 1,
            verdict: Some(CheckedPunch {
                punch_id: PunchId::derive(&self.tenant, &self.device, self.seq),
                tenant_id: self.tenant.clone(),
                group: self.group.clone(),
                device_id: self.device.clone(),
                seq: self.seq,
                card_id: CardId::try_from(format!("C-{who}")).expect("card"),
                kind,
                at,
                at_offset_minutes: 540,
                received_at: at,
                acceptor_id: "corrections-bench".into(),
                verdict: Verdict::Accepted,
                reason: None,
                employee_id: Some(who.clone()),
                master_data_version: 1,
                checked_at: at + 1_000,
            }),
        }
    }

    fn correction(&mut self, correction: Correction) -> IncomingCorrection {
        self.correction_offset += 1;
        IncomingCorrection {
            partition: 0,
            offset: self.correction_offset - 1,
            correction: Some(correction),
        }
    }

    fn add(&mut self, who: &EmployeeId, kind: PunchKind, at: DateTime<Utc>) -> IncomingCorrection {
        let add = Correction::add(
            PunchId::random(),
            self.tenant.clone(),
            who.clone(),
            kind,
            at.timestamp_millis(),
            "bench:admin".into(),
            "second break, not punched".into(),
            at.timestamp_millis(),
        );
        self.correction(add)
    }
}

/// What one phase did.
struct Phase {
    name: &'static str,
    records: usize,
    took: Duration,
    days: u64,
    months: u64,
    /// Days and months recomputed and found unchanged (not written).
    unchanged: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let suffix = format!("{:08x}", rand::random::<u32>());
    let db = ScratchDatabase::create(&args.database_url, &format!("dakoku_corr_{suffix}")).await?;
    let result = run(&args, db.url(), &suffix).await;
    db.drop(Duration::from_secs(300)).await?;
    result
}

async fn run(args: &Args, url: &str, suffix: &str) -> anyhow::Result<()> {
    let group: GroupId = format!("corr-{suffix}").parse()?;
    let tenant: TenantId = "bench".parse()?;
    let client = dakoku_store::connect(url).await?;
    client
        .execute(
            "INSERT INTO tenant_groups (group_id) VALUES ($1)",
            &[&group.as_str()],
        )
        .await?;
    client
        .execute(
            "INSERT INTO tenants (tenant_id, name, group_id) VALUES ($1, 'Bench', $2)",
            &[&tenant.as_str(), &group.as_str()],
        )
        .await?;
    let mut store = Store::connect(url, &group, Duration::from_secs(300)).await?;
    let mut maker = Maker {
        tenant,
        group,
        device: "PT-1".parse()?,
        seq: 0,
        offset: 0,
        correction_offset: 0,
    };
    let first = NaiveDate::from_ymd_opt(2026, 10, 1).expect("date");
    let date = |d: u32| first + chrono::Days::new(u64::from(d));
    let employees: Vec<EmployeeId> = (0..args.employees).map(employee).collect();

    load_history(&mut store, &mut maker, &employees, args.days, date).await?;

    let mut phases = Vec::new();
    // Corrections: a second break 15:00-15:15 on the first `corrected_days` days.
    let mut adds = Vec::new();
    for who in &employees {
        for d in 0..args.corrected_days {
            adds.push(maker.add(who, PunchKind::BreakStart, tokyo(date(d), 15, 0)));
            adds.push(maker.add(who, PunchKind::BreakEnd, tokyo(date(d), 15, 15)));
        }
    }
    phases.push(apply_corrections(&mut store, "corrections: adds", &adds).await?);
    // Voids: each employee's first added break start (its day gets an unclosed break).
    let voids: Vec<IncomingCorrection> = adds
        .iter()
        .step_by(2 * args.corrected_days as usize)
        .filter_map(|r| r.correction.clone())
        .map(|add| {
            let void = Correction::void(
                PunchId::random(),
                add.tenant_id.clone(),
                add.employee_id.clone(),
                add.correction_id,
                "bench:admin".into(),
                "entered twice".into(),
                add.created_at,
            );
            maker.correction(void)
        })
        .collect();
    phases.push(apply_corrections(&mut store, "corrections: voids", &voids).await?);
    // Late punches of the same shape on the next `corrected_days` days, for the ratio.
    let mut late = Vec::new();
    for who in &employees {
        for d in args.corrected_days..2 * args.corrected_days {
            late.push(maker.punch(who, PunchKind::BreakStart, tokyo(date(d), 15, 0)));
            late.push(maker.punch(who, PunchKind::BreakEnd, tokyo(date(d), 15, 15)));
        }
    }
    let started = Instant::now();
    let (mut days, mut months, mut unchanged) = (0, 0, 0);
    for chunk in late.chunks(CHUNK) {
        let applied = store.apply(chunk, None, Utc::now()).await?;
        days += applied.counts.days_changed;
        months += applied.counts.months_changed;
        unchanged += applied.counts.days_unchanged;
    }
    phases.push(Phase {
        name: "late punches (reference)",
        records: late.len(),
        took: started.elapsed(),
        days,
        months,
        unchanged,
    });

    // Every corrected day says so and lists its corrections.
    let corrected: i64 = client
        .query_one(
            "SELECT count(*) FROM attendance_days WHERE corrected AND cardinality(correction_ids) > 0",
            &[],
        )
        .await?
        .get(0);
    let want = (args.employees * args.corrected_days as usize) as i64;
    anyhow::ensure!(corrected == want, "{corrected} corrected days, want {want}");
    let stored: i64 = client
        .query_one("SELECT count(*) FROM corrections", &[])
        .await?
        .get(0);
    anyhow::ensure!(
        stored as usize == adds.len() + voids.len(),
        "{stored} stored"
    );

    report(args, &phases, adds.len(), voids.len(), corrected);
    Ok(())
}

/// Prints the table.
fn report(args: &Args, phases: &[Phase], adds: usize, voids: usize, corrected: i64) {
    println!(
        "corrections-bench: {} employees x {} days of history, {} corrections + {} voids",
        args.employees, args.days, adds, voids
    );
    println!(
        "| phase | records | seconds | records/s | days changed | months changed | recomputed, unchanged |"
    );
    println!("|---|---|---|---|---|---|---|");
    for p in phases {
        println!(
            "| {} | {} | {:.2} | {:.0} | {} | {} | {} |",
            p.name,
            p.records,
            p.took.as_secs_f64(),
            rate(p),
            p.days,
            p.months,
            p.unchanged
        );
    }
    println!(
        "corrections / late punches, records per second: {:.2}",
        rate(&phases[0]) / rate(&phases[2])
    );
    println!("corrected days checked: {corrected}");
}

/// Stores a month of working days per employee, day by day as a log holds them.
async fn load_history(
    store: &mut Store,
    maker: &mut Maker,
    employees: &[EmployeeId],
    days: u32,
    date: impl Fn(u32) -> NaiveDate,
) -> anyhow::Result<()> {
    // The month of history, day by day as a log holds it.
    let mut history = Vec::new();
    for d in 0..days {
        for who in employees {
            for (kind, h, m) in [
                (PunchKind::ClockIn, 9, 0),
                (PunchKind::BreakStart, 12, 0),
                (PunchKind::BreakEnd, 13, 0),
                (PunchKind::ClockOut, 18, 0),
            ] {
                let punch = maker.punch(who, kind, tokyo(date(d), h, m));
                history.push(punch);
            }
        }
    }
    let loading = Instant::now();
    for chunk in history.chunks(CHUNK) {
        store.apply(chunk, None, Utc::now()).await?;
    }
    eprintln!(
        "history: {} punches in {:.1} s",
        history.len(),
        loading.elapsed().as_secs_f64()
    );

    Ok(())
}

fn rate(p: &Phase) -> f64 {
    p.records as f64 / p.took.as_secs_f64()
}

async fn apply_corrections(
    store: &mut Store,
    name: &'static str,
    records: &[IncomingCorrection],
) -> anyhow::Result<Phase> {
    let started = Instant::now();
    let (mut days, mut months, mut unchanged) = (0, 0, 0);
    for chunk in records.chunks(CHUNK) {
        let applied = store.apply_corrections(chunk, None, Utc::now()).await?;
        anyhow::ensure!(
            applied.counts.stored == chunk.len() as u64,
            "{name}: stored {} of {}",
            applied.counts.stored,
            chunk.len()
        );
        days += applied.counts.days_changed;
        months += applied.counts.months_changed;
        unchanged += applied.counts.days_unchanged;
    }
    Ok(Phase {
        name,
        records: records.len(),
        took: started.elapsed(),
        days,
        months,
        unchanged,
    })
}
