//! Fixtures for licence-check tests: master data through `punchctl`'s code, raw punches (and
//! poison) produced straight to `punches.raw.<group>`, an in-process licence-check service,
//! and readers of the transactional output.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDate};
use dakoku_licence_check::{Config, GroupState, Service};
use dakoku_schemas::{
    CheckedPunch, GroupId, PunchId, PunchKind, QuarantinedInput, RawPunch, Topic, decode, encode,
    raw_key,
};
use punchctl::licence::{self, LicenceTerms, Moment, NewEmployee};
use punchctl::master::{self, NewTenant};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::{Stack, TestDatabase, eventually, unique_suffix};

/// Adds `tenant` in `group` (Asia/Tokyo, day change 05:00) with a licence of `seats` seats
/// valid on the given work dates (`None` = open).
pub async fn seed_tenant(
    db: &TestDatabase,
    tenant: &str,
    group: &GroupId,
    seats: u32,
    valid_from: Option<NaiveDate>,
    valid_until: Option<NaiveDate>,
) -> anyhow::Result<()> {
    let mut client = db.client().await?;
    master::add_tenant(
        &mut client,
        &NewTenant::with_defaults(tenant.parse()?, tenant, group.clone()),
    )
    .await?;
    licence::set_licence(
        &mut client,
        &tenant.parse()?,
        LicenceTerms {
            seats,
            valid_from,
            valid_until,
        },
    )
    .await?;
    Ok(())
}

/// Adds an employee with `card`; `active_until` is RFC 3339 or a date.
pub async fn seed_employee(
    db: &TestDatabase,
    tenant: &str,
    employee: &str,
    card: &str,
    licensed: bool,
    active_until: Option<&str>,
) -> anyhow::Result<()> {
    let mut client = db.client().await?;
    licence::add_employee(
        &mut client,
        &NewEmployee {
            tenant: tenant.parse()?,
            employee: employee.parse()?,
            card: card.parse()?,
            name: String::new(),
            active_from: None,
            active_until: active_until.map(Moment::parse).transpose()?,
            licensed,
        },
    )
    .await?;
    Ok(())
}

/// The current master-data version.
pub async fn master_data_version(db: &TestDatabase) -> anyhow::Result<i64> {
    Ok(master::master_data_version(&db.client().await?).await?)
}

/// A raw punch of `tenant`/`device` with `seq`, `card` and `at` (RFC 3339), as the acceptor
/// would have written it to `group`'s topic.
pub fn raw_punch(
    group: &GroupId,
    tenant: &str,
    device: &str,
    seq: u64,
    card: &str,
    at: &str,
) -> anyhow::Result<RawPunch> {
    let tenant = tenant.parse()?;
    let device = device.parse()?;
    let (at, at_offset_minutes) = RawPunch::at_fields(DateTime::parse_from_rfc3339(at)?);
    Ok(RawPunch {
        punch_id: PunchId::derive(&tenant, &device, seq),
        tenant_id: tenant,
        group: group.clone(),
        device_id: device,
        seq,
        card_id: card.parse()?,
        kind: PunchKind::ClockIn,
        at,
        at_offset_minutes,
        received_at: at,
        acceptor_id: "test".into(),
    })
}

fn producer(stack: &Stack) -> anyhow::Result<FutureProducer> {
    Ok(stack
        .kafka_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
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

/// Test-friendly settings: short batches, polls and timeouts, an ephemeral metrics port, and
/// an instance id of its own.
pub fn test_config(stack: &Stack, db: &TestDatabase, groups: &[GroupId]) -> Config {
    let mut config = Config::new(&stack.brokers, &db.url, groups);
    config.instance_id = Some(format!("test-{}", unique_suffix()));
    config.batch_max_ms = 100;
    config.snapshot_poll_ms = 500;
    config.transaction_timeout_ms = 20_000;
    config.kafka_op_timeout_ms = 10_000;
    config.session_timeout_ms = 10_000;
    config.shutdown_timeout_ms = 5_000;
    config
}

/// A licence-check service running in this process.
#[derive(Debug)]
pub struct TestLicenceCheck {
    /// The service (until stopped).
    pub service: Service,
    /// `http://127.0.0.1:<port>` of its `/metrics`, `/healthz` and `/readyz`.
    pub base_url: String,
}

impl TestLicenceCheck {
    /// Starts `config` and waits until every group consumes.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let groups = config.groups.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let service = Service::start(config, listener)?;
        let base_url = format!("http://{}", service.local_addr());
        let this = Self { service, base_url };
        for group in &groups {
            this.wait_for(group, "running", |s| matches!(s, GroupState::Running))
                .await?;
        }
        Ok(this)
    }

    /// Waits until `group`'s state satisfies `pred`.
    pub async fn wait_for(
        &self,
        group: &GroupId,
        what: &str,
        pred: impl Fn(&GroupState) -> bool,
    ) -> anyhow::Result<GroupState> {
        eventually(
            &format!("group {group} {what}"),
            Duration::from_secs(30),
            || {
                let state = self.service.group_state(group);
                let hit = state.filter(|s| pred(s));
                async move { Ok(hit) }
            },
        )
        .await
    }

    /// `GET <path>`: status and body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.base_url)).await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// Shuts down (commits open transactions) and returns what the service returned.
    pub async fn stop(self) -> Result<(), dakoku_licence_check::RunError> {
        self.service.stop().await
    }
}

/// Records of `topic` read from the beginning to the current end, as a consumer with
/// `isolation` (`read_committed` or `read_uncommitted`) sees them: (partition, key, value).
pub async fn read_to_end(
    stack: &Stack,
    topic: &str,
    isolation: &str,
) -> anyhow::Result<Vec<(i32, String, Option<Vec<u8>>)>> {
    let stack = stack.clone();
    let topic = topic.to_owned();
    let isolation = isolation.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = stack
            .kafka_config()
            .set("group.id", format!("e2e-end-{}", unique_suffix()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", &isolation)
            .create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let mut open: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if open.is_empty() {
            bail!("topic {topic} has no partitions");
        }
        // The end at call time; the position of a read_committed reader moves past
        // transaction markers, so it reaches the end even while transactions keep coming
        // (partition EOF may not).
        let mut ends = HashMap::new();
        let mut assignment = TopicPartitionList::new();
        for partition in &open {
            let (_, high) =
                consumer.fetch_watermarks(&topic, *partition, Duration::from_secs(10))?;
            ends.insert(*partition, high);
            assignment.add_partition_offset(&topic, *partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut records = Vec::new();
        while !open.is_empty() {
            if std::time::Instant::now() > deadline {
                bail!("reading {topic} to its end took over 60 s");
            }
            for element in consumer.position()?.elements() {
                if let (Offset::Offset(position), Some(end)) =
                    (element.offset(), ends.get(&element.partition()))
                    && position >= *end
                {
                    open.retain(|p| *p != element.partition());
                }
            }
            if open.is_empty() {
                break;
            }
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => open.retain(|x| *x != p),
                Some(Err(error)) => return Err(error.into()),
                Some(Ok(message)) => records.push((
                    message.partition(),
                    String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    message.payload().map(<[u8]>::to_vec),
                )),
            }
        }
        Ok(records)
    })
    .await?
}

/// The committed verdicts of `group` (read_committed, to the current end), keyed.
pub async fn verdicts(
    stack: &Stack,
    group: &GroupId,
) -> anyhow::Result<Vec<(String, CheckedPunch)>> {
    read_to_end(
        stack,
        &Topic::Checked(group.clone()).name(),
        "read_committed",
    )
    .await?
    .into_iter()
    .map(|(_, key, payload)| {
        let payload = payload.context("a verdict without a value")?;
        Ok((key, decode::<CheckedPunch>(&payload)?))
    })
    .collect()
}

/// Waits until `group` has at least `n` committed verdicts and returns them all.
pub async fn wait_for_verdicts(
    stack: &Stack,
    group: &GroupId,
    n: usize,
) -> anyhow::Result<Vec<(String, CheckedPunch)>> {
    eventually(
        &format!("{n} verdicts in punches.checked.{group}"),
        Duration::from_secs(60),
        || async move {
            let found = verdicts(stack, group).await?;
            Ok((found.len() >= n).then_some(found))
        },
    )
    .await
}

/// The committed quarantine records that came from `origin_topic`.
pub async fn quarantined_from(
    stack: &Stack,
    origin_topic: &str,
) -> anyhow::Result<Vec<QuarantinedInput>> {
    Ok(
        read_to_end(stack, &Topic::Quarantine.name(), "read_committed")
            .await?
            .into_iter()
            .filter_map(|(_, _, payload)| decode::<QuarantinedInput>(&payload?).ok())
            .filter(|q| q.origin_topic.as_deref() == Some(origin_topic))
            .collect(),
    )
}

/// The next offset committed by `consumer_group` on each partition of `topic` (absent when
/// nothing is committed).
pub async fn committed_offsets(
    stack: &Stack,
    consumer_group: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<HashMap<i32, i64>> {
    let stack = stack.clone();
    let consumer_group = consumer_group.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = stack
            .kafka_config()
            .set("group.id", &consumer_group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut tpl = TopicPartitionList::new();
        for partition in 0..partitions {
            tpl.add_partition(&topic, partition);
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    })
    .await?
}
