//! The transactional producer: its type, sends that wait out a full queue, and how its
//! errors end a session (fenced for good, or retried with new clients).

use std::collections::VecDeque;
use std::thread;
use std::time::{Duration, Instant};

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
    /// The broker fenced the consumer's static group instance id. Either another instance
    /// runs with the same id (the group must stop), or librdkafka's own member went stale
    /// after its session timed out, e.g. across a broker restart, and it took itself for
    /// another (librdkafka issue 3437): a new consumer takes the id back. [`FenceBudget`]
    /// tells them apart by how often it happens.
    InstanceFenced(GroupError),
}

/// How many consumer fencings in how long a group tolerates before it believes a second
/// instance runs with its id. A stale member is fenced once per broker outage; two instances
/// with one id fence each other at every rejoin, seconds apart.
#[derive(Debug)]
pub(super) struct FenceBudget {
    recent: VecDeque<Instant>,
}

impl FenceBudget {
    /// Fencings tolerated within [`FenceBudget::WINDOW`].
    pub(super) const MAX: usize = 3;
    /// The window.
    pub(super) const WINDOW: Duration = Duration::from_secs(300);

    pub(super) fn new() -> Self {
        Self {
            recent: VecDeque::new(),
        }
    }

    /// Records a fencing at `now`; true while the group should rebuild its clients rather
    /// than stop.
    pub(super) fn allows(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|at| now.duration_since(*at) > Self::WINDOW)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        self.recent.len() <= Self::MAX
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_member_is_tolerated_and_a_second_instance_is_not() {
        let start = Instant::now();
        let mut budget = FenceBudget::new();
        // One fencing per broker outage, hours apart: always rejoin.
        for hour in 0..10 {
            assert!(budget.allows(start + Duration::from_secs(3_600 * hour)));
        }
        // Two instances with one id fence each other at every rejoin: the group stops.
        let mut budget = FenceBudget::new();
        let verdicts: Vec<bool> = (0..5)
            .map(|i| budget.allows(start + Duration::from_secs(2 * i)))
            .collect();
        assert_eq!(verdicts, [true, true, true, false, false]);
    }
}
