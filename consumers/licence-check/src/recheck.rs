//! Recheck: after master data is fixed (a card registered, a licence extended), re-run the
//! check for the punches of a group (or one tenant) that were rejected, and publish a new,
//! accepted verdict for each that now passes. With `include_accepted`, accepted punches are
//! judged again too and each that the history now rejects gets a rejection (a licence removed
//! retroactively). This is the only path that re-judges a punch: the stored first verdict
//! (`punch_verdicts`) is replaced before the new verdict is published, so later resends repeat
//! the new one.
//!
//! The scan reads `punches.checked.<group>` from the beginning (`read_committed`) up to its
//! end at scan time. Which verdict of a punch counts is decided by [`VerdictKey`], the order
//! the attendance projection and `punchctl audit` use too (log order across partitions means
//! nothing: a verdict's partition follows its key, which changes from card to employee when a
//! card becomes known). A punch whose counting verdict is `accepted` is decided. A punch whose
//! counting verdict is a rejection is checked again with the current snapshot, and if accepted
//! now, one `CheckedPunch` is produced for it, in a Kafka transaction; that verdict carries
//! the current master-data version and a later `checked_at`, so it becomes the counting one.
//! A second run finds those punches decided and produces nothing.
//!
//! This includes a punch that was accepted once and rejected later (a resend judged during a
//! bad master-data change): the rejection counts for attendance, so recheck must reinstate it.
//!
//! The transactional id is `punchctl-recheck.<group>`: two rechecks of one group at once fence
//! each other instead of both publishing.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use dakoku_kafka::scan::scan_range;
use dakoku_kafka::{ClientBuilder, ClientFactory, Reader, ThreadedProducer, Watermarks};
use dakoku_schemas::{
    CheckedPunch, GroupId, PunchId, RejectReason, TenantId, Topic, Verdict, VerdictKey,
    checked_key, decode, encode,
};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};

use crate::check::check;
use crate::snapshot::Snapshot;
use crate::verdicts::VerdictStore;

/// Verdicts published per transaction.
const CHUNK: usize = 10_000;

/// What to recheck.
#[derive(Debug, Clone)]
pub struct RecheckRequest {
    /// Kafka bootstrap servers; [`recheck`] connects with these alone, [`recheck_with`] with
    /// the factory it is given (which carries the operator's client properties too).
    pub brokers: String,
    /// The group whose `punches.checked.<group>` is scanned.
    pub group: GroupId,
    /// Only this tenant's punches; all of the group's when `None`.
    pub tenant: Option<TenantId>,
    /// Report what would be accepted without producing anything.
    pub dry_run: bool,
    /// Judge accepted punches again too (publishing a rejection where the history now says so).
    pub include_accepted: bool,
    /// Longest wait for any one Kafka operation.
    pub timeout: Duration,
}

/// Progress callbacks, e.g. for a progress bar.
pub trait Progress {
    /// The scan will read about `records` records.
    fn scanning(&self, records: u64);
    /// `records` more were read.
    fn scanned(&self, records: u64);
    /// `verdicts` new verdicts will be published.
    fn publishing(&self, verdicts: u64);
    /// `verdicts` more were committed.
    fn published(&self, verdicts: u64);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn scanning(&self, _: u64) {}
    fn scanned(&self, _: u64) {}
    fn publishing(&self, _: u64) {}
    fn published(&self, _: u64) {}
}

/// What a recheck found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecheckSummary {
    /// Master-data version the new verdicts record.
    pub master_data_version: i64,
    /// Records read from the checked topic.
    pub records_scanned: u64,
    /// Records that did not decode as `CheckedPunch` (skipped).
    pub undecodable: u64,
    /// Distinct punches in scope.
    pub punches: u64,
    /// Punches whose counting verdict ([`VerdictKey`]) is accepted already.
    pub already_accepted: u64,
    /// Rejected punches that the current master data accepts.
    pub now_accepted: u64,
    /// Accepted punches that the current master data rejects (only with `include_accepted`).
    pub now_rejected: u64,
    /// Rejected punches that stay rejected, by their current reason.
    pub still_rejected: BTreeMap<RejectReason, u64>,
    /// New verdicts committed (0 on a dry run).
    pub published: u64,
    /// The punches accepted now (their ids), sorted.
    pub accepted_punches: Vec<PunchId>,
    /// The punches rejected now (their ids), sorted.
    pub rejected_punches: Vec<PunchId>,
}

/// Why a recheck failed. Nothing is half-published: verdicts commit in transactions.
#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
    /// Kafka failed; the error says at which step.
    #[error(transparent)]
    Kafka(#[from] dakoku_kafka::Error),
    /// The checked topic does not exist. Create it: `punchctl topics create --group <group>`.
    #[error("topic {0} does not exist; create it with `punchctl topics create --group <group>`")]
    NoTopic(String),
    /// The scan did not reach the end of the topic in time.
    #[error("the scan of {topic} did not reach its end within {timeout:?}")]
    ScanTimeout {
        /// The topic.
        topic: String,
        /// The limit.
        timeout: Duration,
    },
    /// A bug: a verdict could not be encoded.
    #[error("cannot encode a verdict: {0}")]
    Encode(String),
    /// The stored verdicts could not be updated; nothing was published.
    #[error(transparent)]
    Store(#[from] crate::verdicts::VerdictError),
    /// Another recheck of the group took over this one's transactional id.
    #[error(
        "another recheck of group {0} is running and fenced this one; let it finish, then run again"
    )]
    Fenced(GroupId),
}

/// A punch's counting verdict so far in the scan (a rejection is kept whole: it may be
/// rechecked).
struct Seen(Box<CheckedPunch>);

impl Seen {
    fn key(&self) -> VerdictKey {
        VerdictKey::of(&self.0)
    }

    fn of(punch: CheckedPunch) -> Self {
        Self(Box::new(punch))
    }
}

/// Rechecks `request` against `snapshot`, connecting to `request.brokers` with no other
/// client property. Blocking: run it on a blocking thread.
pub fn recheck(
    request: &RecheckRequest,
    snapshot: &Snapshot,
    verdicts: Option<&VerdictStore>,
    progress: &dyn Progress,
) -> Result<RecheckSummary, RecheckError> {
    recheck_with(
        &ClientFactory::new(&request.brokers),
        request,
        snapshot,
        verdicts,
        progress,
    )
}

/// Rechecks `request` against `snapshot` with clients from `kafka` (`request.brokers` is not
/// used), replacing the stored first verdicts of the punches it changes in `verdicts` before
/// publishing (`None`: the log only, for tools without Postgres). Blocking: run it on a
/// blocking thread.
pub fn recheck_with(
    kafka: &ClientFactory,
    request: &RecheckRequest,
    snapshot: &Snapshot,
    verdicts: Option<&VerdictStore>,
    progress: &dyn Progress,
) -> Result<RecheckSummary, RecheckError> {
    let topic = Topic::Checked(request.group.clone()).name();
    let punches = scan(kafka, request, &topic, progress)?;
    let mut summary = RecheckSummary {
        master_data_version: snapshot.version,
        records_scanned: punches.records,
        undecodable: punches.undecodable,
        punches: punches.by_id.len() as u64,
        ..RecheckSummary::default()
    };
    let now = Utc::now().timestamp_millis();
    let mut fresh: Vec<(String, CheckedPunch)> = Vec::new();
    for Seen(counting) in punches.by_id.into_values() {
        let was_accepted = counting.verdict == Verdict::Accepted;
        if was_accepted && !request.include_accepted {
            summary.already_accepted += 1;
            continue;
        }
        let raw = counting.raw();
        let decision = check(&raw, snapshot);
        match (decision.reason, was_accepted) {
            (Some(reason), false) => *summary.still_rejected.entry(reason).or_default() += 1,
            (None, true) => summary.already_accepted += 1,
            (reason, _) => {
                match reason {
                    None => summary.accepted_punches.push(raw.punch_id),
                    Some(_) => summary.rejected_punches.push(raw.punch_id),
                }
                let key = checked_key(&raw.tenant_id, decision.employee, &raw.card_id);
                fresh.push((key, decision.apply(raw, snapshot.version, now)));
            }
        }
    }
    fresh.sort_by_key(|(_, punch)| punch.punch_id);
    summary.accepted_punches.sort_unstable();
    summary.rejected_punches.sort_unstable();
    summary.now_accepted = summary.accepted_punches.len() as u64;
    summary.now_rejected = summary.rejected_punches.len() as u64;
    if !request.dry_run && !fresh.is_empty() {
        if let Some(verdicts) = verdicts {
            let changed: Vec<CheckedPunch> = fresh.iter().map(|(_, p)| p.clone()).collect();
            verdicts.replace(&changed)?;
        }
        summary.published = publish(kafka, request, &topic, &fresh, progress)?;
    }
    Ok(summary)
}

/// What the scan found: every punch in scope with its counting verdict so far.
#[derive(Default)]
struct Scanned {
    records: u64,
    undecodable: u64,
    by_id: HashMap<PunchId, Seen>,
}

impl Scanned {
    /// Folds in one record of the checked topic.
    fn add(&mut self, payload: Option<&[u8]>, tenant: Option<&TenantId>) {
        self.records += 1;
        let Some(punch) = payload.and_then(|payload| decode::<CheckedPunch>(payload).ok()) else {
            self.undecodable += 1;
            return;
        };
        if tenant.is_some_and(|tenant| tenant != &punch.tenant_id) {
            return;
        }
        match self.by_id.entry(punch.punch_id) {
            Entry::Occupied(mut seen) => {
                if VerdictKey::of(&punch) > seen.get().key() {
                    seen.insert(Seen::of(punch));
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(Seen::of(punch));
            }
        }
    }
}

fn scan(
    kafka: &ClientFactory,
    request: &RecheckRequest,
    topic: &str,
    progress: &dyn Progress,
) -> Result<Scanned, RecheckError> {
    let (consumer, bounds) = open_scan(kafka, request, topic)?;
    let total = bounds
        .values()
        .map(|&(low, high)| u64::try_from(high - low).unwrap_or(0))
        .sum();
    progress.scanning(total);
    let mut scanned = Scanned::default();
    // A transaction open at scan time holds a read_committed reader back until it ends: within
    // the transaction timeout at the latest.
    let stall = request.timeout.max(Duration::from_secs(90));
    scan_range(
        &consumer,
        topic,
        &bounds,
        stall,
        &mut |_, _, payload| scanned.add(payload, request.tenant.as_ref()),
        &mut |n| progress.scanned(n),
    )
    .map_err(|error| match error {
        dakoku_kafka::Error::Stalled { topic, waited } => RecheckError::ScanTimeout {
            topic,
            timeout: waited,
        },
        other => other.into(),
    })?;
    Ok(scanned)
}

/// The scan's reader and its bounds: each partition up to its end at scan time, so
/// everything committed before the scan began (`dakoku_kafka::scan` says why that end is
/// reached however busy the topic is).
fn open_scan(
    kafka: &ClientFactory,
    request: &RecheckRequest,
    topic: &str,
) -> Result<(Reader, Watermarks), RecheckError> {
    let consumer: Reader = reader_settings(kafka, &request.group).create()?;
    let client = consumer.client();
    let partitions =
        dakoku_kafka::admin::partitions(client, topic, request.timeout).map_err(|error| {
            if error.is_unknown_topic() {
                RecheckError::NoTopic(topic.to_owned())
            } else {
                error.into()
            }
        })?;
    let bounds = dakoku_kafka::admin::watermarks(client, topic, &partitions, request.timeout)?;
    Ok((consumer, bounds))
}

fn publish(
    kafka: &ClientFactory,
    request: &RecheckRequest,
    topic: &str,
    fresh: &[(String, CheckedPunch)],
    progress: &dyn Progress,
) -> Result<u64, RecheckError> {
    let producer: ThreadedProducer = producer_settings(kafka, &request.group).create()?;
    let fenced = |error: &KafkaError| {
        matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::Fenced
                    | RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
            )
        )
    };
    let fail = |doing: &str, error: KafkaError| {
        if fenced(&error) {
            RecheckError::Fenced(request.group.clone())
        } else {
            dakoku_kafka::Error::kafka(doing, error).into()
        }
    };
    producer
        .init_transactions(request.timeout)
        .map_err(|e| fail("initialising transactions", e))?;
    progress.publishing(fresh.len() as u64);
    let mut published = 0u64;
    for chunk in fresh.chunks(CHUNK) {
        let payloads = chunk
            .iter()
            .map(|(_, punch)| encode(punch))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RecheckError::Encode(e.to_string()))?;
        producer
            .begin_transaction()
            .map_err(|e| fail("beginning a transaction", e))?;
        for ((key, _), payload) in chunk.iter().zip(&payloads) {
            let mut record = BaseRecord::to(topic).key(key).payload(payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((error, _)) => {
                        let _ = producer.abort_transaction(request.timeout);
                        return Err(fail("producing a verdict", error));
                    }
                }
            }
        }
        if let Err(error) = producer.commit_transaction(request.timeout) {
            let _ = producer.abort_transaction(request.timeout);
            return Err(fail("committing the verdicts", error));
        }
        published += chunk.len() as u64;
        progress.published(chunk.len() as u64);
    }
    Ok(published)
}

/// The scan's reader: `read_committed`, partitions assigned by hand, end of partition
/// reported. It never joins or commits; the group id librdkafka requires names the group.
fn reader_settings(kafka: &ClientFactory, group: &GroupId) -> ClientBuilder {
    kafka.reader("punchctl-recheck").set(
        "group.id",
        format!("punchctl-recheck.{group}.{}", std::process::id()),
    )
}

/// The publishing producer: `punchctl-recheck.<group>`, so two rechecks of a group fence.
fn producer_settings(kafka: &ClientFactory, group: &GroupId) -> ClientBuilder {
    kafka.transactional_producer("punchctl-recheck", format!("punchctl-recheck.{group}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_sees_committed_records_only_and_two_rechecks_of_a_group_fence() {
        let kafka = ClientFactory::new("k1:9092");
        let group: GroupId = "g1".parse().expect("group");
        let reader = reader_settings(&kafka, &group);
        let group_id = format!("punchctl-recheck.g1.{}", std::process::id());
        for (key, value) in [
            ("client.id", "punchctl-recheck"),
            ("group.id", group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
            ("enable.partition.eof", "true"),
            ("auto.offset.reset", "earliest"),
        ] {
            assert_eq!(reader.get(key), Some(value), "{key}");
        }
        let producer = producer_settings(&kafka, &group);
        for (key, value) in [
            ("client.id", "punchctl-recheck"),
            ("transactional.id", "punchctl-recheck.g1"),
            ("enable.idempotence", "true"),
            ("acks", "all"),
        ] {
            assert_eq!(producer.get(key), Some(value), "{key}");
        }
    }
}
