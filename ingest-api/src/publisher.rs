//! The Kafka side of the acceptor: one idempotent `acks=all` producer, enqueueing that never
//! blocks, and a background reachability check for `/readyz` and fast refusals.
//!
//! A record counts as taken only when its delivery report says so; a full queue or an
//! unreachable broker is reported to the caller at once, never retried inside a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};

use dakoku_kafka::{ClientBuilder, ClientFactory};

use crate::config::Config;
use crate::error::BuildError;
use crate::metrics::{self, KafkaStats};

/// Why records could not be handed to Kafka.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The producer's bounded queue is full: Kafka is slower than intake.
    #[error("producer queue full")]
    QueueFull,
    /// librdkafka refused the record for another reason.
    #[error("{0}")]
    Kafka(String),
    /// A delivery report said the record was not written (timeout, broker error).
    #[error("not confirmed by Kafka: {0}")]
    NotDelivered(String),
}

/// The acceptor's producer.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer<KafkaStats>,
    reachable: Arc<AtomicBool>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("reachable", &self.is_reachable())
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Creates the producer (connections are made lazily by librdkafka).
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let producer =
            producer_settings(&config.kafka_factory()?, config).create_with_context(KafkaStats)?;
        Ok(Self {
            producer,
            // Optimistic until the first check: refusing everything at start-up would be worse.
            reachable: Arc::new(AtomicBool::new(true)),
        })
    }

    /// Hands one record to librdkafka (which copies it) without waiting.
    pub fn enqueue(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<DeliveryFuture, PublishError> {
        self.producer
            .send_result(FutureRecord::to(topic).key(key).payload(payload))
            .map_err(|(error, _)| match error {
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                    PublishError::QueueFull
                }
                other => PublishError::Kafka(other.to_string()),
            })
    }

    /// Waits for one delivery report.
    pub async fn confirmed(delivery: DeliveryFuture) -> Result<(), PublishError> {
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((error, _))) => Err(PublishError::NotDelivered(error.to_string())),
            Err(_) => Err(PublishError::NotDelivered("producer dropped".into())),
        }
    }

    /// Whether the last reachability check succeeded.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Asks the cluster for metadata; updates [`Publisher::is_reachable`].
    pub async fn check(&self, timeout: Duration) -> bool {
        let producer = self.producer.clone();
        let ok = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .is_ok_and(|m| !m.brokers().is_empty())
        })
        .await
        .unwrap_or(false);
        let was = self.reachable.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                tracing::info!("Kafka reachable again");
            } else {
                tracing::warn!("Kafka unreachable; refusing punches with 503 until it is back");
            }
        }
        metrics::kafka_reachable(ok);
        ok
    }

    /// Sends everything still queued, waiting at most `timeout`.
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    /// Messages librdkafka still holds (queued or awaiting acknowledgement).
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }
}

/// The acceptor's producer as `config` tunes it.
fn producer_settings(factory: &ClientFactory, config: &Config) -> ClientBuilder {
    factory
        // Nothing is acked to a recorder before every in-sync replica has it, and retries
        // inside librdkafka never duplicate or reorder.
        .idempotent_producer("dakoku-ingest-api")
        .set("message.timeout.ms", config.message_timeout_ms.to_string())
        .set("linger.ms", config.linger_ms.to_string())
        .set(
            "queue.buffering.max.messages",
            config.producer_queue_messages.to_string(),
        )
        .set(
            "queue.buffering.max.kbytes",
            config.producer_queue_kbytes.to_string(),
        )
        .set("compression.type", "lz4")
        .set("statistics.interval.ms", "5000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producer_is_idempotent_acks_all_and_tuned_by_the_config() {
        let mut config = Config::new("k1:9092", "postgres://x@127.0.0.1/x", "k:x");
        config.linger_ms = 7;
        config.message_timeout_ms = 4_000;
        let settings = producer_settings(&ClientFactory::new("k1:9092"), &config);
        for (key, value) in [
            ("bootstrap.servers", "k1:9092"),
            ("client.id", "dakoku-ingest-api"),
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "4000"),
            ("linger.ms", "7"),
            ("queue.buffering.max.messages", "100000"),
            ("queue.buffering.max.kbytes", "65536"),
            ("compression.type", "lz4"),
            ("statistics.interval.ms", "5000"),
        ] {
            assert_eq!(settings.get(key), Some(value), "{key}");
        }
    }
}
