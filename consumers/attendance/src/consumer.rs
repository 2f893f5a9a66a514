//! The consume loop of one tenant group: read verdicts, batch them, write each batch in one
//! Postgres transaction (see [`crate::store`]), then publish the changed days.
//!
//! Offsets live in Postgres, next to the rows they produced. On every assignment the rebalance
//! callback reads them and assigns the partitions *at* those offsets (librdkafka's recommended
//! way to keep offsets outside Kafka), so a restarted or rebalanced consumer continues exactly
//! after the last committed batch, whatever Kafka's own committed offsets say; those are
//! committed too, after Postgres, for lag monitoring only. An open batch is dropped on any
//! rebalance: its records are read again from the stored offsets by whoever owns them now.
//!
//! Failure handling: a Postgres error rolls the batch back; the same batch is retried with
//! exponential backoff on a new connection, and nothing is read or committed past it until it
//! is written. A failed publish is retried the same way; days committed but not yet published
//! are published again at the next start (the outbox mark in `attendance_publish_marks`).
//! Shutdown stops reading, commits the open batch within the drain budget or rolls it back,
//! and leaves the group.
//!
//! A group whose `punchctl rebuild` was interrupted (its row in `attendance_rebuilds`) is not
//! consumed: the group stops with [`ConsumerError::UnfinishedRebuild`], naming the command to
//! run, before anything is read (and, for a service started during the rebuild, at its first
//! batch after the rebuild's lock is released). Consuming would store the cleared punches
//! again while the days the rebuild deferred keep stale figures, silently.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use dakoku_schemas::{AttendanceDay, ConsumerGroup, GroupId, Topic, attendance_key, encode};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::decode::{Incoming, Poison, decode_record};
use crate::metrics::{self, Health};
use crate::store::marker::UnfinishedRebuild;
use crate::store::{self, Store, StoreError};

/// Errors that stop a group's consumer (everything else is retried).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The Kafka client could not be created or subscribed (bad configuration).
    #[error("Kafka client for group {group}: {source}")]
    Kafka {
        /// The tenant group.
        group: GroupId,
        /// What librdkafka said.
        #[source]
        source: KafkaError,
    },
    /// Too many records of one batch could not be decoded: a bad deploy upstream. Fix the
    /// producer (or quarantine by hand), then restart; nothing of the batch was written.
    #[error(
        "group {group}: {invalid} of {records} records in one batch are invalid (limit {ratio}); stopping instead of quarantining everything"
    )]
    TooManyInvalid {
        /// The tenant group.
        group: GroupId,
        /// Invalid records.
        invalid: usize,
        /// Records in the batch.
        records: usize,
        /// The configured limit.
        ratio: f64,
    },
    /// A `punchctl rebuild` of the group cleared its punches and was interrupted before it
    /// recomputed the days: consuming now would leave those days stale for good. Run the
    /// rebuild again (the message says which, with this service stopped), then restart.
    #[error(
        "group {}: {} did not finish; consuming now would leave its days with stale figures. Stop this service, run `{}`, then start the service again",
        .0.group, .0.describe(), .0.command()
    )]
    UnfinishedRebuild(UnfinishedRebuild),
}

/// What the group consumers share: configuration, the producer, health.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub producer: Producer,
    pub health: Arc<Health>,
}

/// The producer for `attendance.daily.<group>` and `punches.quarantine`.
#[derive(Clone)]
pub(crate) struct Producer(FutureProducer);

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Producer")
    }
}

impl Producer {
    pub(crate) fn new(config: &Config) -> Result<Self, KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("client.id", format!("{}-producer", config.client_id()))
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .set("compression.type", "lz4")
            .create()?;
        Ok(Self(producer))
    }

    /// Sends every record and waits until Kafka has them all.
    async fn send_all(&self, topic: &str, records: &[(String, Vec<u8>)]) -> Result<(), String> {
        let deliveries = self.enqueue(topic, records)?;
        Self::confirmed(deliveries).await
    }

    /// Hands every record to librdkafka (which copies them) without waiting for delivery.
    fn enqueue(
        &self,
        topic: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<Vec<DeliveryFuture>, String> {
        let mut deliveries = Vec::with_capacity(records.len());
        for (key, payload) in records {
            let record = FutureRecord::to(topic).key(key).payload(payload);
            match self.0.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((error, _)) => return Err(error.to_string()),
            }
        }
        Ok(deliveries)
    }

    /// Waits until Kafka has confirmed every delivery.
    async fn confirmed(deliveries: Vec<DeliveryFuture>) -> Result<(), String> {
        for delivery in futures::future::join_all(deliveries).await {
            match delivery {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(error.to_string()),
                Err(_) => return Err("delivery report dropped".into()),
            }
        }
        Ok(())
    }

    pub(crate) fn flush(&self, timeout: Duration) {
        if let Err(error) = self.0.flush(timeout) {
            tracing::warn!(%error, "producer flush incomplete at shutdown");
        }
    }
}

/// Rebalance handling: assigns partitions at the offsets stored in Postgres.
struct AssignContext {
    group: GroupId,
    database_url: String,
    consumer_group: String,
    topic: String,
    stopping: Arc<AtomicBool>,
    generation: AtomicU64,
    lookup_timeout: Duration,
    retry_initial: Duration,
    retry_max: Duration,
}

impl ClientContext for AssignContext {}

impl ConsumerContext for AssignContext {
    fn rebalance(
        &self,
        base_consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                match self.stored_offsets_blocking() {
                    Some(stored) => {
                        let partitions: Vec<(String, i32)> = tpl
                            .elements()
                            .iter()
                            .map(|e| (e.topic().to_owned(), e.partition()))
                            .collect();
                        let mut at = BTreeMap::new();
                        for (topic, partition) in partitions {
                            let offset = match stored.get(&partition) {
                                Some(&next) if topic == self.topic => Offset::Offset(next),
                                _ => Offset::Beginning,
                            };
                            at.insert(partition, format!("{offset:?}"));
                            if let Err(error) = tpl.set_partition_offset(&topic, partition, offset)
                            {
                                tracing::error!(%error, partition, "cannot set the start offset");
                            }
                        }
                        tracing::info!(group = %self.group, partitions = ?at,
                            "partitions assigned at the offsets stored in Postgres");
                        base_consumer.assign(tpl)
                    }
                    None => base_consumer.unassign(),
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(group = %self.group, partitions = tpl.count(), "partitions revoked");
                base_consumer.unassign()
            }
            other => {
                tracing::warn!(group = %self.group, error = ?other, "rebalance error");
                base_consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::error!(group = %self.group, %error, "applying the assignment failed");
        }
    }
}

impl AssignContext {
    /// The stored offsets, read on a thread of its own (the callback is synchronous); retried
    /// until Postgres answers. `None` once shutdown has begun.
    fn stored_offsets_blocking(&self) -> Option<HashMap<i32, i64>> {
        let mut delay = self.retry_initial;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return None;
            }
            let url = self.database_url.clone();
            let consumer_group = self.consumer_group.clone();
            let topic = self.topic.clone();
            let timeout = self.lookup_timeout;
            let lookup = move || {
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime
                        .block_on(store::load_offsets(&url, &consumer_group, &topic, timeout))
                        .map_err(|e| e.to_string())
                })
                .join()
                .unwrap_or_else(|_| Err("offset lookup thread panicked".into()))
            };
            let on_multi_thread = tokio::runtime::Handle::try_current()
                .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
                .unwrap_or(false);
            let result = if on_multi_thread {
                tokio::task::block_in_place(lookup)
            } else {
                lookup()
            };
            match result {
                Ok(stored) => return Some(stored),
                Err(error) => {
                    metrics::retry(&self.group, "postgres");
                    tracing::warn!(group = %self.group, %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "cannot read stored offsets for the assignment; retrying");
                    let until = Instant::now() + delay;
                    while Instant::now() < until && !self.stopping.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    delay = (delay * 2).min(self.retry_max);
                }
            }
        }
    }
}

/// One tenant group's consumer.
struct GroupLoop {
    shared: Arc<Shared>,
    group: GroupId,
    topic: String,
    daily_topic: String,
    store: Option<Store>,
    /// The open batch.
    batch: Vec<Incoming>,
    poison: Vec<Poison>,
    batch_started: Option<tokio::time::Instant>,
    /// Every day changed by batches up to this one has been published.
    published_through: Option<i64>,
    /// The last batch's days, handed to Kafka and awaiting confirmation while the next batch
    /// is written.
    publishing: Option<InFlight>,
    delay: Duration,
}

/// Days of a committed batch handed to Kafka, not yet confirmed.
struct InFlight {
    batch_seq: i64,
    days: Vec<AttendanceDay>,
    deliveries: Vec<DeliveryFuture>,
}

/// What the reader hands the writer, in log order.
// Records are the common case and move through the channel once; boxing them would cost an
// allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
enum Feed {
    /// A record: a verdict, or a poison record to quarantine (offset advances either way).
    Record(Incoming, Option<Poison>),
    /// The assignment changed: everything before this belongs to the old one.
    Rebalanced,
}

/// Runs one group's consumer until `stop` turns true.
///
/// Two tasks: the reader polls Kafka (serving rebalances) and decodes, the writer batches and
/// writes. The bounded channel between them lets the next batch be read and decoded while the
/// current one is written, and stops reading while Postgres is away.
pub(crate) async fn run_group(
    shared: Arc<Shared>,
    group: GroupId,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConsumerError> {
    let config = &shared.config;
    let topic = Topic::Checked(group.clone()).name();
    let stopping = Arc::new(AtomicBool::new(false));
    let context = AssignContext {
        group: group.clone(),
        database_url: config.database_url.clone(),
        consumer_group: ConsumerGroup::Attendance(group.clone()).name(),
        topic: topic.clone(),
        stopping: Arc::clone(&stopping),
        generation: AtomicU64::new(0),
        lookup_timeout: config.statement_timeout(),
        retry_initial: Duration::from_millis(config.retry_initial_ms),
        retry_max: Duration::from_millis(config.retry_max_ms),
    };
    let kafka = |source| ConsumerError::Kafka {
        group: group.clone(),
        source,
    };
    let consumer: Arc<StreamConsumer<AssignContext>> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", ConsumerGroup::Attendance(group.clone()).name())
            .set("client.id", config.client_id())
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("partition.assignment.strategy", "roundrobin")
            .set("session.timeout.ms", config.session_timeout_ms.to_string())
            .create_with_context(context)
            .map_err(kafka)?,
    );

    let mut this = GroupLoop {
        shared: Arc::clone(&shared),
        group: group.clone(),
        topic: topic.clone(),
        daily_topic: Topic::AttendanceDaily(group.clone()).name(),
        store: None,
        batch: Vec::new(),
        poison: Vec::new(),
        batch_started: None,
        published_through: None,
        publishing: None,
        delay: Duration::from_millis(config.retry_initial_ms),
    };

    // Before reading anything: a store, no unfinished rebuild, and every committed day on the
    // topic.
    match this.recover(wait_for_stop(stop.clone())).await {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(error) => {
            // Down, as for any group that stops on an error (readiness and `attendance_up`).
            shared.health.set_up(&group, false);
            return Err(error);
        }
    }
    consumer.subscribe(&[topic.as_str()]).map_err(kafka)?;
    shared.health.set_up(&group, true);
    tracing::info!(group = %group, topic, "consuming");

    let max_records = config.batch_max_records;
    let max_wait = config.batch_max_wait();
    let (feed_tx, mut feed) = mpsc::channel::<Feed>(max_records.max(1));
    let reader = tokio::spawn(read(
        Arc::clone(&consumer),
        group.clone(),
        feed_tx,
        stop.clone(),
    ));
    let mut result = Ok(());
    loop {
        let deadline = this.batch_started.map(|t| t + max_wait);
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            () = sleep_until(deadline), if deadline.is_some() => {
                match this.flush(&consumer, wait_for_stop(stop.clone()), false).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error) => { result = Err(error); break; }
                }
            }
            item = feed.recv() => match item {
                None => break,
                Some(Feed::Rebalanced) => {
                    if !this.batch.is_empty() {
                        tracing::info!(group = %group, records = this.batch.len(),
                            "rebalance: dropping the open batch; it is read again from the stored offsets");
                    }
                    this.clear_batch();
                }
                Some(Feed::Record(record, poison)) => {
                    this.push(record, poison);
                    if this.batch.len() >= max_records {
                        match this.flush(&consumer, wait_for_stop(stop.clone()), false).await {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(error) => { result = Err(error); break; }
                        }
                    }
                }
            },
        }
    }

    // Shutdown: no more reading; commit the open batch within the drain budget or roll back.
    shared.health.set_up(&group, false);
    stopping.store(true, Ordering::SeqCst);
    drop(feed);
    if result.is_ok() && !this.batch.is_empty() {
        let drain = config.drain_timeout();
        tracing::info!(group = %group, records = this.batch.len(), budget_ms = drain.as_millis() as u64,
            "shutting down: committing the open batch");
        match this.flush(&consumer, tokio::time::sleep(drain), true).await {
            Ok(true) => tracing::info!(group = %group, "open batch committed"),
            Ok(false) => tracing::warn!(group = %group,
                "open batch rolled back at shutdown; it is read again at the next start"),
            Err(error) => result = Err(error),
        }
    }
    if this.publishing.is_some() {
        let mut budget = std::pin::pin!(tokio::time::sleep(config.drain_timeout()));
        if !this.confirm_published(&mut budget).await {
            tracing::warn!(group = %group, "days not confirmed by Kafka at shutdown; the next start republishes them");
        }
    }
    if let (Some(store), Some(seq)) = (&this.store, this.published_through)
        && let Err(error) = store.mark_published(seq).await
    {
        tracing::debug!(group = %group, %error, "publish mark not stored; the next start republishes");
    }
    // The reader ends at the stop signal or when the channel closes (dropped above).
    if !*stop.borrow() {
        // Stopping on an error: the reader still waits for the signal; end it.
        reader.abort();
    }
    let _ = reader.await;
    consumer.unsubscribe();
    tracing::info!(group = %group, "stopped");
    result
}

/// The reader: polls Kafka (which runs the rebalance callback), decodes, and feeds the writer
/// in log order, announcing every change of assignment.
async fn read(
    consumer: Arc<StreamConsumer<AssignContext>>,
    group: GroupId,
    feed: mpsc::Sender<Feed>,
    mut stop: watch::Receiver<bool>,
) {
    let mut generation = consumer.context().generation.load(Ordering::SeqCst);
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return,
            message = consumer.recv() => message,
        };
        let now = consumer.context().generation.load(Ordering::SeqCst);
        if now != generation {
            generation = now;
            if feed.send(Feed::Rebalanced).await.is_err() {
                return;
            }
        }
        let item = match message {
            Ok(message) => decode_message(&group, &message),
            Err(error) => {
                tracing::warn!(group = %group, %error, "Kafka consumer error");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A full channel (the writer is retrying Postgres) stops the reading here.
        if feed.send(item).await.is_err() {
            return;
        }
    }
}

fn decode_message(group: &GroupId, message: &BorrowedMessage<'_>) -> Feed {
    let (record, poison) = decode_record(group, message);
    Feed::Record(record, poison)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn wait_for_stop(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

impl GroupLoop {
    fn clear_batch(&mut self) {
        self.batch.clear();
        self.poison.clear();
        self.batch_started = None;
    }

    fn push(&mut self, record: Incoming, poison: Option<Poison>) {
        if self.batch_started.is_none() {
            self.batch_started = Some(tokio::time::Instant::now());
        }
        self.batch.push(record);
        self.poison.extend(poison);
    }

    /// Connects the store, refuses the group while a rebuild of it is unfinished, and
    /// publishes what an earlier run committed but may not have published. Returns false if
    /// `cancel` fired first.
    async fn recover(&mut self, cancel: impl Future<Output = ()>) -> Result<bool, ConsumerError> {
        let mut cancel = std::pin::pin!(cancel);
        loop {
            match self.try_recover().await {
                Ok(None) => {
                    self.delay = Duration::from_millis(self.shared.config.retry_initial_ms);
                    return Ok(true);
                }
                Ok(Some(unfinished)) => return Err(self.refuse(unfinished)),
                Err(error) => {
                    tracing::warn!(group = %self.group, %error,
                        retry_in_ms = self.delay.as_millis() as u64,
                        "cannot start: Postgres or Kafka unavailable; retrying");
                    if !self.backoff(&mut cancel).await {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// The error that stops the group because of `unfinished`, logged for the operator.
    fn refuse(&self, unfinished: UnfinishedRebuild) -> ConsumerError {
        tracing::error!(group = %self.group, command = %unfinished.command(),
            started_at = %unfinished.started_at, started_by = %unfinished.started_by,
            "an interrupted rebuild must be run again before this group is consumed");
        ConsumerError::UnfinishedRebuild(unfinished)
    }

    /// `Ok(Some(_))`: the group has an unfinished rebuild (nothing was published).
    async fn try_recover(&mut self) -> Result<Option<UnfinishedRebuild>, String> {
        let store = self.store().await.map_err(|e| e.to_string())?;
        let unfinished = store.unfinished_rebuild().await;
        if let Some(unfinished) = unfinished.map_err(|e| {
            self.store = None;
            e.to_string()
        })? {
            return Ok(Some(unfinished));
        }
        let store = self.store().await.map_err(|e| e.to_string())?;
        let unpublished = store.unpublished().await;
        let (days, seq) = unpublished.map_err(|e| {
            self.store = None;
            e.to_string()
        })?;
        if !days.is_empty() {
            tracing::info!(group = %self.group, days = days.len(),
                "publishing days committed by an earlier run");
            self.publish(&days).await?;
        }
        if seq > 0 {
            self.published_through = Some(seq);
        }
        Ok(None)
    }

    /// The store, connected if needed.
    async fn store(&mut self) -> Result<&mut Store, StoreError> {
        if self.store.as_ref().is_some_and(Store::is_closed) {
            self.store = None;
        }
        if self.store.is_none() {
            let config = &self.shared.config;
            let mut store = Store::connect(
                &config.database_url,
                &self.group,
                config.statement_timeout(),
            )
            .await?;
            store.set_debug_commit_delay(config.debug_batch_delay());
            self.store = Some(store);
        }
        // Just set above if it was missing.
        Ok(self.store.as_mut().expect("store connected"))
    }

    /// Waits the current backoff delay (doubling it), or returns false when `cancel` fires.
    async fn backoff(&mut self, cancel: &mut std::pin::Pin<&mut impl Future<Output = ()>>) -> bool {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(Duration::from_millis(self.shared.config.retry_max_ms));
        tokio::select! {
            biased;
            () = cancel.as_mut() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }

    /// Writes the open batch (retrying until it is committed), publishes its days and commits
    /// the offsets to Kafka (advisory). Returns `Ok(false)` if `cancel` fired before the batch
    /// was committed: it was rolled back and nothing of it is stored. `cancel` interrupts the
    /// waits between retries; with `abort_in_flight` (the drain deadline) it also interrupts a
    /// transaction in flight, which then rolls back.
    async fn flush(
        &mut self,
        consumer: &Arc<StreamConsumer<AssignContext>>,
        cancel: impl Future<Output = ()>,
        abort_in_flight: bool,
    ) -> Result<bool, ConsumerError> {
        let mut cancel = std::pin::pin!(cancel);
        let records = self.batch.len();
        if records == 0 {
            self.clear_batch();
            return Ok(true);
        }
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        if records >= 20 && self.poison.len() as f64 > config.max_invalid_ratio * records as f64 {
            return Err(ConsumerError::TooManyInvalid {
                group: self.group.clone(),
                invalid: self.poison.len(),
                records,
                ratio: config.max_invalid_ratio,
            });
        }

        // Quarantine first: once the offsets are committed, the record exists only there.
        while !self.poison.is_empty() {
            match self.quarantine().await {
                Ok(()) => {
                    metrics::quarantined(&self.group, self.poison.len());
                    self.poison.clear();
                }
                Err(error) => {
                    metrics::retry(&self.group, "quarantine");
                    tracing::warn!(group = %self.group, %error, "quarantine failed; retrying");
                    if !self.backoff(&mut cancel).await {
                        return Ok(false);
                    }
                }
            }
        }

        let started = Instant::now();
        let batch = std::mem::take(&mut self.batch);
        let applied = loop {
            let published_through = self.published_through;
            let result = match self.store().await {
                Ok(store) => {
                    let apply = store.apply(&batch, published_through, Utc::now());
                    tokio::select! {
                        biased;
                        result = apply => result,
                        () = cancel.as_mut(), if abort_in_flight => {
                            // Dropping the transaction rolls it back; the connection is dropped
                            // too, so the server aborts whatever was in flight.
                            self.store = None;
                            self.batch = batch;
                            return Ok(false);
                        }
                    }
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(applied) => break applied,
                Err(StoreError::RebuildUnfinished(unfinished)) => {
                    // A rebuild cleared the group while this batch waited for its lock, and
                    // did not finish. Nothing of the batch was written.
                    self.batch = batch;
                    return Err(self.refuse(unfinished));
                }
                Err(error) => {
                    self.shared.health.set_up(&self.group, false);
                    metrics::retry(&self.group, "postgres");
                    if error.connection_lost() {
                        self.store = None;
                        tracing::warn!(group = %self.group, %error, records,
                            retry_in_ms = self.delay.as_millis() as u64,
                            "batch not written (rolled back); retrying the same batch");
                    } else {
                        // Postgres refused the batch itself: it will keep refusing until an
                        // operator acts; nothing is skipped meanwhile.
                        tracing::error!(group = %self.group, %error, records,
                            retry_in_ms = self.delay.as_millis() as u64,
                            "Postgres refused the batch (rolled back); retrying the same batch");
                    }
                    if !self.backoff(&mut cancel).await {
                        self.batch = batch;
                        return Ok(false);
                    }
                }
            }
        };
        self.delay = Duration::from_millis(config.retry_initial_ms);
        self.shared.health.set_up(&self.group, true);
        self.batch_started = None;
        metrics::batch(&self.group, records, &applied.counts, started.elapsed());
        metrics::offsets(&self.group, &applied.offsets);
        tracing::debug!(group = %self.group, records, batch_seq = applied.batch_seq,
            counts = ?applied.counts, "batch committed");

        // Publish after commit (at least once; the compacted topic keeps the latest revision).
        // The previous batch's days must be confirmed first (the publish mark moves in batch
        // order); this batch's are handed over and confirmed while the next batch is written.
        if !self.confirm_published(&mut cancel).await {
            // Committed but unpublished: the next start publishes them.
            return Ok(true);
        }
        let days = applied.changed_days;
        let handed = if days.is_empty() {
            Ok(Vec::new())
        } else {
            self.enqueue_days(&days)
        };
        match handed {
            Ok(deliveries) => {
                self.publishing = Some(InFlight {
                    batch_seq: applied.batch_seq,
                    days,
                    deliveries,
                });
            }
            Err(error) => {
                metrics::retry(&self.group, "publish");
                tracing::warn!(group = %self.group, %error,
                    "handing attendance days to Kafka failed; retrying");
                self.publishing = Some(InFlight {
                    batch_seq: applied.batch_seq,
                    days,
                    deliveries: Vec::new(),
                });
                if !self.confirm_published_retrying(&mut cancel, true).await {
                    return Ok(true);
                }
            }
        }

        // Advisory: lets standard tools show the group's lag. Postgres is authoritative.
        let mut tpl = TopicPartitionList::new();
        for (partition, next) in &applied.offsets {
            let _ = tpl.add_partition_offset(&self.topic, *partition, Offset::Offset(*next));
        }
        if tpl.count() > 0
            && let Err(error) = consumer.commit(&tpl, CommitMode::Async)
        {
            tracing::debug!(group = %self.group, %error, "advisory Kafka commit failed");
        }
        Ok(true)
    }

    async fn publish(&self, days: &[AttendanceDay]) -> Result<(), String> {
        let deliveries = self.enqueue_days(days)?;
        Producer::confirmed(deliveries).await?;
        metrics::published(&self.group, days.len());
        Ok(())
    }

    /// Hands `days` to the producer, keyed `<tenant>/<employee>/<date>`.
    fn enqueue_days(&self, days: &[AttendanceDay]) -> Result<Vec<DeliveryFuture>, String> {
        let mut records = Vec::with_capacity(days.len());
        for day in days {
            let Some(date) = day.work_date() else {
                continue;
            };
            let key = attendance_key(&day.tenant_id, &day.employee_id, date);
            records.push((key, encode(day).map_err(|e| e.to_string())?));
        }
        self.shared.producer.enqueue(&self.daily_topic, &records)
    }

    /// Waits for the in-flight publish to be confirmed (re-sending on failure, with backoff),
    /// then moves the publish mark to its batch. False if `cancel` fired first.
    async fn confirm_published(
        &mut self,
        cancel: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        self.confirm_published_retrying(cancel, false).await
    }

    async fn confirm_published_retrying(
        &mut self,
        cancel: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        mut resend: bool,
    ) -> bool {
        let Some(mut in_flight) = self.publishing.take() else {
            return true;
        };
        loop {
            let result = if resend {
                self.publish(&in_flight.days).await
            } else {
                let deliveries = std::mem::take(&mut in_flight.deliveries);
                let confirmed = Producer::confirmed(deliveries).await;
                if confirmed.is_ok() {
                    metrics::published(&self.group, in_flight.days.len());
                }
                confirmed
            };
            match result {
                Ok(()) => break,
                Err(error) => {
                    metrics::retry(&self.group, "publish");
                    tracing::warn!(group = %self.group, %error,
                        "publishing attendance days failed; retrying");
                    resend = true;
                    if !self.backoff(cancel).await {
                        self.publishing = Some(in_flight);
                        return false;
                    }
                }
            }
        }
        self.delay = Duration::from_millis(self.shared.config.retry_initial_ms);
        self.published_through = Some(in_flight.batch_seq);
        true
    }

    async fn quarantine(&self) -> Result<(), String> {
        let now = Utc::now().timestamp_millis();
        let records = self
            .poison
            .iter()
            .map(|poison| poison.quarantine_record(&self.topic, now))
            .collect::<Result<Vec<_>, String>>()?;
        self.shared
            .producer
            .send_all(&Topic::Quarantine.name(), &records)
            .await
    }
}
