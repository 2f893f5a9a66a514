//! The input: a month of checked punches with resends, produced to the checked topic.

use anyhow::Context as _;
use chrono::{Datelike as _, NaiveDate, TimeZone as _};
use dakoku_kafka::{ClientFactory, FutureProducer};
use dakoku_rules as rules;
use dakoku_schemas::{
    CardId, CheckedPunch, DeviceId, EmployeeId, GroupId, PunchId, PunchKind, TenantId, Topic,
    Verdict, checked_key, encode,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use rdkafka::producer::FutureRecord;

use crate::args::Args;

/// A month of punches: `(all records in arrival order, distinct punches)`.
pub(crate) fn generate(
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

pub(crate) async fn produce(
    kafka: &ClientFactory,
    group: &GroupId,
    records: &[CheckedPunch],
) -> anyhow::Result<()> {
    let producer: FutureProducer = kafka
        .idempotent_producer("attendance-bench")
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
