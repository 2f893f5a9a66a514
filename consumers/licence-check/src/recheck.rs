//! Recheck: after master data is fixed (a card registered, a licence extended), re-run the
//! check for the punches of a group (or one tenant) that were rejected, and publish a new,
//! accepted verdict for each that now passes.
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

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use dakoku_schemas::{
    CheckedPunch, GroupId, PunchId, RejectReason, TenantId, Topic, Verdict, VerdictKey,
    checked_key, decode, encode,
};
use dakoku_service::scan::{ScanError, scan_range};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::check::check;
use crate::snapshot::Snapshot;

/// Verdicts published per transaction.
const CHUNK: usize = 10_000;

/// What to recheck.
#[derive(Debug, Clone)]
pub struct RecheckRequest {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The group whose `punches.checked.<group>` is scanned.
    pub group: GroupId,
    /// Only this tenant's punches; all of the group's when `None`.
    pub tenant: Option<TenantId>,
    /// Report what would be accepted without producing anything.
    pub dry_run: bool,
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
    /// Rejected punches that stay rejected, by their current reason.
    pub still_rejected: BTreeMap<RejectReason, u64>,
    /// New verdicts committed (0 on a dry run).
    pub published: u64,
    /// The punches accepted now (their ids), sorted.
    pub accepted_punches: Vec<PunchId>,
}

/// Why a recheck failed. Nothing is half-published: verdicts commit in transactions.
#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
    /// Kafka failed; `doing` says at which step.
    #[error("{doing}: {source}")]
    Kafka {
        /// The step.
        doing: String,
        /// What Kafka said.
        #[source]
        source: KafkaError,
    },
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
    /// Another recheck of the group took over this one's transactional id.
    #[error(
        "another recheck of group {0} is running and fenced this one; let it finish, then run again"
    )]
    Fenced(GroupId),
}

fn kafka(doing: impl Into<String>) -> impl FnOnce(KafkaError) -> RecheckError {
    let doing = doing.into();
    move |source| RecheckError::Kafka { doing, source }
}

/// A punch's counting verdict so far in the scan (a rejection is kept whole: it may be
/// rechecked).
enum Seen {
    Accepted(VerdictKey),
    Rejected(Box<CheckedPunch>),
}

impl Seen {
    fn key(&self) -> VerdictKey {
        match self {
            Seen::Accepted(key) => *key,
            Seen::Rejected(punch) => VerdictKey::of(punch),
        }
    }

    fn of(punch: CheckedPunch) -> Self {
        match punch.verdict {
            Verdict::Accepted => Seen::Accepted(VerdictKey::of(&punch)),
            Verdict::Rejected => Seen::Rejected(Box::new(punch)),
        }
    }
}

/// Rechecks `request` against `snapshot`. Blocking: run it on a blocking thread.
pub fn recheck(
    request: &RecheckRequest,
    snapshot: &Snapshot,
    progress: &dyn Progress,
) -> Result<RecheckSummary, RecheckError> {
    let topic = Topic::Checked(request.group.clone()).name();
    let punches = scan(request, &topic, progress)?;
    let mut summary = RecheckSummary {
        master_data_version: snapshot.version,
        records_scanned: punches.records,
        undecodable: punches.undecodable,
        punches: punches.by_id.len() as u64,
        ..RecheckSummary::default()
    };
    let now = Utc::now().timestamp_millis();
    let mut fresh: Vec<(String, CheckedPunch)> = Vec::new();
    for seen in punches.by_id.into_values() {
        let rejected = match seen {
            Seen::Accepted(_) => {
                summary.already_accepted += 1;
                continue;
            }
            Seen::Rejected(rejected) => rejected,
        };
        let raw = rejected.raw();
        let decision = check(&raw, snapshot);
        match decision.reason {
            Some(reason) => *summary.still_rejected.entry(reason).or_default() += 1,
            None => {
                let key = checked_key(&raw.tenant_id, decision.employee, &raw.card_id);
                fresh.push((key, decision.apply(raw, snapshot.version, now)));
            }
        }
    }
    fresh.sort_by_key(|(_, punch)| punch.punch_id);
    summary.now_accepted = fresh.len() as u64;
    summary.accepted_punches = fresh.iter().map(|(_, p)| p.punch_id).collect();
    if !request.dry_run && !fresh.is_empty() {
        summary.published = publish(request, &topic, &fresh, progress)?;
    }
    Ok(summary)
}

struct Scanned {
    records: u64,
    undecodable: u64,
    by_id: HashMap<PunchId, Seen>,
}

fn scan(
    request: &RecheckRequest,
    topic: &str,
    progress: &dyn Progress,
) -> Result<Scanned, RecheckError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &request.brokers)
        .set("client.id", "punchctl-recheck")
        // Never joins or commits: partitions are assigned by hand. The id is required anyway.
        .set(
            "group.id",
            format!("punchctl-recheck.{}.{}", request.group, std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(kafka("creating the scan consumer"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), request.timeout)
        .map_err(kafka(format!("reading the metadata of {topic}")))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(RecheckError::NoTopic(topic.to_owned()));
    }
    // Each partition up to its end at scan time: everything committed before the scan began
    // (dakoku_service::scan says why that end is reached however busy the topic is).
    let mut bounds = BTreeMap::new();
    for &partition in &partitions {
        let marks = consumer
            .fetch_watermarks(topic, partition, request.timeout)
            .map_err(kafka(format!("reading the offsets of {topic}")))?;
        bounds.insert(partition, marks);
    }
    let total = bounds
        .values()
        .map(|&(low, high)| u64::try_from(high - low).unwrap_or(0))
        .sum();
    progress.scanning(total);
    let mut scanned = Scanned {
        records: 0,
        undecodable: 0,
        by_id: HashMap::new(),
    };
    // A transaction open at scan time holds a read_committed reader back until it ends: within
    // the transaction timeout at the latest.
    let stall = request.timeout.max(Duration::from_secs(90));
    scan_range(
        &consumer,
        topic,
        &bounds,
        stall,
        &mut |_, _, payload| {
            scanned.records += 1;
            let Some(punch) = payload.and_then(|payload| decode::<CheckedPunch>(payload).ok())
            else {
                scanned.undecodable += 1;
                return;
            };
            if request
                .tenant
                .as_ref()
                .is_some_and(|tenant| tenant != &punch.tenant_id)
            {
                return;
            }
            match scanned.by_id.entry(punch.punch_id) {
                std::collections::hash_map::Entry::Occupied(mut seen) => {
                    if VerdictKey::of(&punch) > seen.get().key() {
                        seen.insert(Seen::of(punch));
                    }
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Seen::of(punch));
                }
            }
        },
        &mut |n| progress.scanned(n),
    )?;
    Ok(scanned)
}

impl From<ScanError> for RecheckError {
    fn from(error: ScanError) -> Self {
        match error {
            ScanError::Kafka { doing, source } => RecheckError::Kafka { doing, source },
            ScanError::Stalled { topic, waited } => RecheckError::ScanTimeout {
                topic,
                timeout: waited,
            },
        }
    }
}

fn publish(
    request: &RecheckRequest,
    topic: &str,
    fresh: &[(String, CheckedPunch)],
    progress: &dyn Progress,
) -> Result<u64, RecheckError> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &request.brokers)
        .set("client.id", "punchctl-recheck")
        .set(
            "transactional.id",
            format!("punchctl-recheck.{}", request.group),
        )
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .map_err(kafka("creating the producer"))?;
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
            kafka(doing)(error)
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
