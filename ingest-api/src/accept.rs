//! One batch of punches, from envelope to receipt.
//!
//! Each punch ends as exactly one of acked (durably in the raw topic), rejected (can never
//! succeed, preserved in quarantine) or refused (not confirmed: the recorder keeps it and comes
//! back), and that is decided in one place, `Tally::settle`.

use std::time::Instant;

use axum::body::Body;
use axum::http::HeaderMap;
use dakoku_schemas::{CodecError, PunchId, QuarantinedInput, RawPunch, Topic, encode_into};
use rdkafka::producer::DeliveryFuture;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::admission::{self, Admitted};
use crate::error::ApiError;
use crate::metrics;
use crate::publisher::{PublishError, Publisher};
use crate::request::{self, Envelope, EnvelopeError, Invalid, ValidPunch};
use crate::state::AppState;

/// The component name written into quarantine records.
const SOURCE: &str = "ingest-api";

/// Punches validated, encoded and enqueued between yields to the scheduler (about 150 µs of
/// CPU): under a burst of 500-punch batches on two cores, `/healthz` waited behind whole
/// batches (p99 0.34 s in `storm run --scenario contract`).
const YIELD_EVERY_PUNCHES: usize = 64;

/// The answer to a batch: what is durably in Kafka and what can never succeed.
#[derive(Debug, Serialize)]
pub struct Receipt {
    /// `seq`s durably appended; the recorder may delete them.
    pub acked: Vec<u64>,
    /// Items that can never succeed, preserved in quarantine; the recorder may delete them.
    pub rejected: Vec<Rejected>,
}

/// One rejected item.
#[derive(Debug, Serialize)]
pub struct Rejected {
    /// Its `seq`, or null when it had no usable one.
    pub seq: Option<u64>,
    /// Its position in the batch (0-based), to identify items without a usable `seq`.
    pub index: usize,
    /// What is wrong with it.
    pub error: String,
}

/// Admits, reads and publishes one batch. `Ok((receipt, false))` means some punches were
/// refused: neither acked nor rejected.
pub(crate) async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<(Receipt, bool), ApiError> {
    let admitted = admission::admit(state, headers)?;
    let (body, _body_held) = admission::read_body(state, headers, body).await?;
    let received_at = chrono::Utc::now().timestamp_millis();

    let envelope = match request::parse_envelope(&body) {
        Ok(envelope) => envelope,
        Err(error) => {
            return Err(
                refuse_invalid_body(state, headers, &admitted, &body, received_at, error).await,
            );
        }
    };
    check_envelope(state, &admitted, &envelope)?;
    let count = envelope.punches.len();
    let _punches_held = state
        .punches
        .try_take(count)
        .ok_or_else(|| ApiError::Overloaded {
            retry_after: state.retry_after(),
        })?;

    let batch = Batch {
        state,
        admitted: &admitted,
        received_at,
        quarantine_topic: Topic::Quarantine.name(),
    };
    let (pending, enqueue_error) = batch.enqueue_all(&envelope.punches).await;
    let tally = Tally::confirm(pending, enqueue_error).await;
    metrics::batch(tally.acked.len(), tally.rejected.len(), started.elapsed());
    tally.answer(state, count)
}

/// Quarantines a body that is not a batch at all and answers `400`, or `503` when even the
/// quarantine record cannot be confirmed.
async fn refuse_invalid_body(
    state: &AppState,
    headers: &HeaderMap,
    admitted: &Admitted,
    body: &[u8],
    received_at: i64,
    error: EnvelopeError,
) -> ApiError {
    let mut record = QuarantinedInput::new(
        received_at,
        SOURCE,
        "invalid_body",
        error.to_string(),
        body,
        state.config.max_body_bytes,
    );
    record.tenant_id = Some(admitted.tenant.to_string());
    record.device_id = Some(admitted.device.to_string());
    record.content_type = admission::content_type(headers);
    match quarantine_one(state, admitted.tenant.as_str(), &record).await {
        Ok(()) => ApiError::BadRequest(error.0),
        Err(refused) => refused,
    }
}

/// Refusals that depend on the envelope but not on its punches.
fn check_envelope(
    state: &AppState,
    admitted: &Admitted,
    envelope: &Envelope<'_>,
) -> Result<(), ApiError> {
    if envelope.device_id != admitted.device.as_str() {
        return Err(ApiError::DeviceMismatch {
            token: admitted.device.to_string(),
            body: envelope.device_id.chars().take(64).collect(),
        });
    }
    let count = envelope.punches.len();
    if count > state.config.max_punches {
        return Err(ApiError::TooManyPunches {
            count,
            limit: state.config.max_punches,
        });
    }
    Ok(())
}

/// Where an enqueued punch is headed; its delivery decides whether it gets there.
enum Pending<'a> {
    /// Valid, on its way to the raw topic.
    Ack(u64),
    /// Can never succeed, on its way to quarantine.
    Reject(Invalid<'a>),
}

/// What every punch of one batch shares on its way to Kafka.
struct Batch<'s> {
    state: &'s AppState,
    admitted: &'s Admitted,
    received_at: i64,
    quarantine_topic: String,
}

impl Batch<'_> {
    /// Enqueues the punches in order until the producer refuses one; the punches from there on
    /// are refused with that error.
    async fn enqueue_all<'a>(
        &self,
        punches: &[&'a RawValue],
    ) -> (Vec<(Pending<'a>, DeliveryFuture)>, Option<PublishError>) {
        let mut buf = Vec::with_capacity(256);
        let mut pending = Vec::with_capacity(punches.len());
        for (index, &raw) in punches.iter().enumerate() {
            // A big batch is a millisecond of CPU: let other tasks (health checks, cheap
            // refusals, small requests) run between chunks instead of queueing behind whole
            // batches.
            if index % YIELD_EVERY_PUNCHES == YIELD_EVERY_PUNCHES - 1 {
                tokio::task::yield_now().await;
            }
            match self.enqueue(index, raw, &mut buf) {
                Ok(enqueued) => pending.push(enqueued),
                Err(error) => return (pending, Some(error)),
            }
        }
        (pending, None)
    }

    /// Validates and encodes one punch and enqueues it where it belongs: the raw topic when it
    /// is valid, quarantine when it can never succeed.
    fn enqueue<'a>(
        &self,
        index: usize,
        raw: &'a RawValue,
        buf: &mut Vec<u8>,
    ) -> Result<(Pending<'a>, DeliveryFuture), PublishError> {
        buf.clear();
        let invalid = match request::validate_punch(index, raw) {
            Ok(punch) => {
                let seq = punch.seq;
                match self.encode(punch, buf) {
                    Ok(()) => {
                        let admitted = self.admitted;
                        let delivery = self.state.publisher.enqueue(
                            &admitted.topic,
                            &admitted.device_key,
                            buf,
                        )?;
                        return Ok((Pending::Ack(seq), delivery));
                    }
                    // Validation guarantees encodability; if not, the item is rejected rather
                    // than acked into nowhere.
                    Err(error) => Invalid {
                        index,
                        seq: Some(seq),
                        error: error.to_string(),
                        raw: raw.get(),
                    },
                }
            }
            Err(invalid) => invalid,
        };
        let delivery = self.enqueue_rejection(&invalid, buf)?;
        Ok((Pending::Reject(invalid), delivery))
    }

    /// Encodes a valid punch as the raw topic's record into `buf`.
    fn encode(&self, punch: ValidPunch, buf: &mut Vec<u8>) -> Result<(), CodecError> {
        let admitted = self.admitted;
        let (at, at_offset_minutes) = RawPunch::at_fields(punch.at);
        let record = RawPunch {
            punch_id: PunchId::derive(&admitted.tenant, &admitted.device, punch.seq),
            tenant_id: admitted.tenant.clone(),
            group: admitted.group.clone(),
            device_id: admitted.device.clone(),
            seq: punch.seq,
            card_id: punch.card_id,
            kind: punch.kind,
            at,
            at_offset_minutes,
            received_at: self.received_at,
            acceptor_id: self.state.acceptor_id.clone(),
        };
        encode_into(&record, buf)
    }

    /// Enqueues the quarantine record of an item that can never succeed.
    fn enqueue_rejection(
        &self,
        invalid: &Invalid<'_>,
        buf: &mut Vec<u8>,
    ) -> Result<DeliveryFuture, PublishError> {
        let admitted = self.admitted;
        let mut record = QuarantinedInput::new(
            self.received_at,
            SOURCE,
            "invalid_punch",
            invalid.error.clone(),
            invalid.raw.as_bytes(),
            self.state.config.max_body_bytes,
        );
        record.tenant_id = Some(admitted.tenant.to_string());
        record.device_id = Some(admitted.device.to_string());
        record.content_type = Some("application/json".into());
        buf.clear();
        encode_into(&record, buf).map_err(|e| PublishError::Kafka(e.to_string()))?;
        self.state
            .publisher
            .enqueue(&self.quarantine_topic, admitted.tenant.as_str(), buf)
    }
}

/// The outcome of a batch, filled in punch order.
struct Tally {
    acked: Vec<u64>,
    rejected: Vec<Rejected>,
    /// Why punches were refused (neither acked nor rejected), if any was.
    failure: Option<PublishError>,
}

impl Tally {
    /// Awaits every enqueued record's fate, so nothing is acked on hope.
    async fn confirm(
        pending: Vec<(Pending<'_>, DeliveryFuture)>,
        enqueue_error: Option<PublishError>,
    ) -> Self {
        let results = futures::future::join_all(
            pending
                .into_iter()
                .map(|(pending, d)| async move { (pending, Publisher::confirmed(d).await) }),
        )
        .await;
        let mut tally = Self {
            acked: Vec::with_capacity(results.len()),
            rejected: Vec::new(),
            failure: enqueue_error,
        };
        for (pending, delivered) in results {
            tally.settle(pending, delivered);
        }
        tally
    }

    /// The one place a punch's outcome is decided.
    fn settle(&mut self, pending: Pending<'_>, delivered: Result<(), PublishError>) {
        match (pending, delivered) {
            (Pending::Ack(seq), Ok(())) => self.acked.push(seq),
            (Pending::Reject(invalid), Ok(())) => self.rejected.push(Rejected {
                seq: invalid.seq,
                index: invalid.index,
                error: invalid.error,
            }),
            (_, Err(error)) => self.failure = Some(error),
        }
    }

    /// The answer: a receipt, complete or not, or `503` when nothing of a non-empty batch was
    /// confirmed.
    fn answer(self, state: &AppState, count: usize) -> Result<(Receipt, bool), ApiError> {
        let Self {
            acked,
            rejected,
            failure,
        } = self;
        match failure {
            None => Ok((Receipt { acked, rejected }, true)),
            Some(error) if acked.is_empty() && rejected.is_empty() && count > 0 => {
                Err(log_unavailable(state, &error))
            }
            Some(error) => {
                tracing::warn!(%error, acked = acked.len(), rejected = rejected.len(), total = count,
                    "part of a batch was not confirmed by Kafka");
                Ok((Receipt { acked, rejected }, false))
            }
        }
    }
}

pub(crate) fn log_unavailable(state: &AppState, error: &PublishError) -> ApiError {
    ApiError::LogUnavailable {
        detail: error.to_string(),
        retry_after: state.retry_after(),
    }
}

/// Publishes one quarantine record and waits for Kafka to confirm it.
async fn quarantine_one(
    state: &AppState,
    key: &str,
    record: &QuarantinedInput,
) -> Result<(), ApiError> {
    let mut buf = Vec::new();
    encode_into(record, &mut buf).map_err(|e| ApiError::LogUnavailable {
        detail: format!("cannot encode quarantine record: {e}"),
        retry_after: state.retry_after(),
    })?;
    let delivery = state
        .publisher
        .enqueue(&Topic::Quarantine.name(), key, &buf)
        .map_err(|e| log_unavailable(state, &e))?;
    Publisher::confirmed(delivery)
        .await
        .map_err(|e| log_unavailable(state, &e))
}
