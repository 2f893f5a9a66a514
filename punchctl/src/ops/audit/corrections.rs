//! The audit's corrections stage: `punches.corrections.<group>` against the `corrections`
//! table. Every correction in the log below the attendance consumer's stored offsets must be
//! stored exactly once, from its first record (a resend of the same id changes nothing); a
//! stored correction must be in the log; records past the offsets are pending.

use std::collections::{BTreeMap, HashMap, HashSet};

use dakoku_kafka::Admin;
use dakoku_kafka::scan::scan_range;
use dakoku_schemas::{ConsumerGroup, Correction, Topic, decode};
use rdkafka::consumer::Consumer as _;
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::findings::{CorrectionFinding, CorrectionsStage};
use super::request::{AuditError, AuditRequest};
use crate::ops::lag::{self, LagError};

/// Each correction of the log in scope: its first record's position and how many records.
#[derive(Debug, Default)]
pub(crate) struct CorrectionsLog {
    exists: bool,
    records: u64,
    undecodable: u64,
    first: BTreeMap<(String, Uuid), (i32, i64)>,
}

/// Reads the group's corrections topic to its end (blocking).
pub(crate) fn read_log(request: &AuditRequest) -> Result<CorrectionsLog, AuditError> {
    let topic = Topic::Corrections(request.group.clone()).name();
    let admin = Admin::new(&request.kafka, "punchctl-audit", request.timeout)?;
    let partitions = match lag::partitions(&admin, &topic) {
        Ok(partitions) => partitions,
        Err(LagError::NoTopic(_)) => return Ok(CorrectionsLog::default()),
        Err(error) => return Err(error.into()),
    };
    let reader: dakoku_kafka::Reader = request
        .kafka
        .reader("punchctl-audit")
        .create()
        .map_err(LagError::from)?;
    let bounds: BTreeMap<i32, (i64, i64)> =
        dakoku_kafka::admin::watermarks(reader.client(), &topic, &partitions, request.timeout)
            .map_err(LagError::from)?;
    let tenant = request.tenant.as_ref().map(|t| t.as_str().to_owned());
    let mut log = CorrectionsLog {
        exists: true,
        ..CorrectionsLog::default()
    };
    let mut on = |partition: i32, offset: i64, payload: Option<&[u8]>| {
        let Some(c) = payload.and_then(|p| decode::<Correction>(p).ok()) else {
            log.undecodable += 1;
            return;
        };
        if tenant.as_deref().is_some_and(|t| t != c.tenant_id.as_str()) {
            return;
        }
        log.records += 1;
        let key = (c.tenant_id.to_string(), *c.correction_id.as_uuid());
        let at = (partition, offset);
        log.first
            .entry(key)
            .and_modify(|first| {
                // One employee's records share a partition: the lower offset came first.
                if at < *first {
                    *first = at;
                }
            })
            .or_insert(at);
    };
    scan_range(
        &reader,
        &topic,
        &bounds,
        request.timeout,
        &mut on,
        &mut |_| {},
    )
    .map_err(LagError::from)?;
    Ok(log)
}

/// A stored correction: tenant, id, and the record it was stored from.
pub(crate) struct Stored {
    tenant: String,
    id: Uuid,
    from: (i32, i64),
}

/// The stored corrections in scope and the consumer's stored offsets of the topic.
pub(crate) async fn read_stored(
    tx: &Transaction<'_>,
    request: &AuditRequest,
) -> Result<(Vec<Stored>, HashMap<i32, i64>), AuditError> {
    let group = request.group.as_str();
    let tenant = request.tenant.as_ref().map(|t| t.as_str());
    let rows = tx
        .query(
            "SELECT tenant_id, correction_id, source_partition, source_offset FROM corrections \
             WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2)",
            &[&group, &tenant],
        )
        .await?;
    let stored = rows
        .iter()
        .map(|r| Stored {
            tenant: r.get(0),
            id: r.get(1),
            from: (r.get(2), r.get(3)),
        })
        .collect();
    let topic = Topic::Corrections(request.group.clone()).name();
    let consumer_group = ConsumerGroup::Attendance(request.group.clone()).name();
    let offsets = dakoku_store::offsets::load(tx, &consumer_group, &topic).await?;
    Ok((stored, offsets))
}

/// The stage: the log against the table.
pub(crate) fn judge(
    log: &CorrectionsLog,
    stored: &[Stored],
    offsets: &HashMap<i32, i64>,
    limit: usize,
) -> CorrectionsStage {
    let mut stage = CorrectionsStage {
        records: log.records,
        corrections: log.first.len() as u64,
        undecodable: log.undecodable,
        stored: stored.len() as u64,
        topic_exists: log.exists,
        ..CorrectionsStage::default()
    };
    let finding =
        |tenant: &str, id: Uuid, at: Option<(i32, i64)>, detail: String| CorrectionFinding {
            tenant: tenant.to_owned(),
            correction_id: id,
            log_position: at,
            detail,
        };
    let mut seen: HashSet<(&str, Uuid)> = HashSet::new();
    for s in stored {
        seen.insert((s.tenant.as_str(), s.id));
        match log.first.get(&(s.tenant.clone(), s.id)) {
            None => stage.unexpected.push(
                finding(
                    &s.tenant,
                    s.id,
                    None,
                    format!(
                        "stored from partition {} offset {}, not in the log",
                        s.from.0, s.from.1
                    ),
                ),
                limit,
            ),
            Some(&first) if first != s.from => stage.misapplied.push(
                finding(
                    &s.tenant,
                    s.id,
                    Some(first),
                    format!(
                        "stored from partition {} offset {}, a later record of the same id",
                        s.from.0, s.from.1
                    ),
                ),
                limit,
            ),
            Some(_) => {}
        }
    }
    for ((tenant, id), &(partition, offset)) in &log.first {
        if seen.contains(&(tenant.as_str(), *id)) {
            continue;
        }
        if offset >= offsets.get(&partition).copied().unwrap_or(0) {
            stage.pending += 1;
        } else {
            stage.missing.push(
                finding(
                    tenant,
                    *id,
                    Some((partition, offset)),
                    "in the log below the consumer's stored offset, not stored".to_owned(),
                ),
                limit,
            );
        }
    }
    stage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn log(entries: &[(u128, (i32, i64))]) -> CorrectionsLog {
        CorrectionsLog {
            exists: true,
            records: entries.len() as u64,
            undecodable: 0,
            first: entries
                .iter()
                .map(|&(n, at)| (("t".to_owned(), id(n)), at))
                .collect(),
        }
    }

    fn stored(n: u128, from: (i32, i64)) -> Stored {
        Stored {
            tenant: "t".into(),
            id: id(n),
            from,
        }
    }

    #[test]
    fn each_kind_of_finding_and_pending() {
        let log = log(&[(1, (0, 0)), (2, (0, 1)), (3, (0, 5)), (4, (1, 0))]);
        let offsets: HashMap<i32, i64> = [(0, 4), (1, 1)].into();
        let stage = judge(
            &log,
            &[stored(1, (0, 0)), stored(4, (1, 3)), stored(9, (0, 2))],
            &offsets,
            10,
        );
        // 2: below the offset, not stored. 3: past it, pending.
        assert_eq!(stage.missing.count, 1);
        assert_eq!(stage.missing.examples[0].correction_id, id(2));
        assert_eq!(stage.pending, 1);
        // 4: stored from a later record than its first.
        assert_eq!(stage.misapplied.count, 1);
        assert_eq!(stage.misapplied.examples[0].correction_id, id(4));
        // 9: not in the log at all.
        assert_eq!(stage.unexpected.count, 1);
        assert_eq!(stage.problems(), 3);
    }

    #[test]
    fn a_log_applied_exactly_is_clean() {
        let log = log(&[(1, (0, 0)), (2, (0, 1))]);
        let offsets: HashMap<i32, i64> = [(0, 2)].into();
        let stage = judge(&log, &[stored(1, (0, 0)), stored(2, (0, 1))], &offsets, 10);
        assert_eq!(stage.problems(), 0);
        assert_eq!((stage.corrections, stage.stored, stage.pending), (2, 2, 0));
    }
}
