//! Pairing: the punches of one work date, de-duplicated and ordered, opened and closed into
//! spans and breaks, double taps ignored, and the exact sums rounded into [`DayFigures`].

use std::collections::HashSet;

use chrono_tz::Tz;
use dakoku_schemas::PunchKind;
use uuid::Uuid;

use crate::figures::{Anomaly, DayFigures};
use crate::night::night_ms;
use crate::units::MINUTE_MS;

/// A second punch of the same kind at most this long after the previous kept one is ignored.
pub const DOUBLE_TAP_WINDOW_MS: i64 = 60_000;
/// Worked minutes of a day beyond this are overtime.
pub const REGULAR_MINUTES: i32 = 480;

/// One accepted punch, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Punch {
    /// Identity (`PunchId`): duplicates of the same punch count once.
    pub punch_id: Uuid,
    /// The recorder's sequence number (second ordering key).
    pub seq: u64,
    /// What was punched.
    pub kind: PunchKind,
    /// The instant, milliseconds since the Unix epoch (UTC).
    pub at: i64,
}

/// The span being paired.
#[derive(Debug)]
struct Span {
    start: i64,
    bad: bool,
    open_break: Option<i64>,
    breaks: Vec<(i64, i64)>,
}

/// Exact sums of one day, in milliseconds, before rounding.
#[derive(Debug, Default)]
struct Totals {
    worked_ms: i64,
    break_ms: i64,
    night_ms: i64,
}

impl Totals {
    /// Adds a closed, good span.
    fn add_span(&mut self, span: &Span, end: i64, tz: Tz) {
        let mut from = span.start;
        for &(break_start, break_end) in &span.breaks {
            self.add_work(from, break_start, tz);
            self.break_ms += break_end - break_start;
            from = break_end;
        }
        self.add_work(from, end, tz);
    }

    fn add_work(&mut self, from: i64, to: i64, tz: Tz) {
        if to > from {
            self.worked_ms += to - from;
            self.night_ms += night_ms(from, to, tz);
        }
    }
}

/// The figures of one employee's work date from its accepted punches, in any order and with
/// any number of duplicates. `tz` is the tenant's time zone (for night work).
///
/// The caller passes exactly the punches whose [`work_date`](crate::work_date) is this date.
pub fn compute_day(punches: &[Punch], tz: Tz) -> DayFigures {
    let mut sorted: Vec<Punch> = punches.to_vec();
    sorted.sort_unstable_by_key(|p| (p.at, p.seq, p.punch_id, p.kind));
    let mut seen = HashSet::with_capacity(sorted.len());
    sorted.retain(|p| seen.insert(p.punch_id));

    let mut figures = DayFigures::default();
    let mut anomalies = [false; Anomaly::ALL.len()];
    let mut flag = |anomaly: Anomaly| anomalies[anomaly as usize] = true;
    let mut totals = Totals::default();
    let mut span: Option<Span> = None;
    let mut previous: Option<Punch> = None;

    for punch in sorted {
        if let Some(prev) = previous
            && prev.kind == punch.kind
            && punch.at - prev.at <= DOUBLE_TAP_WINDOW_MS
        {
            figures.double_taps += 1;
            continue;
        }
        previous = Some(punch);
        figures.punch_count += 1;
        match punch.kind {
            PunchKind::ClockIn => {
                if span.is_some() {
                    flag(Anomaly::MissingClockOut);
                }
                span = Some(Span {
                    start: punch.at,
                    bad: false,
                    open_break: None,
                    breaks: Vec::new(),
                });
                figures.first_in = Some(figures.first_in.map_or(punch.at, |t| t.min(punch.at)));
            }
            PunchKind::BreakStart => match &mut span {
                None => flag(Anomaly::BreakOutsideSpan),
                Some(open) => {
                    if open.open_break.is_some() {
                        flag(Anomaly::UnclosedBreak);
                        open.bad = true;
                    }
                    open.open_break = Some(punch.at);
                }
            },
            PunchKind::BreakEnd => match &mut span {
                Some(open) if open.open_break.is_some() => {
                    if let Some(start) = open.open_break.take() {
                        open.breaks.push((start, punch.at));
                    }
                }
                _ => flag(Anomaly::BreakOutsideSpan),
            },
            PunchKind::ClockOut => {
                figures.last_out = Some(figures.last_out.map_or(punch.at, |t| t.max(punch.at)));
                match span.take() {
                    None => flag(Anomaly::MissingClockIn),
                    Some(closed) => {
                        if closed.open_break.is_some() {
                            flag(Anomaly::UnclosedBreak);
                        } else if !closed.bad {
                            totals.add_span(&closed, punch.at, tz);
                        }
                    }
                }
            }
        }
    }
    if span.is_some() {
        flag(Anomaly::MissingClockOut);
    }

    figures.worked_minutes = whole_minutes(totals.worked_ms);
    figures.break_minutes = whole_minutes(totals.break_ms);
    figures.night_minutes = whole_minutes(totals.night_ms);
    figures.overtime_minutes = (figures.worked_minutes - REGULAR_MINUTES).max(0);
    figures.anomalies = Anomaly::ALL
        .into_iter()
        .filter(|a| anomalies[*a as usize])
        .collect();
    figures
}

/// Milliseconds to whole minutes, rounded down; saturating (a day never comes close).
fn whole_minutes(ms: i64) -> i32 {
    i32::try_from(ms.max(0) / MINUTE_MS).unwrap_or(i32::MAX)
}
