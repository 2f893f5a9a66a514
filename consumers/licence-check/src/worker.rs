//! One tenant group's consume-transform-produce loop, on a thread of its own.
//!
//! Exactly once, Kafka to Kafka: records are read `read_committed` from `punches.raw.<group>`
//! and each becomes one `CheckedPunch` in `punches.checked.<group>` (or, if undecodable, one
//! `QuarantinedInput` in `punches.quarantine`) inside a Kafka transaction that also carries the
//! input offsets (`send_offsets_to_transaction`). The verdicts and the offsets commit together
//! or not at all, so a crash at any point leaves each raw record with exactly one verdict in
//! the committed log.
//!
//! Recovery rules:
//! - a restarted instance initialises its transactional producer with the same
//!   `transactional.id`, which fences the crashed one and aborts its open transaction;
//! - partitions revoked by a rebalance abort the open transaction in the rebalance callback
//!   (their new owner restarts from the committed offsets);
//! - any other failed transaction is aborted and the session is rebuilt (new producer and
//!   consumer, positions from the committed offsets): nothing is skipped, nothing doubled;
//! - fencing (another live instance with this instance's id) and the circuit breaker stop the
//!   group with an error; other groups of the process keep running.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use dakoku_schemas::{
    GroupId, QuarantinedInput, RawPunch, TenantId, Topic, checked_key, decode, encode_into,
};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use crate::breaker::{Breaker, BreakerLimits, Tripped};
use crate::check::check;
use crate::config::{Config, Mode};
use crate::metrics::{self, Tally};
use crate::snapshot::{Snapshot, SnapshotCell};

/// The `source` of quarantine records written here.
pub const QUARANTINE_SOURCE: &str = "licence-check";

/// Why a group's loop stopped for good. Other groups of the process are not affected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// Too many undecodable records: likely a bad deploy upstream. The transaction holding the
    /// record that crossed the limit was aborted, so its records stay unprocessed (not
    /// quarantined) after the last committed offset. Find the cause, then restart the service;
    /// raise `--breaker-max-invalid-ratio` only if the records really are garbage.
    #[error(
        "circuit breaker tripped for consumer group {consumer_group}: {invalid} of the last {seen} records of {topic} were undecodable, above the limit of {limit_percent}%; stopped without committing them. Check what writes to {topic} (a bad deploy?), then restart; records already quarantined are in punches.quarantine with their origin offsets",
        limit_percent = max_invalid_ratio * 100.0
    )]
    BreakerTripped {
        /// The consumer group that stopped.
        consumer_group: String,
        /// The input topic.
        topic: String,
        /// Invalid records in the window.
        invalid: usize,
        /// Records in the window.
        seen: usize,
        /// The configured limit.
        max_invalid_ratio: f64,
    },
    /// Another live instance uses this instance's transactional id or group instance id: it
    /// took over and this one stopped so as not to write as a zombie. Give every running
    /// instance its own `--instance-id`.
    #[error(
        "fenced: another instance took over {what} ({detail}); this one stops. Give each running instance its own --instance-id"
    )]
    Fenced {
        /// Which id was taken over.
        what: String,
        /// What Kafka said.
        detail: String,
    },
    /// A bug: a quarantine record could not be encoded.
    #[error("cannot encode a quarantine record: {0}")]
    Encode(String),
}

/// Where a group's loop is.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupState {
    /// Waiting for the first master-data snapshot or for Kafka.
    Starting,
    /// Consuming.
    Running,
    /// Stopped by shutdown.
    Stopped,
    /// Stopped by an error (see [`GroupError`]).
    Failed(String),
}

/// Counters of one group's loop, for status and benchmarks.
#[derive(Debug, Default)]
pub struct GroupStats {
    /// Records in committed transactions.
    pub records_committed: AtomicU64,
    /// Committed transactions.
    pub transactions_committed: AtomicU64,
    /// Aborted transactions.
    pub transactions_aborted: AtomicU64,
    /// When the first record was read.
    pub first_record_at: OnceLock<Instant>,
    /// When the last transaction committed.
    pub last_commit_at: Mutex<Option<Instant>>,
}

/// What the service and a group's thread share.
#[derive(Debug)]
pub struct GroupShared {
    /// The group.
    pub group: GroupId,
    /// Its state.
    pub state: Mutex<GroupState>,
    /// Its counters.
    pub stats: GroupStats,
}

impl GroupShared {
    /// A group that has not started.
    pub fn new(group: GroupId) -> Self {
        Self {
            group,
            state: Mutex::new(GroupState::Starting),
            stats: GroupStats::default(),
        }
    }

    fn set_state(&self, state: GroupState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// The current state.
    pub fn state(&self) -> GroupState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Everything a group's thread needs.
#[derive(Debug, Clone)]
pub struct WorkerEnv {
    /// The service configuration.
    pub config: Arc<Config>,
    /// Shared with the service.
    pub shared: Arc<GroupShared>,
    /// The master data.
    pub snapshot: Arc<SnapshotCell>,
    /// Set when the service shuts down.
    pub stop: Arc<AtomicBool>,
}

/// The transactional producer.
type TxProducer = ThreadedProducer<DefaultProducerContext>;

/// Why a session ended.
enum SessionEnd {
    /// Shutdown: done.
    Stopped,
    /// The group must stop.
    Fatal(GroupError),
    /// Rebuild the clients and continue from the committed offsets.
    Retry(String),
}

impl From<GroupError> for SessionEnd {
    fn from(error: GroupError) -> Self {
        SessionEnd::Fatal(error)
    }
}

/// Runs the group's loop until shutdown or a fatal error. Blocking: call on its own thread.
pub fn run_group(env: &WorkerEnv) -> Result<(), GroupError> {
    let group = env.shared.group.clone();
    let limits = BreakerLimits {
        max_invalid_ratio: env.config.breaker_max_invalid_ratio,
        window: env.config.breaker_window_records,
        min_records: env.config.breaker_min_records,
    };
    let mut breaker = Breaker::new(limits);
    let mut backoff = Duration::from_millis(200);
    metrics::group_up(&group, true);
    let result = loop {
        match session(env, &mut breaker) {
            SessionEnd::Stopped => break Ok(()),
            SessionEnd::Fatal(error) => break Err(error),
            SessionEnd::Retry(reason) => {
                env.shared.set_state(GroupState::Starting);
                tracing::warn!(%group, reason, retry_in_ms = backoff.as_millis() as u64,
                    "group session ended; rebuilding it from the committed offsets");
                if sleep_unless_stopped(&env.stop, backoff) {
                    break Ok(());
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    metrics::group_up(&group, false);
    match &result {
        Ok(()) => env.shared.set_state(GroupState::Stopped),
        Err(error) => {
            tracing::error!(%group, %error, "consumer group stopped");
            env.shared.set_state(GroupState::Failed(error.to_string()));
        }
    }
    result
}

/// Sleeps up to `duration`; true if the stop flag was set meanwhile.
fn sleep_unless_stopped(stop: &AtomicBool, duration: Duration) -> bool {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    stop.load(Ordering::Relaxed)
}

/// The consumer's callbacks: abort the open transaction when partitions are revoked, and
/// turn librdkafka statistics into lag gauges.
struct GroupContext {
    group: GroupId,
    raw_topic: String,
    producer: Arc<TxProducer>,
    op_timeout: Duration,
    /// A transaction is open (set by the loop, cleared by whoever ends it).
    in_txn: AtomicBool,
    /// The rebalance callback aborted the open transaction; the loop must drop its batch.
    aborted_on_revoke: AtomicBool,
    /// The abort in the callback failed: the session must be rebuilt.
    broken: AtomicBool,
    /// Next offset committed per partition, for lag.
    committed: Mutex<HashMap<i32, i64>>,
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.raw_topic) else {
            return;
        };
        let committed = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        for (partition, stats) in &topic.partitions {
            if *partition < 0 || stats.ls_offset < 0 || !stats.desired {
                continue;
            }
            // Our committed position; before our first commit (offsets are committed through
            // the producer, so librdkafka's committed_offset stays unknown), the position the
            // fetcher started from.
            let position = committed.get(partition).copied().or_else(|| {
                [stats.app_offset, stats.next_offset, stats.committed_offset]
                    .into_iter()
                    .find(|offset| *offset >= 0)
            });
            if let Some(position) = position {
                metrics::lag(&self.group, *partition, (stats.ls_offset - position).max(0));
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                tracing::info!(group = %self.group, partitions = partitions.count(), "partitions revoked");
                if self.in_txn.swap(false, Ordering::SeqCst) {
                    // The new owner starts from the committed offsets; our uncommitted verdicts
                    // for these partitions must never commit.
                    match self.producer.abort_transaction(self.op_timeout) {
                        Ok(()) => {
                            tracing::info!(group = %self.group, "aborted the open transaction on revoke")
                        }
                        Err(error) => {
                            tracing::warn!(group = %self.group, %error, "abort on revoke failed");
                            self.broken.store(true, Ordering::SeqCst);
                        }
                    }
                    self.aborted_on_revoke.store(true, Ordering::SeqCst);
                }
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(group = %self.group, partitions = partitions.count(), "partitions assigned");
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance error");
            }
        }
    }
}

/// The open transaction's bookkeeping.
struct OpenTxn {
    started: Instant,
    records: usize,
    /// Next offset to commit per partition.
    next_offsets: HashMap<i32, i64>,
    tally: Tally,
    snapshot: Option<Arc<Snapshot>>,
}

/// One life of the group's Kafka clients.
fn session(env: &WorkerEnv, breaker: &mut Breaker) -> SessionEnd {
    let config = &env.config;
    let group = &env.shared.group;
    // Without master data there is nothing to check against: wait (refresh retries).
    if config.mode == Mode::Check {
        while env.snapshot.get().is_none() {
            if sleep_unless_stopped(&env.stop, Duration::from_millis(100)) {
                return SessionEnd::Stopped;
            }
        }
    }
    let raw_topic = Topic::Raw(group.clone()).name();
    let transactional_id = config.transactional_id(group);
    let producer: Arc<TxProducer> = match ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", format!("licence-check.{group}"))
        .set("transactional.id", &transactional_id)
        .set(
            "transaction.timeout.ms",
            config.transaction_timeout_ms.to_string(),
        )
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
    {
        Ok(producer) => Arc::new(producer),
        Err(error) => return SessionEnd::Retry(format!("creating the producer: {error}")),
    };
    // Fences any earlier producer with this id and aborts its open transaction, so a crashed
    // instance's half-written batch never commits.
    if let Err(error) = producer.init_transactions(config.kafka_op_timeout()) {
        return fenced_or_retry(error, &transactional_id, "initialising transactions");
    }
    let context = GroupContext {
        group: group.clone(),
        raw_topic: raw_topic.clone(),
        producer: Arc::clone(&producer),
        op_timeout: config.kafka_op_timeout(),
        in_txn: AtomicBool::new(false),
        aborted_on_revoke: AtomicBool::new(false),
        broken: AtomicBool::new(false),
        committed: Mutex::new(HashMap::new()),
    };
    let consumer: BaseConsumer<GroupContext> = match ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", format!("licence-check.{group}"))
        .set("group.id", Config::consumer_group(group))
        // Static membership: a restarted instance takes its partitions back at once instead
        // of waiting for the session timeout of its dead predecessor.
        .set("group.instance.id", config.instance_id())
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        // Eager rebalancing: a revoke takes every partition, so aborting the whole open
        // transaction is exactly right.
        .set("partition.assignment.strategy", "roundrobin")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // librdkafka defaults to latest: a new group would silently skip the backlog.
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "5000")
        .create_with_context(context)
    {
        Ok(consumer) => consumer,
        Err(error) => return SessionEnd::Retry(format!("creating the consumer: {error}")),
    };
    if let Err(error) = consumer.subscribe(&[&raw_topic]) {
        return SessionEnd::Retry(format!("subscribing to {raw_topic}: {error}"));
    }
    env.shared.set_state(GroupState::Running);
    tracing::info!(%group, topic = raw_topic, transactional_id, mode = ?config.mode, "consuming");
    let mut lp = Loop {
        env,
        breaker,
        producer: &producer,
        consumer: &consumer,
        raw_topic: &raw_topic,
        checked_topic: Topic::Checked(group.clone()).name(),
        quarantine_topic: Topic::Quarantine.name(),
        buf: Vec::with_capacity(512),
        last_consumer_warning: None,
    };
    lp.run()
}

fn fenced_or_retry(error: KafkaError, transactional_id: &str, doing: &str) -> SessionEnd {
    if is_fenced(&error) {
        SessionEnd::Fatal(GroupError::Fenced {
            what: format!("transactional id {transactional_id}"),
            detail: error.to_string(),
        })
    } else {
        SessionEnd::Retry(format!("{doing}: {error}"))
    }
}

fn is_fenced(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::FencedInstanceId
        )
    )
}

struct Loop<'a> {
    env: &'a WorkerEnv,
    breaker: &'a mut Breaker,
    producer: &'a TxProducer,
    consumer: &'a BaseConsumer<GroupContext>,
    raw_topic: &'a str,
    checked_topic: String,
    quarantine_topic: String,
    buf: Vec<u8>,
    last_consumer_warning: Option<Instant>,
}

impl Loop<'_> {
    fn group(&self) -> &GroupId {
        &self.env.shared.group
    }

    fn context(&self) -> &GroupContext {
        self.consumer.context()
    }

    fn run(&mut self) -> SessionEnd {
        let config = Arc::clone(&self.env.config);
        let batch_max = Duration::from_millis(config.batch_max_ms);
        let mut txn: Option<OpenTxn> = None;
        loop {
            if self.context().broken.load(Ordering::SeqCst) {
                return SessionEnd::Retry("abort on revoke failed".into());
            }
            if self
                .context()
                .aborted_on_revoke
                .swap(false, Ordering::SeqCst)
                && txn.take().is_some()
            {
                self.aborted();
            }
            if self.env.stop.load(Ordering::Relaxed) {
                if let Some(open) = txn.take() {
                    let budget = Duration::from_millis(config.shutdown_timeout_ms);
                    if let Err(end) = self.commit(open, budget) {
                        tracing::warn!(group = %self.group(), "could not commit the last transaction at shutdown; it was aborted and its records will be checked again");
                        if let SessionEnd::Fatal(error) = end {
                            return SessionEnd::Fatal(error);
                        }
                    }
                }
                return SessionEnd::Stopped;
            }
            let timeout = match &txn {
                Some(open) => {
                    let elapsed = open.started.elapsed();
                    if open.records >= config.batch_max_records || elapsed >= batch_max {
                        let open = txn.take().expect("checked above");
                        if let Err(end) = self.commit(open, config.kafka_op_timeout()) {
                            return end;
                        }
                        continue;
                    }
                    (batch_max - elapsed).min(Duration::from_millis(100))
                }
                None => Duration::from_millis(100),
            };
            let message = match self.consumer.poll(timeout) {
                None => continue,
                Some(Err(error)) => {
                    if let Some(end) = self.consumer_error(error) {
                        if txn.take().is_some() {
                            self.abort();
                        }
                        return end;
                    }
                    continue;
                }
                Some(Ok(message)) => message,
            };
            // The poll may have served a revoke that aborted the open transaction.
            if self
                .context()
                .aborted_on_revoke
                .swap(false, Ordering::SeqCst)
                && txn.take().is_some()
            {
                self.aborted();
            }
            let open = match &mut txn {
                Some(open) => open,
                None => {
                    if let Err(error) = self.producer.begin_transaction() {
                        return fenced_or_retry(
                            error,
                            &config.transactional_id(self.group()),
                            "beginning a transaction",
                        );
                    }
                    self.context().in_txn.store(true, Ordering::SeqCst);
                    tracing::debug!(group = %self.group(), "transaction begun");
                    let _ = self.env.shared.stats.first_record_at.set(Instant::now());
                    txn.insert(OpenTxn {
                        started: Instant::now(),
                        records: 0,
                        next_offsets: HashMap::new(),
                        tally: Tally::default(),
                        snapshot: self.env.snapshot.get(),
                    })
                }
            };
            if let Err(end) = self.handle(&message, open) {
                drop(message);
                if txn.take().is_some() {
                    self.abort();
                }
                return end;
            }
        }
    }

    /// A consumer error: `Some` ends the session.
    fn consumer_error(&mut self, error: KafkaError) -> Option<SessionEnd> {
        if let KafkaError::MessageConsumptionFatal(_) = error {
            if is_fenced(&error) {
                return Some(SessionEnd::Fatal(GroupError::Fenced {
                    what: format!("group instance id {}", self.env.config.instance_id()),
                    detail: error.to_string(),
                }));
            }
            return Some(SessionEnd::Retry(format!("fatal consumer error: {error}")));
        }
        // Transient (broker down, topic not there yet): librdkafka retries by itself. Say it
        // at most every 10 s.
        if self
            .last_consumer_warning
            .is_none_or(|at| at.elapsed() > Duration::from_secs(10))
        {
            tracing::warn!(group = %self.group(), %error, "consumer error; retrying");
            self.last_consumer_warning = Some(Instant::now());
        }
        None
    }

    /// Turns one raw record into its verdict (or quarantine record) in the open transaction.
    fn handle(
        &mut self,
        message: &BorrowedMessage<'_>,
        open: &mut OpenTxn,
    ) -> Result<(), SessionEnd> {
        let partition = message.partition();
        let offset = message.offset();
        match self.env.config.mode {
            Mode::Passthrough => {
                let payload = message.payload().unwrap_or_default();
                let mut record = BaseRecord::to(&self.checked_topic).payload(payload);
                if let Some(key) = message.key() {
                    record = record.key(key);
                }
                send(self.producer, record)?;
                open.tally.passed_through();
            }
            Mode::Check => {
                let decoded = match message.payload() {
                    Some(payload) => decode::<RawPunch>(payload)
                        .map_err(|e| ("undecodable_record", e.to_string())),
                    None => Err(("empty_record", "the record has no value".to_owned())),
                };
                match decoded {
                    Ok(raw) => {
                        let snapshot = open
                            .snapshot
                            .as_deref()
                            .expect("check mode waits for a snapshot before consuming");
                        if self.env.config.check_delay_us > 0 {
                            // The storm's slow licence check (a test knob): it slows this
                            // loop, and so grows the lag, never the acceptor.
                            thread::sleep(Duration::from_micros(self.env.config.check_delay_us));
                        }
                        let decision = check(&raw, snapshot);
                        let key = checked_key(&raw.tenant_id, decision.employee, &raw.card_id);
                        let reason = decision.reason;
                        let checked =
                            decision.apply(raw, snapshot.version, Utc::now().timestamp_millis());
                        self.buf.clear();
                        match encode_into(&checked, &mut self.buf) {
                            Ok(()) => {
                                send(
                                    self.producer,
                                    BaseRecord::to(&self.checked_topic)
                                        .key(&key)
                                        .payload(&self.buf),
                                )?;
                                open.tally.verdict(reason);
                                self.breaker.record(true).map_err(|t| self.tripped(t))?;
                            }
                            Err(error) => self.quarantine(
                                message,
                                open,
                                "unencodable_verdict",
                                error.to_string(),
                            )?,
                        }
                    }
                    Err((code, error)) => self.quarantine(message, open, code, error)?,
                }
            }
        }
        open.records += 1;
        open.next_offsets.insert(partition, offset + 1);
        Ok(())
    }

    /// Preserves an undecodable record in `punches.quarantine`, with its origin, in the open
    /// transaction; trips the breaker if that is one too many.
    fn quarantine(
        &mut self,
        message: &BorrowedMessage<'_>,
        open: &mut OpenTxn,
        code: &str,
        error: String,
    ) -> Result<(), SessionEnd> {
        // Count first: the record that crosses the limit is not quarantined, its transaction
        // is aborted.
        self.breaker.record(false).map_err(|t| self.tripped(t))?;
        let payload = message.payload().unwrap_or_default();
        let tenant = message
            .key()
            .and_then(|key| std::str::from_utf8(key).ok())
            .and_then(|key| key.split_once('/').map_or(Some(key), |(t, _)| Some(t)))
            .filter(|t| t.parse::<TenantId>().is_ok())
            .map(str::to_owned);
        tracing::warn!(group = %self.group(), topic = self.raw_topic, partition = message.partition(),
            offset = message.offset(), code, error, "quarantining an undecodable record");
        let mut record = QuarantinedInput::new(
            Utc::now().timestamp_millis(),
            QUARANTINE_SOURCE,
            code,
            error,
            payload,
            self.env.config.quarantine_max_payload_bytes,
        );
        record.tenant_id = tenant.clone();
        record.origin_topic = Some(self.raw_topic.to_owned());
        record.origin_partition = Some(message.partition());
        record.origin_offset = Some(message.offset());
        self.buf.clear();
        encode_into(&record, &mut self.buf).map_err(|e| GroupError::Encode(e.to_string()))?;
        let mut out = BaseRecord::to(&self.quarantine_topic).payload(&self.buf);
        if let Some(tenant) = &tenant {
            out = out.key(tenant);
        }
        send(self.producer, out)?;
        open.tally.quarantined();
        Ok(())
    }

    fn tripped(&self, tripped: Tripped) -> SessionEnd {
        metrics::breaker_ratio(self.group(), tripped.invalid as f64 / tripped.seen as f64);
        SessionEnd::Fatal(GroupError::BreakerTripped {
            consumer_group: Config::consumer_group(self.group()),
            topic: self.raw_topic.to_owned(),
            invalid: tripped.invalid,
            seen: tripped.seen,
            max_invalid_ratio: tripped.max_invalid_ratio,
        })
    }

    /// Commits the open transaction with its input offsets.
    fn commit(&mut self, open: OpenTxn, timeout: Duration) -> Result<(), SessionEnd> {
        let debug_delay = self.env.config.debug_batch_delay_ms;
        if debug_delay > 0 {
            thread::sleep(Duration::from_millis(debug_delay));
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in &open.next_offsets {
            offsets
                .add_partition_offset(self.raw_topic, *partition, Offset::Offset(*next))
                .map_err(|e| SessionEnd::Retry(format!("offset list: {e}")))?;
        }
        let Some(metadata) = self.consumer.group_metadata() else {
            self.abort();
            return Err(SessionEnd::Retry("no consumer group metadata".into()));
        };
        let deadline = Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        let mut result = self
            .producer
            .send_offsets_to_transaction(&offsets, &metadata, left());
        if result.is_ok() {
            result = self.producer.commit_transaction(left());
            // A retriable commit error may be retried as is (librdkafka's contract).
            while let Err(KafkaError::Transaction(error)) = &result {
                if !error.is_retriable() || left().is_zero() {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
                result = self.producer.commit_transaction(left());
            }
        }
        // A revoke served meanwhile cannot have happened (callbacks run only in poll), so the
        // transaction is ours to end.
        self.context().in_txn.store(false, Ordering::SeqCst);
        match result {
            Ok(()) => {
                self.breaker.commit();
                metrics::breaker_ratio(self.group(), self.breaker.ratio());
                let latency = open.started.elapsed();
                open.tally.publish(self.group(), latency);
                let stats = &self.env.shared.stats;
                stats
                    .records_committed
                    .fetch_add(open.records as u64, Ordering::Relaxed);
                stats.transactions_committed.fetch_add(1, Ordering::Relaxed);
                *stats
                    .last_commit_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                self.context()
                    .committed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(open.next_offsets);
                tracing::debug!(group = %self.group(), records = open.records,
                    latency_ms = latency.as_millis() as u64, "transaction committed");
                Ok(())
            }
            Err(error) => {
                if is_fenced(&error) {
                    self.aborted();
                    return Err(SessionEnd::Fatal(GroupError::Fenced {
                        what: format!(
                            "transactional id {}",
                            self.env.config.transactional_id(self.group())
                        ),
                        detail: error.to_string(),
                    }));
                }
                tracing::warn!(group = %self.group(), %error, records = open.records,
                    "transaction failed; aborting it");
                self.abort();
                Err(SessionEnd::Retry(format!(
                    "committing a transaction: {error}"
                )))
            }
        }
    }

    /// Aborts the open transaction (best effort: a failed abort is settled by the next
    /// session's `init_transactions`).
    fn abort(&mut self) {
        self.context().in_txn.store(false, Ordering::SeqCst);
        if let Err(error) = self
            .producer
            .abort_transaction(self.env.config.kafka_op_timeout())
        {
            tracing::warn!(group = %self.group(), %error, "abort failed; the next session's init fences it");
        }
        self.aborted();
    }

    /// Bookkeeping of an aborted transaction.
    fn aborted(&mut self) {
        self.breaker.abort();
        metrics::transaction_aborted(self.group());
        self.env
            .shared
            .stats
            .transactions_aborted
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Hands a record to the producer, waiting while its queue is full.
fn send<K, P>(producer: &TxProducer, mut record: BaseRecord<'_, K, P>) -> Result<(), SessionEnd>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => return Err(SessionEnd::Retry(format!("producing: {error}"))),
        }
    }
}
