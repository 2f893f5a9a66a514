//! The audit's second stage, pure: the log's per-punch counts against each other (raw ->
//! checked), the stored rows against the latest verdicts (checked -> Postgres), and each
//! employee's stored days and months against a full recomputation with the attendance rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use dakoku_rules::v2::figures::{DAY_FIELDS, MONTH_FIELDS};
use dakoku_rules::v2::{self as engine, Correction, DayFigures, Month, MonthFigures, Punch};
use dakoku_schemas::{DeviceId, PunchId, PunchKind, TenantId};
use uuid::Uuid;

use super::findings::{AuditReport, DayFinding, DaysStage, Figures, MonthFinding, StoredStage};
use super::model::{DayRow, EmployeeKey, Log, MonthRow, Rules, StoredRow};
use super::request::AuditRequest;

fn in_dates(request: &AuditRequest, date: NaiveDate) -> bool {
    request.from.is_none_or(|from| date >= from) && request.to.is_none_or(|to| date <= to)
}

/// The raw -> checked stage, from the log alone.
pub(crate) fn judge_checked(request: &AuditRequest, log: &Log, report: &mut AuditReport) {
    let limit = request.limit;
    let stage = &mut report.checked;
    for (&id, e) in &log.entries {
        if !in_dates(request, e.work_date) {
            continue;
        }
        stage.raw_records += u64::from(e.raw);
        stage.raw_punches += u64::from(e.raw > 0);
        stage.accepted += u64::from(e.accepted);
        stage.rejected += u64::from(e.rejected);
        stage.verdicts += u64::from(e.accepted + e.rejected);
        let verdicts = e.accepted + e.rejected;
        if !log.checked_truncated && verdicts < e.raw_judged {
            stage.missing.offer(
                log.finding(
                    id,
                    e,
                    format!(
                        "{} raw records judged by licence-check, {verdicts} verdicts",
                        e.raw_judged
                    ),
                ),
                limit,
            );
        }
        if log.raw_truncated {
            continue;
        }
        if verdicts > 0 && e.raw == 0 {
            stage.unexpected.offer(
                log.finding(
                    id,
                    e,
                    format!(
                        "{} accepted and {} rejected verdicts, no raw record",
                        e.accepted, e.rejected
                    ),
                ),
                limit,
            );
        } else if e.accepted > e.raw_bound || e.rejected > e.raw_bound {
            stage.doubled.offer(
                log.finding(
                    id,
                    e,
                    format!(
                        "{} raw records (judged when the scan ended), {} accepted and {} rejected verdicts",
                        e.raw_bound, e.accepted, e.rejected
                    ),
                ),
                limit,
            );
        }
    }
}

/// One employee: their stored rows against the log (those in the date range), doubled
/// punches, and their days and months against a full recomputation from their counting punches
/// and stored corrections.
#[allow(clippy::too_many_arguments)]
pub(crate) fn judge_employee(
    request: &AuditRequest,
    log: &mut Log,
    report: &mut AuditReport,
    key: &EmployeeKey,
    rows: &[StoredRow],
    days: &[DayRow],
    months: &[MonthRow],
    corrections: &[Correction],
    rules: &Rules,
) {
    let in_scope: Vec<StoredRow> = rows
        .iter()
        .filter(|r| in_dates(request, r.work_date))
        .cloned()
        .collect();
    let counting_in_scope = judge_rows(request, log, &mut report.stored, &in_scope);
    let counting: Vec<&StoredRow> = rows.iter().filter(|r| !r.withdrawn).collect();
    judge_doubles(log, &mut report.stored, &counting_in_scope, request.limit);
    let computed = engine::compute(rules.rulebook(), &punches_of(&counting), corrections);
    judge_days(request, &mut report.days, key, rows, &computed.days, days);
    judge_months(request, &mut report.days, key, &computed.months, months);
}

fn punches_of(rows: &[&StoredRow]) -> Vec<Punch> {
    rows.iter()
        .filter_map(|r| {
            Some(Punch {
                id: r.punch_id.to_string(),
                seq: u64::try_from(r.seq).ok()?,
                kind: PunchKind::ALL
                    .iter()
                    .copied()
                    .find(|k| k.as_str() == r.kind)?,
                at: r.at.timestamp(),
                added: false,
            })
        })
        .collect()
}

/// Each stored row of a day against the log; returns the rows that count (not withdrawn).
fn judge_rows<'r>(
    request: &AuditRequest,
    log: &mut Log,
    stage: &mut StoredStage,
    rows: &'r [StoredRow],
) -> Vec<&'r StoredRow> {
    let limit = request.limit;
    let mut counting: Vec<&StoredRow> = Vec::with_capacity(rows.len());
    for row in rows {
        stage.stored += 1;
        if row.withdrawn {
            stage.withdrawn += 1;
        } else {
            counting.push(row);
        }
        if let (Ok(tenant), Ok(device), Ok(seq)) = (
            row.tenant.parse::<TenantId>(),
            row.device.parse::<DeviceId>(),
            u64::try_from(row.seq),
        ) && *PunchId::derive(&tenant, &device, seq).as_uuid() != row.punch_id
        {
            stage.unexpected.push(
                row.finding(format!(
                    "punch_id is not the id of {}/{}/{} (it would be {})",
                    row.tenant,
                    row.device,
                    row.seq,
                    PunchId::derive(&tenant, &device, seq)
                )),
                limit,
            );
            continue;
        }
        let entry = log
            .entries
            .get_mut(&row.punch_id)
            .filter(|e| e.accepted + e.rejected > 0);
        let Some(entry) = entry else {
            let retained = log
                .checked_low
                .get(&row.source_partition)
                .is_none_or(|&low| row.source_offset >= low);
            if retained {
                stage.unexpected.push(
                    row.finding(format!(
                        "stored (from punches.checked.{} partition {} offset {}) but the log has no verdict of this punch",
                        request.group, row.source_partition, row.source_offset
                    )),
                    limit,
                );
            } else {
                stage.unverifiable += 1;
            }
            continue;
        };
        entry.stored = true;
        if entry.pending {
            continue;
        }
        match entry.latest {
            Some(latest) if latest.rank == 0 && row.withdrawn => stage.missing.offer(
                row.finding(format!(
                    "withdrawn, but its latest verdict is accepted (master data v{})",
                    latest.master_data_version
                )),
                limit,
            ),
            Some(latest) if latest.rank != 0 && !row.withdrawn => stage.unexpected.push(
                row.finding(format!(
                    "counts, but its latest verdict is a rejection (master data v{})",
                    latest.master_data_version
                )),
                limit,
            ),
            None if !row.withdrawn => stage.unexpected.push(
                row.finding("counts, but every verdict of it was set aside".to_owned()),
                limit,
            ),
            _ => {}
        }
    }
    counting
}

/// The same punch counting twice: same card, kind and instant under another punch_id.
fn judge_doubles(log: &Log, stage: &mut StoredStage, counting: &[&StoredRow], limit: usize) {
    let mut same: HashMap<(&str, &str, DateTime<Utc>), Vec<&StoredRow>> = HashMap::new();
    for row in counting {
        same.entry((row.card.as_str(), row.kind.as_str(), row.at))
            .or_default()
            .push(*row);
    }
    let mut doubles: Vec<Vec<&StoredRow>> = same.into_values().filter(|v| v.len() > 1).collect();
    doubles.sort_by_key(|v| (v[0].at, v[0].kind.clone()));
    for mut rows in doubles {
        // The row the log backs first: the others are the extra ones.
        let backed = |r: &StoredRow| log.entries.get(&r.punch_id).is_some_and(|e| e.stored);
        rows.sort_by_key(|r| (!backed(r), r.punch_id));
        let ids: Vec<String> = rows.iter().map(|r| r.punch_id.to_string()).collect();
        for row in rows.iter().skip(1) {
            stage.doubled.push(
                row.finding(format!(
                    "the same punch (card {}, {} at {}) is stored {} times: {}",
                    row.card,
                    row.kind,
                    row.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    rows.len(),
                    ids.join(", ")
                )),
                limit,
            );
        }
    }
}

/// Each day in range, recomputed, against its stored row. A stored row of zeros with no
/// recomputed day is a day that no longer exists (kept so compacted-topic readers see it go).
fn judge_days(
    request: &AuditRequest,
    stage: &mut DaysStage,
    key: &EmployeeKey,
    rows: &[StoredRow],
    computed: &BTreeMap<NaiveDate, DayFigures>,
    stored_rows: &[DayRow],
) {
    let stored: BTreeMap<NaiveDate, &DayFigures> =
        stored_rows.iter().map(|d| (d.key.2, &d.figures)).collect();
    let dates: BTreeSet<NaiveDate> = computed.keys().chain(stored.keys()).copied().collect();
    let zero = DayFigures::default();
    for date in dates.into_iter().filter(|d| in_dates(request, *d)) {
        let stored = stored.get(&date).copied();
        let recomputed = computed.get(&date).unwrap_or(&zero);
        stage.rows += u64::from(stored.is_some());
        stage.checked += 1;
        if stored == Some(recomputed) {
            continue;
        }
        let detail = match stored {
            None => "no attendance_days row, though punches count on this day".to_owned(),
            Some(stored) => differences(stored, recomputed).join(", "),
        };
        let own = |r: &&StoredRow| r.work_date == date;
        stage.differing.push(
            DayFinding {
                tenant: key.0.clone(),
                employee: key.1.clone(),
                work_date: date,
                stored: stored.map(Figures::from),
                recomputed: Figures::from(recomputed),
                counting_punches: rows.iter().filter(own).filter(|r| !r.withdrawn).count() as u64,
                withdrawn_punches: rows.iter().filter(own).filter(|r| r.withdrawn).count() as u64,
                detail,
            },
            request.limit,
        );
    }
}

/// Each month meeting the range, recomputed, against its stored row.
fn judge_months(
    request: &AuditRequest,
    stage: &mut DaysStage,
    key: &EmployeeKey,
    computed: &BTreeMap<Month, MonthFigures>,
    stored_rows: &[MonthRow],
) {
    let stored: BTreeMap<Month, &MonthRow> = stored_rows
        .iter()
        .filter_map(|m| Some((m.month?, m)))
        .collect();
    let months: BTreeSet<Month> = computed.keys().chain(stored.keys()).copied().collect();
    let zero = MonthFigures::default();
    for month in months {
        let row = stored.get(&month).copied();
        if let Some(row) = row
            && !(request.from.is_none_or(|f| row.last_day >= f)
                && request.to.is_none_or(|t| row.first_day <= t))
        {
            continue;
        }
        let recomputed = computed.get(&month).unwrap_or(&zero);
        stage.months_checked += 1;
        let stored_figures = row.map(|r| &r.figures);
        if stored_figures == Some(recomputed) {
            continue;
        }
        let detail = match stored_figures {
            None => "no attendance_months row, though the month has days".to_owned(),
            Some(stored) => month_differences(stored, recomputed).join(", "),
        };
        stage.months_differing.push(
            MonthFinding {
                tenant: key.0.clone(),
                employee: key.1.clone(),
                month: month.to_string(),
                detail,
            },
            request.limit,
        );
    }
}

/// `field stored -> recomputed` for each differing field of a day.
fn differences(stored: &DayFigures, recomputed: &DayFigures) -> Vec<String> {
    let mut out = Vec::new();
    let time = |t: Option<i64>| {
        t.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
            .map_or_else(
                || "none".to_owned(),
                |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
            )
    };
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name} {a} -> {b}"));
        }
    };
    field("first_in", time(stored.first_in), time(recomputed.first_in));
    field("last_out", time(stored.last_out), time(recomputed.last_out));
    for f in DAY_FIELDS {
        field(
            f.name,
            (f.get)(stored).to_string(),
            (f.get)(recomputed).to_string(),
        );
    }
    let codes = |d: &DayFigures| {
        let codes: Vec<&str> = d.anomalies.iter().map(|a| a.as_str()).collect();
        format!("[{}]", codes.join(","))
    };
    field("anomalies", codes(stored), codes(recomputed));
    field(
        "corrected",
        stored.corrected.to_string(),
        recomputed.corrected.to_string(),
    );
    field(
        "correction_ids",
        format!("[{}]", stored.correction_ids.join(",")),
        format!("[{}]", recomputed.correction_ids.join(",")),
    );
    out
}

/// `field stored -> recomputed` for each differing field of a month.
fn month_differences(stored: &MonthFigures, recomputed: &MonthFigures) -> Vec<String> {
    MONTH_FIELDS
        .iter()
        .filter(|f| (f.get)(stored) != (f.get)(recomputed))
        .map(|f| format!("{} {} -> {}", f.name, (f.get)(stored), (f.get)(recomputed)))
        .collect()
}

/// Counts the punches the log expects stored, applied or rejected, and returns those expected
/// but not met by the day-by-day stream (to be looked up by id).
pub(crate) fn unstored_candidates(
    request: &AuditRequest,
    log: &Log,
    stage: &mut StoredStage,
) -> Vec<Uuid> {
    let mut candidates: Vec<Uuid> = Vec::new();
    for (&id, e) in &log.entries {
        if !in_dates(request, e.work_date) {
            continue;
        }
        stage.set_aside += u64::from(e.set_aside);
        if e.accepted + e.rejected == 0 {
            continue;
        }
        if e.pending {
            stage.pending += 1;
            continue;
        }
        match e.latest {
            Some(latest) if latest.rank == 0 => {
                stage.expected += 1;
                if !e.stored {
                    candidates.push(id);
                }
            }
            Some(_) => stage.rejected += 1,
            None => {}
        }
    }
    candidates
}

/// Reports the candidates missing: not stored at all, or stored withdrawn (`elsewhere` says
/// which ids exist and whether they are withdrawn).
pub(crate) fn judge_missing(
    log: &Log,
    stage: &mut StoredStage,
    candidates: Vec<Uuid>,
    elsewhere: &HashMap<Uuid, bool>,
    limit: usize,
) {
    for id in candidates {
        let Some(e) = log.entries.get(&id) else {
            continue;
        };
        let detail = match elsewhere.get(&id) {
            Some(false) => continue,
            Some(true) => "withdrawn, but its latest verdict is accepted",
            None => "not in punches, but its latest verdict is accepted",
        };
        stage
            .missing
            .offer(log.finding(id, e, detail.to_owned()), limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_field_with_both_values() {
        let stored = DayFigures {
            worked_seconds: 28_800,
            punch_count: 4,
            ..DayFigures::default()
        };
        let recomputed = DayFigures {
            worked_seconds: 28_770,
            punch_count: 4,
            corrected: true,
            ..DayFigures::default()
        };
        assert_eq!(
            differences(&stored, &recomputed),
            ["worked_seconds 28800 -> 28770", "corrected false -> true"]
        );
        assert!(differences(&stored, &stored).is_empty());
        let month = MonthFigures {
            overtime_seconds: 3_600,
            ..MonthFigures::default()
        };
        assert_eq!(
            month_differences(&month, &MonthFigures::default()),
            ["overtime_seconds 3600 -> 0"]
        );
    }
}
