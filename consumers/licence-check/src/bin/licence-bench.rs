//! `licence-bench`: verdicts per second of the real licence-check loop against a transactional
//! pass-through of the same loop (copying records without decoding or checking), on the local
//! stack, in the same run. The goal is a ratio of at least 0.7: the check itself nearly free.
//!
//! It creates a database of its own (seeded with tenants, licences and employees) and one
//! tenant group per measured run, pre-produces the raw records of every run before measuring
//! anything, then runs the modes alternately, each in-process with its own consumer group and
//! output topic. Rates count from the first record read to the last commit, so group joins
//! and start-up are not measured. Everything it created is deleted at the end.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use dakoku_kafka::{Admin, FutureProducer, KafkaArgs, TopicSpec};
use dakoku_licence_check::{Config, Mode, Service};
use dakoku_schemas::{GroupId, PunchId, PunchKind, RawPunch, Topic, encode, raw_key};
use dakoku_store::ScratchDatabase;
use rdkafka::producer::{FutureRecord, Producer as _};

/// How long dropping the bench's database waits for autovacuum, which the seeded employees
/// (50,000 by default) can set to work and which `DROP DATABASE .. WITH (FORCE)` cannot end.
const DROP_WAIT: Duration = Duration::from_secs(2 * 60);

/// How long a topic creation or deletion may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Measure licence-check against a transactional pass-through on the local stack.
#[derive(Debug, Parser)]
#[command(name = "licence-bench", version, about)]
struct Cli {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// A Postgres URL whose role may create databases; the bench makes its own and drops it.
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    database_url: String,
    /// Raw records per run.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Runs of each mode, alternating (check, passthrough, check, ...).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Partitions of each raw and checked topic.
    #[arg(long, default_value_t = 2)]
    partitions: i32,
    /// Tenants in the master data.
    #[arg(long, default_value_t = 50)]
    tenants: usize,
    /// Employees per tenant.
    #[arg(long, default_value_t = 1_000)]
    employees: usize,
    /// Records per transaction (the service's --batch-max-records).
    #[arg(long, default_value_t = 5_000)]
    batch_max_records: usize,
    /// Longest transaction, ms (the service's --batch-max-ms).
    #[arg(long, default_value_t = 250)]
    batch_max_ms: u64,
}

#[derive(Debug, Clone)]
struct Measured {
    mode: Mode,
    records: u64,
    seconds: f64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let suffix = format!("{:08x}", rand::random::<u32>());
    let db = ScratchDatabase::create(&cli.database_url, &format!("dakoku_bench_{suffix}")).await?;
    let result = bench(&cli, &db, &suffix).await;
    db.drop(DROP_WAIT).await?;
    let runs = result?;
    report(&cli, &runs)
}

async fn bench(cli: &Cli, db: &ScratchDatabase, suffix: &str) -> anyhow::Result<Vec<Measured>> {
    seed(db, cli).await?;
    let admin = Admin::new(&cli.kafka.factory()?, "licence-bench", ADMIN_TIMEOUT)?;
    let modes: Vec<Mode> = (0..cli.rounds)
        .flat_map(|_| [Mode::Check, Mode::Passthrough])
        .collect();
    let groups: Vec<GroupId> = (0..modes.len())
        .map(|i| format!("bench-{suffix}-{i}").parse())
        .collect::<Result<_, _>>()?;
    let topics: Vec<String> = groups
        .iter()
        .flat_map(|g| {
            [
                Topic::Raw(g.clone()).name(),
                Topic::Checked(g.clone()).name(),
            ]
        })
        .collect();
    create_topics(&admin, &topics, cli.partitions).await?;
    let outcome = async {
        let payloads = raw_records(cli, &groups[0]);
        for group in &groups {
            let started = Instant::now();
            produce(cli, group, &payloads).await?;
            eprintln!(
                "produced {} raw records to {} in {:.1} s",
                cli.records,
                Topic::Raw(group.clone()),
                started.elapsed().as_secs_f64()
            );
        }
        in_memory(db, &payloads).await?;
        let mut runs = Vec::new();
        for (mode, group) in modes.iter().zip(&groups) {
            let run = measure(cli, db, group, *mode, suffix).await?;
            eprintln!(
                "{:<11} {} records in {:.2} s: {:.0}/s",
                format!("{:?}", run.mode).to_lowercase(),
                run.records,
                run.seconds,
                run.rate()
            );
            runs.push(run);
        }
        anyhow::Ok(runs)
    }
    .await;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    admin.delete_topics(&names).await?;
    outcome
}

/// The check's own cost, without Kafka: decode, check and encode every record in memory on
/// one thread, against the bench's master data.
async fn in_memory(db: &ScratchDatabase, payloads: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let mut client = dakoku_store::connect(db.url()).await?;
    let snapshot = dakoku_licence_check::Snapshot::load(&mut client).await?;
    let started = Instant::now();
    let mut buf = Vec::with_capacity(512);
    let mut accepted = 0usize;
    for (_, payload) in payloads {
        let raw: RawPunch = dakoku_schemas::decode(payload)?;
        let decision = dakoku_licence_check::check(&raw, &snapshot);
        let key = dakoku_schemas::checked_key(&raw.tenant_id, decision.employee, &raw.card_id);
        accepted += usize::from(decision.reason.is_none());
        let checked = decision.apply(raw, snapshot.version, 0);
        buf.clear();
        dakoku_schemas::encode_into(&checked, &mut buf)?;
        std::hint::black_box((&key, &buf));
    }
    let elapsed = started.elapsed();
    eprintln!(
        "in memory (decode + check + encode, one thread): {} records in {:.2} s, {:.2} us/record, {:.0}/s; {:.1}% accepted",
        payloads.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / payloads.len() as f64,
        payloads.len() as f64 / elapsed.as_secs_f64(),
        accepted as f64 * 100.0 / payloads.len() as f64
    );
    Ok(())
}

async fn measure(
    cli: &Cli,
    db: &ScratchDatabase,
    group: &GroupId,
    mode: Mode,
    suffix: &str,
) -> anyhow::Result<Measured> {
    // Every check run judges each punch for the first time (and stores its verdict): the runs
    // share punch ids, so the previous run's stored verdicts are cleared.
    dakoku_store::connect(db.url())
        .await?
        .batch_execute("TRUNCATE punch_verdicts")
        .await?;
    let mut config = Config::new(&cli.kafka.brokers, db.url(), std::slice::from_ref(group));
    config.kafka = cli.kafka.clone();
    config.mode = mode;
    config.instance_id = Some(format!("bench-{suffix}"));
    config.batch_max_records = cli.batch_max_records;
    config.batch_max_ms = cli.batch_max_ms;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let service = Service::start(config, listener)?;
    let target = cli.records as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    let stats = loop {
        let shared = service.group(group).context("the group")?;
        if shared.stats.records_committed.load(Ordering::Relaxed) >= target {
            break shared;
        }
        if let Some(dakoku_licence_check::GroupState::Failed(error)) = service.group_state(group) {
            bail!("the {mode:?} run failed: {error}");
        }
        if Instant::now() > deadline {
            bail!("the {mode:?} run did not finish within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let first = *stats.stats.first_record_at.get().context("first record")?;
    let last = stats
        .stats
        .last_commit_at
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .context("last commit")?;
    let records = stats.stats.records_committed.load(Ordering::Relaxed);
    let aborted = stats.stats.transactions_aborted.load(Ordering::Relaxed);
    if aborted > 0 {
        eprintln!("note: {aborted} transactions aborted during the {mode:?} run");
    }
    service.stop().await?;
    Ok(Measured {
        mode,
        records,
        seconds: (last - first).as_secs_f64(),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[allow(clippy::print_stdout)]
fn report(cli: &Cli, runs: &[Measured]) -> anyhow::Result<()> {
    let rates = |mode| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.mode == mode)
            .map(Measured::rate)
            .collect()
    };
    let check = median(rates(Mode::Check));
    let pass = median(rates(Mode::Passthrough));
    let ratio = check / pass;
    println!(
        "licence-bench: {} records per run, {} partitions, {} tenants x {} employees, batches of {} records / {} ms, {} rounds",
        cli.records,
        cli.partitions,
        cli.tenants,
        cli.employees,
        cli.batch_max_records,
        cli.batch_max_ms,
        cli.rounds
    );
    println!("| mode | run | records | seconds | records/s |");
    println!("|---|---|---|---|---|");
    for (i, run) in runs.iter().enumerate() {
        println!(
            "| {} | {} | {} | {:.2} | {:.0} |",
            format!("{:?}", run.mode).to_lowercase(),
            i / 2 + 1,
            run.records,
            run.seconds,
            run.rate()
        );
    }
    println!(
        "median: check {check:.0}/s, passthrough {pass:.0}/s, ratio {ratio:.2} (goal >= 0.70: {})",
        if ratio >= 0.7 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// Raw records: punches of every tenant from 50 recorders; 96% of the cards are registered,
/// licensed and active employees, the rest exercise each rejection.
fn raw_records(cli: &Cli, group: &GroupId) -> Vec<(String, Vec<u8>)> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-02T08:30:00+09:00")
        .expect("valid time")
        .timestamp_millis();
    (0..cli.records)
        .map(|i| {
            let tenant = format!("bt-{}", i % cli.tenants);
            let device = format!("PT-{:03}", i % 50);
            let employee = (i / cli.tenants) % cli.employees;
            let card = if i % 50 == 7 {
                format!("UNKNOWN{i:08}")
            } else {
                format!("C{employee:08}")
            };
            let tenant = tenant.parse().expect("valid tenant");
            let device = device.parse().expect("valid device");
            let at = base + (i as i64 % 86_400) * 1_000;
            let punch = RawPunch {
                punch_id: PunchId::derive(&tenant, &device, i as u64),
                group: group.clone(),
                seq: i as u64,
                card_id: card.parse().expect("valid card"),
                kind: PunchKind::ALL[i % 4],
                at,
                at_offset_minutes: 540,
                received_at: at + 150,
                acceptor_id: "bench".into(),
                tenant_id: tenant,
                device_id: device,
            };
            (
                raw_key(&punch.tenant_id, &punch.device_id),
                encode(&punch).expect("bench punches encode"),
            )
        })
        .collect()
}

async fn produce(cli: &Cli, group: &GroupId, records: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let producer: FutureProducer = cli
        .kafka
        .factory()?
        .idempotent_producer("licence-bench")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let topic = Topic::Raw(group.clone()).name();
    let mut pending = Vec::with_capacity(10_000);
    for (key, payload) in records {
        let delivery = producer
            .send_result(FutureRecord::to(&topic).key(key).payload(payload))
            .map_err(|(e, _)| e)?;
        pending.push(delivery);
        if pending.len() == 10_000 {
            for delivery in pending.drain(..) {
                delivery.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

async fn create_topics(admin: &Admin, names: &[String], partitions: i32) -> anyhow::Result<()> {
    let spec = |name: &str, partitions| TopicSpec {
        name: name.to_owned(),
        partitions,
        replication_factor: 1,
        configs: Vec::new(),
    };
    let topics: Vec<TopicSpec> = names.iter().map(|name| spec(name, partitions)).collect();
    admin.create_topics(&topics).await?;
    // The quarantine topic is shared and normally exists; create it if this is a fresh stack.
    let _ = admin
        .create_topics(&[spec(&Topic::Quarantine.name(), 1)])
        .await;
    Ok(())
}

/// Tenants with licences bounded in time (so every punch's work date is computed), and
/// employees of whom 2% left, 2% hold no seat.
async fn seed(db: &ScratchDatabase, cli: &Cli) -> anyhow::Result<()> {
    let client = dakoku_store::connect(db.url()).await?;
    let tenants = i32::try_from(cli.tenants)?;
    let employees = i32::try_from(cli.employees)?;
    client
        .batch_execute("INSERT INTO tenant_groups (group_id) VALUES ('bench')")
        .await?;
    client
        .execute(
            "INSERT INTO tenants (tenant_id, name, group_id)
             SELECT 'bt-' || t, 'bench', 'bench' FROM generate_series(0, $1 - 1) t",
            &[&tenants],
        )
        .await?;
    client
        .execute(
            "INSERT INTO tenant_licences (tenant_id, seats, valid_from, valid_until)
             SELECT 'bt-' || t, $2, DATE '2020-01-01', DATE '2030-12-31'
             FROM generate_series(0, $1 - 1) t",
            &[&tenants, &employees],
        )
        .await?;
    client
        .execute(
            "INSERT INTO employees (tenant_id, employee_id, card_id)
             SELECT 'bt-' || t, 'E-' || e, 'C' || lpad(e::text, 8, '0')
             FROM generate_series(0, $1 - 1) t, generate_series(0, $2 - 1) e",
            &[&tenants, &employees],
        )
        .await?;
    client
        .execute(
            "INSERT INTO employee_ranges (tenant_id, employee_id, active_until)
             SELECT 'bt-' || t, 'E-' || e, CASE WHEN e % 50 = 3 THEN TIMESTAMPTZ '2021-01-01' END
             FROM generate_series(0, $1 - 1) t, generate_series(0, $2 - 1) e",
            &[&tenants, &employees],
        )
        .await?;
    // Most employees hold one grant; every tenth has a revocation recorded later, from a
    // date after the punches, so the check scans two rows.
    client
        .execute(
            "INSERT INTO licence_grants (tenant_id, employee_id, granted, valid_from)
             SELECT 'bt-' || t, 'E-' || e, true, '-infinity'
             FROM generate_series(0, $1 - 1) t, generate_series(0, $2 - 1) e
             WHERE e % 50 <> 5
             UNION ALL
             SELECT 'bt-' || t, 'E-' || e, false, TIMESTAMPTZ '2031-01-01'
             FROM generate_series(0, $1 - 1) t, generate_series(0, $2 - 1) e
             WHERE e % 10 = 1",
            &[&tenants, &employees],
        )
        .await?;
    Ok(())
}
