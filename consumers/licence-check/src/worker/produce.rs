//! The transactional producer: its type, sends that wait out a full queue, and how its
//! errors end a session (fenced for good, or retried with new clients).

use std::thread;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::BaseRecord;

use super::group::GroupError;

/// The transactional producer (its context logs librdkafka's events at their true level).
pub(super) type TxProducer = dakoku_kafka::ThreadedProducer;

/// Why a session ended.
pub(super) enum SessionEnd {
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

/// A transactional call failed: fenced stops the group, anything else rebuilds the session.
pub(super) fn fenced_or_retry(
    error: KafkaError,
    transactional_id: &str,
    doing: &str,
) -> SessionEnd {
    if is_fenced(&error) {
        SessionEnd::Fatal(GroupError::Fenced {
            what: format!("transactional id {transactional_id}"),
            detail: error.to_string(),
        })
    } else {
        SessionEnd::Retry(format!("{doing}: {error}"))
    }
}

/// Another instance took over our transactional id or group instance id.
pub(super) fn is_fenced(error: &KafkaError) -> bool {
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

/// Hands a record to the producer, waiting while its queue is full.
pub(super) fn send<K, P>(
    producer: &TxProducer,
    mut record: BaseRecord<'_, K, P>,
) -> Result<(), SessionEnd>
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
