//! One raw record into the open transaction: decoded and queued for its verdict on
//! `punches.checked.<group>` (judged as one batch at commit, against the stored first verdicts,
//! [`Handler::flush`]), or, if it cannot be decoded, its quarantine record with its origin; the
//! circuit breaker counts both.

use std::thread;
use std::time::Duration;

use chrono::Utc;
use dakoku_schemas::{
    ConsumerGroup, GroupId, QuarantinedInput, RawPunch, TenantId, Topic, checked_key, decode,
    encode_into,
};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::BaseRecord;

use super::group::{GroupError, WorkerEnv};
use super::produce::{SessionEnd, TxProducer, send};
use super::txn::OpenTxn;
use crate::breaker::{Breaker, Tripped};
use crate::check::check;
use crate::config::Mode;
use crate::first::Judged;
use crate::metrics;
use crate::verdicts::VerdictStore;

/// Punches judged (and their verdicts produced) together: one `punch_verdicts` lookup and one
/// insert per chunk, so a long transaction's verdicts stream out instead of piling up.
const FLUSH_RECORDS: usize = 5_000;

/// The `source` of quarantine records written here.
pub const QUARANTINE_SOURCE: &str = "licence-check";

/// Turns raw records into output records of the open transaction.
pub(super) struct Handler<'a> {
    env: &'a WorkerEnv,
    producer: &'a TxProducer,
    raw_topic: &'a str,
    checked_topic: String,
    quarantine_topic: String,
    /// The stored first verdicts (check mode).
    verdicts: Option<&'a VerdictStore>,
    /// Encoding buffer, reused record after record.
    buf: Vec<u8>,
}

impl<'a> Handler<'a> {
    pub(super) fn new(
        env: &'a WorkerEnv,
        producer: &'a TxProducer,
        raw_topic: &'a str,
        verdicts: Option<&'a VerdictStore>,
    ) -> Self {
        Self {
            env,
            producer,
            verdicts,
            raw_topic,
            checked_topic: Topic::Checked(env.shared.group.clone()).name(),
            quarantine_topic: Topic::Quarantine.name(),
            buf: Vec::with_capacity(512),
        }
    }

    fn group(&self) -> &GroupId {
        &self.env.shared.group
    }

    /// Turns one raw record into its verdict (or quarantine record) in the open transaction.
    pub(super) fn handle(
        &mut self,
        message: &BorrowedMessage<'_>,
        open: &mut OpenTxn,
        breaker: &mut Breaker,
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
            Mode::Check => self.judge(message, open, breaker)?,
        }
        open.records += 1;
        open.next_offsets.insert(partition, offset + 1);
        Ok(())
    }

    /// Decodes and checks one raw punch and produces its verdict, or quarantines the record.
    fn judge(
        &mut self,
        message: &BorrowedMessage<'_>,
        open: &mut OpenTxn,
        breaker: &mut Breaker,
    ) -> Result<(), SessionEnd> {
        let decoded = match message.payload() {
            Some(payload) => {
                decode::<RawPunch>(payload).map_err(|e| ("undecodable_record", e.to_string()))
            }
            None => Err(("empty_record", "the record has no value".to_owned())),
        };
        let raw = match decoded {
            Ok(raw) => raw,
            Err((code, error)) => return self.quarantine(message, open, breaker, code, error),
        };
        // Judged in chunks against the stored first verdicts (one lookup and one insert per
        // chunk), the last one just before the commit.
        open.pending.push(raw);
        breaker.record(true).map_err(|t| self.tripped(t))?;
        if open.pending.len() >= FLUSH_RECORDS {
            self.flush(open)?;
        }
        Ok(())
    }

    /// Judges the open transaction's pending punches (or reuses their stored first verdicts),
    /// stores the new verdicts and produces one `CheckedPunch` per punch; called per chunk and
    /// just before commit, so every verdict is stored before its transaction commits.
    pub(super) fn flush(&mut self, open: &mut OpenTxn) -> Result<(), SessionEnd> {
        if open.pending.is_empty() {
            return Ok(());
        }
        let Some(store) = self.verdicts else {
            return Ok(());
        };
        let snapshot = open
            .snapshot
            .clone()
            .expect("check mode waits for a snapshot before consuming");
        let delay = self.env.config.check_delay_us;
        let now = Utc::now().timestamp_millis();
        let judge = |raw: &RawPunch| {
            if delay > 0 {
                // The storm's slow licence check (a test knob): it slows this loop, and so
                // grows the lag, never the acceptor.
                thread::sleep(Duration::from_micros(delay));
            }
            Judged::of(&check(raw, &snapshot).apply(raw.clone(), snapshot.version, now))
        };
        let batch = std::mem::take(&mut open.pending);
        let settled = store
            .settle(batch, judge)
            .map_err(|e| SessionEnd::Retry(format!("storing first verdicts: {e}")))?;
        metrics::verdicts_reused(self.group(), settled.reused as u64);
        for checked in settled.out {
            let key = checked_key(
                &checked.tenant_id,
                checked.employee_id.as_ref(),
                &checked.card_id,
            );
            let reason = checked.reason;
            self.buf.clear();
            encode_into(&checked, &mut self.buf)
                .map_err(|e| SessionEnd::Fatal(GroupError::Encode(format!("a verdict: {e}"))))?;
            send(
                self.producer,
                BaseRecord::to(&self.checked_topic)
                    .key(&key)
                    .payload(&self.buf),
            )?;
            open.tally.verdict(reason);
        }
        Ok(())
    }

    /// Preserves an undecodable record in `punches.quarantine`, with its origin, in the open
    /// transaction; trips the breaker if that is one too many.
    fn quarantine(
        &mut self,
        message: &BorrowedMessage<'_>,
        open: &mut OpenTxn,
        breaker: &mut Breaker,
        code: &str,
        error: String,
    ) -> Result<(), SessionEnd> {
        // Count first: the record that crosses the limit is not quarantined, its transaction
        // is aborted.
        breaker.record(false).map_err(|t| self.tripped(t))?;
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
            consumer_group: ConsumerGroup::LicenceCheck(self.group().clone()).name(),
            topic: self.raw_topic.to_owned(),
            invalid: tripped.invalid,
            seen: tripped.seen,
            max_invalid_ratio: tripped.max_invalid_ratio,
        })
    }
}
