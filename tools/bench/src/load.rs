//! The load generator: `workers` tasks, each owning a disjoint share of the devices and one
//! sender (an HTTP keep-alive connection, or a handle on a raw Kafka producer), paced closed
//! loop (next request as soon as the answer comes) or open loop (requests on a fixed schedule,
//! latency measured from the scheduled time, so a slow answer cannot hide the queueing it
//! causes: no coordinated omission).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::http::{HeaderValue, Request, StatusCode, header};
use bytes::Bytes;
use chrono::{DateTime, FixedOffset, SecondsFormat};
use dakoku_ingest_api::publisher::Publisher;
use dakoku_schemas::{CardId, DeviceId, GroupId, PunchId, PunchKind, RawPunch, TenantId};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::setup::BenchGroup;

/// The recorder API's path.
pub const PUNCHES_PATH: &str = "/v1/punches";
/// A request not answered by then counts as failed (ingest-api promises 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// An open-loop request issued later than this after its scheduled time counts as late.
const LATE: Duration = Duration::from_millis(1);
/// Pause after a failure in closed loop, so refusals do not turn into a busy loop.
const FAILURE_PAUSE: Duration = Duration::from_millis(20);
/// Distinct card ids per device.
const CARDS_PER_DEVICE: usize = 50;
/// Distinct punch times the bodies cycle through.
const TIMES: usize = 64;

/// The devices load is sent for: ids, tokens and each device's next `seq`.
#[derive(Debug)]
pub struct Fleet {
    tenant: TenantId,
    group: GroupId,
    devices: Vec<DeviceId>,
    authorizations: Vec<HeaderValue>,
    next_seq: Vec<AtomicU64>,
    times: Vec<PunchTime>,
}

#[derive(Debug)]
struct PunchTime {
    rfc3339: String,
    at: DateTime<FixedOffset>,
}

impl Fleet {
    /// The bench group's devices, every `seq` starting at 1.
    pub fn new(bench: &BenchGroup) -> Self {
        let base = DateTime::parse_from_rfc3339("2026-05-11T08:00:00+09:00")
            .unwrap_or_else(|_| DateTime::UNIX_EPOCH.fixed_offset());
        let times = (0..TIMES)
            .map(|i| {
                let at = base + chrono::Duration::seconds(37 * i as i64);
                PunchTime {
                    rfc3339: at.to_rfc3339_opts(SecondsFormat::Secs, false),
                    at,
                }
            })
            .collect();
        Self {
            tenant: bench.tenant.clone(),
            group: bench.group.clone(),
            devices: bench.devices.clone(),
            authorizations: bench.authorizations.clone(),
            next_seq: bench.devices.iter().map(|_| AtomicU64::new(1)).collect(),
            times,
        }
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether there is no device.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Reserves `n` consecutive `seq`s of `device`; returns the first.
    pub fn take_seqs(&self, device: usize, n: usize) -> u64 {
        self.next_seq[device].fetch_add(n as u64, Ordering::Relaxed)
    }

    fn kind(seq: u64) -> PunchKind {
        PunchKind::ALL[(seq % PunchKind::ALL.len() as u64) as usize]
    }

    fn card(device: usize, seq: u64) -> String {
        format!(
            "C{:08}",
            device * CARDS_PER_DEVICE + (seq % CARDS_PER_DEVICE as u64) as usize
        )
    }

    fn time(&self, seq: u64) -> &PunchTime {
        &self.times[(seq % self.times.len() as u64) as usize]
    }

    /// The JSON body of a request with punches `first_seq..first_seq + n` of `device`.
    pub fn body(&self, device: usize, first_seq: u64, n: usize) -> Bytes {
        let mut body = String::with_capacity(48 + n * 96);
        let _ = write!(
            body,
            r#"{{"device_id":"{}","punches":["#,
            self.devices[device]
        );
        for seq in first_seq..first_seq + n as u64 {
            if seq != first_seq {
                body.push(',');
            }
            let _ = write!(
                body,
                r#"{{"seq":{seq},"card_id":"{}","kind":"{}","at":"{}"}}"#,
                Self::card(device, seq),
                Self::kind(seq).as_str(),
                self.time(seq).rfc3339
            );
        }
        body.push_str("]}");
        Bytes::from(body)
    }

    /// The record ingest-api would write for punch `seq` of `device`.
    pub fn raw_punch(
        &self,
        device: usize,
        seq: u64,
        received_at: i64,
        acceptor_id: &str,
    ) -> anyhow::Result<RawPunch> {
        let device_id = &self.devices[device];
        let (at, at_offset_minutes) = RawPunch::at_fields(self.time(seq).at);
        Ok(RawPunch {
            punch_id: PunchId::derive(&self.tenant, device_id, seq),
            tenant_id: self.tenant.clone(),
            group: self.group.clone(),
            device_id: device_id.clone(),
            seq,
            card_id: Self::card(device, seq).parse::<CardId>()?,
            kind: Self::kind(seq),
            at,
            at_offset_minutes,
            received_at,
            acceptor_id: acceptor_id.to_owned(),
        })
    }
}

/// Why a request did not get its punches acked. `kind` is a short, bounded label for counting;
/// `detail` is one example message.
#[derive(Debug, Clone)]
pub struct Failure {
    /// E.g. `http 429`, `timeout`, `connection`, `kafka`.
    pub kind: String,
    /// What was said.
    pub detail: String,
}

impl Failure {
    fn new(kind: impl Into<String>, detail: impl ToString) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.to_string(),
        }
    }
}

/// Something that delivers punches and says how many were acked.
pub trait Sender: Send + 'static {
    /// Sends punches `first_seq..first_seq + n` of `device`; returns how many were acked.
    fn send(
        &mut self,
        device: usize,
        first_seq: u64,
        n: usize,
    ) -> impl Future<Output = Result<u64, Failure>> + Send;
}

/// One HTTP/1.1 keep-alive connection posting to the recorder API (reconnects after errors).
#[derive(Debug)]
pub struct HttpSender {
    fleet: Arc<Fleet>,
    addr: SocketAddr,
    host: HeaderValue,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl HttpSender {
    /// A sender to the server on `addr` (connects on first use).
    pub fn new(fleet: Arc<Fleet>, addr: SocketAddr) -> Self {
        let host = HeaderValue::from_str(&addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self {
            fleet,
            addr,
            host,
            connection: None,
        }
    }

    /// `count` senders to `addr`.
    pub fn many(fleet: &Arc<Fleet>, addr: SocketAddr, count: usize) -> Vec<Self> {
        (0..count)
            .map(|_| Self::new(Arc::clone(fleet), addr))
            .collect()
    }
}

impl Sender for HttpSender {
    async fn send(&mut self, device: usize, first_seq: u64, n: usize) -> Result<u64, Failure> {
        let body = self.fleet.body(device, first_seq, n);
        let request = Request::post(PUNCHES_PATH)
            .header(header::HOST, self.host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .header(
                header::AUTHORIZATION,
                self.fleet.authorizations[device].clone(),
            )
            .body(Full::new(body))
            .map_err(|e| Failure::new("request", e))?;
        let connection = match &mut self.connection {
            Some(connection) if !connection.is_closed() => connection,
            slot => slot.insert(
                connect(self.addr)
                    .await
                    .map_err(|e| Failure::new("connect", format!("{e:#}")))?,
            ),
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange(connection, request)).await;
        let (status, body) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                self.connection = None;
                return Err(Failure::new("connection", error));
            }
            Err(_) => {
                self.connection = None;
                return Err(Failure::new("timeout", format!("{REQUEST_TIMEOUT:?}")));
            }
        };
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            return Err(Failure::new(
                format!("http {}", status.as_u16()),
                text.chars().take(200).collect::<String>(),
            ));
        }
        match parse_receipt(&body) {
            Some((acked, 0)) => Ok(acked),
            Some((_, rejected)) => Err(Failure::new(
                "rejected",
                format!(
                    "{rejected} punches rejected: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            )),
            None => Err(Failure::new(
                "bad receipt",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>(),
            )),
        }
    }
}

/// Counts the items of `"acked":[...]` and `"rejected":[...]` in a receipt without parsing it
/// into values (the client shares the machine with the servers, so it stays cheap).
pub fn parse_receipt(body: &[u8]) -> Option<(u64, u64)> {
    fn array<'a>(body: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
        let start = body.windows(key.len()).position(|w| w == key)? + key.len();
        let rest = &body[start..];
        if rest.first() == Some(&b']') {
            return Some(&rest[..0]);
        }
        // Acked items are integers; rejected items are objects whose strings may hold ']'
        // but are only counted by their leading '{', so the end of `rest` is good enough.
        let end = rest.iter().position(|&b| b == b']').unwrap_or(rest.len());
        Some(&rest[..end])
    }
    let acked = array(body, br#""acked":["#)?;
    let acked = if acked.is_empty() {
        0
    } else {
        acked.iter().filter(|&&b| b == b',').count() as u64 + 1
    };
    let rejected_key = br#""rejected":["#;
    let start = body
        .windows(rejected_key.len())
        .position(|w| w == rejected_key)?;
    let rest = &body[start + rejected_key.len()..];
    let rejected = if rest.first() == Some(&b']') {
        0
    } else {
        rest.iter().filter(|&&b| b == b'{').count() as u64
    };
    Some((acked, rejected))
}

/// A raw producer task: builds and encodes the records ingest-api would write, enqueues a whole
/// batch, then awaits every delivery report, like ingest-api does for one request.
#[derive(Debug)]
pub struct KafkaSender {
    fleet: Arc<Fleet>,
    publisher: Publisher,
    topic: String,
    buf: Vec<u8>,
}

/// The acceptor id written into the raw producer's records.
const RAW_ACCEPTOR_ID: &str = "ingest-bench-raw-producer";

impl KafkaSender {
    /// `count` tasks sharing `publisher`, writing to `topic`.
    pub fn many(fleet: &Arc<Fleet>, publisher: &Publisher, topic: &str, count: usize) -> Vec<Self> {
        (0..count)
            .map(|_| Self {
                fleet: Arc::clone(fleet),
                publisher: publisher.clone(),
                topic: topic.to_owned(),
                buf: Vec::with_capacity(256),
            })
            .collect()
    }
}

impl Sender for KafkaSender {
    async fn send(&mut self, device: usize, first_seq: u64, n: usize) -> Result<u64, Failure> {
        let received_at = chrono::Utc::now().timestamp_millis();
        let key = dakoku_schemas::raw_key(&self.fleet.tenant, &self.fleet.devices[device]);
        let mut pending = Vec::with_capacity(n);
        let mut failure = None;
        for seq in first_seq..first_seq + n as u64 {
            let record = self
                .fleet
                .raw_punch(device, seq, received_at, RAW_ACCEPTOR_ID)
                .map_err(|e| Failure::new("record", format!("{e:#}")))?;
            self.buf.clear();
            dakoku_schemas::encode_into(&record, &mut self.buf)
                .map_err(|e| Failure::new("encode", e))?;
            match self.publisher.enqueue(&self.topic, &key, &self.buf) {
                Ok(delivery) => pending.push(delivery),
                Err(error) => {
                    failure = Some(Failure::new("kafka enqueue", error));
                    break;
                }
            }
        }
        let results =
            futures::future::join_all(pending.into_iter().map(Publisher::confirmed)).await;
        let mut acked = 0;
        for result in results {
            match result {
                Ok(()) => acked += 1,
                Err(error) => failure = Some(Failure::new("kafka delivery", error)),
            }
        }
        match failure {
            Some(failure) if acked == 0 => Err(failure),
            _ => Ok(acked),
        }
    }
}

/// Opens a keep-alive HTTP/1.1 connection.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn exchange(
    connection: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), hyper::Error> {
    connection.ready().await?;
    let response = connection.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// `GET path` on a fresh connection: status and body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let work = async {
        let mut connection = connect(addr).await?;
        let request = Request::get(path)
            .header(header::HOST, addr.to_string())
            .body(Full::new(Bytes::new()))?;
        let (status, body) = exchange(&mut connection, request).await?;
        anyhow::Ok((status.as_u16(), body))
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .context("GET timed out")?
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Each worker sends its next request as soon as the previous one is answered.
    Closed,
    /// Requests are scheduled at this total rate, spread evenly over the workers.
    Open {
        /// Total requests per second.
        requests_per_sec: f64,
    },
}

/// What one phase sends.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Punches per request.
    pub punches_per_request: usize,
    /// Pacing.
    pub pace: Pace,
}

/// The phase's timeline: warm-up from `start`, measurement from `from` until `until`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When the workers start.
    pub start: Instant,
    /// When measurement starts.
    pub from: Instant,
    /// When measurement ends (no request is started after it).
    pub until: Instant,
}

impl Window {
    /// A window starting now.
    pub fn starting_now(warmup: Duration, measure: Duration) -> Self {
        let start = Instant::now();
        Self {
            start,
            from: start + warmup,
            until: start + warmup + measure,
        }
    }

    /// Length of the measured part.
    pub fn measured(&self) -> Duration {
        self.until - self.from
    }
}

/// What the workers of a phase did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Requests fully acked and counted (closed loop: completed in the window; open loop:
    /// scheduled in the window).
    pub requests: u64,
    /// Punches acked by counted requests.
    pub punches: u64,
    /// Punches acked over the whole phase, warm-up and tail included (for the log check).
    pub punches_total: u64,
    /// Open loop: counted requests issued more than 1 ms after their scheduled time.
    pub late: u64,
    /// Failures by kind, over the whole phase.
    pub failures: BTreeMap<String, u64>,
    /// One example message per failure kind.
    pub failure_examples: BTreeMap<String, String>,
    /// Latency of counted requests, microseconds.
    pub latency_us: Histogram<u64>,
}

impl Default for Outcome {
    fn default() -> Self {
        Self::new()
    }
}

impl Outcome {
    /// Nothing yet.
    pub fn new() -> Self {
        Self {
            requests: 0,
            punches: 0,
            punches_total: 0,
            late: 0,
            failures: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
            latency_us: new_histogram(),
        }
    }

    fn fail(&mut self, failure: Failure) {
        *self.failures.entry(failure.kind.clone()).or_default() += 1;
        self.failure_examples
            .entry(failure.kind)
            .or_insert(failure.detail);
    }

    /// Adds another outcome (another worker, or another round of the same phase).
    pub fn merge(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.punches += other.punches;
        self.punches_total += other.punches_total;
        self.late += other.late;
        for (kind, count) in other.failures {
            *self.failures.entry(kind).or_default() += count;
        }
        for (kind, example) in other.failure_examples {
            self.failure_examples.entry(kind).or_insert(example);
        }
        // Both histograms have the same bounds; values beyond them were already clamped.
        let _ = self.latency_us.add(&other.latency_us);
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Runs one sender per worker over `window`, each worker sending for the devices
/// `w, w + workers, ...`; `progress` counts acked punches as they come.
pub async fn drive<S: Sender>(
    senders: Vec<S>,
    fleet: &Arc<Fleet>,
    spec: Spec,
    window: Window,
    progress: &Arc<AtomicU64>,
) -> Outcome {
    let workers = senders.len();
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(w, sender)| {
            let devices: Vec<usize> = (w..fleet.len()).step_by(workers).collect();
            tokio::spawn(worker(
                sender,
                w,
                workers,
                devices,
                Arc::clone(fleet),
                spec,
                window,
                Arc::clone(progress),
            ))
        })
        .collect();
    let mut outcome = Outcome::new();
    for task in futures::future::join_all(tasks).await {
        match task {
            Ok(part) => outcome.merge(part),
            Err(error) => outcome.fail(Failure::new("worker panicked", error)),
        }
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn worker<S: Sender>(
    mut sender: S,
    index: usize,
    workers: usize,
    devices: Vec<usize>,
    fleet: Arc<Fleet>,
    spec: Spec,
    window: Window,
    progress: Arc<AtomicU64>,
) -> Outcome {
    let mut outcome = Outcome::new();
    if devices.is_empty() {
        return outcome;
    }
    let n = spec.punches_per_request;
    let (interval, mut due) = match spec.pace {
        Pace::Closed => (None, window.start),
        Pace::Open { requests_per_sec } => (
            Some(Duration::from_secs_f64(workers as f64 / requests_per_sec)),
            window.start + Duration::from_secs_f64(index as f64 / requests_per_sec),
        ),
    };
    let mut turn = 0;
    loop {
        let intended = match interval {
            None => {
                let now = Instant::now();
                if now >= window.until {
                    break;
                }
                now
            }
            Some(interval) => {
                if due >= window.until {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep_until(due.into()).await;
                } else if now - due > LATE && due >= window.from {
                    outcome.late += 1;
                }
                let scheduled = due;
                due += interval;
                scheduled
            }
        };
        let device = devices[turn % devices.len()];
        turn += 1;
        let first_seq = fleet.take_seqs(device, n);
        let result = sender.send(device, first_seq, n).await;
        let done = Instant::now();
        let counted = match spec.pace {
            Pace::Closed => done >= window.from && done <= window.until,
            Pace::Open { .. } => intended >= window.from,
        };
        match result {
            Ok(acked) => {
                progress.fetch_add(acked, Ordering::Relaxed);
                outcome.punches_total += acked;
                if acked < n as u64 {
                    outcome.fail(Failure::new(
                        "partial",
                        format!("{acked} of {n} punches acked"),
                    ));
                }
                if counted {
                    outcome.requests += 1;
                    outcome.punches += acked;
                    let micros = u64::try_from((done - intended).as_micros()).unwrap_or(u64::MAX);
                    outcome.latency_us.saturating_record(micros.max(1));
                }
            }
            Err(failure) => {
                outcome.fail(failure);
                if interval.is_none() {
                    tokio::time::sleep(FAILURE_PAUSE).await;
                }
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use dakoku_ingest_api::request;

    use super::*;

    fn fleet() -> Fleet {
        let devices: Vec<DeviceId> = (0..3)
            .map(|i| format!("D{i:06}").parse().expect("id"))
            .collect();
        Fleet::new(&BenchGroup {
            group: "bench-test".parse().expect("group"),
            baseline_group: "bench-test-b".parse().expect("group"),
            tenant: "bench-test".parse().expect("tenant"),
            authorizations: devices
                .iter()
                .map(|_| HeaderValue::from_static("Bearer x"))
                .collect(),
            devices,
            token_keys: String::new(),
        })
    }

    #[test]
    fn bodies_pass_the_acceptors_own_validation() {
        let fleet = fleet();
        let first = fleet.take_seqs(2, 500);
        assert_eq!((first, fleet.take_seqs(2, 1)), (1, 501));
        let body = fleet.body(2, first, 500);
        let envelope = request::parse_envelope(&body).expect("valid envelope");
        assert_eq!(envelope.device_id, "D000002");
        assert_eq!(envelope.punches.len(), 500);
        for (i, raw) in envelope.punches.iter().enumerate() {
            let punch = request::validate_punch(i, raw).expect("valid punch");
            assert_eq!(punch.seq, first + i as u64);
            // The raw producer writes what the acceptor would for the same punch.
            let record = fleet.raw_punch(2, punch.seq, 0, "x").expect("record");
            assert_eq!(record.card_id, punch.card_id);
            assert_eq!(record.kind, punch.kind);
            assert_eq!(
                (record.at, record.at_offset_minutes),
                RawPunch::at_fields(punch.at)
            );
        }
    }

    #[test]
    fn receipts_are_counted() {
        assert_eq!(
            parse_receipt(br#"{"acked":[1,2,3],"rejected":[]}"#),
            Some((3, 0))
        );
        assert_eq!(
            parse_receipt(br#"{"acked":[],"rejected":[]}"#),
            Some((0, 0))
        );
        assert_eq!(
            parse_receipt(
                br#"{"acked":[7],"rejected":[{"seq":8,"index":1,"error":"kind: ]x"},{"seq":null,"index":2,"error":"e"}]}"#
            ),
            Some((1, 2))
        );
        assert_eq!(parse_receipt(crate::bare::RECEIPT.as_bytes()), Some((1, 0)));
        assert_eq!(parse_receipt(b"{}"), None);
    }
}
