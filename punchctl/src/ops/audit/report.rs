//! The audit's third stage: the report as text (the shape of every long command's summary)
//! and the exit status it implies (0 clean, 1 something is off).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chrono::SecondsFormat;

use super::findings::{AuditReport, CorrectionsStage, Findings, PunchFinding};

/// Exit status of a finished audit: 0 when clean, 1 when anything is off (for cron).
pub fn exit_code(report: &AuditReport) -> ExitCode {
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The report as text, in the shape of every long command's summary
/// ([`crate::progress::Summary`]): a title with the duration, then `label: value` lines (each
/// finding's examples indented under its line), then `result: clean` or `result: N problems`.
pub fn write_report(report: &AuditReport, out: &mut dyn Write) -> std::io::Result<()> {
    let mut scope = format!("group {}", report.group);
    if let Some(tenant) = &report.tenant {
        scope.push_str(&format!(", tenant {tenant}"));
    }
    if report.from.is_some() || report.to.is_some() {
        scope.push_str(&format!(
            ", work dates {} to {}",
            report
                .from
                .map_or_else(|| "the first".to_owned(), |d| d.to_string()),
            report
                .to
                .map_or_else(|| "the last".to_owned(), |d| d.to_string())
        ));
    }
    writeln!(
        out,
        "audit of {scope}: done in {}",
        crate::progress::human(Duration::from_secs_f64(report.duration_seconds.max(0.0)))
    )?;
    writeln!(
        out,
        "  scope: committed by {}; later punches are not audited",
        report.started_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )?;

    let c = &report.checked;
    writeln!(
        out,
        "  raw records: {} ({} punches; {} not yet judged by licence-check; {} undecodable)",
        c.raw_records, c.raw_punches, c.raw_not_yet_checked, c.raw_undecodable
    )?;
    writeln!(
        out,
        "  verdicts: {} ({} accepted, {} rejected; {} undecodable)",
        c.verdicts, c.accepted, c.rejected, c.verdicts_undecodable
    )?;
    punch_findings(out, "verdicts missing", &c.missing)?;
    punch_findings(out, "verdicts doubled", &c.doubled)?;
    punch_findings(out, "verdicts unexpected", &c.unexpected)?;

    let s = &report.stored;
    writeln!(
        out,
        "  punches expected: {} accepted ({} rejected; {} not yet applied by attendance; {} verdicts set aside)",
        s.expected, s.rejected, s.pending, s.set_aside
    )?;
    writeln!(
        out,
        "  punches stored: {} rows ({} withdrawn; {} unverifiable)",
        s.stored, s.withdrawn, s.unverifiable
    )?;
    punch_findings(out, "punches missing", &s.missing)?;
    punch_findings(out, "punches unexpected", &s.unexpected)?;
    punch_findings(out, "punches doubled", &s.doubled)?;

    let d = &report.days;
    writeln!(
        out,
        "  days checked: {} ({} attendance_days rows)",
        d.checked, d.rows
    )?;
    writeln!(out, "  days differing: {}", d.differing.count)?;
    for day in &d.differing.examples {
        writeln!(
            out,
            "    {}/{}/{}: {} ({} counting, {} withdrawn punches)",
            day.tenant,
            day.employee,
            day.work_date,
            day.detail,
            day.counting_punches,
            day.withdrawn_punches
        )?;
    }
    more(out, &d.differing)?;
    writeln!(
        out,
        "  months checked: {}; differing: {}",
        d.months_checked, d.months_differing.count
    )?;
    for month in &d.months_differing.examples {
        writeln!(
            out,
            "    {}/{}/{}: {}",
            month.tenant, month.employee, month.month, month.detail
        )?;
    }
    more(out, &d.months_differing)?;
    corrections(out, &report.corrections)?;
    for note in &report.notes {
        writeln!(out, "  note: {note}")?;
    }
    let problems = report.problems();
    if problems == 0 {
        writeln!(out, "  result: clean")
    } else {
        writeln!(out, "  result: {problems} problems")
    }
}

/// The corrections stage's lines.
fn corrections(out: &mut dyn Write, k: &CorrectionsStage) -> std::io::Result<()> {
    writeln!(
        out,
        "  corrections: {} in the log ({} records; {} undecodable; {} not yet applied), {} stored",
        k.corrections, k.records, k.undecodable, k.pending, k.stored
    )?;
    for (label, findings) in [
        ("corrections missing", &k.missing),
        ("corrections misapplied", &k.misapplied),
        ("corrections unexpected", &k.unexpected),
    ] {
        writeln!(out, "  {label}: {}", findings.count)?;
        for f in &findings.examples {
            let at = f
                .log_position
                .map_or_else(|| "-".to_owned(), |(p, o)| format!("{p}@{o}"));
            writeln!(
                out,
                "    {} {} {at}: {}",
                f.correction_id, f.tenant, f.detail
            )?;
        }
        more(out, findings)?;
    }
    Ok(())
}

fn punch_findings(
    out: &mut dyn Write,
    label: &str,
    findings: &Findings<PunchFinding>,
) -> std::io::Result<()> {
    writeln!(out, "  {label}: {}", findings.count)?;
    for f in &findings.examples {
        writeln!(
            out,
            "    {} {}/{}/{} {} {} {}: {}",
            f.punch_id,
            f.tenant,
            f.device,
            f.seq,
            f.employee.as_deref().unwrap_or("-"),
            f.kind,
            f.at.map_or_else(
                || "?".to_owned(),
                |t| t.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            f.detail
        )?;
    }
    more(out, findings)
}

fn more<T>(out: &mut dyn Write, findings: &Findings<T>) -> std::io::Result<()> {
    let shown = findings.examples.len() as u64;
    if findings.count > shown {
        writeln!(
            out,
            "    ... and {} more (--limit, --json)",
            findings.count - shown
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::ops::audit::findings::{CheckedStage, DaysStage, StoredStage};

    #[test]
    fn an_empty_report_is_clean_and_says_so() {
        let report = AuditReport {
            group: "g1".parse().expect("group"),
            tenant: None,
            from: None,
            to: None,
            started_at: Utc::now(),
            duration_seconds: 0.0,
            checked: CheckedStage::default(),
            stored: StoredStage::default(),
            days: DaysStage::default(),
            corrections: Default::default(),
            notes: Vec::new(),
        };
        assert!(report.is_clean());
        let mut text = Vec::new();
        write_report(&report, &mut text).expect("write");
        let text = String::from_utf8(text).expect("utf-8");
        assert!(text.starts_with("audit of group g1: done in "), "{text}");
        assert!(text.ends_with("  result: clean\n"), "{text}");
    }
}
