//! The data of the `attendance compute` benchmark: a rules file with a second version in the
//! middle of the first month, and punch lines of realistic shifts, written day by day in time
//! order as a log would hold them. Deterministic for a seed.
//!
//! Employees work day shifts (09:00-18:00), evening shifts (14:00-23:00) or night shifts
//! (22:00-07:00, across midnight and the 05:00 day change), Monday to Friday and some
//! Saturdays, with a break in each shift. A few punches are double taps (a second punch of the
//! same kind seconds later), resends (a line repeated verbatim) or missing (anomalies:
//! `missing_clock_out`, `unclosed_break`, `missing_clock_in`). Employee `E00000` is the
//! reference: 09:00:00-18:00:00 with a 12:00-13:00 break every weekday, nothing missing, so
//! its figures are known (see [`reference_figures`]).

use std::io::{self, Write};

use chrono::{Datelike as _, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// The first day of the data (a Sunday).
pub const FIRST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2026, 11, 1).expect("a date");

/// The rules file: defaults with Sunday as the legal holiday; from 2026-11-16 a shorter
/// scheduled day (450 min, so 30 min a day become within-statutory overtime) and monthly
/// rounding.
pub const RULES_JSON: &str = r#"{"versions": [
  {"effective_from": "2026-01-01", "legal_holiday": "sunday"},
  {"effective_from": "2026-11-16", "legal_holiday": "sunday", "scheduled_daily_minutes": 450,
   "monthly_rounding": "half_hour_to_hour"}
]}
"#;

/// How much data: punch lines in all, spread evenly over the employees (each gets as many
/// days, from [`FIRST_DAY`] on, as its share needs: about 4.3 lines a working day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Employees `E00000`, `E00001`, ...
    pub employees: usize,
    /// Punch lines written, resends and double taps included.
    pub punches: usize,
    /// Seed of the random choices (shift kinds, jitter, anomalies).
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Punch lines.
    pub lines: usize,
    /// Calendar days from the first to the last punch's shift.
    pub days: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reference,
    Day,
    Evening,
    Night,
}

/// One employee's pattern and progress.
#[derive(Debug)]
struct Employee {
    id: String,
    kind: Kind,
    works_saturdays: bool,
    quota: usize,
    seq: u64,
}

/// One punch line, before it is written.
struct Line {
    at: NaiveDateTime,
    employee: usize,
    punch_id: String,
    seq: u64,
    kind: &'static str,
}

/// The per-punch and per-day odds, in thousandths.
const DOUBLE_TAP: u32 = 20;
const RESEND: u32 = 10;
const DAY_OFF: u32 = 50;
const NO_CLOCK_OUT: u32 = 10;
const NO_BREAK_END: u32 = 5;
const NO_CLOCK_IN: u32 = 5;

/// Writes `shape`'s punch lines to `out`, one day of shifts at a time in time order.
pub fn write_punches(shape: Shape, out: &mut impl Write) -> io::Result<Written> {
    let mut rng = StdRng::seed_from_u64(shape.seed);
    let employees = shape.employees.max(1);
    let mut staff: Vec<Employee> = (0..employees)
        .map(|i| {
            let kind = match (i, rng.random_range(0..10)) {
                (0, _) => Kind::Reference,
                (_, 0..7) => Kind::Day,
                (_, 7..8) => Kind::Evening,
                _ => Kind::Night,
            };
            Employee {
                id: format!("E{i:05}"),
                kind,
                works_saturdays: kind != Kind::Reference && rng.random_range(0..5) == 0,
                quota: shape.punches / employees + usize::from(i < shape.punches % employees),
                seq: 0,
            }
        })
        .collect();
    let mut written = Written::default();
    let mut date = FIRST_DAY;
    while staff.iter().any(|e| e.quota > 0) {
        let mut lines = Vec::new();
        for (index, employee) in staff.iter_mut().enumerate() {
            shift(&mut rng, index, employee, date, &mut lines);
        }
        lines.sort_by_key(|l| l.at);
        for l in &lines {
            writeln!(
                out,
                "{{\"employee_id\": \"{}\", \"punch_id\": \"{}\", \"seq\": {}, \"kind\": \"{}\", \"at\": \"{}+09:00\"}}",
                staff[l.employee].id,
                l.punch_id,
                l.seq,
                l.kind,
                l.at.format("%Y-%m-%dT%H:%M:%S")
            )?;
        }
        written.lines += lines.len();
        written.days += 1;
        date = date.succ_opt().expect("a next day");
    }
    Ok(written)
}

/// Adds one employee's lines of the shift starting on `date` (none on a day off), within its
/// remaining quota.
fn shift(rng: &mut StdRng, index: usize, e: &mut Employee, date: NaiveDate, lines: &mut Vec<Line>) {
    let working = match date.weekday() {
        Weekday::Sun => false,
        Weekday::Sat => e.works_saturdays && rng.random_range(0..2) == 0,
        _ => e.kind == Kind::Reference || rng.random_range(0..1000) >= DAY_OFF,
    };
    if !working || e.quota == 0 {
        return;
    }
    let at = |hour: i64, jitter: i64, rng: &mut StdRng| {
        let jitter = if jitter > 0 {
            rng.random_range(-jitter..=jitter)
        } else {
            0
        };
        date.and_time(NaiveTime::MIN) + Duration::seconds(hour * 3_600 + jitter)
    };
    let (start, brk, end, jitter) = match e.kind {
        Kind::Reference => (9, 12, 18, 0),
        Kind::Day => (9, 12, 18, 900),
        Kind::Evening => (14, 18, 23, 900),
        Kind::Night => (22, 26, 31, 900),
    };
    let clock_in = at(start, jitter, rng);
    let break_start = at(brk, jitter / 3, rng);
    let break_seconds = match e.kind {
        Kind::Reference => 3_600,
        _ => 45 * 60 + rng.random_range(0..=2 * jitter),
    };
    let break_end = break_start + Duration::seconds(break_seconds);
    let clock_out = at(end, jitter * 2, rng);
    let mut punches = vec![
        ("clock_in", clock_in, NO_CLOCK_IN),
        ("break_start", break_start, 0),
        ("break_end", break_end, NO_BREAK_END),
        ("clock_out", clock_out, NO_CLOCK_OUT),
    ];
    if e.kind != Kind::Reference {
        punches.retain(|&(_, _, missing)| rng.random_range(0..1000) >= missing);
    }
    for (kind, at, _) in punches {
        let mut emit = |at: NaiveDateTime, e: &mut Employee, resend: bool| {
            if e.quota == 0 {
                return;
            }
            if !resend {
                e.seq += 1;
            }
            lines.push(Line {
                at,
                employee: index,
                punch_id: format!("{}-{}", e.id, e.seq),
                seq: e.seq,
                kind,
            });
            e.quota -= 1;
        };
        emit(at, e, false);
        if e.kind == Kind::Reference {
            continue;
        }
        if rng.random_range(0..1000) < RESEND {
            emit(at, e, true);
        }
        if rng.random_range(0..1000) < DOUBLE_TAP {
            let again = at + Duration::seconds(rng.random_range(1..=30));
            emit(again, e, false);
        }
    }
}

/// The reference employee's figures for its days in November 2026 under [`RULES_JSON`]: 21
/// weekdays of 8 h worked and a 1 h break; 30 min within-statutory overtime on each of the 11
/// weekdays from 2026-11-16 (scheduled 450 min). Returns (days worked, worked seconds, break
/// seconds, within-statutory seconds).
pub fn reference_figures() -> (i64, i64, i64, i64) {
    (21, 21 * 28_800, 21 * 3_600, 11 * 1_800)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn punches(shape: Shape) -> (String, Written) {
        let mut out = Vec::new();
        let written = write_punches(shape, &mut out).expect("writes");
        (String::from_utf8(out).expect("utf8"), written)
    }

    #[test]
    fn the_shape_decides_the_line_count_and_the_seed_the_content() {
        let shape = Shape {
            employees: 7,
            punches: 1_003,
            seed: 1,
        };
        let (text, written) = punches(shape);
        assert_eq!(text.lines().count(), 1_003);
        assert_eq!(written.lines, 1_003);
        assert_eq!(punches(shape).0, text);
        assert_ne!(punches(Shape { seed: 2, ..shape }).0, text);
    }

    #[test]
    fn lines_are_punches_in_time_order_per_day_with_some_noise() {
        let (text, _) = punches(Shape {
            employees: 50,
            punches: 20_000,
            seed: 7,
        });
        let mut ids = std::collections::HashSet::new();
        let mut resends = 0;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
            let at = v["at"].as_str().expect("at");
            chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
            if !ids.insert(v["punch_id"].as_str().expect("id").to_owned()) {
                resends += 1;
            }
        }
        assert!(resends > 0, "some resends");
        assert!(
            text.contains("T22:") && text.contains("T07:"),
            "night shifts"
        );
    }

    #[test]
    fn the_reference_employee_punches_its_fixed_day() {
        let (text, _) = punches(Shape {
            employees: 3,
            punches: 300,
            seed: 3,
        });
        let reference: Vec<&str> = text.lines().filter(|l| l.contains("\"E00000\"")).collect();
        assert_eq!(reference.len(), 100);
        assert!(
            reference[0].contains("\"kind\": \"clock_in\", \"at\": \"2026-11-02T09:00:00+09:00\"")
        );
        assert!(
            reference[3].contains("\"kind\": \"clock_out\", \"at\": \"2026-11-02T18:00:00+09:00\"")
        );
    }
}
