//! Serving `punches.corrections.<group>` and month closings between batches: every tick the
//! group reads the corrections past its stored offsets (a reader assigned by hand: the offsets
//! live in Postgres, written in the transaction that stores the corrections), applies them in
//! chunks, and publishes what they changed; then it publishes the records that closes and
//! reopens changed.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dakoku_kafka::LogContext;
use dakoku_kafka::scan::{self, Next};
use dakoku_schemas::{GroupId, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;

use super::backoff::Backoff;
use super::publish::{Producer, Publisher, Records};
use crate::decode::{IncomingCorrection, Poison, decode_correction};
use crate::store::{Store, StoreError};

/// Corrections applied per transaction.
const CHUNK: usize = 2_000;
/// How long a read may wait for the broker before giving up until the next tick.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why serving corrections or closings failed this tick (retried at the next).
#[derive(Debug, thiserror::Error)]
pub(super) enum ServeError {
    /// Postgres: the connection may be gone.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Kafka: reading the corrections topic, or quarantining, failed.
    #[error("corrections topic: {0}")]
    Kafka(String),
    /// The corrections topic does not exist (create it with `punchctl topics create`).
    #[error("{0} does not exist; create it with `punchctl topics create`")]
    NoTopic(String),
}

/// The group's reader of its corrections topic.
pub(super) struct CorrectionsReader {
    reader: Arc<BaseConsumer<LogContext>>,
    topic: String,
    group: GroupId,
}

impl CorrectionsReader {
    /// A reader for `group`'s corrections (it joins no consumer group), client id
    /// `<client_id>-corrections`.
    pub(super) fn new(
        kafka: &dakoku_kafka::ClientFactory,
        client_id: &str,
        group: &GroupId,
    ) -> dakoku_kafka::Result<Self> {
        let reader: BaseConsumer<LogContext> =
            kafka.reader(format!("{client_id}-corrections")).create()?;
        Ok(Self {
            reader: Arc::new(reader),
            topic: Topic::Corrections(group.clone()).name(),
            group: group.clone(),
        })
    }

    /// Up to [`CHUNK`] records past `starts` (decoded, with the poison among them).
    async fn read(
        &self,
        starts: BTreeMap<i32, i64>,
    ) -> Result<(Vec<IncomingCorrection>, Vec<Poison>), ServeError> {
        let (reader, topic, group) = (
            Arc::clone(&self.reader),
            self.topic.clone(),
            self.group.clone(),
        );
        let work = move || {
            let bounds = scan::bounds_to_end(reader.client(), &topic, &starts, READ_TIMEOUT)
                .map_err(|e| {
                    if e.is_unknown_topic() {
                        ServeError::NoTopic(topic.clone())
                    } else {
                        ServeError::Kafka(e.to_string())
                    }
                })?;
            let (mut records, mut poison) = (Vec::new(), Vec::new());
            if bounds.values().all(|(from, end)| from >= end) {
                return Ok((records, poison));
            }
            let mut each = |m: &rdkafka::message::BorrowedMessage<'_>| {
                let payload = m.payload().unwrap_or_default();
                let (record, bad) =
                    decode_correction(&group, m.partition(), m.offset(), m.key(), payload);
                records.push(record);
                poison.extend(bad);
                if records.len() >= CHUNK {
                    Next::Stop
                } else {
                    Next::Continue
                }
            };
            scan::scan(
                &reader,
                &topic,
                &bounds,
                READ_TIMEOUT,
                &mut each,
                &mut |_| {},
            )
            .map_err(|e| ServeError::Kafka(e.to_string()))?;
            Ok((records, poison))
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ServeError::Kafka(format!("corrections reader: {e}")))?
    }
}

/// Applies the group's new corrections, chunk by chunk, and hands each chunk's records to the
/// publisher. `Ok(false)`: `cancel` fired while publishing (what is committed is published at
/// the next start).
pub(super) async fn serve(
    reader: &CorrectionsReader,
    quarantine: &Producer,
    store: &mut Store,
    publisher: &mut Publisher,
    backoff: &mut Backoff,
    cancel: &mut Pin<&mut impl Future<Output = ()>>,
) -> Result<bool, ServeError> {
    loop {
        let starts: BTreeMap<i32, i64> = store
            .stored_correction_offsets()
            .await?
            .into_iter()
            .collect();
        let (records, poison) = reader.read(starts).await?;
        if records.is_empty() {
            return Ok(true);
        }
        if !poison.is_empty() {
            // Quarantined before the offsets move past them: then the record exists only there.
            let now = Utc::now().timestamp_millis();
            let quarantined = poison
                .iter()
                .map(|p| p.quarantine_record(&reader.topic, now))
                .collect::<Result<Vec<_>, String>>()
                .map_err(ServeError::Kafka)?;
            quarantine
                .send_all(&Topic::Quarantine.name(), &quarantined)
                .await
                .map_err(ServeError::Kafka)?;
        }
        let now = Utc::now();
        let applied = store
            .apply_corrections(&records, publisher.published_through, now)
            .await?;
        tracing::info!(group = %reader.group, records = records.len(),
            stored = applied.counts.stored, days = applied.counts.days_changed,
            months = applied.counts.months_changed, "corrections applied");
        let out = Records {
            days: applied.changed_days(now),
            months: applied.changed_months(now),
        };
        if !publisher
            .hand_over(applied.batch_seq, out, backoff, cancel)
            .await
        {
            return Ok(false);
        }
        if records.len() < CHUNK {
            return Ok(true);
        }
    }
}

/// Publishes what closes and reopens changed (see [`Store::serve_closings`]).
pub(super) async fn serve_closings(
    store: &mut Store,
    publisher: &mut Publisher,
    backoff: &mut Backoff,
    cancel: &mut Pin<&mut impl Future<Output = ()>>,
) -> Result<bool, ServeError> {
    let Some((seq, months)) = store.serve_closings().await? else {
        return Ok(true);
    };
    tracing::info!(
        months = months.len(),
        batch_seq = seq,
        "month closings served"
    );
    let records = Records {
        days: Vec::new(),
        months,
    };
    Ok(publisher.hand_over(seq, records, backoff, cancel).await)
}
