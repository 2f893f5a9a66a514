//! One group's lives: [`run_group`] rebuilds the session after a retryable failure; a session
//! creates the transactional producer and the consumer, then polls, handing each record to
//! [`Handler`] and each transaction boundary to [`Txns`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dakoku_schemas::{ConsumerGroup, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use super::clients::{consumer, producer};
use super::context::GroupContext;
use super::group::{GroupError, GroupState, WorkerEnv};
use super::handle::Handler;
use super::produce::{FenceBudget, SessionEnd, fenced_or_retry, is_fenced};
use super::txn::{OpenTxn, Txns};
use crate::breaker::{Breaker, BreakerLimits};
use crate::config::Mode;
use crate::metrics;
use crate::verdicts::VerdictStore;

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
    let mut fences = FenceBudget::new();
    metrics::group_up(&group, true);
    let result = loop {
        match session(env, &mut breaker) {
            SessionEnd::Stopped => break Ok(()),
            SessionEnd::Fatal(error) => break Err(error),
            SessionEnd::InstanceFenced(error) if !fences.allows(Instant::now()) => {
                break Err(error);
            }
            SessionEnd::InstanceFenced(error) => {
                env.shared.set_state(GroupState::Starting);
                tracing::warn!(%group, %error,
                    "the broker fenced this consumer's group instance id; if no other instance \
                     runs with it, librdkafka's member went stale (e.g. a broker restart): \
                     rejoining with a new consumer");
                if sleep_unless_stopped(&env.stop, backoff) {
                    break Ok(());
                }
            }
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
    let consumer_group = ConsumerGroup::LicenceCheck(group.clone());
    let transactional_id = config.transactional_id(group);
    let producer = match producer(&env.kafka, config, &consumer_group, &transactional_id) {
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
    let consumer = match consumer(&env.kafka, config, &consumer_group, context) {
        Ok(consumer) => consumer,
        Err(error) => return SessionEnd::Retry(format!("creating the consumer: {error}")),
    };
    if let Err(error) = consumer.subscribe(&[&raw_topic]) {
        return SessionEnd::Retry(format!("subscribing to {raw_topic}: {error}"));
    }
    let verdicts = match config.mode {
        Mode::Check => match VerdictStore::connect(&config.database_url) {
            Ok(store) => Some(store),
            Err(error) => {
                return SessionEnd::Retry(format!("connecting the verdict store: {error}"));
            }
        },
        Mode::Passthrough => None,
    };
    env.shared.set_state(GroupState::Running);
    tracing::info!(%group, topic = raw_topic, transactional_id, mode = ?config.mode, "consuming");
    Loop {
        env,
        consumer: &consumer,
        txns: Txns::new(env, &producer, &consumer, &raw_topic, breaker),
        handler: Handler::new(env, &producer, &raw_topic, verdicts.as_ref()),
        last_consumer_warning: None,
    }
    .run()
}

/// The poll loop of one session.
struct Loop<'a> {
    env: &'a WorkerEnv,
    consumer: &'a BaseConsumer<GroupContext>,
    txns: Txns<'a>,
    handler: Handler<'a>,
    last_consumer_warning: Option<Instant>,
}

impl Loop<'_> {
    fn run(&mut self) -> SessionEnd {
        let batch_max = Duration::from_millis(self.env.config.batch_max_ms);
        let mut txn: Option<OpenTxn> = None;
        loop {
            if let Some(end) = self.between_polls(&mut txn) {
                return end;
            }
            let timeout = match &txn {
                Some(open) => {
                    let elapsed = open.started.elapsed();
                    if open.records >= self.env.config.batch_max_records || elapsed >= batch_max {
                        let open = txn.take().expect("checked above");
                        if let Err(end) = self.commit(open, self.env.config.kafka_op_timeout()) {
                            return end;
                        }
                        continue;
                    }
                    (batch_max - elapsed).min(Duration::from_millis(100))
                }
                None => Duration::from_millis(100),
            };
            let consumer = self.consumer;
            let message = match consumer.poll(timeout) {
                None => {
                    // Nothing more to read for now: judge and produce what is pending rather
                    // than hold it until the commit.
                    if let Some(open) = txn.as_mut()
                        && let Err(end) = self.handler.flush(open)
                    {
                        txn.take();
                        self.txns.abort();
                        return end;
                    }
                    continue;
                }
                Some(Err(error)) => {
                    if let Some(end) = self.consumer_error(error) {
                        if txn.take().is_some() {
                            self.txns.abort();
                        }
                        return end;
                    }
                    continue;
                }
                Some(Ok(message)) => message,
            };
            // The poll may have served a revoke that aborted the open transaction.
            self.drop_if_aborted_on_revoke(&mut txn);
            let open = match &mut txn {
                Some(open) => open,
                None => match self.txns.begin() {
                    Ok(open) => txn.insert(open),
                    Err(end) => return end,
                },
            };
            if let Err(end) = self.handler.handle(&message, open, self.txns.breaker) {
                drop(message);
                if txn.take().is_some() {
                    self.txns.abort();
                }
                return end;
            }
        }
    }

    /// What the callbacks and the stop flag decided since the last poll: `Some` ends the
    /// session (after committing the open transaction on shutdown).
    fn between_polls(&mut self, txn: &mut Option<OpenTxn>) -> Option<SessionEnd> {
        if self.consumer.context().broken.load(Ordering::SeqCst) {
            return Some(SessionEnd::Retry("abort on revoke failed".into()));
        }
        self.drop_if_aborted_on_revoke(txn);
        if !self.env.stop.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(open) = txn.take() {
            let budget = Duration::from_millis(self.env.config.shutdown_timeout_ms);
            if let Err(end) = self.commit(open, budget) {
                tracing::warn!(group = %self.env.shared.group, "could not commit the last transaction at shutdown; it was aborted and its records will be checked again");
                if let SessionEnd::Fatal(error) = end {
                    return Some(SessionEnd::Fatal(error));
                }
            }
        }
        Some(SessionEnd::Stopped)
    }

    /// Produces the open transaction's verdicts, then commits it; aborts it if either fails.
    fn commit(&mut self, mut open: OpenTxn, timeout: Duration) -> Result<(), SessionEnd> {
        if let Err(end) = self.handler.flush(&mut open) {
            self.txns.abort();
            return Err(end);
        }
        self.txns.commit(open, timeout)
    }

    /// Forgets the open transaction if the rebalance callback aborted it.
    fn drop_if_aborted_on_revoke(&mut self, txn: &mut Option<OpenTxn>) {
        if self
            .consumer
            .context()
            .aborted_on_revoke
            .swap(false, Ordering::SeqCst)
            && txn.take().is_some()
        {
            self.txns.aborted();
        }
    }

    /// A consumer error: `Some` ends the session.
    fn consumer_error(&mut self, error: KafkaError) -> Option<SessionEnd> {
        if let KafkaError::MessageConsumptionFatal(_) = error {
            if is_fenced(&error) {
                return Some(SessionEnd::InstanceFenced(GroupError::Fenced {
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
            tracing::warn!(group = %self.env.shared.group, %error, "consumer error; retrying");
            self.last_consumer_warning = Some(Instant::now());
        }
        None
    }
}
