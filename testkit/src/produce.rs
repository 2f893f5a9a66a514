//! Producing to the stack's topics as the services would: raw punches keyed
//! `<tenant>/<device>`, verdicts keyed as licence-check keys them, and arbitrary bytes (poison).

use std::time::Duration;

use anyhow::Context as _;
use dakoku_kafka::FutureProducer;
use dakoku_kafka::rdkafka::producer::FutureRecord;
use dakoku_schemas::{CheckedPunch, GroupId, RawPunch, Topic, checked_key, encode, raw_key};

use crate::stack::Stack;

/// An idempotent producer (every in-sync replica acknowledges) lingering 5 ms.
pub fn producer(stack: &Stack) -> anyhow::Result<FutureProducer> {
    Ok(stack
        .kafka()
        .idempotent_producer("dakoku-testkit")
        .set("linger.ms", "5")
        .create()?)
}

/// Produces `punches` to `group`'s raw topic, keyed `<tenant>/<device>`, in order, and waits
/// for every delivery report.
pub async fn produce_raw(
    stack: &Stack,
    group: &GroupId,
    punches: &[RawPunch],
) -> anyhow::Result<()> {
    let producer = producer(stack)?;
    let topic = Topic::Raw(group.clone()).name();
    let mut deliveries = Vec::with_capacity(punches.len());
    for punch in punches {
        let key = raw_key(&punch.tenant_id, &punch.device_id);
        let payload = encode(punch)?;
        let delivery = producer
            .send_result(FutureRecord::to(&topic).key(&key).payload(&payload))
            .map_err(|(e, _)| e)?;
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        delivery
            .await
            .context("producer dropped")?
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// Produces `punches` to `group`'s raw topic, keyed `<tenant>/<device>`, every record with the
/// timestamp `at_millis`, and waits for every delivery.
pub async fn produce_raw_at(
    stack: &Stack,
    group: &GroupId,
    punches: &[RawPunch],
    at_millis: i64,
) -> anyhow::Result<()> {
    let producer = producer(stack)?;
    let topic = Topic::Raw(group.clone()).name();
    let records = punches
        .iter()
        .map(|p| Ok((raw_key(&p.tenant_id, &p.device_id), encode(p)?)))
        .collect::<anyhow::Result<Vec<(String, Vec<u8>)>>>()?;
    let deliveries: Vec<_> = records
        .iter()
        .map(|(key, payload)| {
            let record = FutureRecord::to(&topic)
                .key(key)
                .payload(payload)
                .timestamp(at_millis);
            producer.send(record, Duration::from_secs(30))
        })
        .collect();
    for delivery in futures::future::join_all(deliveries).await {
        delivery.map_err(|(error, _)| anyhow::anyhow!("produce to {topic}: {error}"))?;
    }
    Ok(())
}

/// Produces one record with arbitrary bytes (or no value) to `topic`, returning its partition
/// and offset.
pub async fn produce_bytes(
    stack: &Stack,
    topic: &str,
    key: &str,
    payload: Option<&[u8]>,
) -> anyhow::Result<(i32, i64)> {
    let producer = producer(stack)?;
    let mut record = FutureRecord::<str, [u8]>::to(topic).key(key);
    if let Some(payload) = payload {
        record = record.payload(payload);
    }
    let delivered = producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)?;
    Ok((delivered.partition, delivered.offset))
}

/// Produces `verdicts` to the group's checked topic, keyed `<tenant>/<employee or card>` as
/// licence-check keys them, and waits until Kafka has all of them.
pub async fn produce_checked(
    stack: &Stack,
    group: &GroupId,
    verdicts: &[CheckedPunch],
) -> anyhow::Result<()> {
    let producer = producer(stack)?;
    let topic = Topic::Checked(group.clone()).name();
    let records: Vec<(String, Vec<u8>)> = verdicts
        .iter()
        .map(|v| {
            Ok((
                checked_key(&v.tenant_id, v.employee_id.as_ref(), &v.card_id),
                encode(v)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    produce_records(&producer, &topic, &records).await
}

/// Produces raw `(key, payload)` records to `topic` and waits for every delivery.
pub async fn produce_records(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let mut deliveries = Vec::with_capacity(records.len());
    for (key, payload) in records {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        deliveries.push(producer.send(record, Duration::from_secs(30)));
    }
    for delivery in futures::future::join_all(deliveries).await {
        delivery.map_err(|(error, _)| anyhow::anyhow!("produce to {topic}: {error}"))?;
    }
    Ok(())
}
