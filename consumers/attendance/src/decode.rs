//! Records of `punches.checked.<group>` decoded into what the store applies ([`Incoming`]), or
//! into the [`Poison`] that goes to `punches.quarantine`. Shared by the consumer and the
//! rebuild's replay, so both skip and quarantine exactly the same records.

use dakoku_schemas::{
    CheckedPunch, CodecError, Correction, GroupId, QuarantinedInput, Verdict, decode, encode,
};
use rdkafka::message::{BorrowedMessage, Message as _};

/// One record of the checked topic, in log order within its partition.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Partition of the checked topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// The verdict, or `None` for a record that was quarantined (its offset still advances).
    pub verdict: Option<CheckedPunch>,
}

/// Where a record stands in its topic: (partition, offset).
pub(crate) trait Position {
    fn position(&self) -> (i32, i64);
}

impl Position for Incoming {
    fn position(&self) -> (i32, i64) {
        (self.partition, self.offset)
    }
}

impl Position for IncomingCorrection {
    fn position(&self) -> (i32, i64) {
        (self.partition, self.offset)
    }
}

/// A record that goes to quarantine instead of Postgres.
#[derive(Debug)]
pub(crate) struct Poison {
    partition: i32,
    offset: i64,
    tenant: Option<String>,
    code: &'static str,
    error: String,
    payload: Vec<u8>,
}

impl Poison {
    /// The record at `(partition, offset)` with `key` and `payload`, and why it is poison; its
    /// tenant is the key's first part (`<tenant>/...`).
    fn of(
        (partition, offset): (i32, i64),
        key: Option<&[u8]>,
        (code, error): (&'static str, String),
        payload: &[u8],
    ) -> Self {
        let tenant = key
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .and_then(|k| k.split('/').next().map(str::to_owned));
        Poison {
            partition,
            offset,
            tenant,
            code,
            error,
            payload: payload.to_vec(),
        }
    }

    /// Its `punches.quarantine` record, keyed by tenant: the input with its error and its
    /// origin in `topic`, quarantined at `now` (ms).
    pub(crate) fn quarantine_record(
        &self,
        topic: &str,
        now: i64,
    ) -> Result<(String, Vec<u8>), String> {
        let mut q = QuarantinedInput::new(
            now,
            "attendance",
            self.code,
            self.error.clone(),
            &self.payload,
            1024 * 1024,
        );
        q.tenant_id = self.tenant.clone();
        q.origin_topic = Some(topic.to_owned());
        q.origin_partition = Some(self.partition);
        q.origin_offset = Some(self.offset);
        Ok((
            self.tenant.clone().unwrap_or_default(),
            encode(&q).map_err(|e| e.to_string())?,
        ))
    }
}

/// Decodes a record of the checked topic; `Err` quarantines it.
fn decode_verdict(payload: &[u8]) -> Result<CheckedPunch, (&'static str, String)> {
    let verdict: CheckedPunch = decode(payload).map_err(|e: CodecError| {
        (
            "undecodable_verdict",
            format!("cannot decode CheckedPunch: {e}"),
        )
    })?;
    if verdict.verdict == Verdict::Accepted && verdict.employee_id.is_none() {
        return Err((
            "invalid_verdict",
            format!(
                "accepted verdict of punch {} names no employee",
                verdict.punch_id
            ),
        ));
    }
    Ok(verdict)
}

/// Decodes a record of the checked topic: the verdict, or `None` and the poison to quarantine
/// (its offset advances either way).
pub(crate) fn decode_record(
    group: &GroupId,
    message: &BorrowedMessage<'_>,
) -> (Incoming, Option<Poison>) {
    let partition = message.partition();
    let offset = message.offset();
    let payload = message.payload().unwrap_or_default();
    match decode_verdict(payload) {
        Ok(verdict) => (
            Incoming {
                partition,
                offset,
                verdict: Some(verdict),
            },
            None,
        ),
        Err((code, error)) => {
            tracing::warn!(group = %group, partition, offset, code, error,
                "quarantining an invalid record");
            (
                Incoming {
                    partition,
                    offset,
                    verdict: None,
                },
                Some(Poison::of(
                    (partition, offset),
                    message.key(),
                    (code, error),
                    payload,
                )),
            )
        }
    }
}

/// One record of the corrections topic, in log order within its partition.
#[derive(Debug, Clone)]
pub struct IncomingCorrection {
    /// Partition of the corrections topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// The correction, or `None` for a record that was quarantined (its offset still
    /// advances).
    pub correction: Option<Correction>,
}

/// Decodes a record of `punches.corrections.<group>` (`key` and `payload` at `partition`,
/// `offset`): the correction, or `None` and the poison to quarantine.
pub(crate) fn decode_correction(
    group: &GroupId,
    partition: i32,
    offset: i64,
    key: Option<&[u8]>,
    payload: &[u8],
) -> (IncomingCorrection, Option<Poison>) {
    let decoded = decode::<Correction>(payload)
        .map_err(|e| {
            (
                "undecodable_correction",
                format!("cannot decode Correction: {e}"),
            )
        })
        .and_then(|c| {
            c.check()
                .map(|()| c)
                .map_err(|e| ("invalid_correction", e.to_string()))
        });
    match decoded {
        Ok(correction) => (
            IncomingCorrection {
                partition,
                offset,
                correction: Some(correction),
            },
            None,
        ),
        Err((code, error)) => {
            tracing::warn!(group = %group, partition, offset, code, error,
                "quarantining an invalid correction");
            (
                IncomingCorrection {
                    partition,
                    offset,
                    correction: None,
                },
                Some(Poison::of((partition, offset), key, (code, error), payload)),
            )
        }
    }
}
