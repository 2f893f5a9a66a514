//! `ingest-api` end to end on the real broker and Postgres (CONTRACT §1-2): what is acked is
//! in Kafka and decodes to what was sent; every refusal has its documented status; operator
//! controls take effect without restart; budgets hold; shutdown loses no acked punch.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dakoku_e2e::acceptor::TestAcceptor;
use dakoku_schemas::{PunchId, PunchKind, QuarantinedInput, RawPunch, Topic, decode};
use dakoku_testkit::read::{Record, read_topic};
use dakoku_testkit::{Stack, TenantSeed, TestDatabase, TestGroup, eventually, unique_suffix};
use serde_json::{Value, json};

/// One test's world: its own topics, database, tenant and device, and an acceptor.
struct World {
    stack: Stack,
    group: TestGroup,
    db: TestDatabase,
    tenant: String,
    device: String,
    acceptor: TestAcceptor,
}

impl World {
    async fn new(tweak: impl FnOnce(&mut dakoku_ingest_api::Config)) -> anyhow::Result<Self> {
        let stack = Stack::from_env();
        let group = TestGroup::create(&stack, 2).await?;
        let db = TestDatabase::create(&stack).await?;
        let tenant = format!("tenant-{}", unique_suffix());
        let device = "PT-000123".to_owned();
        TenantSeed::new(&tenant, &group.group)
            .device(&device)
            .seed(&db)
            .await?;
        let acceptor = TestAcceptor::start(&stack, &db, tweak).await?;
        Ok(Self {
            stack,
            group,
            db,
            tenant,
            device,
            acceptor,
        })
    }

    fn token(&self) -> anyhow::Result<String> {
        self.acceptor.token(&self.tenant, &self.device)
    }

    fn raw_topic(&self) -> String {
        Topic::Raw(self.group.group.clone()).name()
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.acceptor.stop().await?;
        self.db.drop_db().await?;
        self.group.delete_topics().await
    }

    /// Raw punches of this world's tenant, read until `n` distinct seqs are there.
    async fn raw_punches(&self, n: usize) -> anyhow::Result<Vec<(String, RawPunch)>> {
        let mut seqs = BTreeSet::new();
        let records = read_topic(
            &self.stack,
            &self.raw_topic(),
            Duration::from_secs(30),
            |r| {
                if let Ok(p) = decode::<RawPunch>(&r.payload) {
                    seqs.insert(p.seq);
                }
                seqs.len() >= n
            },
        )
        .await?;
        records
            .into_iter()
            .map(|r| Ok((r.key, decode::<RawPunch>(&r.payload)?)))
            .collect()
    }

    /// Quarantined inputs of this world's tenant, read until `n` are there.
    async fn quarantined(&self, n: usize) -> anyhow::Result<Vec<QuarantinedInput>> {
        let tenant = self.tenant.clone();
        let mine = move |r: &Record| -> Option<QuarantinedInput> {
            decode::<QuarantinedInput>(&r.payload)
                .ok()
                .filter(|q| q.tenant_id.as_deref() == Some(tenant.as_str()))
        };
        let mut found = 0;
        let records = read_topic(
            &self.stack,
            &Topic::Quarantine.name(),
            Duration::from_secs(30),
            |r| {
                found += usize::from(mine(r).is_some());
                found >= n
            },
        )
        .await?;
        Ok(records.iter().filter_map(mine).collect())
    }
}

fn punch(seq: u64, kind: &str, at: &str) -> Value {
    json!({"seq": seq, "card_id": "01010312A40B5C2D", "kind": kind, "at": at})
}

fn batch(device: &str, punches: Vec<Value>) -> Value {
    json!({"device_id": device, "punches": punches})
}

async fn status_and_body(response: reqwest::Response) -> anyhow::Result<(u16, Option<u32>, Value)> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = response.json::<Value>().await.context("JSON body")?;
    Ok((status, retry_after, body))
}

#[tokio::test]
async fn acked_punches_are_in_kafka_and_decode_to_what_was_sent() -> anyhow::Result<()> {
    let world = World::new(|_| {}).await?;
    let body = batch(
        &world.device,
        vec![
            punch(18211, "clock_in", "2020-12-04T08:44:59+09:00"),
            punch(18212, "break_start", "2020-12-04T12:00:00+09:00"),
            punch(18213, "break_end", "2020-12-04T12:45:30.250+09:00"),
            punch(18214, "clock_out", "2020-12-04T18:01:00-05:00"),
        ],
    );
    let (status, retry_after, receipt) =
        status_and_body(world.acceptor.post(&world.token()?, &body).await?).await?;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(retry_after, None, "a complete batch carries no Retry-After");
    assert_eq!(
        receipt,
        json!({"acked": [18211, 18212, 18213, 18214], "rejected": []})
    );

    let punches = world.raw_punches(4).await?;
    assert_eq!(
        punches.len(),
        4,
        "each acked punch exactly once in the topic"
    );
    let tenant = world.tenant.parse()?;
    let device = world.device.parse()?;
    for (key, p) in &punches {
        assert_eq!(key, &format!("{}/{}", world.tenant, world.device));
        assert_eq!(p.punch_id, PunchId::derive(&tenant, &device, p.seq));
        assert_eq!(p.tenant_id.as_str(), world.tenant);
        assert_eq!(p.group, world.group.group);
        assert_eq!(p.device_id.as_str(), world.device);
        assert_eq!(p.card_id.as_str(), "01010312A40B5C2D");
        assert_eq!(p.acceptor_id, "test-acceptor");
        assert!(p.received_at > 1_700_000_000_000, "received_at is now-ish");
    }
    let by_seq = |seq: u64| {
        punches
            .iter()
            .map(|(_, p)| p)
            .find(|p| p.seq == seq)
            .cloned()
    };
    let first = by_seq(18211).context("18211")?;
    assert_eq!(first.kind, PunchKind::ClockIn);
    assert_eq!(
        first.at, 1_607_039_099_000,
        "08:44:59+09:00 is 23:44:59Z the day before"
    );
    assert_eq!(first.at_offset_minutes, 540);
    let third = by_seq(18213).context("18213")?;
    assert_eq!(third.at % 1000, 250, "milliseconds kept");
    let last = by_seq(18214).context("18214")?;
    assert_eq!(
        (last.kind, last.at_offset_minutes),
        (PunchKind::ClockOut, -300)
    );
    world.finish().await
}

#[tokio::test]
async fn a_resent_batch_is_acked_again_with_the_same_punch_ids() -> anyhow::Result<()> {
    let world = World::new(|_| {}).await?;
    let body = batch(
        &world.device,
        vec![punch(7, "clock_in", "2020-12-04T08:00:00+09:00")],
    );
    for _ in 0..3 {
        let (status, _, receipt) =
            status_and_body(world.acceptor.post(&world.token()?, &body).await?).await?;
        assert_eq!(
            (status, receipt),
            (200, json!({"acked": [7], "rejected": []}))
        );
    }
    // The log may hold the resends; they share one punch_id, which is what makes them harmless.
    let mut count = 0;
    let records = read_topic(
        &world.stack,
        &world.raw_topic(),
        Duration::from_secs(30),
        |_| {
            count += 1;
            count >= 3
        },
    )
    .await?;
    let ids: BTreeSet<PunchId> = records
        .iter()
        .map(|r| decode::<RawPunch>(&r.payload).map(|p| p.punch_id))
        .collect::<Result<_, _>>()?;
    assert_eq!(ids.len(), 1, "three sends, one identity");
    world.finish().await
}

#[tokio::test]
async fn a_mixed_batch_acks_the_valid_and_quarantines_the_invalid() -> anyhow::Result<()> {
    let world = World::new(|_| {}).await?;
    let body = batch(
        &world.device,
        vec![
            punch(1, "clock_in", "2020-12-04T08:00:00+09:00"),
            punch(2, "clockin", "2020-12-04T08:00:01+09:00"),
            json!({"seq": 3, "card_id": "bad card!", "kind": "clock_out", "at": "2020-12-04T17:00:00+09:00"}),
            json!({"card_id": "C1", "kind": "clock_out", "at": "2020-12-04T17:00:00+09:00"}),
            json!({"seq": 5, "card_id": "C1", "kind": "clock_out", "at": "2020-12-04 17:00"}),
            punch(6, "clock_out", "2020-12-04T17:00:00+09:00"),
        ],
    );
    let (status, _, receipt) =
        status_and_body(world.acceptor.post(&world.token()?, &body).await?).await?;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["acked"], json!([1, 6]));
    let rejected = receipt["rejected"].as_array().context("rejected")?;
    assert_eq!(rejected.len(), 4);
    assert_eq!(rejected[0]["seq"], 2);
    assert_eq!(rejected[0]["index"], 1);
    assert!(
        rejected[0]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("kind: unknown value \"clockin\"")
    );
    assert!(
        rejected[1]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("card_id:")
    );
    assert_eq!(rejected[2]["seq"], Value::Null, "no usable seq");
    assert_eq!(rejected[2]["index"], 3);
    assert!(
        rejected[3]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("at:")
    );

    // Nothing a recorder sent is lost: each rejected item is in quarantine with its error.
    let quarantined = world.quarantined(4).await?;
    assert_eq!(quarantined.len(), 4);
    for q in &quarantined {
        assert_eq!(q.source, "ingest-api");
        assert_eq!(q.error_code, "invalid_punch");
        assert_eq!(q.device_id.as_deref(), Some(world.device.as_str()));
        let item: Value = serde_json::from_slice(&q.payload)?;
        assert!(
            body["punches"]
                .as_array()
                .context("punches")?
                .contains(&item),
            "{item}"
        );
    }
    assert!(
        quarantined
            .iter()
            .any(|q| q.error.starts_with("kind: unknown value"))
    );
    let acked = world.raw_punches(2).await?;
    assert_eq!(
        acked.iter().map(|(_, p)| p.seq).collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 6])
    );
    world.finish().await
}

#[tokio::test]
async fn every_refusal_has_its_documented_status_and_json_body() -> anyhow::Result<()> {
    let world = World::new(|c| {
        c.max_punches = 3;
        c.max_body_bytes = 4096;
        c.max_inflight_body_bytes = 4096;
    })
    .await?;
    let url = format!("{}/v1/punches", world.acceptor.base_url);
    let client = reqwest::Client::new();
    let good = batch(
        &world.device,
        vec![punch(1, "clock_in", "2020-12-04T08:00:00+09:00")],
    );
    let token = world.token()?;

    // (description, request, expected status, expected error code)
    let expired = world.acceptor.keys.mint(&dakoku_token::DeviceClaims {
        tenant: world.tenant.parse()?,
        device: world.device.parse()?,
        expires_at: chrono::Utc::now().timestamp() - 1,
    });
    let forger = dakoku_token::TokenKeys::parse(&dakoku_token::TokenKeys::generate_entry("test"))?;
    let forged = forger.mint(&dakoku_token::DeviceClaims {
        tenant: world.tenant.parse()?,
        device: world.device.parse()?,
        expires_at: chrono::Utc::now().timestamp() + 60,
    });
    let other_device = world.acceptor.token(&world.tenant, "PT-OTHER")?;
    let unknown_tenant = world.acceptor.token("no-such-tenant", &world.device)?;
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "no token",
            client.post(&url).json(&good),
            401,
            "missing_token",
        ),
        (
            "malformed token",
            client.post(&url).bearer_auth("garbage").json(&good),
            401,
            "invalid_token",
        ),
        (
            "forged token",
            client.post(&url).bearer_auth(&forged).json(&good),
            401,
            "invalid_token",
        ),
        (
            "expired token",
            client.post(&url).bearer_auth(&expired).json(&good),
            401,
            "token_expired",
        ),
        (
            "token of another device",
            client.post(&url).bearer_auth(&other_device).json(&good),
            403,
            "device_mismatch",
        ),
        (
            "unknown tenant",
            client.post(&url).bearer_auth(&unknown_tenant).json(&good),
            403,
            "unknown_tenant",
        ),
        (
            "wrong content type",
            client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "text/plain")
                .body(good.to_string()),
            415,
            "unsupported_media_type",
        ),
        (
            "too many punches",
            client.post(&url).bearer_auth(&token).json(&batch(
                &world.device,
                (1..=4)
                    .map(|s| punch(s, "clock_in", "2020-12-04T08:00:00+09:00"))
                    .collect(),
            )),
            413,
            "too_many_punches",
        ),
        (
            "body too large",
            client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"device_id\": \"{}\", \"punches\": [], \"pad\": \"{}\"}}",
                    world.device,
                    "x".repeat(5000)
                )),
            413,
            "body_too_large",
        ),
        (
            "not JSON",
            client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "bad_request",
        ),
        (
            "wrong shape",
            client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"device_id": world.device, "punches": "none"})),
            400,
            "bad_request",
        ),
    ];
    for (what, request, want_status, want_code) in cases {
        let response = request.send().await?;
        let (status, _, body) = status_and_body(response)
            .await
            .with_context(|| what.to_owned())?;
        assert_eq!(status, want_status, "{what}: {body}");
        assert_eq!(body["error"], want_code, "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }

    // The two 400 bodies were preserved in quarantine, byte for byte.
    let quarantined = world.quarantined(2).await?;
    let payloads: BTreeSet<Vec<u8>> = quarantined.iter().map(|q| q.payload.clone()).collect();
    assert!(payloads.contains(&b"{not json"[..]), "{quarantined:?}");
    assert!(quarantined.iter().all(|q| q.error_code == "invalid_body"));

    // Revocation arrives through the snapshot, without a restart.
    world
        .db
        .client()
        .await?
        .execute(
            "UPDATE devices SET revoked_at = now() WHERE tenant_id = $1 AND device_id = $2",
            &[&world.tenant, &world.device],
        )
        .await?;
    let acceptor = &world.acceptor;
    eventually("revocation applied", Duration::from_secs(10), || async {
        let (status, _, body) = status_and_body(acceptor.post(&token, &good).await?).await?;
        Ok((status == 403 && body["error"] == "device_revoked").then_some(()))
    })
    .await?;
    world.finish().await
}

#[tokio::test]
async fn a_device_over_its_rate_limit_gets_429_with_retry_after() -> anyhow::Result<()> {
    let world = World::new(|c| {
        c.device_rate_per_sec = 1;
        c.device_burst = 3;
    })
    .await?;
    let token = world.token()?;
    let body = batch(
        &world.device,
        vec![punch(1, "clock_in", "2020-12-04T08:00:00+09:00")],
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = world.acceptor.post(&token, &body).await?;
        let closes = response
            .headers()
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let (status, retry_after, body) = status_and_body(response).await?;
        if status == 429 {
            assert_eq!(body["error"], "rate_limited");
            let seconds = retry_after.context("429 without Retry-After")?;
            assert!((1..=3).contains(&seconds), "Retry-After {seconds}");
            // The recorder comes back later on a new connection rather than racing the
            // server's idle close on this one.
            assert!(closes, "a refusal with Retry-After ends the connection");
        } else {
            assert!(!closes, "an accepted batch keeps the connection");
        }
        statuses.push(status);
    }
    assert_eq!(
        &statuses[..3],
        &[200, 200, 200],
        "the burst passes: {statuses:?}"
    );
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    // Another device of the same tenant has its own bucket.
    TenantSeed::new(&world.tenant, &world.group.group)
        .device("PT-2")
        .seed(&world.db)
        .await?;
    let other = world.acceptor.token(&world.tenant, "PT-2")?;
    let (status, _, _) = status_and_body(
        world
            .acceptor
            .post(
                &other,
                &batch(
                    "PT-2",
                    vec![punch(1, "clock_in", "2020-12-04T08:00:00+09:00")],
                ),
            )
            .await?,
    )
    .await?;
    assert_eq!(status, 200);
    world.finish().await
}

#[tokio::test]
async fn pause_and_resume_take_effect_without_restart() -> anyhow::Result<()> {
    let world = World::new(|_| {}).await?;
    let token = world.token()?;
    let body = batch(
        &world.device,
        vec![punch(1, "clock_in", "2020-12-04T08:00:00+09:00")],
    );
    let admin = world.db.client().await?;
    let acceptor = &world.acceptor;
    for (scope, target) in [
        ("device", format!("{}/{}", world.tenant, world.device)),
        ("tenant", world.tenant.clone()),
        ("group", world.group.group.to_string()),
    ] {
        admin
            .execute(
                "INSERT INTO intake_pauses (scope, target, retry_after_seconds, reason) VALUES ($1, $2, 120, 'month-end check')",
                &[&scope, &target],
            )
            .await?;
        let started = Instant::now();
        let (retry_after, message) = eventually(
            &format!("{scope} pause applied"),
            Duration::from_secs(10),
            || async {
                let (status, retry_after, body) =
                    status_and_body(acceptor.post(&token, &body).await?).await?;
                Ok(
                    (status == 503 && body["error"] == "intake_paused").then(|| {
                        (
                            retry_after,
                            body["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    }),
                )
            },
        )
        .await?;
        let seconds = retry_after.context("pause without Retry-After")?;
        assert!(
            (120..=132).contains(&seconds),
            "operator's 120 s plus at most 10%: {seconds}"
        );
        assert!(
            message.contains(scope) && message.contains("month-end check"),
            "{message}"
        );
        tracing::info!(
            scope,
            ms = started.elapsed().as_millis() as u64,
            "pause took effect"
        );

        admin
            .execute(
                "DELETE FROM intake_pauses WHERE scope = $1 AND target = $2",
                &[&scope, &target],
            )
            .await?;
        eventually(
            &format!("{scope} resume applied"),
            Duration::from_secs(10),
            || async {
                let (status, _, _) = status_and_body(acceptor.post(&token, &body).await?).await?;
                Ok((status == 200).then_some(()))
            },
        )
        .await?;
    }
    world.finish().await
}

#[tokio::test]
async fn kafka_unreachable_means_503_with_retry_after_within_the_deadline_and_no_ack()
-> anyhow::Result<()> {
    let stack = Stack::from_env();
    let db = TestDatabase::create(&stack).await?;
    let tenant = format!("tenant-{}", unique_suffix());
    TenantSeed::new(&tenant, &"g-unreachable".parse()?)
        .seed(&db)
        .await?;
    let key = dakoku_token::TokenKeys::generate_entry("test");
    let mut config = dakoku_ingest_api::Config::new("127.0.0.1:1", &db.url, &key);
    config.message_timeout_ms = 1_500;
    config.body_read_timeout_ms = 1_000;
    config.request_deadline_ms = 4_000;
    config.kafka_check_ms = 60_000;
    let keys = dakoku_token::TokenKeys::parse(&key)?;
    let state = std::sync::Arc::new(dakoku_ingest_api::AppState::new(config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/punches", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dakoku_ingest_api::serve(
        std::sync::Arc::clone(&state),
        listener,
        async {
            let _ = rx.await;
        },
    ));
    let snapshot = std::sync::Arc::clone(state.snapshot());
    eventually("snapshot loaded", Duration::from_secs(10), || {
        let loaded = snapshot.get().is_some();
        async move { Ok(loaded.then_some(())) }
    })
    .await?;
    let token = keys.mint(&dakoku_token::DeviceClaims {
        tenant: tenant.parse()?,
        device: "PT-1".parse()?,
        expires_at: chrono::Utc::now().timestamp() + 60,
    });
    let body = batch(
        "PT-1",
        vec![punch(1, "clock_in", "2020-12-04T08:00:00+09:00")],
    );
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await?;
    let elapsed = started.elapsed();
    let (status, retry_after, body) = status_and_body(response).await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "log_unavailable");
    assert!(body.get("acked").is_none(), "nothing acked: {body}");
    assert!(
        retry_after.is_some_and(|s| (5..=10).contains(&s)),
        "{retry_after:?}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "answered within the deadline: {elapsed:?}"
    );

    // Once the reachability check has seen Kafka down, refusals are immediate.
    assert!(
        !state.check_kafka().await,
        "Kafka at 127.0.0.1:1 must be unreachable"
    );
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(30), server).await???;
    db.drop_db().await
}

#[tokio::test]
async fn postgres_gone_the_acceptor_serves_from_its_last_snapshot_and_says_so() -> anyhow::Result<()>
{
    let World {
        stack,
        group,
        db,
        tenant,
        device,
        acceptor,
    } = World::new(|_| {}).await?;
    let token = acceptor.token(&tenant, &device)?;
    let body = batch(
        &device,
        vec![punch(1, "clock_in", "2020-12-04T08:00:00+09:00")],
    );
    let readyz = || async {
        let response = reqwest::get(format!("{}/readyz", acceptor.base_url)).await?;
        let status = response.status().as_u16();
        anyhow::Ok((status, response.json::<Value>().await?))
    };
    let (status, ready) = readyz().await?;
    assert_eq!(
        (status, &ready["database_ok"]),
        (200, &json!(true)),
        "{ready}"
    );

    // The master data disappears under the acceptor (its connection is killed, and every
    // reconnect fails): nothing on the request path needs it.
    db.drop_db().await?;
    let ready = eventually(
        "readyz reports the database down",
        Duration::from_secs(15),
        || async {
            let (status, ready) = readyz().await?;
            Ok((ready["database_ok"] == json!(false)).then_some((status, ready)))
        },
    )
    .await?;
    assert_eq!(ready.0, 200, "a stale snapshot still serves: {}", ready.1);
    assert_eq!(ready.1["snapshot_loaded"], json!(true));
    let metrics = reqwest::get(format!("{}/metrics", acceptor.base_url))
        .await?
        .text()
        .await?;
    // The recorder is process-wide and other tests' acceptors share it, so only presence is
    // asserted here; the value is this acceptor's readyz above.
    assert!(
        metrics.contains("ingest_snapshot_database_ok")
            && metrics.contains("ingest_snapshot_age_seconds"),
        "{metrics}"
    );

    let (status, _, receipt) = status_and_body(acceptor.post(&token, &body).await?).await?;
    assert_eq!(
        (status, receipt),
        (200, json!({"acked": [1], "rejected": []}))
    );
    acceptor.stop().await?;
    let _ = stack;
    group.delete_topics().await
}
