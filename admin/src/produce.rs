//! Appending corrections to `punches.corrections.<group>`: idempotent producer (acks=all),
//! keyed `<tenant>/<employee>`, the value in single-object Avro. A call returns only once the
//! brokers acknowledged the record, or fails with [`AdminError::Unavailable`].

use std::time::Duration;

use dakoku_kafka::rdkafka::producer::FutureRecord;
use dakoku_kafka::rdkafka::util::Timeout;
use dakoku_kafka::{FutureProducer, KafkaArgs};
use dakoku_schemas::{Correction, GroupId, Topic, correction_key, encode};

use crate::AdminError;

/// How long a correction may wait for its acknowledgement before the caller is told Kafka is
/// unavailable.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The corrections producer.
pub(crate) struct Appender {
    producer: FutureProducer,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").finish_non_exhaustive()
    }
}

/// Where a correction was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    pub partition: i32,
    pub offset: i64,
}

impl Appender {
    pub(crate) fn new(kafka: &KafkaArgs) -> Result<Self, AdminError> {
        let factory = kafka
            .factory()
            .map_err(|e| AdminError::invalid("kafka-properties", e.to_string()))?;
        let producer = factory
            .idempotent_producer("dakoku-admin")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .create()?;
        Ok(Self { producer })
    }

    pub(crate) async fn append(
        &self,
        group: &GroupId,
        correction: &Correction,
    ) -> Result<Appended, AdminError> {
        let topic = Topic::Corrections(group.clone()).name();
        let key = correction_key(&correction.tenant_id, &correction.employee_id);
        let payload = encode(correction)
            .map_err(|e| AdminError::invalid("correction", format!("cannot encode: {e}")))?;
        let record = FutureRecord::to(&topic).key(&key).payload(&payload);
        let delivered = self
            .producer
            .send(record, Timeout::After(DELIVERY_TIMEOUT))
            .await
            .map_err(|(error, _)| {
                AdminError::Unavailable(format!(
                    "Kafka did not acknowledge correction {} on {topic}: {error}; it may or may \
                     not have been appended: when Kafka is back (KAFKA_BROKERS; topic created \
                     by `punchctl topics create`), check `punchctl attendance show` before \
                     submitting it again",
                    correction.correction_id
                ))
            })?;
        tracing::info!(
            correction_id = %correction.correction_id,
            topic,
            partition = delivered.partition,
            offset = delivered.offset,
            "correction appended"
        );
        Ok(Appended {
            partition: delivered.partition,
            offset: delivered.offset,
        })
    }
}
