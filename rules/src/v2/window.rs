//! Incremental recompute that equals a full recompute (§4.5). An employee's punches fall into
//! *segments* separated by quiet gaps longer than [`segment_gap`]: across such a gap no span
//! stays open (`max_shift` discards it), no double tap reaches, and the work dates on either side
//! are distinct, so each segment's days depend on its own punches alone. A change recomputes
//! the segments it touches; then weekly overtime of the days from there to the end of their
//! weeks, and the months of every day whose figures moved.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};

use crate::v2::calendar::Month;
use crate::v2::figures::{DayFigures, MonthFigures};
use crate::v2::rollup;
use crate::v2::rulebook::Rulebook;

/// Punches further apart than this cannot pair or double-tap across the gap.
pub fn pairing_gap(rules: &Rulebook) -> i64 {
    rules
        .versions()
        .iter()
        .map(|v| (v.max_shift_minutes * 60).max(v.double_tap_seconds))
        .max()
        .unwrap_or(0)
}

/// One event of an employee's timeline: a kept, voided or added punch's instant and own work
/// date.
pub type Event = (i64, NaiveDate);

/// The instants `[from, to]` of the segments holding every instant of `touched`, given the
/// employee's events sorted by instant (the new ones included) as far as the caller loaded
/// them; `complete` says whether the loaded events reach the start and the end of the history.
/// A cut between two neighbouring events is clean when they are more than [`pairing_gap`]
/// apart and every work date before it is earlier than every work date after it. `None` when
/// no clean cut was found inside the loaded events on a side that is not complete: load more
/// and ask again.
pub fn segment_bounds(
    gap: i64,
    events: &[Event],
    touched: (i64, i64),
    complete: (bool, bool),
) -> Option<(i64, i64)> {
    // The latest date up to each event and the earliest from each event on (dates are
    // monotonic but for a change of time zone between rules versions).
    let mut latest: Vec<NaiveDate> = events.iter().map(|e| e.1).collect();
    for k in 1..latest.len() {
        latest[k] = latest[k].max(latest[k - 1]);
    }
    let mut earliest: Vec<NaiveDate> = events.iter().map(|e| e.1).collect();
    for k in (0..earliest.len().saturating_sub(1)).rev() {
        earliest[k] = earliest[k].min(earliest[k + 1]);
    }
    // Between events[i - 1] and events[i].
    let clean = |i: usize| events[i].0 - events[i - 1].0 > gap && latest[i - 1] < earliest[i];
    let mut i = events.partition_point(|e| e.0 < touched.0);
    while i > 0 && !clean(i) {
        i -= 1;
    }
    if i == 0 && !complete.0 {
        return None;
    }
    let mut j = events.partition_point(|e| e.0 <= touched.1);
    while j < events.len() && !clean(j) {
        j += 1;
    }
    if j == events.len() && !complete.1 {
        return None;
    }
    let from = events.get(i).map_or(touched.0, |e| e.0.min(touched.0));
    let to = j
        .checked_sub(1)
        .and_then(|k| events.get(k))
        .map_or(touched.1, |e| e.0.max(touched.1));
    Some((from, to))
}

/// The result of a recompute: the days to write (`None`: the record no longer exists) and the
/// months whose figures to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Changed days.
    pub days: BTreeMap<NaiveDate, Option<DayFigures>>,
    /// Months of changed days, recomputed whole (`None`: no day left, no record).
    pub months: BTreeMap<Month, Option<MonthFigures>>,
}

/// The work dates a window's days may fall on, and the dates whose stored days the recompute
/// needs around them: from six days before (the start of its first week) to the end of the
/// payroll months of six days after (the end of its last week).
pub fn needed_dates(
    rules: &Rulebook,
    window_dates: (NaiveDate, NaiveDate),
) -> (NaiveDate, NaiveDate) {
    let closing = rules.closing_day();
    let before = window_dates.0 - Days::new(6);
    let after = window_dates.1 + Days::new(6);
    (
        Month::of(before, closing).first_day(closing).min(before),
        Month::of(after, closing).last_day(closing),
    )
}

/// Merges a segment window's freshly computed days (`fresh`, daily figures only, for work
/// dates `window_dates`, the own dates of the window's first and last events) into the stored
/// days (`stored`: every stored day of [`needed_dates`]), recomputing weekly overtime and the
/// touched months. Returns what changed.
pub fn merge(
    rules: &Rulebook,
    stored: &BTreeMap<NaiveDate, DayFigures>,
    fresh: BTreeMap<NaiveDate, DayFigures>,
    window_dates: (NaiveDate, NaiveDate),
) -> Delta {
    let (first, last) = window_dates;
    let mut days: BTreeMap<NaiveDate, DayFigures> = stored
        .iter()
        .filter(|(date, _)| !(first..=last).contains(*date))
        .map(|(date, day)| (*date, day.clone()))
        .chain(fresh)
        .collect();
    rollup::weekly(rules, &mut days, first..=last + Days::new(6));
    let mut delta = Delta::default();
    let dates: BTreeSet<NaiveDate> = stored.keys().chain(days.keys()).copied().collect();
    for date in dates {
        let new = days.get(&date);
        if new != stored.get(&date) {
            delta.days.insert(date, new.cloned());
        }
    }
    let closing = rules.closing_day();
    let touched: BTreeSet<Month> = delta.days.keys().map(|d| Month::of(*d, closing)).collect();
    let months = rollup::months(rules, &days);
    for month in touched {
        delta.months.insert(month, months.get(&month).cloned());
    }
    delta
}
