//! The loop of one group's consumer: the reader task polls Kafka and decodes, the writer
//! batches, writes each batch (retrying until it is committed), hands its days to the
//! publisher and commits the offsets to Kafka (advisory); then the drain at shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use dakoku_kafka::Doing as _;
use dakoku_schemas::{ConsumerGroup, GroupId, Topic};
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use super::assign::AssignContext;
use super::backoff::Backoff;
use super::corrections::{self, CorrectionsReader, ServeError};
use super::error::ConsumerError;
use super::publish::{Producer, Publisher, Records};
use super::rules_change;
use crate::config::Config;
use crate::decode::{Incoming, Poison, decode_record};
use crate::metrics::{self, Health};
use crate::store::marker::UnfinishedRebuild;
use crate::store::{Applied, Store, StoreError};

/// What the group consumers share: configuration, the Kafka client factory, the producer,
/// health.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub kafka: dakoku_kafka::ClientFactory,
    pub producer: Producer,
    pub health: Arc<Health>,
}

/// One tenant group's consumer.
/// How often the group looks for recompute requests (rules changes).
const REQUESTS_EVERY: Duration = Duration::from_secs(1);

struct GroupLoop {
    shared: Arc<Shared>,
    group: GroupId,
    topic: String,
    store: Option<Store>,
    /// The open batch.
    batch: Vec<Incoming>,
    poison: Vec<Poison>,
    batch_started: Option<tokio::time::Instant>,
    publisher: Publisher,
    backoff: Backoff,
    /// The reader of the group's corrections, served between batches.
    corrections: CorrectionsReader,
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

type Kafka = Arc<StreamConsumer<AssignContext>>;

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
    let consumer = kafka_consumer(&shared, &group, &topic, &stopping)?;
    let corrections =
        CorrectionsReader::new(&shared.kafka, &config.client_id(), &group).map_err(|source| {
            ConsumerError::Kafka {
                group: group.clone(),
                source: Box::new(source),
            }
        })?;
    let mut this = GroupLoop {
        shared: Arc::clone(&shared),
        group: group.clone(),
        topic: topic.clone(),
        store: None,
        batch: Vec::new(),
        poison: Vec::new(),
        batch_started: None,
        publisher: Publisher::new(
            shared.producer.clone(),
            group.clone(),
            Topic::AttendanceDaily(group.clone()).name(),
            Topic::PayrollMonthly(group.clone()).name(),
        ),
        backoff: Backoff::new(
            Duration::from_millis(config.retry_initial_ms),
            Duration::from_millis(config.retry_max_ms),
        ),
        corrections,
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
    consumer
        .subscribe(&[topic.as_str()])
        .doing_with(|| format!("subscribing to {topic}"))
        .map_err(|source| ConsumerError::Kafka {
            group: group.clone(),
            source: Box::new(source),
        })?;
    shared.health.set_up(&group, true);
    tracing::info!(group = %group, topic, "consuming");

    let (feed_tx, mut feed) = mpsc::channel::<Feed>(config.batch_max_records.max(1));
    let reader = tokio::spawn(read(
        Arc::clone(&consumer),
        group.clone(),
        feed_tx,
        stop.clone(),
    ));
    let result = this.consume(&consumer, &mut feed, &mut stop).await;

    // Shutdown: no more reading; commit the open batch within the drain budget or roll back.
    shared.health.set_up(&group, false);
    stopping.store(true, Ordering::SeqCst);
    drop(feed);
    let result = this.drain(&consumer, result).await;
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

/// The group's Kafka consumer, assigned at the offsets stored in Postgres (see `assign`).
fn kafka_consumer(
    shared: &Shared,
    group: &GroupId,
    topic: &str,
    stopping: &Arc<AtomicBool>,
) -> Result<Kafka, ConsumerError> {
    let config = &shared.config;
    let consumer_group = ConsumerGroup::Attendance(group.clone()).name();
    let context = AssignContext {
        group: group.clone(),
        database_url: config.database_url.clone(),
        consumer_group: consumer_group.clone(),
        topic: topic.to_owned(),
        stopping: Arc::clone(stopping),
        generation: AtomicU64::new(0),
        lookup_timeout: config.statement_timeout(),
        retry_initial: Duration::from_millis(config.retry_initial_ms),
        retry_max: Duration::from_millis(config.retry_max_ms),
    };
    let consumer = shared
        .kafka
        .group_member(config.client_id(), consumer_group)
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .create_with_context(context)
        .map_err(|source| ConsumerError::Kafka {
            group: group.clone(),
            source: Box::new(source),
        })?;
    Ok(Arc::new(consumer))
}

/// The reader: polls Kafka (which runs the rebalance callback), decodes, and feeds the writer
/// in log order, announcing every change of assignment.
async fn read(
    consumer: Kafka,
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
            Ok(message) => {
                let (record, poison) = decode_record(&group, &message);
                Feed::Record(record, poison)
            }
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
    /// The writer: batches what the reader feeds and flushes a batch when it is full or old
    /// enough, until `stop` or an error.
    async fn consume(
        &mut self,
        consumer: &Kafka,
        feed: &mut mpsc::Receiver<Feed>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), ConsumerError> {
        let max_records = self.shared.config.batch_max_records;
        let max_wait = self.shared.config.batch_max_wait();
        let mut requests = tokio::time::interval(REQUESTS_EVERY);
        requests.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.batch_started.map(|t| t + max_wait);
            let flush = tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                () = sleep_until(deadline), if deadline.is_some() => true,
                _ = requests.tick() => {
                    if !self.serve_requests(wait_for_stop(stop.clone())).await {
                        return Ok(());
                    }
                    false
                }
                item = feed.recv() => match item {
                    None => return Ok(()),
                    Some(Feed::Rebalanced) => {
                        if !self.batch.is_empty() {
                            tracing::info!(group = %self.group, records = self.batch.len(),
                                "rebalance: dropping the open batch; it is read again from the stored offsets");
                        }
                        self.clear_batch();
                        false
                    }
                    Some(Feed::Record(record, poison)) => {
                        self.push(record, poison);
                        self.batch.len() >= max_records
                    }
                },
            };
            if flush
                && !self
                    .flush(consumer, wait_for_stop(stop.clone()), false)
                    .await?
            {
                return Ok(());
            }
        }
    }

    /// At shutdown, after `result` of the loop: commits the open batch within the drain
    /// budget (or rolls it back), confirms the days in flight and stores the publish mark.
    async fn drain(
        &mut self,
        consumer: &Kafka,
        mut result: Result<(), ConsumerError>,
    ) -> Result<(), ConsumerError> {
        let group = self.group.clone();
        let drain = self.shared.config.drain_timeout();
        if result.is_ok() && !self.batch.is_empty() {
            tracing::info!(group = %group, records = self.batch.len(), budget_ms = drain.as_millis() as u64,
                "shutting down: committing the open batch");
            match self.flush(consumer, tokio::time::sleep(drain), true).await {
                Ok(true) => tracing::info!(group = %group, "open batch committed"),
                Ok(false) => tracing::warn!(group = %group,
                    "open batch rolled back at shutdown; it is read again at the next start"),
                Err(error) => result = Err(error),
            }
        }
        if self.publisher.in_flight() {
            let mut budget = std::pin::pin!(tokio::time::sleep(drain));
            if !self.publisher.confirm(&mut self.backoff, &mut budget).await {
                tracing::warn!(group = %group, "days not confirmed by Kafka at shutdown; the next start republishes them");
            }
        }
        if let (Some(store), Some(seq)) = (&self.store, self.publisher.published_through)
            && let Err(error) = store.mark_published(seq).await
        {
            tracing::debug!(group = %group, %error, "publish mark not stored; the next start republishes");
        }
        result
    }

    /// Serves pending recompute requests (rules changes), then new corrections and month
    /// closings; false if `cancel` fired. A failure
    /// is logged and retried at the next tick.
    async fn serve_requests(&mut self, cancel: impl Future<Output = ()>) -> bool {
        let mut cancel = std::pin::pin!(cancel);
        if let Err(error) = self.store().await {
            tracing::debug!(group = %self.group, %error, "recompute requests not checked");
            return true;
        }
        let Some(store) = self.store.as_mut() else {
            return true;
        };
        match rules_change::serve(store, &mut self.publisher, &mut self.backoff, &mut cancel).await
        {
            Ok(true) => {}
            Ok(false) => return false,
            Err(error) => {
                if error.connection_lost() {
                    self.store = None;
                }
                tracing::warn!(group = %self.group, %error,
                    "serving a rules change's recompute failed; retrying shortly");
                return true;
            }
        }
        let Some(store) = self.store.as_mut() else {
            return true;
        };
        let served = corrections::serve(
            &self.corrections,
            &self.shared.producer,
            store,
            &mut self.publisher,
            &mut self.backoff,
            &mut cancel,
        )
        .await;
        if matches!(served, Ok(false)) {
            return false;
        }
        // Closings are served even when the corrections could not be (e.g. no topic yet).
        let closings =
            corrections::serve_closings(store, &mut self.publisher, &mut self.backoff, &mut cancel)
                .await;
        self.served(served, "corrections") && self.served(closings, "month closings")
    }

    /// What serving `what` came to: false if `cancel` fired; an error is logged (and a lost
    /// connection dropped) and retried at the next tick.
    fn served(&mut self, result: Result<bool, ServeError>, what: &str) -> bool {
        match result {
            Ok(served) => served,
            Err(ServeError::Store(error)) => {
                if error.connection_lost() {
                    self.store = None;
                }
                tracing::warn!(group = %self.group, %error, what,
                    "serving failed (rolled back); retrying shortly");
                true
            }
            Err(error @ ServeError::NoTopic(_)) => {
                // A group set up before corrections existed: nothing to serve until it is made.
                tracing::debug!(group = %self.group, %error, "no corrections to serve");
                true
            }
            Err(error) => {
                tracing::warn!(group = %self.group, %error, what,
                    "serving failed; retrying shortly");
                true
            }
        }
    }

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
                    self.backoff.reset();
                    return Ok(true);
                }
                Ok(Some(unfinished)) => return Err(self.refuse(unfinished)),
                Err(error) => {
                    tracing::warn!(group = %self.group, %error,
                        retry_in_ms = self.backoff.delay().as_millis() as u64,
                        "cannot start: Postgres or Kafka unavailable; retrying");
                    if !self.backoff.wait(&mut cancel).await {
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
        let (days, months, seq) = unpublished.map_err(|e| {
            self.store = None;
            e.to_string()
        })?;
        let records = Records { days, months };
        if !records.days.is_empty() || !records.months.is_empty() {
            tracing::info!(group = %self.group, days = records.days.len(),
                months = records.months.len(), "publishing records committed by an earlier run");
            self.publisher.publish(&records).await?;
        }
        if seq > 0 {
            self.publisher.published_through = Some(seq);
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

    /// Writes the open batch (retrying until it is committed), publishes its days and commits
    /// the offsets to Kafka (advisory). Returns `Ok(false)` if `cancel` fired before the batch
    /// was committed: it was rolled back and nothing of it is stored. `cancel` interrupts the
    /// waits between retries; with `abort_in_flight` (the drain deadline) it also interrupts a
    /// transaction in flight, which then rolls back.
    async fn flush(
        &mut self,
        consumer: &Kafka,
        cancel: impl Future<Output = ()>,
        abort_in_flight: bool,
    ) -> Result<bool, ConsumerError> {
        let mut cancel = std::pin::pin!(cancel);
        let records = self.batch.len();
        if records == 0 {
            self.clear_batch();
            return Ok(true);
        }
        let ratio = self.shared.config.max_invalid_ratio;
        if records >= 20 && self.poison.len() as f64 > ratio * records as f64 {
            return Err(ConsumerError::TooManyInvalid {
                group: self.group.clone(),
                invalid: self.poison.len(),
                records,
                ratio,
            });
        }
        // Quarantine first: once the offsets are committed, the record exists only there.
        if !self.quarantine_all(&mut cancel).await {
            return Ok(false);
        }

        let started = Instant::now();
        let Some(applied) = self.write(&mut cancel, abort_in_flight).await? else {
            return Ok(false);
        };
        self.backoff.reset();
        self.shared.health.set_up(&self.group, true);
        self.batch_started = None;
        metrics::batch(&self.group, records, &applied.counts, started.elapsed());
        metrics::offsets(&self.group, &applied.offsets);
        tracing::debug!(group = %self.group, records, batch_seq = applied.batch_seq,
            counts = ?applied.counts, "batch committed");

        // Publish after commit (at least once; the compacted topics keep the latest revision).
        let now = Utc::now();
        let records = Records {
            days: applied.changed_days(now),
            months: applied.changed_months(now),
        };
        if !self
            .publisher
            .hand_over(applied.batch_seq, records, &mut self.backoff, &mut cancel)
            .await
        {
            // Committed but unpublished: the next start publishes them.
            return Ok(true);
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

    /// Sends the batch's poison records to quarantine, retrying; false if `cancel` fired.
    async fn quarantine_all(&mut self, cancel: &mut Pin<&mut impl Future<Output = ()>>) -> bool {
        while !self.poison.is_empty() {
            match self.quarantine().await {
                Ok(()) => {
                    metrics::quarantined(&self.group, self.poison.len());
                    self.poison.clear();
                }
                Err(error) => {
                    metrics::retry(&self.group, "quarantine");
                    tracing::warn!(group = %self.group, %error, "quarantine failed; retrying");
                    if !self.backoff.wait(cancel).await {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Applies the open batch in one transaction, retrying the same batch until it commits.
    /// `None` if `cancel` fired first (rolled back; the batch stays open).
    async fn write(
        &mut self,
        cancel: &mut Pin<&mut impl Future<Output = ()>>,
        abort_in_flight: bool,
    ) -> Result<Option<Applied>, ConsumerError> {
        let records = self.batch.len();
        let batch = std::mem::take(&mut self.batch);
        loop {
            let published_through = self.publisher.published_through;
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
                            return Ok(None);
                        }
                    }
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(applied) => return Ok(Some(applied)),
                Err(StoreError::RebuildUnfinished(unfinished)) => {
                    // A rebuild cleared the group while this batch waited for its lock, and
                    // did not finish. Nothing of the batch was written.
                    self.batch = batch;
                    return Err(self.refuse(unfinished));
                }
                Err(error) => {
                    self.shared.health.set_up(&self.group, false);
                    metrics::retry(&self.group, "postgres");
                    let retry_in_ms = self.backoff.delay().as_millis() as u64;
                    if error.connection_lost() {
                        self.store = None;
                        tracing::warn!(group = %self.group, %error, records, retry_in_ms,
                            "batch not written (rolled back); retrying the same batch");
                    } else {
                        // Postgres refused the batch itself: it will keep refusing until an
                        // operator acts; nothing is skipped meanwhile.
                        tracing::error!(group = %self.group, %error, records, retry_in_ms,
                            "Postgres refused the batch (rolled back); retrying the same batch");
                    }
                    if !self.backoff.wait(cancel).await {
                        self.batch = batch;
                        return Ok(None);
                    }
                }
            }
        }
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
