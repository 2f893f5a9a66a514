//! Security probes: hostile and broken requests against a running acceptor, each checked for
//! its documented status and error code (CONTRACT §1), then the raw topic checked for leaks.
//!
//! The probes run under two throw-away tenants of one group (A and B) with a live device each
//! and a revoked one. Control punches (valid, acked) bracket the probes: once the last control
//! is acked, everything the probes could have appended is in the log, so reading the raw topic
//! to its end then shows exactly what got through. The only records of the probe tenants
//! allowed there are the controls.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::Utc;
use dakoku_ingest_api::token::{DeviceClaims, TokenKeys};
use dakoku_schemas::{DeviceId, GroupId, RawPunch, TenantId, Topic, decode};
use punchctl::master::{self, NewTenant};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Where the acceptor under probe is, and what it trusts.
#[derive(Debug, Clone)]
pub struct ProbeEnv {
    /// `http://host:port` of ingest-api.
    pub base_url: String,
    /// Kafka bootstrap servers (to read the raw topic).
    pub brokers: String,
    /// Postgres of the acceptor's master data (to create the probe tenants).
    pub database_url: String,
    /// The group the probe tenants are created in (its topics must exist).
    pub group: GroupId,
    /// The acceptor's signing keys (`DAKOKU_TOKEN_KEYS`): valid and expired tokens are minted
    /// with them; forged ones with a key of our own.
    pub keys: TokenKeys,
    /// The acceptor's largest body (`max_body_bytes`) and batch (`max_punches`).
    pub max_body_bytes: usize,
    /// See [`ProbeEnv::max_body_bytes`].
    pub max_punches: usize,
    /// Longest the acceptor may take to drop a slow client (its header or body read timeout
    /// plus a margin).
    pub slow_client_deadline: Duration,
}

/// The probe tenants and devices, made by [`provision`].
#[derive(Debug, Clone)]
pub struct ProbeFixture {
    /// Tenant A (the probes' own tenant).
    pub tenant_a: TenantId,
    /// Tenant B (the one A must not reach).
    pub tenant_b: TenantId,
    /// A's live device.
    pub device_a: DeviceId,
    /// B's live device.
    pub device_b: DeviceId,
    /// A's revoked device.
    pub revoked: DeviceId,
}

/// One probe's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeOutcome {
    /// What was sent.
    pub name: String,
    /// The documented answer.
    pub expected: String,
    /// The answer.
    pub got: String,
    /// How long the answer took, milliseconds.
    pub millis: u64,
    /// `got` matches `expected`.
    pub ok: bool,
}

/// All probes and the leak check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeReport {
    /// Each probe.
    pub probes: Vec<ProbeOutcome>,
    /// Raw records of the probe tenants found in the log.
    pub raw_records_of_probe_tenants: usize,
    /// Those that are not control punches: must be empty.
    pub leaked: Vec<String>,
    /// Control punches (acked) not found: must be empty, else the leak check read nothing.
    pub missing_controls: Vec<String>,
}

impl ProbeReport {
    /// Every probe answered as documented and nothing leaked.
    pub fn passed(&self) -> bool {
        self.probes.iter().all(|p| p.ok)
            && self.leaked.is_empty()
            && self.missing_controls.is_empty()
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.probes {
            writeln!(
                f,
                "{} {:<44} expected {:<34} got {} ({} ms)",
                if p.ok { "ok  " } else { "FAIL" },
                p.name,
                p.expected,
                p.got,
                p.millis
            )?;
        }
        writeln!(
            f,
            "raw topic: {} records of the probe tenants, all control punches: {}",
            self.raw_records_of_probe_tenants,
            if self.leaked.is_empty() {
                "yes".to_owned()
            } else {
                format!("NO, leaked {:?}", self.leaked)
            }
        )?;
        if !self.missing_controls.is_empty() {
            writeln!(
                f,
                "control punches missing from the log: {:?}",
                self.missing_controls
            )?;
        }
        Ok(())
    }
}

/// Creates tenants `probe-a-<suffix>` and `probe-b-<suffix>` in `env.group`, a live device
/// each and a revoked device of A.
pub async fn provision(env: &ProbeEnv, suffix: &str) -> anyhow::Result<ProbeFixture> {
    let client = dakoku_store::connect(&env.database_url)
        .await
        .context("connecting to Postgres to create the probe tenants")?;
    let fixture = ProbeFixture {
        tenant_a: format!("probe-a-{suffix}").parse()?,
        tenant_b: format!("probe-b-{suffix}").parse()?,
        device_a: "PROBE-A".parse()?,
        device_b: "PROBE-B".parse()?,
        revoked: "PROBE-REVOKED".parse()?,
    };
    let mut client = client;
    for tenant in [&fixture.tenant_a, &fixture.tenant_b] {
        master::add_tenant(
            &mut client,
            &NewTenant::with_defaults(tenant.clone(), "security probe", env.group.clone()),
        )
        .await?;
    }
    master::add_device(&client, &fixture.tenant_a, &fixture.device_a).await?;
    master::add_device(&client, &fixture.tenant_b, &fixture.device_b).await?;
    master::add_device(&client, &fixture.tenant_a, &fixture.revoked).await?;
    master::revoke_device(
        &client,
        &fixture.tenant_a,
        &fixture.revoked,
        "security probe",
    )
    .await?;
    Ok(fixture)
}

/// Removes the probe tenants' devices and tenants from the master data (their control punches
/// stay in the log, as everything does).
pub async fn remove(env: &ProbeEnv, fixture: &ProbeFixture) -> anyhow::Result<()> {
    let mut client = dakoku_store::connect(&env.database_url).await?;
    let tenants = [fixture.tenant_a.as_str(), fixture.tenant_b.as_str()];
    let tx = client.transaction().await?;
    for table in ["devices", "tenants"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE tenant_id = ANY($1)"),
            &[&&tenants[..]],
        )
        .await
        .with_context(|| format!("removing the probe tenants from {table}"))?;
    }
    tx.commit().await?;
    Ok(())
}

/// One HTTP probe: a request and the documented answer.
struct Case {
    name: &'static str,
    token: Option<String>,
    content_type: &'static str,
    body: Vec<u8>,
    expect: Expect,
}

#[derive(Clone, Copy)]
enum Expect {
    /// A refusal: status and `error` code.
    Refused(u16, &'static str),
    /// `200` with nothing acked and exactly one item rejected.
    ItemRejected,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Refused(status, code) => write!(f, "{status} {code}"),
            Expect::ItemRejected => write!(f, "200, item rejected, none acked"),
        }
    }
}

const AT: &str = "2020-12-04T08:00:00+09:00";

fn punch(seq: u64) -> Value {
    json!({"seq": seq, "card_id": "PROBE-CARD", "kind": "clock_in", "at": AT})
}

fn body(device: &DeviceId, punches: Vec<Value>) -> Vec<u8> {
    json!({"device_id": device.as_str(), "punches": punches})
        .to_string()
        .into_bytes()
}

/// A body whose single punch has `field` replaced by `value`.
fn with_field(device: &DeviceId, seq: u64, field: &str, value: Value) -> Vec<u8> {
    let mut item = punch(seq);
    item[field] = value;
    body(device, vec![item])
}

fn token(keys: &TokenKeys, tenant: &TenantId, device: &DeviceId, valid_secs: i64) -> String {
    keys.mint(&DeviceClaims {
        tenant: tenant.clone(),
        device: device.clone(),
        expires_at: Utc::now().timestamp() + valid_secs,
    })
}

/// Runs every probe against `env` with `fixture`'s tenants (from [`provision`]).
pub async fn run(env: &ProbeEnv, fixture: &ProbeFixture) -> anyhow::Result<ProbeReport> {
    // A connection per request: refusals decided before the body is read close the
    // connection (hyper cannot reuse it), and each probe should stand alone anyway.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()?;
    let url = format!("{}/v1/punches", env.base_url);
    let token_a = token(&env.keys, &fixture.tenant_a, &fixture.device_a, 3600);
    let token_b = token(&env.keys, &fixture.tenant_b, &fixture.device_b, 3600);
    let (a, b) = (&fixture.device_a, &fixture.device_b);

    // The acceptor learns the new tenants from its snapshot: wait until A's control is acked.
    let mut controls: BTreeSet<(String, String, u64)> = BTreeSet::new();
    control(&http, &url, &token_a, a, 1).await?;
    controls.insert((fixture.tenant_a.to_string(), a.to_string(), 1));
    control(&http, &url, &token_b, b, 1).await?;
    controls.insert((fixture.tenant_b.to_string(), b.to_string(), 1));

    let mut cases = auth_cases(env, fixture, &token_a)?;
    cases.extend(input_cases(env, a, &token_a));
    cases.extend(item_cases(a, &token_a));
    let mut probes = Vec::new();
    for case in cases {
        probes.push(send(&http, &url, case).await?);
    }
    probes.push(slow_headers(env).await?);
    probes.push(slow_body(env, &token_a).await?);

    // The last control: once it is acked, whatever the probes appended is in the log.
    control(&http, &url, &token_a, a, 2).await?;
    controls.insert((fixture.tenant_a.to_string(), a.to_string(), 2));
    let (found, leaked, missing_controls) = raw_records(env, fixture, &controls).await?;
    Ok(ProbeReport {
        probes,
        raw_records_of_probe_tenants: found,
        leaked,
        missing_controls,
    })
}

/// Probes of who may post: tokens (missing, malformed, forged, expired), revoked devices,
/// another tenant's device, unknown tenants.
fn auth_cases(env: &ProbeEnv, fixture: &ProbeFixture, token_a: &str) -> anyhow::Result<Vec<Case>> {
    let (a, b) = (&fixture.device_a, &fixture.device_b);
    let forger = TokenKeys::parse(&TokenKeys::generate_entry(env.keys.signing_key_id()))?;
    Ok(vec![
        Case {
            name: "no token",
            token: None,
            content_type: "application/json",
            body: body(a, vec![punch(100)]),
            expect: Expect::Refused(401, "missing_token"),
        },
        Case {
            name: "malformed token",
            token: Some("dk1.not-a-token".into()),
            content_type: "application/json",
            body: body(a, vec![punch(101)]),
            expect: Expect::Refused(401, "invalid_token"),
        },
        Case {
            name: "forged token (same key id, other secret)",
            token: Some(token(&forger, &fixture.tenant_a, a, 3600)),
            content_type: "application/json",
            body: body(a, vec![punch(102)]),
            expect: Expect::Refused(401, "invalid_token"),
        },
        Case {
            name: "expired token",
            token: Some(token(&env.keys, &fixture.tenant_a, a, -1)),
            content_type: "application/json",
            body: body(a, vec![punch(103)]),
            expect: Expect::Refused(401, "token_expired"),
        },
        Case {
            name: "revoked device",
            token: Some(token(&env.keys, &fixture.tenant_a, &fixture.revoked, 3600)),
            content_type: "application/json",
            body: body(&fixture.revoked, vec![punch(104)]),
            expect: Expect::Refused(403, "device_revoked"),
        },
        Case {
            name: "tenant A's token posting for B's device",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: body(b, vec![punch(105)]),
            expect: Expect::Refused(403, "device_mismatch"),
        },
        Case {
            name: "token of an unknown tenant",
            token: Some(token(&env.keys, &"probe-nobody".parse()?, a, 3600)),
            content_type: "application/json",
            body: body(a, vec![punch(106)]),
            expect: Expect::Refused(403, "unknown_tenant"),
        },
    ])
}

/// Probes of what may be posted: content type, sizes, malformed JSON and wrong shapes.
fn input_cases(env: &ProbeEnv, a: &DeviceId, token_a: &str) -> Vec<Case> {
    vec![
        Case {
            name: "wrong content type",
            token: Some(token_a.to_owned()),
            content_type: "text/plain",
            body: body(a, vec![punch(107)]),
            expect: Expect::Refused(415, "unsupported_media_type"),
        },
        Case {
            name: "oversized body",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: {
                let mut big = body(a, vec![punch(108)]);
                big.truncate(big.len() - 1);
                big.extend_from_slice(b", \"pad\": \"");
                big.extend(std::iter::repeat_n(b'x', env.max_body_bytes + 1));
                big.extend_from_slice(b"\"}");
                big
            },
            expect: Expect::Refused(413, "body_too_large"),
        },
        Case {
            name: "too many punches",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: body(
                a,
                (0..=env.max_punches as u64)
                    .map(|i| punch(1_000 + i))
                    .collect(),
            ),
            expect: Expect::Refused(413, "too_many_punches"),
        },
        Case {
            name: "malformed JSON",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: b"{\"device_id\": \"PROBE-A\", \"punches\": [{\"seq\": 109,".to_vec(),
            expect: Expect::Refused(400, "bad_request"),
        },
        Case {
            name: "device_id: a number",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: json!({"device_id": 7, "punches": [punch(110)]})
                .to_string()
                .into_bytes(),
            expect: Expect::Refused(400, "bad_request"),
        },
        Case {
            name: "punches: a string",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: json!({"device_id": a.as_str(), "punches": "punch 111"})
                .to_string()
                .into_bytes(),
            expect: Expect::Refused(400, "bad_request"),
        },
        Case {
            name: "body: an array",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: json!([punch(112)]).to_string().into_bytes(),
            expect: Expect::Refused(400, "bad_request"),
        },
    ]
}

/// Wrong types and values in every field of a punch: that item is rejected (and
/// quarantined), nothing acked.
fn item_cases(a: &DeviceId, token_a: &str) -> Vec<Case> {
    let items: Vec<(&'static str, &'static str, Value)> = vec![
        ("seq: a string", "seq", json!("120")),
        ("seq: negative", "seq", json!(-1)),
        ("seq: a fraction", "seq", json!(121.5)),
        ("seq: above 2^63-1", "seq", json!(u64::MAX)),
        ("seq: null", "seq", Value::Null),
        ("card_id: a number", "card_id", json!(122)),
        (
            "card_id: forbidden characters",
            "card_id",
            json!("CARD 1;--"),
        ),
        ("card_id: empty", "card_id", json!("")),
        ("kind: a number", "kind", json!(1)),
        ("kind: unknown value", "kind", json!("clockin")),
        ("at: a number", "at", json!(1_607_036_400)),
        ("at: no offset", "at", json!("2020-12-04T08:00:00")),
        ("at: not a time", "at", json!("yesterday")),
    ];
    items
        .into_iter()
        .enumerate()
        .map(|(i, (name, field, value))| Case {
            name,
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: with_field(a, 130 + i as u64, field, value),
            expect: Expect::ItemRejected,
        })
        .collect()
}

/// Posts one valid punch until it is acked (the snapshot may not know the tenant yet).
async fn control(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    device: &DeviceId,
    seq: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        let response = http
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body(device, vec![punch(seq)]))
            .send()
            .await?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status == 200 && answer["acked"] == json!([seq]) {
            return Ok(());
        }
        last = format!("{status} {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("control punch {device}/{seq} not acked within 30 s; last answer: {last}")
}

async fn send(http: &reqwest::Client, url: &str, case: Case) -> anyhow::Result<ProbeOutcome> {
    // The probes come from one device in quick succession: the per-device rate limit may
    // answer 429 first. That is not what is probed, so wait as told and send again.
    let mut attempts = 0;
    let (started, status, retry_after, answer) = loop {
        let mut request = http
            .post(url)
            .header("content-type", case.content_type)
            .body(case.body.clone());
        if let Some(token) = &case.token {
            request = request.bearer_auth(token);
        }
        let started = Instant::now();
        let response = request.send().await.with_context(|| case.name)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        attempts += 1;
        match retry_after {
            Some(wait) if status == 429 && attempts < 10 => {
                tokio::time::sleep(Duration::from_secs(wait.clamp(1, 10))).await;
            }
            _ => break (started, status, retry_after.is_some(), answer),
        }
    };
    let millis = started.elapsed().as_millis() as u64;
    let (got, ok) = match case.expect {
        Expect::Refused(want_status, want_code) => {
            let code = answer["error"].as_str().unwrap_or("(no error code)");
            let has_message = answer["message"].as_str().is_some_and(|m| !m.is_empty());
            (
                format!("{status} {code}"),
                status == want_status && code == want_code && has_message && !retry_after,
            )
        }
        Expect::ItemRejected => {
            let acked = answer["acked"].as_array().map_or(usize::MAX, Vec::len);
            let rejected = answer["rejected"].as_array().map_or(0, Vec::len);
            let error = answer["rejected"][0]["error"].as_str().unwrap_or("");
            (
                format!("{status}, {acked} acked, {rejected} rejected: {error}"),
                status == 200 && acked == 0 && rejected == 1 && !error.is_empty(),
            )
        }
    };
    Ok(ProbeOutcome {
        name: case.name.to_owned(),
        expected: case.expect.to_string(),
        got,
        millis,
        ok,
    })
}

fn host_port(base_url: &str) -> anyhow::Result<String> {
    base_url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/').to_owned())
        .with_context(|| format!("{base_url}: expected http://host:port"))
}

/// Reads what the server sends until it closes, or `deadline`.
async fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> (String, bool) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(deadline, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (String::from_utf8_lossy(&answer).into_owned(), read.is_ok())
}

/// Slowloris: headers that never end. The acceptor must drop the connection within its header
/// timeout instead of holding it.
async fn slow_headers(env: &ProbeEnv) -> anyhow::Result<ProbeOutcome> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(host_port(&env.base_url)?).await?;
    stream
        .write_all(b"POST /v1/punches HTTP/1.1\r\nHost: probe\r\nX-Slow: ")
        .await?;
    let (answer, closed) = read_until_closed(&mut stream, env.slow_client_deadline).await;
    let first = answer.lines().next().unwrap_or("").to_owned();
    let got = if closed {
        format!("closed after {} ms {first}", started.elapsed().as_millis())
    } else {
        "still open".to_owned()
    };
    Ok(ProbeOutcome {
        name: "slowloris: headers never finish".into(),
        expected: format!("closed within {:?}", env.slow_client_deadline),
        got,
        millis: started.elapsed().as_millis() as u64,
        ok: closed && (first.is_empty() || first.contains(" 408 ")),
    })
}

/// A body sent far slower than announced: `408 slow_body`, and the connection dropped.
async fn slow_body(env: &ProbeEnv, token: &str) -> anyhow::Result<ProbeOutcome> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(host_port(&env.base_url)?).await?;
    let head = format!(
        "POST /v1/punches HTTP/1.1\r\nHost: probe\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"device_id\""
    );
    stream.write_all(head.as_bytes()).await?;
    let (answer, closed) = read_until_closed(&mut stream, env.slow_client_deadline).await;
    let first = answer.lines().next().unwrap_or("").to_owned();
    let code_ok = answer.contains("slow_body");
    Ok(ProbeOutcome {
        name: "slow body: 200 bytes announced, 13 sent".into(),
        expected: "408 slow_body".into(),
        got: if closed || !answer.is_empty() {
            format!("{first} {}", if code_ok { "slow_body" } else { "" })
        } else {
            "no answer".into()
        },
        millis: started.elapsed().as_millis() as u64,
        ok: first.contains(" 408 ") && code_ok,
    })
}

/// Reads the group's raw topic to its end: how many records the probe tenants have, those
/// that are not controls, and the controls not found.
async fn raw_records(
    env: &ProbeEnv,
    fixture: &ProbeFixture,
    controls: &BTreeSet<(String, String, u64)>,
) -> anyhow::Result<(usize, Vec<String>, Vec<String>)> {
    let brokers = env.brokers.clone();
    let topic = Topic::Raw(env.group.clone()).name();
    let tenants = [fixture.tenant_a.to_string(), fixture.tenant_b.to_string()];
    let controls = controls.clone();
    tokio::task::spawn_blocking(
        move || -> anyhow::Result<(usize, Vec<String>, Vec<String>)> {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", "storm-probes-reader")
                .set("enable.auto.commit", "false")
                .create()?;
            let timeout = Duration::from_secs(10);
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            let mut assignment = TopicPartitionList::new();
            let mut ends = std::collections::HashMap::new();
            for &p in &partitions {
                let (low, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
                if high > low {
                    ends.insert(p, high);
                    assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
                }
            }
            consumer.assign(&assignment)?;
            let (mut found, mut leaked) = (0usize, Vec::new());
            let mut unseen = controls.clone();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !ends.is_empty() {
                if Instant::now() > deadline {
                    bail!("reading {topic} to its end took over 60 s");
                }
                let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let message = message?;
                if ends
                    .get(&message.partition())
                    .is_some_and(|end| message.offset() + 1 >= *end)
                {
                    ends.remove(&message.partition());
                }
                let Some(punch) = message.payload().and_then(|p| decode::<RawPunch>(p).ok()) else {
                    continue;
                };
                if !tenants.contains(&punch.tenant_id.to_string()) {
                    continue;
                }
                found += 1;
                let id = (
                    punch.tenant_id.to_string(),
                    punch.device_id.to_string(),
                    punch.seq,
                );
                if !controls.contains(&id) {
                    leaked.push(format!("{}/{}/{}", id.0, id.1, id.2));
                }
                unseen.remove(&id);
            }
            let missing = unseen
                .into_iter()
                .map(|(t, d, s)| format!("{t}/{d}/{s}"))
                .collect();
            Ok((found, leaked, missing))
        },
    )
    .await?
}
