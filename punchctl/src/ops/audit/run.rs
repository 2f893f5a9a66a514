//! One audit from start to end: the snapshot and the log are collected, compared stage by
//! stage, and the report's examples trimmed and its notes added.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use super::collect::{self, KafkaInput};
use super::compare;
use super::corrections;
use super::findings::{AuditReport, CheckedStage, CorrectionsStage, DaysStage, StoredStage};
use super::model::{Log, Rules};
use super::request::{AuditError, AuditProgress, AuditRequest};

/// Runs an audit.
///
/// Returns the report whatever it finds (see [`AuditReport::is_clean`]); an error means the
/// audit itself could not be done (Kafka or Postgres unreachable, a topic missing).
pub async fn run(
    request: &AuditRequest,
    progress: Arc<dyn AuditProgress>,
) -> Result<AuditReport, AuditError> {
    if let (Some(from), Some(to)) = (request.from, request.to)
        && from > to
    {
        return Err(AuditError::BadRange { from, to });
    }
    let started_at = Utc::now();
    let clock = Instant::now();
    let mut client = dakoku_store::connect(&request.database_url).await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let snapshot = collect::read_snapshot(&tx, request).await?;
    let calendars = snapshot.calendars.clone();
    let input = KafkaInput {
        request: request.clone(),
        calendars: snapshot.calendars,
        applied: snapshot.applied,
        conflicts: snapshot.conflicts,
        replays: snapshot.replays,
    };
    let scan_progress = Arc::clone(&progress);
    let corrections_request = request.clone();
    let (mut log, corrections_log) = tokio::task::spawn_blocking(move || {
        let log = collect::read_log(&input, scan_progress.as_ref())?;
        // After the snapshot, like the other topics: the log holds all it stored, and more.
        let corrections = corrections::read_log(&corrections_request)?;
        Ok::<_, AuditError>((log, corrections))
    })
    .await
    .map_err(|e| AuditError::Task(e.to_string()))??;
    tracing::info!(
        group = %request.group,
        punches = log.entries.len(),
        took_ms = clock.elapsed().as_millis() as u64,
        "log read"
    );

    let mut report = empty_report(request, &log, started_at);
    compare::judge_checked(request, &log, &mut report);
    let rows = collect::count_punches(&tx, request).await?;
    progress.phase("comparing with Postgres", u64::try_from(rows).unwrap_or(0));
    let compared = Instant::now();
    let defaults = Rules::defaults();
    collect::for_each_employee(&tx, request, |key, rows, days, months, corrections| {
        progress.advance(rows.len() as u64);
        let rules = calendars.get(&key.0).unwrap_or(&defaults);
        compare::judge_employee(
            request,
            &mut log,
            &mut report,
            key,
            rows,
            days,
            months,
            corrections,
            rules,
        );
    })
    .await?;
    let (stored_corrections, correction_offsets) = corrections::read_stored(&tx, request).await?;
    report.corrections = corrections::judge(
        &corrections_log,
        &stored_corrections,
        &correction_offsets,
        request.limit,
    );
    if !report.corrections.topic_exists {
        report.notes.push(format!(
            "punches.corrections.{} does not exist: no corrections to audit (create it with \
             `punchctl topics create`)",
            request.group
        ));
    }
    let candidates = compare::unstored_candidates(request, &log, &mut report.stored);
    let elsewhere = collect::stored_elsewhere(&tx, &candidates).await?;
    compare::judge_missing(
        &log,
        &mut report.stored,
        candidates,
        &elsewhere,
        request.limit,
    );
    tx.commit().await?;
    tracing::info!(
        group = %request.group,
        rows,
        days = report.days.checked,
        took_ms = compared.elapsed().as_millis() as u64,
        "Postgres compared"
    );

    report.checked.missing.trim(request.limit);
    report.checked.doubled.trim(request.limit);
    report.checked.unexpected.trim(request.limit);
    report.stored.missing.trim(request.limit);
    add_notes(request, &log, &mut report);
    report.duration_seconds = clock.elapsed().as_secs_f64();
    Ok(report)
}

/// The report before any stage is judged: scope, start, and the log's undecodable counts.
fn empty_report(
    request: &AuditRequest,
    log: &Log,
    started_at: chrono::DateTime<Utc>,
) -> AuditReport {
    AuditReport {
        group: request.group.clone(),
        tenant: request.tenant.clone(),
        from: request.from,
        to: request.to,
        started_at,
        duration_seconds: 0.0,
        checked: CheckedStage {
            raw_undecodable: log.raw_undecodable,
            verdicts_undecodable: log.verdicts_undecodable,
            raw_not_yet_checked: log.raw_not_yet_checked,
            ..CheckedStage::default()
        },
        stored: StoredStage::default(),
        days: DaysStage::default(),
        corrections: CorrectionsStage::default(),
        notes: Vec::new(),
    }
}

/// What retention kept the audit from verifying, in words.
fn add_notes(request: &AuditRequest, log: &Log, report: &mut AuditReport) {
    if log.checked_truncated {
        report.notes.push(format!(
            "punches.checked.{} no longer starts at offset 0 (retention): raw punches whose \
             verdicts were deleted are not reported missing, and stored punches from them are \
             counted as unverifiable",
            request.group
        ));
    }
    if log.raw_truncated {
        report.notes.push(format!(
            "punches.raw.{} no longer starts at offset 0 (retention): verdicts without a raw \
             record and doubled verdicts are not reported",
            request.group
        ));
    }
}
