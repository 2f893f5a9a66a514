//! The baselines the consumer is compared with: the same punch rows inserted with no logic
//! (batched UNNEST inserts, one COPY).

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use dakoku_rules as rules;
use dakoku_schemas::CheckedPunch;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::args::Args;

/// The baselines: the same rows, same batches, same indexes, no logic.
pub(crate) async fn baselines(
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

/// The columns of a punch row, as the consumer writes them.
pub(crate) struct Rows {
    pub(crate) ids: Vec<uuid::Uuid>,
    pub(crate) tenants: Vec<String>,
    pub(crate) devices: Vec<String>,
    pub(crate) seqs: Vec<i64>,
    pub(crate) cards: Vec<String>,
    pub(crate) employees: Vec<String>,
    pub(crate) kinds: Vec<&'static str>,
    pub(crate) ats: Vec<chrono::DateTime<chrono::Utc>>,
    pub(crate) offsets: Vec<i32>,
    pub(crate) dates: Vec<NaiveDate>,
    pub(crate) received: Vec<chrono::DateTime<chrono::Utc>>,
}

pub(crate) fn rows(punches: &[CheckedPunch]) -> Rows {
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

pub(crate) async fn bare_insert(
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

pub(crate) async fn copy_insert(
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
