//! `ingest-api` under pressure on the real stack: the in-flight budget holds under a burst,
//! slow clients are cut off, and a graceful shutdown loses no acked punch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dakoku_e2e::acceptor::TestAcceptor;
use dakoku_schemas::{RawPunch, Topic, decode};
use dakoku_testkit::read::read_topic;
use dakoku_testkit::{Stack, TenantSeed, TestDatabase, TestGroup, eventually, unique_suffix};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn batch(device: &str, seqs: impl IntoIterator<Item = u64>) -> Value {
    let punches: Vec<Value> = seqs
        .into_iter()
        .map(|seq| json!({"seq": seq, "card_id": "C1", "kind": "clock_in", "at": "2020-12-04T08:00:00+09:00"}))
        .collect();
    json!({"device_id": device, "punches": punches})
}

async fn setup(
    devices: usize,
    tweak: impl FnOnce(&mut dakoku_ingest_api::Config),
) -> anyhow::Result<(Stack, TestGroup, TestDatabase, String, TestAcceptor)> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let db = TestDatabase::create(&stack).await?;
    let tenant = format!("tenant-{}", unique_suffix());
    TenantSeed::new(&tenant, &group.group)
        .devices((0..devices).map(|d| format!("PT-{d}")))
        .seed(&db)
        .await?;
    let acceptor = TestAcceptor::start(&stack, &db, tweak).await?;
    Ok((stack, group, db, tenant, acceptor))
}

/// Distinct (device, seq) pairs in the raw topic, read until `want` are all there.
async fn stored(
    stack: &Stack,
    group: &TestGroup,
    want: &BTreeSet<(String, u64)>,
) -> anyhow::Result<BTreeSet<(String, u64)>> {
    let topic = Topic::Raw(group.group.clone()).name();
    let mut missing = want.clone();
    let mut seen = BTreeSet::new();
    let result = read_topic(stack, &topic, Duration::from_secs(60), |r| {
        if let Ok(p) = decode::<RawPunch>(&r.payload) {
            let id = (p.device_id.to_string(), p.seq);
            missing.remove(&id);
            seen.insert(id);
        }
        missing.is_empty()
    })
    .await;
    match result {
        Ok(_) => Ok(seen),
        Err(error) => anyhow::bail!(
            "{error}; acked but not found: {} e.g. {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        ),
    }
}

#[tokio::test]
async fn the_in_flight_budget_holds_under_a_burst_and_refusals_are_503_with_retry_after()
-> anyhow::Result<()> {
    const DEVICES: usize = 40;
    const PER_REQUEST: u64 = 50;
    let (stack, group, db, tenant, acceptor) = setup(DEVICES, |c| {
        c.max_punches = 50;
        c.max_inflight_punches = 100;
        // A slower producer keeps punches in flight long enough for the burst to collide.
        c.linger_ms = 50;
    })
    .await?;
    let acceptor = Arc::new(acceptor);
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for d in 0..DEVICES {
        let device = format!("PT-{d}");
        let token = acceptor.token(&tenant, &device)?;
        let url = format!("{}/v1/punches", acceptor.base_url);
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let body = batch(&device, 1..=PER_REQUEST);
            let response = client
                .post(&url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u32>().ok());
            let body: Value = response.json().await?;
            anyhow::Ok((device, status, retry_after, body))
        }));
    }
    let mut acked = BTreeSet::new();
    let mut refused = 0;
    for task in tasks {
        let (device, status, retry_after, body) = task.await??;
        match status {
            200 => {
                let seqs: Vec<u64> = serde_json::from_value(body["acked"].clone())?;
                assert_eq!(
                    seqs.len() as u64,
                    PER_REQUEST,
                    "a batch is all or nothing here: {body}"
                );
                acked.extend(seqs.into_iter().map(|s| (device.clone(), s)));
            }
            503 => {
                assert_eq!(body["error"], "overloaded", "{body}");
                assert!(
                    retry_after.is_some_and(|s| (5..=10).contains(&s)),
                    "{retry_after:?}"
                );
                refused += 1;
            }
            other => anyhow::bail!("unexpected status {other}: {body}"),
        }
    }
    let high_water = acceptor.state.inflight_punches_high_water();
    assert!(high_water <= 100, "budget exceeded: {high_water}");
    assert!(
        refused > 0,
        "a burst of {DEVICES}x{PER_REQUEST} punches against a budget of 100 must refuse some"
    );
    assert!(!acked.is_empty(), "and accept some");
    let in_kafka = stored(&stack, &group, &acked).await?;
    assert!(acked.is_subset(&in_kafka));

    Arc::try_unwrap(acceptor)
        .map_err(|_| anyhow::anyhow!("acceptor still shared"))?
        .stop()
        .await?;
    db.drop_db().await?;
    group.delete_topics().await
}

#[tokio::test]
async fn graceful_shutdown_loses_no_acked_punch() -> anyhow::Result<()> {
    const DEVICES: usize = 8;
    let (stack, group, db, tenant, mut acceptor) = setup(DEVICES, |c| {
        c.device_rate_per_sec = 1000;
        c.device_burst = 1000;
    })
    .await?;
    let url = format!("{}/v1/punches", acceptor.base_url);
    let client = reqwest::Client::new();
    let acked_so_far = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for d in 0..DEVICES {
        let device = format!("PT-{d}");
        let token = acceptor.token(&tenant, &device)?;
        let (url, client, acked_so_far) = (url.clone(), client.clone(), Arc::clone(&acked_so_far));
        senders.push(tokio::spawn(async move {
            let mut acked = BTreeSet::new();
            let mut refusals = 0u32;
            for round in 0u64.. {
                let body = batch(&device, (round * 20 + 1)..=(round * 20 + 20));
                match client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        if status == 200 {
                            let seqs: Vec<u64> = serde_json::from_value(body["acked"].clone())?;
                            acked_so_far
                                .fetch_add(seqs.len(), std::sync::atomic::Ordering::Relaxed);
                            acked.extend(seqs.into_iter().map(|s| (device.clone(), s)));
                        } else {
                            assert_eq!(status, 503, "only 503 while shutting down: {body}");
                            refusals += 1;
                        }
                    }
                    // The listener is gone: the recorder would retry later, elsewhere.
                    Err(_) => break,
                }
                if round > 10_000 {
                    break;
                }
            }
            anyhow::Ok((acked, refusals))
        }));
    }
    // Let traffic flow, then stop while requests are in flight.
    eventually("traffic flowing", Duration::from_secs(30), || {
        let n = acked_so_far.load(std::sync::atomic::Ordering::Relaxed);
        async move { Ok((n >= 500).then_some(())) }
    })
    .await?;
    let started = Instant::now();
    let server = acceptor.begin_stop().context("server task")?;
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .context("drain took too long")???;
    let drained_in = started.elapsed();
    let mut acked = BTreeSet::new();
    for sender in senders {
        let (a, _) = sender.await??;
        acked.extend(a);
    }
    assert!(
        acked.len() > 100,
        "traffic was flowing before shutdown: {}",
        acked.len()
    );
    let in_kafka = stored(&stack, &group, &acked).await?;
    let lost: Vec<_> = acked.difference(&in_kafka).collect();
    assert!(
        lost.is_empty(),
        "acked but not in Kafka after shutdown: {lost:?}"
    );
    assert!(
        drained_in < Duration::from_secs(15),
        "drain within budget: {drained_in:?}"
    );
    db.drop_db().await?;
    group.delete_topics().await
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_do_not_hold_the_acceptor() -> anyhow::Result<()> {
    let (_stack, group, db, tenant, acceptor) = setup(1, |c| {
        c.header_read_timeout_ms = 500;
        c.body_read_timeout_ms = 500;
    })
    .await?;
    let addr = acceptor.base_url.trim_start_matches("http://").to_owned();
    let token = acceptor.token(&tenant, "PT-0")?;

    // Headers trickle in and never finish: the connection is closed after the header timeout.
    let mut slow_headers = tokio::net::TcpStream::connect(&addr).await?;
    slow_headers
        .write_all(b"POST /v1/punches HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let started = Instant::now();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), slow_headers.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "connection with unfinished headers was not closed"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // The body trickles in and never finishes: 408 after the body timeout.
    let mut slow_body = tokio::net::TcpStream::connect(&addr).await?;
    slow_body
        .write_all(
            format!(
                "POST /v1/punches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n{{\"device"
            )
            .as_bytes(),
        )
        .await?;
    let started = Instant::now();
    let mut response = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), slow_body.read(&mut response)).await??;
    let text = String::from_utf8_lossy(&response[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("slow_body"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Meanwhile the acceptor answers everyone else.
    let health = reqwest::get(format!("{}/healthz", acceptor.base_url)).await?;
    assert_eq!(health.status(), 200);
    acceptor.stop().await?;
    db.drop_db().await?;
    group.delete_topics().await
}
