//! Smoke test of the foundation on the real stack: topics created by `punchctl`'s code, a
//! `RawPunch` produced with the acceptor's durability settings, consumed and decoded; the
//! Postgres schema migrated and answering.

use std::time::Duration;

use anyhow::Context as _;
use dakoku_kafka::LogContext;
use dakoku_kafka::rdkafka::Message as _;
use dakoku_kafka::rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use dakoku_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use dakoku_kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use dakoku_schemas::{
    CardId, DeviceId, PunchId, PunchKind, RawPunch, TenantId, Topic, decode, encode, raw_key,
};
use dakoku_testkit::{Stack, TestDatabase, TestGroup, eventually};
use punchctl::topics::{Outcome, TopicSettings, Topics};

const DEADLINE: Duration = Duration::from_secs(30);

fn sample_punch(group: &dakoku_schemas::GroupId, seq: u64) -> anyhow::Result<RawPunch> {
    let tenant: TenantId = "acme".parse()?;
    let device: DeviceId = "PT-000123".parse()?;
    let at = chrono::DateTime::parse_from_rfc3339("2020-12-04T08:44:59+09:00")?;
    let (at, at_offset_minutes) = RawPunch::at_fields(at);
    Ok(RawPunch {
        punch_id: PunchId::derive(&tenant, &device, seq),
        tenant_id: tenant,
        group: group.clone(),
        device_id: device,
        seq,
        card_id: "01010312A40B5C2D".parse::<CardId>()?,
        kind: PunchKind::ClockIn,
        at,
        at_offset_minutes,
        received_at: 1_607_039_100_123,
        acceptor_id: "smoke-test".into(),
    })
}

#[tokio::test]
async fn raw_punch_round_trips_through_the_real_broker() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let topic = Topic::Raw(group.group.clone()).name();

    // The acceptor's producer settings: nothing is acked before every in-sync replica has it.
    let producer: FutureProducer<LogContext> = stack
        .kafka()
        .client("smoke")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "10000")
        .create()?;
    let punches: Vec<RawPunch> = (1..=3)
        .map(|seq| sample_punch(&group.group, seq))
        .collect::<anyhow::Result<_>>()?;
    for punch in &punches {
        let key = raw_key(&punch.tenant_id, &punch.device_id);
        let payload = encode(punch)?;
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .context("delivery report")?;
    }

    let consumer: StreamConsumer<LogContext> = stack
        .kafka()
        .client("smoke")
        .set(
            "group.id",
            format!("smoke-{}", dakoku_testkit::unique_suffix()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    consumer.subscribe(&[&topic])?;
    let mut received = Vec::new();
    while received.len() < punches.len() {
        let message = tokio::time::timeout(DEADLINE, consumer.recv())
            .await
            .context("timed out waiting for the produced punches")??;
        let key = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
        let value: RawPunch = decode(message.payload().context("a record without a value")?)?;
        received.push((key, value));
    }
    received.sort_by_key(|(_, punch)| punch.seq);
    for ((key, got), sent) in received.iter().zip(&punches) {
        assert_eq!(got, sent, "decoded punch differs from the one produced");
        assert_eq!(key, "acme/PT-000123", "raw topic key is <tenant>/<device>");
    }
    // Same device, so same key, so one partition, so the recorder's order is kept.
    assert!(received.windows(2).all(|w| w[0].1.seq < w[1].1.seq));

    group.delete_topics().await
}

#[tokio::test]
async fn topics_are_created_once_with_the_contract_configuration() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let topics = Topics::connect(&stack.brokers)?;

    // A second creation changes nothing and says so.
    let again = topics
        .create_for_group(&group.group, &TopicSettings::default())
        .await?;
    assert_eq!(
        again.len(),
        6,
        "raw, checked, attendance.daily, payroll.monthly, corrections and quarantine"
    );
    for (topic, outcome) in &again {
        match (topic, outcome) {
            (Topic::Quarantine, Outcome::Exists { .. }) => {}
            (_, Outcome::Exists { partitions }) => assert_eq!(*partitions, 2, "{topic:?}"),
            (_, Outcome::Created) => panic!("{topic:?} was created twice"),
        }
    }
    let listed = topics.list()?;
    for topic in Topic::for_group(&group.group) {
        assert!(
            listed.iter().any(|(t, n)| *t == topic && *n == 2),
            "{} missing from {listed:?}",
            topic.name()
        );
    }

    let admin: AdminClient<LogContext> = stack.kafka().client("smoke").create()?;
    let raw = Topic::Raw(group.group.clone()).name();
    let daily = Topic::AttendanceDaily(group.group.clone()).name();
    let monthly = Topic::PayrollMonthly(group.group.clone()).name();
    let corrections = Topic::Corrections(group.group.clone()).name();
    let described = admin
        .describe_configs(
            &[
                ResourceSpecifier::Topic(&raw),
                ResourceSpecifier::Topic(&daily),
                ResourceSpecifier::Topic(&monthly),
                ResourceSpecifier::Topic(&corrections),
            ],
            &AdminOptions::new(),
        )
        .await?;
    let value = |i: usize, key: &str| -> anyhow::Result<Option<String>> {
        let resource = described[i]
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(resource.get(key).and_then(|entry| entry.value.clone()))
    };
    assert_eq!(value(0, "cleanup.policy")?.as_deref(), Some("delete"));
    assert_eq!(value(0, "retention.ms")?.as_deref(), Some("-1"));
    assert_eq!(value(1, "cleanup.policy")?.as_deref(), Some("compact"));
    assert_eq!(value(2, "cleanup.policy")?.as_deref(), Some("compact"));
    assert_eq!(value(3, "cleanup.policy")?.as_deref(), Some("delete"));
    assert_eq!(
        value(3, "retention.ms")?.as_deref(),
        Some("-1"),
        "corrections are kept"
    );

    group.delete_topics().await
}

#[tokio::test]
async fn migrations_apply_once_and_master_data_changes_bump_the_version() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let db = TestDatabase::create(&stack).await?;
    let mut client = db.client().await?;

    // Already migrated by TestDatabase: a second run applies nothing.
    let again = dakoku_store::migrate(&mut client).await?;
    assert!(again.applied.is_empty(), "re-applied {:?}", again.applied);
    // The newest migration file is the version the database must be at.
    let newest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../store/migrations"))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_prefix('V')?
                .split("__")
                .next()?
                .parse::<i32>()
                .ok()
        })
        .max();
    assert!(
        newest.is_some_and(|v| v >= 2),
        "migrations found: {newest:?}"
    );
    assert_eq!(again.current_version, newest);

    let version = |row: tokio_postgres::Row| -> i64 { row.get(0) };
    let before = version(
        client
            .query_one("SELECT version FROM master_data_version", &[])
            .await?,
    );
    client
        .batch_execute(
            "INSERT INTO tenant_groups (group_id) VALUES ('g1');
             INSERT INTO tenants (tenant_id, name, group_id) VALUES ('acme', 'ACME', 'g1');",
        )
        .await?;
    let row = client
        .query_one(
            "SELECT group_id, time_zone, day_change_time::text FROM tenants WHERE tenant_id = $1",
            &[&"acme"],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "g1");
    assert_eq!(
        row.get::<_, String>(1),
        "Asia/Tokyo",
        "contract default zone"
    );
    assert_eq!(
        row.get::<_, String>(2),
        "05:00:00",
        "contract default day change"
    );
    let after = version(
        client
            .query_one("SELECT version FROM master_data_version", &[])
            .await?,
    );
    assert_eq!(after, before + 2, "one bump per changing statement");

    // The schema refuses what the contract forbids.
    let bad_group = client
        .execute(
            "INSERT INTO tenant_groups (group_id) VALUES ('Bad_Group')",
            &[],
        )
        .await;
    assert!(bad_group.is_err(), "group ids are [a-z0-9-]{{1,32}}");

    drop(client);
    db.drop_db().await
}

#[tokio::test]
async fn eventually_gives_up_at_its_deadline() {
    let result: anyhow::Result<()> = eventually(
        "a condition that never holds",
        Duration::from_millis(300),
        || async { Ok(None) },
    )
    .await;
    let error = result.expect_err("must time out");
    assert!(error.to_string().contains("timed out"), "{error}");
}
