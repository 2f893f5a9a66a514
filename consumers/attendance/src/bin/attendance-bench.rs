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

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{Datelike as _, NaiveDate, TimeZone as _};
use clap::Parser;
use dakoku_attendance::{Config, rules};
use dakoku_schemas::{
    CardId, CheckedPunch, ConsumerGroup, DeviceId, EmployeeId, GroupId, PunchId, PunchKind,
    TenantId, Topic, Verdict, checked_key, encode,
};
use dakoku_store::ScratchDatabase;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

/// How long dropping a round's database waits for autovacuum, which the round's hundreds of
/// thousands of fresh rows set to work and which `DROP DATABASE .. WITH (FORCE)` cannot end.
const DROP_WAIT: Duration = Duration::from_secs(5 * 60);

/// Measure the attendance consumer against a bare batched insert.
#[derive(Debug, Parser)]
#[command(name = "attendance-bench", version, about)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// A Postgres URL whose role may create databases.
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Employees (spread over 10 tenants).
    #[arg(long, default_value_t = 1_000)]
    employees: usize,
    /// Days of the month generated.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Extra records that are resends of earlier punches, as a share of the punches.
    #[arg(long, default_value_t = 0.28)]
    resend_ratio: f64,
    /// Partitions of the checked topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Records per batch (consumer) and rows per insert (bare).
    #[arg(long, default_value_t = 5_000)]
    batch_max_records: usize,
    /// Rounds; each round measures both, on a fresh database, so the comparison is paired.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Keep the last round's database and the topics afterwards.
    #[arg(long)]
    keep: bool,
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
    anyhow::ensure!(args.rounds >= 1, "--rounds must be at least 1");
    let suffix = format!("{:08x}", rand::random::<u32>());
    let group: GroupId = format!("bench-{suffix}").parse()?;
    let tenants: Vec<TenantId> = (0..10)
        .map(|i| format!("bench-tenant-{i}").parse())
        .collect::<Result<_, _>>()?;

    // Topics of our own, filled once; every round reads them from the start.
    let (admin, topics) = create_topics(&args, &group).await?;
    let started = Instant::now();
    let (records, distinct) = generate(&args, &group, &tenants)?;
    eprintln!(
        "generated {} records ({} distinct punches) in {:.1}s",
        records.len(),
        distinct.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    produce(&args, &group, &records).await?;
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
        let _ = admin.delete_topics(&names, &AdminOptions::new()).await;
    } else {
        eprintln!("kept topics of group {group}");
    }
    result?;
    report(&args, &rounds, records.len(), distinct.len());
    Ok(())
}

/// The bench's own checked and daily topics.
async fn create_topics(
    args: &Args,
    group: &GroupId,
) -> anyhow::Result<(AdminClient<DefaultClientContext>, [String; 2])> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .create()?;
    let topics = [
        Topic::Checked(group.clone()).name(),
        Topic::AttendanceDaily(group.clone()).name(),
    ];
    let new_topics = [
        NewTopic::new(&topics[0], args.partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&topics[1], args.partitions, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact"),
    ];
    for result in admin
        .create_topics(&new_topics, &AdminOptions::new())
        .await?
    {
        result.map_err(|(topic, e)| anyhow::anyhow!("creating {topic}: {e}"))?;
    }
    Ok((admin, topics))
}

/// One round's timings.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// Bare UNNEST insert of every record (ON CONFLICT DO NOTHING for resends), batched.
    bare: Duration,
    /// Bare UNNEST insert of the distinct rows only, batched.
    bare_distinct: Duration,
    /// One COPY of the distinct rows.
    copy: Duration,
    /// Consumer: first commit to last commit.
    steady: Duration,
    /// Records committed by the first batch (not in `steady`).
    first_records: i64,
    /// Consumer: start (including the group join) to last commit.
    wall: Duration,
    /// Attendance days written.
    days: i64,
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
    let mut config = Config::new(&args.brokers, db_url, vec![group.clone()]);
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
        let committed: i64 = db
            .query_one(
                "SELECT COALESCE(sum(next_offset), 0)::bigint FROM consumer_offsets \
                 WHERE consumer_group = $1",
                &[&consumer_group],
            )
            .await?
            .get(0);
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

/// The baselines: the same rows, same batches, same indexes, no logic.
async fn baselines(
    args: &Args,
    db: &mut tokio_postgres::Client,
    records: &[CheckedPunch],
    distinct: &[CheckedPunch],
) -> anyhow::Result<(Duration, Duration, Duration)> {
    db.batch_execute(
        "CREATE TABLE bench_bare_punches (LIKE punches INCLUDING ALL); \
         CREATE TABLE bench_distinct_punches (LIKE punches INCLUDING ALL); \
         CREATE TABLE bench_copy_punches (LIKE punches INCLUDING ALL);",
    )
    .await?;
    let bare = bare_insert(db, "bench_bare_punches", records, args.batch_max_records).await?;
    let bare_distinct = bare_insert(
        db,
        "bench_distinct_punches",
        distinct,
        args.batch_max_records,
    )
    .await?;
    let copy = copy_insert(db, distinct).await?;
    db.batch_execute("DROP TABLE bench_bare_punches, bench_distinct_punches, bench_copy_punches")
        .await?;

    Ok((bare, bare_distinct, copy))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One round's rates.
#[derive(Debug, Clone, Copy)]
struct Rates {
    /// Consumer, steady, records per second.
    consumer: f64,
    /// Bare insert of every record, per second.
    bare: f64,
    /// Bare insert of the distinct rows, per second.
    distinct: f64,
    /// COPY of the distinct rows, per second.
    copy: f64,
    /// Consumer including start-up, records per second.
    wall: f64,
    /// consumer / bare.
    ratio: f64,
}

fn report(args: &Args, rounds: &[Round], records: usize, distinct: usize) {
    let rate = |n: f64, d: Duration| n / d.as_secs_f64();
    let records_f = records as f64;
    let per_round: Vec<Rates> = rounds
        .iter()
        .map(|r| {
            let consumer = rate((records as i64 - r.first_records) as f64, r.steady);
            let bare = rate(records_f, r.bare);
            Rates {
                consumer,
                bare,
                distinct: rate(distinct as f64, r.bare_distinct),
                copy: rate(distinct as f64, r.copy),
                wall: rate(records_f, r.wall),
                ratio: consumer / bare,
            }
        })
        .collect();
    let col = |f: fn(&Rates) -> f64| median(per_round.iter().map(f).collect());
    println!(
        "attendance-bench ({} rounds, medians; per round below)",
        rounds.len()
    );
    println!(
        "  input: {records} records on {} partitions = {distinct} distinct punches + {} resends; \
         {} employees x {} days -> {} attendance days; batches of {}",
        args.partitions,
        records - distinct,
        args.employees,
        args.days,
        rounds.first().map_or(0, |r| r.days),
        args.batch_max_records
    );
    println!(
        "  attendance, topic -> committed days (steady):  {:>8.0} punches/s",
        col(|r| r.consumer)
    );
    println!(
        "  bare batched insert of the same records:      {:>8.0} punches/s  \
         (UNNEST, {} rows/tx, ON CONFLICT DO NOTHING for resends)",
        col(|r| r.bare),
        args.batch_max_records
    );
    println!(
        "  ratio attendance / bare (median of rounds):    {:>8.2}    (goal >= 0.5)",
        col(|r| r.ratio)
    );
    println!("  references:");
    println!(
        "    bare batched insert, distinct rows only:     {:>8.0} rows/s",
        col(|r| r.distinct)
    );
    println!(
        "    one COPY of the distinct rows:               {:>8.0} rows/s",
        col(|r| r.copy)
    );
    println!(
        "    attendance incl. start-up and group join:    {:>8.0} punches/s",
        col(|r| r.wall)
    );
    for (i, (r, m)) in rounds.iter().zip(&per_round).enumerate() {
        println!(
            "  round {}: attendance {:.0}/s (steady {:.2}s, wall {:.2}s), bare {:.0}/s ({:.2}s), \
             ratio {:.2}; distinct {:.2}s, COPY {:.2}s",
            i + 1,
            m.consumer,
            r.steady.as_secs_f64(),
            r.wall.as_secs_f64(),
            m.bare,
            r.bare.as_secs_f64(),
            m.ratio,
            r.bare_distinct.as_secs_f64(),
            r.copy.as_secs_f64()
        );
    }
}

/// A month of punches: `(all records in arrival order, distinct punches)`.
fn generate(
    args: &Args,
    group: &GroupId,
    tenants: &[TenantId],
) -> anyhow::Result<(Vec<CheckedPunch>, Vec<CheckedPunch>)> {
    let mut rng = StdRng::seed_from_u64(42);
    let tz = rules::DEFAULT_TIME_ZONE;
    let start = NaiveDate::from_ymd_opt(2020, 12, 1).context("date")?;
    let mut distinct = Vec::new();
    let mut seqs = vec![0u64; tenants.len()];
    let device: DeviceId = "PT-000001".parse()?;
    for e in 0..args.employees {
        let t = e % tenants.len();
        let tenant = &tenants[t];
        let employee: EmployeeId = format!("E{e:05}").parse()?;
        let card: CardId = format!("C{e:08}").parse()?;
        for d in 0..args.days {
            let date = start + chrono::Duration::days(i64::from(d));
            if date.weekday() == chrono::Weekday::Sun {
                continue;
            }
            let mut at = |h: u32, m: u32| -> anyhow::Result<i64> {
                let local = date
                    .and_hms_opt(h, m, rng.random_range(0..60))
                    .context("time")?;
                Ok(tz
                    .from_local_datetime(&local)
                    .earliest()
                    .context("local")?
                    .timestamp_millis())
            };
            let day = [
                (PunchKind::ClockIn, at(8, 45)?),
                (PunchKind::BreakStart, at(10, 30)?),
                (PunchKind::BreakEnd, at(10, 45)?),
                (PunchKind::BreakStart, at(12, 0)?),
                (PunchKind::BreakEnd, at(13, 0)?),
                (PunchKind::ClockOut, at(18, 30)?),
            ];
            for (kind, at) in day {
                seqs[t] += 1;
                let seq = seqs[t];
                distinct.push(CheckedPunch {
                    punch_id: PunchId::derive(tenant, &device, seq),
                    tenant_id: tenant.clone(),
                    group: group.clone(),
                    device_id: device.clone(),
                    seq,
                    card_id: card.clone(),
                    kind,
                    at,
                    at_offset_minutes: 540,
                    received_at: at + 500,
                    acceptor_id: "bench".into(),
                    verdict: Verdict::Accepted,
                    reason: None,
                    employee_id: Some(employee.clone()),
                    master_data_version: 1,
                    checked_at: at + 1_000,
                });
            }
        }
    }
    // Arrival: roughly in time order (recorders upload as they go), resends sprinkled in.
    distinct.sort_by_key(|p| (p.at, p.seq));
    // Each record gets an arrival position: its own index for the originals, a little later
    // for a resend (up to ~2,000 records later, as a recorder retrying).
    let mut arrivals: Vec<(usize, CheckedPunch)> = distinct.iter().cloned().enumerate().collect();
    let resends = (distinct.len() as f64 * args.resend_ratio) as usize;
    for i in 0..resends {
        let j = rng.random_range(0..distinct.len());
        let mut copy = distinct[j].clone();
        copy.received_at += 60_000;
        copy.checked_at += 60_000 + i as i64;
        arrivals.push((j + rng.random_range(1..2_000), copy));
    }
    arrivals.sort_by_key(|(position, _)| *position);
    let mut records: Vec<CheckedPunch> = arrivals.into_iter().map(|(_, p)| p).collect();
    // A little disorder within each minute of uploads.
    for chunk in records.chunks_mut(64) {
        chunk.shuffle(&mut rng);
    }
    Ok((records, distinct))
}

async fn produce(args: &Args, group: &GroupId, records: &[CheckedPunch]) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let topic = Topic::Checked(group.clone()).name();
    for chunk in records.chunks(20_000) {
        let mut deliveries = Vec::with_capacity(chunk.len());
        for v in chunk {
            let key = checked_key(&v.tenant_id, v.employee_id.as_ref(), &v.card_id);
            let payload = encode(v)?;
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            match producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((error, _)) => anyhow::bail!("produce: {error}"),
            }
        }
        for delivery in futures::future::join_all(deliveries).await {
            delivery
                .map_err(|_| anyhow::anyhow!("delivery dropped"))?
                .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
        }
    }
    Ok(())
}

/// The columns of a punch row, as the consumer writes them.
struct Rows {
    ids: Vec<uuid::Uuid>,
    tenants: Vec<String>,
    devices: Vec<String>,
    seqs: Vec<i64>,
    cards: Vec<String>,
    employees: Vec<String>,
    kinds: Vec<&'static str>,
    ats: Vec<chrono::DateTime<chrono::Utc>>,
    offsets: Vec<i32>,
    dates: Vec<NaiveDate>,
    received: Vec<chrono::DateTime<chrono::Utc>>,
}

fn rows(punches: &[CheckedPunch]) -> Rows {
    let time = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    Rows {
        ids: punches.iter().map(|p| *p.punch_id.as_uuid()).collect(),
        tenants: punches.iter().map(|p| p.tenant_id.to_string()).collect(),
        devices: punches.iter().map(|p| p.device_id.to_string()).collect(),
        seqs: punches.iter().map(|p| p.seq as i64).collect(),
        cards: punches.iter().map(|p| p.card_id.to_string()).collect(),
        employees: punches
            .iter()
            .map(|p| {
                p.employee_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
            .collect(),
        kinds: punches.iter().map(|p| p.kind.as_str()).collect(),
        ats: punches.iter().map(|p| time(p.at)).collect(),
        offsets: punches.iter().map(|p| p.at_offset_minutes).collect(),
        dates: punches
            .iter()
            .map(|p| rules::work_date(p.at, rules::DEFAULT_TIME_ZONE, rules::DEFAULT_DAY_CHANGE))
            .collect(),
        received: punches.iter().map(|p| time(p.received_at)).collect(),
    }
}

async fn bare_insert(
    db: &mut tokio_postgres::Client,
    table: &str,
    punches: &[CheckedPunch],
    batch: usize,
) -> anyhow::Result<Duration> {
    let statement = db
        .prepare(&format!(
            "INSERT INTO {table} (punch_id, tenant_id, group_id, device_id, seq, \
             card_id, employee_id, kind, at, at_offset_minutes, work_date, received_at, \
             master_data_version, source_topic, source_partition, source_offset) \
             SELECT u.id, u.t, 'bench', u.d, u.s, u.c, u.e, u.k, u.at, u.o, u.wd, u.r, 1, \
             'bench', 0, 0 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], \
             $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::int[], $10::date[], \
             $11::timestamptz[]) AS u(id, t, d, s, c, e, k, at, o, wd, r) \
             ON CONFLICT DO NOTHING"
        ))
        .await?;
    let started = Instant::now();
    for chunk in punches.chunks(batch) {
        let r = rows(chunk);
        let tx = db.transaction().await?;
        tx.execute(
            &statement,
            &[
                &r.ids,
                &r.tenants,
                &r.devices,
                &r.seqs,
                &r.cards,
                &r.employees,
                &r.kinds,
                &r.ats,
                &r.offsets,
                &r.dates,
                &r.received,
            ],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

async fn copy_insert(
    db: &mut tokio_postgres::Client,
    punches: &[CheckedPunch],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let tx = db.transaction().await?;
    let sink = tx
        .copy_in(
            "COPY bench_copy_punches (punch_id, tenant_id, group_id, device_id, seq, card_id, \
             employee_id, kind, at, at_offset_minutes, work_date, received_at, \
             master_data_version, source_topic, source_partition, source_offset) \
             FROM STDIN BINARY",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::UUID,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::INT4,
            Type::DATE,
            Type::TIMESTAMPTZ,
            Type::INT8,
            Type::TEXT,
            Type::INT4,
            Type::INT8,
        ],
    );
    let mut writer = std::pin::pin!(writer);
    let r = rows(punches);
    for i in 0..punches.len() {
        writer
            .as_mut()
            .write(&[
                &r.ids[i],
                &r.tenants[i],
                &"bench",
                &r.devices[i],
                &r.seqs[i],
                &r.cards[i],
                &r.employees[i],
                &r.kinds[i],
                &r.ats[i],
                &r.offsets[i],
                &r.dates[i],
                &r.received[i],
                &1i64,
                &"bench",
                &0i32,
                &0i64,
            ])
            .await?;
    }
    writer.as_mut().finish().await?;
    tx.commit().await?;
    Ok(started.elapsed())
}
