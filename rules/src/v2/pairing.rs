//! Pairing (§4.2): one pass over all of an employee's punches in order (`at`, `seq`,
//! `punch_id`), so a night shift is one span. It decides which punches are kept (not double
//! taps), the work date each kept punch is assigned to, the good spans with their breaks, and
//! the anomalies, each on the work date of its span (or of the punch when there is none).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::v2::Punch;
use crate::v2::PunchKind;
use crate::v2::calendar::work_date;
use crate::v2::figures::Anomaly;
use crate::v2::rulebook::Rulebook;

/// A closed span with no anomaly: it counts, less its breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodSpan {
    /// Its `clock_in`.
    pub from: i64,
    /// Its `clock_out`.
    pub to: i64,
    /// Its breaks, in order, each inside the span.
    pub breaks: Vec<(i64, i64)>,
}

impl GoodSpan {
    /// The worked pieces: the span less its breaks.
    pub fn worked(&self) -> Vec<(i64, i64)> {
        let mut out = Vec::with_capacity(self.breaks.len() + 1);
        let mut at = self.from;
        for &(start, end) in &self.breaks {
            if start > at {
                out.push((at, start));
            }
            at = at.max(end);
        }
        if self.to > at {
            out.push((at, self.to));
        }
        out
    }

    /// Seconds of its breaks.
    pub fn break_seconds(&self) -> i64 {
        self.breaks.iter().map(|(s, e)| e - s).sum()
    }
}

/// What pairing assigned to one work date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Kept punches assigned to the date.
    pub punch_count: i64,
    /// Earliest kept `clock_in` assigned.
    pub first_in: Option<i64>,
    /// Latest kept `clock_out` assigned.
    pub last_out: Option<i64>,
    /// Pairing's anomalies (`break_short` is judged later, on the day's totals).
    pub anomalies: Vec<Anomaly>,
    /// The date's good spans.
    pub spans: Vec<GoodSpan>,
    /// An added punch is assigned here or a voided punch's own work date is this date.
    pub corrected: bool,
    /// The corrections that make it `corrected` (adds assigned here, voids of punches whose
    /// own date it is, and voided adds), sorted, distinct.
    pub correction_ids: Vec<String>,
}

impl Tally {
    /// Records corrections that touched the date.
    pub fn note_corrections(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if let Err(at) = self.correction_ids.binary_search(&id) {
                self.correction_ids.insert(at, id);
            }
        }
    }

    fn flag(&mut self, anomaly: Anomaly) {
        if let Err(at) = self.anomalies.binary_search(&anomaly) {
            self.anomalies.insert(at, anomaly);
        }
    }
}

/// The result of pairing one employee's punches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paired {
    /// Per work date.
    pub dates: BTreeMap<NaiveDate, Tally>,
    /// Punches ignored as double taps.
    pub double_taps: u64,
    /// The instants of the punches ignored as double taps.
    pub tapped: Vec<i64>,
}

/// A span being worked.
struct Open {
    clock_in: i64,
    date: NaiveDate,
    breaks: Vec<(i64, i64)>,
    break_open: Option<i64>,
    bad: bool,
}

/// Pairs `punches`, which must be de-duplicated, without voided punches, and sorted by
/// (`at`, `seq`, `punch_id`).
pub fn pair(rules: &Rulebook, punches: &[Punch]) -> Paired {
    let mut out = Paired::default();
    let mut open: Option<Open> = None;
    let mut previous: Option<(PunchKind, i64)> = None;
    for punch in punches {
        let own = work_date(punch.at, rules.at_instant(punch.at));
        if let Some((kind, at)) = previous
            && kind == punch.kind
            && punch.at - at <= rules.on_date(own).double_tap_seconds
        {
            out.double_taps += 1;
            out.tapped.push(punch.at);
            continue;
        }
        previous = Some((punch.kind, punch.at));
        if let Some(span) = &open
            && punch.at - span.clock_in > rules.on_date(span.date).max_shift_minutes * 60
        {
            out.tally(span.date).flag(Anomaly::MissingClockOut);
            open = None;
        }
        let date = out.step(&mut open, punch, own);
        let tally = out.tally(date);
        tally.punch_count += 1;
        if punch.added {
            tally.corrected = true;
            tally.note_corrections([punch.id.clone()]);
        }
        match punch.kind {
            PunchKind::ClockIn => {
                tally.first_in = Some(tally.first_in.map_or(punch.at, |t| t.min(punch.at)));
            }
            PunchKind::ClockOut => {
                tally.last_out = Some(tally.last_out.map_or(punch.at, |t| t.max(punch.at)));
            }
            PunchKind::BreakStart | PunchKind::BreakEnd => {}
        }
    }
    if let Some(span) = open {
        out.tally(span.date).flag(Anomaly::MissingClockOut);
    }
    out
}

impl Paired {
    fn tally(&mut self, date: NaiveDate) -> &mut Tally {
        self.dates.entry(date).or_default()
    }

    /// One kept punch through the state machine; returns the date it is assigned to.
    fn step(&mut self, open: &mut Option<Open>, punch: &Punch, own: NaiveDate) -> NaiveDate {
        let Some(span) = open else {
            match punch.kind {
                PunchKind::ClockIn => *open = Some(Open::new(punch.at, own)),
                PunchKind::ClockOut => self.tally(own).flag(Anomaly::MissingClockIn),
                PunchKind::BreakStart | PunchKind::BreakEnd => {
                    self.tally(own).flag(Anomaly::BreakOutsideSpan);
                }
            }
            return own;
        };
        let date = span.date;
        match punch.kind {
            PunchKind::ClockIn => {
                self.tally(date).flag(Anomaly::MissingClockOut);
                *open = Some(Open::new(punch.at, own));
                return own;
            }
            PunchKind::BreakStart => {
                if span.break_open.is_some() {
                    self.tally(date).flag(Anomaly::UnclosedBreak);
                    span.bad = true;
                }
                span.break_open = Some(punch.at);
            }
            PunchKind::BreakEnd => match span.break_open.take() {
                Some(start) => span.breaks.push((start, punch.at)),
                None => {
                    self.tally(date).flag(Anomaly::BreakEndWithoutStart);
                    span.bad = true;
                }
            },
            PunchKind::ClockOut => {
                if span.break_open.is_some() {
                    self.tally(date).flag(Anomaly::UnclosedBreak);
                    span.bad = true;
                }
                if !span.bad {
                    let good = GoodSpan {
                        from: span.clock_in,
                        to: punch.at,
                        breaks: std::mem::take(&mut span.breaks),
                    };
                    self.tally(date).spans.push(good);
                }
                *open = None;
            }
        }
        date
    }
}

impl Open {
    fn new(clock_in: i64, date: NaiveDate) -> Self {
        Self {
            clock_in,
            date,
            breaks: Vec::new(),
            break_open: None,
            bad: false,
        }
    }
}
