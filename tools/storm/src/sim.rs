//! The recorder simulator behind `punch-storm`: `N` recorders, each with a pool of pending
//! punches and a live trickle of new ones, uploading to the recorder API (`POST /v1/punches`)
//! with one of two resend behaviours, and recording exactly which punches were acked so the
//! end state can be audited.
//!
//! - [`Behaviour::Legacy`] is the incident's recorder (`INCIDENT.md`): one punch per request,
//!   the oldest first; the next one goes out as soon as one is acked; after anything else
//!   (429, 503, 5xx, timeout, broken connection) it waits exactly `legacy_resend` (1 s) and
//!   sends the same punch again. It ignores `Retry-After`.
//! - [`Behaviour::Contract`] follows the recorder contract (CONTRACT §1): batches in `seq`
//!   order, waits `Retry-After` when given, else exponential backoff with full jitter
//!   (`backoff_base` doubling up to `backoff_cap`).
//!
//! Punch `seq` of a recorder is a pure function of the recorder and `seq` ([`punch_of`]), so
//! provisioning, the audit and tests agree on what was sent without keeping it. Each
//! recorder's employees punch a realistic day (in, break, back, out), one work date after
//! another: a pool of 10,000 punches from 50 employees is 50 days of attendance.
//!
//! [`run`] drives the storm until `shutdown` resolves, `max_duration` passes, or (with
//! `stop_when_drained`) every recorder has emptied its initial pool. Requests in flight are
//! always answered before it returns, so the acked set is exact.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use dakoku_schemas::{DeviceId, PunchKind, TenantId};
use hdrhistogram::Histogram;
use hyper::header::HeaderValue;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::http::{Answer, Client};

/// The recorder API's path.
pub const PUNCHES_PATH: &str = "/v1/punches";
/// The recorders' time zone offset (Asia/Tokyo, the default tenant time zone).
const OFFSET: &str = "+09:00";
/// Latencies above this are clamped in the histogram (µs).
const LATENCY_MAX_US: u64 = 120_000_000;

/// How a recorder resends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// The incident's recorders: one punch per request, resend every second whatever the
    /// answer says, `Retry-After` ignored.
    Legacy,
    /// The recorder contract: batches, `Retry-After` honoured, else backoff with full jitter.
    Contract,
}

impl Behaviour {
    /// `legacy` or `contract`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Contract => "contract",
        }
    }
}

/// One simulated recorder: who it is, its token, and the cards of the employees who use it.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Its tenant.
    pub tenant: TenantId,
    /// Its device id.
    pub device: DeviceId,
    /// Its device token (from `punchctl device add`).
    pub token: String,
    /// The cards punched at it; punch `seq` uses card `(seq - 1) / 4 % cards.len()`.
    pub cards: Vec<String>,
}

/// What one simulated punch is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPunch {
    /// The card.
    pub card: String,
    /// The kind.
    pub kind: PunchKind,
    /// RFC 3339 local time with offset.
    pub at: String,
}

/// Punch `seq` (1-based) of `recorder`: employee `(seq - 1) / 4 % E` punches in, starts and
/// ends a break, punches out, on work date `first_day + (seq - 1) / (4 E)`.
pub fn punch_of(recorder: &Recorder, first_day: NaiveDate, seq: u64) -> SimPunch {
    let employees = recorder.cards.len().max(1) as u64;
    let i = seq.saturating_sub(1);
    let day = i / (4 * employees);
    let employee = (i / 4) % employees;
    let (kind, minutes) = match i % 4 {
        0 => (PunchKind::ClockIn, 8 * 60 + 30 + employee % 30),
        1 => (PunchKind::BreakStart, 12 * 60 + employee % 20),
        2 => (PunchKind::BreakEnd, 12 * 60 + 45 + employee % 20),
        _ => (PunchKind::ClockOut, 17 * 60 + 30 + employee % 60),
    };
    let date = first_day + chrono::Duration::days(day as i64);
    let card = recorder
        .cards
        .get(employee as usize)
        .cloned()
        .unwrap_or_default();
    SimPunch {
        card,
        kind,
        at: format!(
            "{}T{:02}:{:02}:{:02}{OFFSET}",
            date.format("%Y-%m-%d"),
            minutes / 60,
            minutes % 60,
            (seq * 7) % 60
        ),
    }
}

/// Everything a storm is told.
#[derive(Debug, Clone)]
pub struct StormConfig {
    /// The recorder API (ingest-api or the synchronous control).
    pub target: SocketAddr,
    /// The recorders.
    pub recorders: Vec<Recorder>,
    /// How they resend.
    pub behaviour: Behaviour,
    /// Pending punches per recorder at the start (the incident's recorders held ~10,000).
    pub pool: u64,
    /// Each recorder gets a new punch this often while the storm runs (`None`: no trickle).
    pub trickle_every: Option<Duration>,
    /// Punches per request in contract mode.
    pub batch: usize,
    /// Legacy: the fixed pause before resending after anything but a `200`.
    pub legacy_resend: Duration,
    /// Contract: backoff base (doubles per consecutive failure).
    pub backoff_base: Duration,
    /// Contract: backoff cap.
    pub backoff_cap: Duration,
    /// A request not answered within this counts as a timeout.
    pub request_timeout: Duration,
    /// Recorders come online spread evenly over this span (0: all at once).
    pub start_spread: Duration,
    /// Stop after this long whatever is left (`None`: no cap).
    pub max_duration: Option<Duration>,
    /// Stop once every recorder has emptied its initial pool.
    pub stop_when_drained: bool,
    /// The work date of the first pooled punch.
    pub first_day: NaiveDate,
}

impl StormConfig {
    /// A storm of `recorders` against `target` with the documented defaults: pool 10,000,
    /// one new punch per recorder every 10 s, batches of 500, legacy resend 1 s, backoff 1 s
    /// to 5 min (CONTRACT §1), 15 s client timeout, all online within 1 s, no cap.
    pub fn new(target: SocketAddr, recorders: Vec<Recorder>, behaviour: Behaviour) -> Self {
        Self {
            target,
            recorders,
            behaviour,
            pool: 10_000,
            trickle_every: Some(Duration::from_secs(10)),
            batch: 500,
            legacy_resend: Duration::from_secs(1),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            request_timeout: Duration::from_secs(15),
            start_spread: Duration::from_secs(1),
            max_duration: None,
            stop_when_drained: false,
            first_day: NaiveDate::from_ymd_opt(2020, 10, 1).unwrap_or_default(),
        }
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), SimError> {
        let fail = |m: &str| Err(SimError::Config(m.to_owned()));
        if self.recorders.is_empty() {
            return fail("no recorders");
        }
        if self.batch == 0 {
            return fail("batch must be positive");
        }
        if self.recorders.iter().any(|r| r.cards.is_empty()) {
            return fail("every recorder needs at least one card");
        }
        if self.max_duration.is_none() && !self.stop_when_drained {
            return fail(
                "give max_duration or stop_when_drained (or both), or the storm never ends",
            );
        }
        if self.stop_when_drained && self.pool == 0 {
            return fail("stop_when_drained with an empty pool stops at once");
        }
        Ok(())
    }
}

/// Why a storm could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot work; fix the named setting.
    #[error("invalid storm configuration: {0}")]
    Config(String),
    /// A recorder's token is not a valid header value (provisioning bug).
    #[error("token of recorder {0} is not a valid header value")]
    Token(String),
    /// A recorder task panicked (a bug in the simulator).
    #[error("a recorder task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Counts of one second (or of the whole storm).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Requests answered or failed.
    pub requests: u64,
    /// Punches acked (answers may ack a punch again: counted each time).
    pub acked: u64,
    /// Punches rejected as invalid (the storm sends none).
    pub rejected: u64,
    /// Outcomes by label: the HTTP status (`"200"`, `"429"`, `"503"`, ...) or a client-side
    /// failure (`"timeout"`, `"connect"`, `"connection"`).
    pub statuses: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.acked += other.acked;
        self.rejected += other.rejected;
        for (label, n) in &other.statuses {
            *self.statuses.entry(label.clone()).or_default() += n;
        }
    }

    /// Requests with this label.
    pub fn status(&self, label: &str) -> u64 {
        self.statuses.get(label).copied().unwrap_or(0)
    }

    /// `429` and `503` answers: the acceptor's cheap refusals.
    pub fn refusals(&self) -> u64 {
        self.status("429") + self.status("503")
    }

    /// Answers that are neither `200` nor a documented refusal with `Retry-After`: other
    /// statuses and client-side failures. Counted, never hidden.
    pub fn undocumented(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(label, _)| !matches!(label.as_str(), "200" | "429" | "503"))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Live counters of a running storm, readable while it runs (the scenario's sampler).
#[derive(Debug, Default)]
pub struct Live {
    /// Punches acked so far (with repeats).
    pub acked: AtomicU64,
    /// Requests answered or failed so far.
    pub requests: AtomicU64,
    /// `429` + `503` answers so far.
    pub refusals: AtomicU64,
    /// Everything else that was not a `200`.
    pub failures: AtomicU64,
    /// Recorders whose initial pool is empty.
    pub drained: AtomicUsize,
    /// Punches still pending across recorders (pool and trickle), as of each one's last step.
    pub pending: AtomicU64,
    shared: Mutex<Shared>,
}

#[derive(Debug)]
struct Shared {
    timeline: Vec<Tally>,
    latency: Histogram<u64>,
    missing_retry_after: u64,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            timeline: Vec::new(),
            latency: new_histogram(),
            missing_retry_after: 0,
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_max(LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

impl Live {
    fn record(&self, second: usize, label: &str, latency: Duration, acked: u64, rejected: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.acked.fetch_add(acked, Ordering::Relaxed);
        match label {
            "200" => {}
            "429" | "503" => {
                self.refusals.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if shared.timeline.len() <= second {
            shared.timeline.resize_with(second + 1, Tally::default);
        }
        let bucket = &mut shared.timeline[second];
        bucket.requests += 1;
        bucket.acked += acked;
        bucket.rejected += rejected;
        *bucket.statuses.entry(label.to_owned()).or_default() += 1;
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_MAX_US);
        shared.latency.saturating_record(micros);
    }

    fn missing_retry_after(&self) {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .missing_retry_after += 1;
    }
}

/// A set of `seq`s as sorted, disjoint, non-adjacent inclusive ranges (acks come in order,
/// so 10,000 acked punches are usually one range).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqSet(Vec<(u64, u64)>);

impl SeqSet {
    /// Adds `seq`.
    pub fn insert(&mut self, seq: u64) {
        if let Some(last) = self.0.last_mut() {
            if seq >= last.0 && seq <= last.1 {
                return;
            }
            if seq == last.1 + 1 {
                last.1 = seq;
                return;
            }
            if seq > last.1 {
                self.0.push((seq, seq));
                return;
            }
        } else {
            self.0.push((seq, seq));
            return;
        }
        // Out of order (rare): insert and normalise.
        self.0.push((seq, seq));
        self.normalise();
    }

    fn normalise(&mut self) {
        self.0.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(self.0.len());
        for &(lo, hi) in &self.0 {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        self.0 = out;
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < seq);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= seq)
    }

    /// Number of seqs.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|&(lo, hi)| hi - lo + 1).sum()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every seq, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    /// The ranges.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.0
    }
}

/// What one recorder ended with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecorderOutcome {
    /// Tenant.
    pub tenant: String,
    /// Device.
    pub device: String,
    /// Every seq acked at least once.
    pub acked: SeqSet,
    /// Punches created (pool plus trickle): seqs `1..=created`.
    pub created: u64,
    /// Punches still pending when the storm stopped.
    pub pending: u64,
    /// When its initial pool was empty, seconds after the storm started.
    pub pool_drained_after_secs: Option<f64>,
}

/// What a storm did.
#[derive(Debug)]
pub struct Outcome {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it ran.
    pub elapsed: Duration,
    /// The behaviour.
    pub behaviour: Behaviour,
    /// Per recorder.
    pub recorders: Vec<RecorderOutcome>,
    /// Per second since the start.
    pub timeline: Vec<Tally>,
    /// All of it.
    pub totals: Tally,
    /// Latency of every request (µs), whatever its answer.
    pub latency: Histogram<u64>,
    /// `429`/`503` answers that came without a `Retry-After` (a contract breach if not 0).
    pub missing_retry_after: u64,
    /// Why it stopped.
    pub stopped_because: StopReason,
}

/// Why a storm stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every recorder emptied its initial pool.
    Drained,
    /// `max_duration` passed.
    DurationCap,
    /// The caller's shutdown future resolved.
    Shutdown,
}

impl Outcome {
    /// Distinct punches acked.
    pub fn acked_distinct(&self) -> u64 {
        self.recorders.iter().map(|r| r.acked.len()).sum()
    }

    /// Punches still pending at the end.
    pub fn pending(&self) -> u64 {
        self.recorders.iter().map(|r| r.pending).sum()
    }

    /// Seconds until every initial pool was empty (`None` if some was not).
    pub fn all_drained_after_secs(&self) -> Option<f64> {
        self.recorders
            .iter()
            .map(|r| r.pool_drained_after_secs)
            .try_fold(0.0_f64, |max, d| d.map(|d| max.max(d)))
    }

    /// Recorders whose initial pool was not empty at the end.
    pub fn pools_remaining(&self) -> usize {
        self.recorders
            .iter()
            .filter(|r| r.pool_drained_after_secs.is_none())
            .count()
    }
}

/// Runs the storm described by `config` until it ends by itself or `shutdown` resolves.
pub async fn run(
    config: StormConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, SimError> {
    run_with(config, Arc::new(Live::default()), shutdown).await
}

/// [`run`] with live counters the caller can sample while it runs.
pub async fn run_with(
    config: StormConfig,
    live: Arc<Live>,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, SimError> {
    config.validate()?;
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let started_at = Utc::now();
    let n = config.recorders.len();
    let mut tasks = Vec::with_capacity(n);
    for index in 0..n {
        let recorder = &config.recorders[index];
        let authorization = HeaderValue::from_str(&format!("Bearer {}", recorder.token))
            .map_err(|_| SimError::Token(recorder.device.to_string()))?;
        let delay = config.start_spread.mul_f64(index as f64 / n as f64);
        let task = RecorderTask {
            config: Arc::clone(&config),
            live: Arc::clone(&live),
            index,
            authorization,
            client: Client::new(config.target, config.request_timeout),
            stop: stop_rx.clone(),
            started,
            start_delay: delay,
            trickle_phase: config
                .trickle_every
                .map(|every| every.mul_f64(index as f64 / n as f64))
                .unwrap_or_default(),
        };
        tasks.push(tokio::spawn(task.run()));
    }

    // The coordinator: the first of shutdown, the cap, or every pool drained.
    let stopped_because = {
        let cap = async {
            match config.max_duration {
                Some(cap) => tokio::time::sleep(cap).await,
                None => std::future::pending().await,
            }
        };
        let drained = async {
            if !config.stop_when_drained {
                return std::future::pending().await;
            }
            while live.drained.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            _ = shutdown => StopReason::Shutdown,
            _ = cap => StopReason::DurationCap,
            _ = drained => StopReason::Drained,
        }
    };
    tracing::info!(reason = ?stopped_because, elapsed_s = started.elapsed().as_secs_f64(), "storm stopping; waiting for requests in flight");
    let _ = stop_tx.send(true);
    let mut recorders = Vec::with_capacity(n);
    for task in tasks {
        recorders.push(task.await?);
    }
    let elapsed = started.elapsed();
    let shared = std::mem::take(&mut *live.shared.lock().unwrap_or_else(|e| e.into_inner()));
    let mut totals = Tally::default();
    for bucket in &shared.timeline {
        totals.add(bucket);
    }
    Ok(Outcome {
        started_at,
        elapsed,
        behaviour: config.behaviour,
        recorders,
        timeline: shared.timeline,
        totals,
        latency: shared.latency,
        missing_retry_after: shared.missing_retry_after,
        stopped_because,
    })
}

/// The receipt of a `200`.
#[derive(Debug, Deserialize)]
struct Receipt {
    acked: Vec<u64>,
    #[serde(default)]
    rejected: Vec<RejectedItem>,
}

#[derive(Debug, Deserialize)]
struct RejectedItem {
    seq: Option<u64>,
}

/// One recorder's loop.
struct RecorderTask {
    config: Arc<StormConfig>,
    live: Arc<Live>,
    index: usize,
    authorization: HeaderValue,
    client: Client,
    stop: watch::Receiver<bool>,
    started: Instant,
    start_delay: Duration,
    trickle_phase: Duration,
}

/// A recorder's pending punches: `retry` (sent, not yet acked, in seq order) before
/// `next..created` (never sent). Seqs are contiguous, so nothing is materialised.
#[derive(Debug, Default)]
struct Pending {
    retry: std::collections::VecDeque<u64>,
    next: u64,
    created: u64,
}

impl Pending {
    fn len(&self) -> u64 {
        self.retry.len() as u64 + (self.created + 1 - self.next)
    }

    /// Up to `n` seqs to send, oldest first; they move to `retry` until answered.
    fn take(&mut self, n: usize) -> Vec<u64> {
        let mut out: Vec<u64> = self.retry.iter().take(n).copied().collect();
        while out.len() < n && self.next <= self.created {
            self.retry.push_back(self.next);
            out.push(self.next);
            self.next += 1;
        }
        out
    }

    /// Removes answered seqs (acked or rejected) from `retry`.
    fn answered(&mut self, seqs: &[u64]) {
        if seqs.is_empty() {
            return;
        }
        let mut sorted = seqs.to_vec();
        sorted.sort_unstable();
        self.retry.retain(|s| sorted.binary_search(s).is_err());
    }
}

impl RecorderTask {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `duration` unless the storm stops first; true if it stopped.
    async fn pause(&self, duration: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(duration) => self.stopped(),
            _ = stop.wait_for(|s| *s) => true,
        }
    }

    /// Punches created by now: the pool, then one per `trickle_every` since the start.
    fn created_by_now(&self) -> u64 {
        let pool = self.config.pool;
        match self.config.trickle_every {
            Some(every) if !every.is_zero() => {
                let elapsed = self.started.elapsed();
                let since = elapsed.saturating_sub(self.trickle_phase);
                pool + (since.as_secs_f64() / every.as_secs_f64()) as u64
            }
            _ => pool,
        }
    }

    /// How long until the next trickle punch exists.
    fn until_next_trickle(&self, created: u64) -> Option<Duration> {
        let every = self.config.trickle_every?;
        let k = created + 1 - self.config.pool;
        let due = self.trickle_phase + every.mul_f64(k as f64);
        Some(due.saturating_sub(self.started.elapsed()))
    }

    fn body(&self, seqs: &[u64]) -> Bytes {
        use std::fmt::Write as _;
        let recorder = &self.config.recorders[self.index];
        let mut body = String::with_capacity(48 + seqs.len() * 100);
        let _ = write!(body, r#"{{"device_id":"{}","punches":["#, recorder.device);
        for (i, &seq) in seqs.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let punch = punch_of(recorder, self.config.first_day, seq);
            let _ = write!(
                body,
                r#"{{"seq":{seq},"card_id":"{}","kind":"{}","at":"{}"}}"#,
                punch.card,
                punch.kind.as_str(),
                punch.at
            );
        }
        body.push_str("]}");
        Bytes::from(body)
    }

    async fn run(mut self) -> RecorderOutcome {
        let recorder = &self.config.recorders[self.index];
        let mut outcome = RecorderOutcome {
            tenant: recorder.tenant.to_string(),
            device: recorder.device.to_string(),
            acked: SeqSet::default(),
            created: 0,
            pending: 0,
            pool_drained_after_secs: (self.config.pool == 0).then_some(0.0),
        };
        if outcome.pool_drained_after_secs.is_some() {
            self.live.drained.fetch_add(1, Ordering::Relaxed);
        }
        let mut pending = Pending {
            next: 1,
            ..Pending::default()
        };
        let mut last_pending = 0u64;
        let mut failures: u32 = 0;
        if !self.start_delay.is_zero() && self.pause(self.start_delay).await {
            return self.finish(outcome, &pending, last_pending);
        }
        loop {
            if self.stopped() {
                break;
            }
            pending.created = self.created_by_now();
            let now_pending = pending.len();
            self.live_pending(&mut last_pending, now_pending);
            if now_pending == 0 {
                let wait = self
                    .until_next_trickle(pending.created)
                    .unwrap_or(Duration::from_secs(3600));
                if self.pause(wait.max(Duration::from_millis(1))).await {
                    break;
                }
                continue;
            }
            let per_request = match self.config.behaviour {
                Behaviour::Legacy => 1,
                Behaviour::Contract => self.config.batch,
            };
            let seqs = pending.take(per_request);
            let body = self.body(&seqs);
            let sent = Instant::now();
            let result = self
                .client
                .post_json(PUNCHES_PATH, &self.authorization, body)
                .await;
            let latency = sent.elapsed();
            let second = self.started.elapsed().as_secs() as usize;
            let wait = match result {
                Ok(answer) if answer.status == 200 => {
                    let (acked, rejected) = self.receipt(&answer);
                    self.live.record(
                        second,
                        "200",
                        latency,
                        acked.len() as u64,
                        rejected.len() as u64,
                    );
                    for &seq in &acked {
                        outcome.acked.insert(seq);
                    }
                    pending.answered(&acked);
                    pending.answered(&rejected);
                    failures = 0;
                    None
                }
                Ok(answer) => {
                    let label = answer.status.as_str().to_owned();
                    self.live.record(second, &label, latency, 0, 0);
                    let retry_after = answer.retry_after();
                    if matches!(answer.status.as_u16(), 429 | 503) && retry_after.is_none() {
                        self.live.missing_retry_after();
                    }
                    failures = failures.saturating_add(1);
                    Some(self.wait_after_failure(retry_after, failures))
                }
                Err(error) => {
                    self.live.record(second, error.label(), latency, 0, 0);
                    tracing::debug!(device = %recorder.device, %error, "request failed");
                    failures = failures.saturating_add(1);
                    Some(self.wait_after_failure(None, failures))
                }
            };
            if outcome.pool_drained_after_secs.is_none()
                && pending.next > self.config.pool
                && pending.retry.front().is_none_or(|&s| s > self.config.pool)
            {
                outcome.pool_drained_after_secs = Some(self.started.elapsed().as_secs_f64());
                self.live.drained.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(wait) = wait
                && self.pause(wait).await
            {
                break;
            }
        }
        self.finish(outcome, &pending, last_pending)
    }

    fn live_pending(&self, last: &mut u64, now: u64) {
        if now >= *last {
            self.live.pending.fetch_add(now - *last, Ordering::Relaxed);
        } else {
            self.live.pending.fetch_sub(*last - now, Ordering::Relaxed);
        }
        *last = now;
    }

    fn finish(
        &self,
        mut outcome: RecorderOutcome,
        pending: &Pending,
        mut last_pending: u64,
    ) -> RecorderOutcome {
        outcome.created = pending.created;
        outcome.pending = if pending.created == 0 {
            0
        } else {
            pending.len()
        };
        self.live_pending(&mut last_pending, 0);
        outcome
    }

    /// The acked and rejected seqs of a `200`; an unreadable receipt acks nothing (the
    /// punches stay pending and are sent again, which is harmless).
    fn receipt(&self, answer: &Answer) -> (Vec<u64>, Vec<u64>) {
        match serde_json::from_slice::<Receipt>(&answer.body) {
            Ok(receipt) => (
                receipt.acked,
                receipt.rejected.into_iter().filter_map(|r| r.seq).collect(),
            ),
            Err(error) => {
                tracing::warn!(%error, "unreadable receipt; the punches stay pending");
                (Vec::new(), Vec::new())
            }
        }
    }

    fn wait_after_failure(&self, retry_after: Option<u64>, failures: u32) -> Duration {
        match self.config.behaviour {
            Behaviour::Legacy => self.config.legacy_resend,
            Behaviour::Contract => match retry_after {
                Some(seconds) => Duration::from_secs(seconds),
                None => full_jitter(self.config.backoff_base, self.config.backoff_cap, failures),
            },
        }
    }
}

/// Exponential backoff with full jitter: uniform in `[0, min(cap, base * 2^(failures - 1))]`.
pub fn full_jitter(base: Duration, cap: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let ceiling = base.saturating_mul(1u32 << exp).min(cap);
    ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(cards: usize) -> Recorder {
        Recorder {
            tenant: "t".parse().expect("tenant"),
            device: "D1".parse().expect("device"),
            token: "x".into(),
            cards: (0..cards).map(|i| format!("C{i}")).collect(),
        }
    }

    #[test]
    fn punches_follow_a_working_day_per_employee() {
        let r = recorder(2);
        let day = NaiveDate::from_ymd_opt(2020, 12, 1).expect("date");
        let kinds: Vec<PunchKind> = (1..=8).map(|s| punch_of(&r, day, s).kind).collect();
        assert_eq!(
            kinds,
            [
                PunchKind::ClockIn,
                PunchKind::BreakStart,
                PunchKind::BreakEnd,
                PunchKind::ClockOut
            ]
            .repeat(2)
        );
        assert_eq!(punch_of(&r, day, 1).card, "C0");
        assert_eq!(punch_of(&r, day, 5).card, "C1");
        assert!(punch_of(&r, day, 8).at.starts_with("2020-12-01T17:"));
        assert!(punch_of(&r, day, 9).at.starts_with("2020-12-02T08:"));
        assert!(punch_of(&r, day, 9).at.ends_with("+09:00"));
    }

    #[test]
    fn seq_sets_merge_ranges_in_any_order() {
        let mut set = SeqSet::default();
        for seq in [1, 2, 3, 7, 5, 6, 3, 4, 10] {
            set.insert(seq);
        }
        assert_eq!(set.ranges(), &[(1, 7), (10, 10)]);
        assert_eq!(set.len(), 8);
        assert!(set.contains(6) && set.contains(10) && !set.contains(8) && !set.contains(0));
    }

    #[test]
    fn pending_sends_retries_first_and_in_order() {
        let mut p = Pending {
            next: 1,
            created: 5,
            ..Pending::default()
        };
        assert_eq!(p.take(2), vec![1, 2]);
        p.answered(&[2]);
        assert_eq!(p.take(3), vec![1, 3, 4]);
        p.answered(&[1, 3, 4]);
        assert_eq!(p.len(), 1);
        assert_eq!(p.take(5), vec![5]);
    }

    #[test]
    fn full_jitter_stays_under_its_ceiling() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        for failures in 1..40 {
            let wait = full_jitter(base, cap, failures);
            assert!(wait <= cap);
            assert!(wait <= base * 2u32.pow(failures.saturating_sub(1).min(20)));
        }
    }

    #[test]
    fn a_storm_that_never_ends_is_refused() {
        let mut config = StormConfig::new(
            "127.0.0.1:1".parse().expect("addr"),
            vec![recorder(1)],
            Behaviour::Legacy,
        );
        assert!(config.validate().is_err());
        config.max_duration = Some(Duration::from_secs(1));
        assert!(config.validate().is_ok());
    }
}
