//! Attendance rules v2 (CONTRACT §4, payroll-grade): pairing across days, exact-second day
//! figures (night, legal holiday, daily, weekly and within-statutory overtime, `break_short`),
//! payroll months (over-60 h, monthly rounding), effective-dated rules and corrections. Pure:
//! the same functions serve `punchctl attendance compute` and the property tests.
//!
//! [`compute`] is the whole computation for one employee; [`daily`] and [`window`] are its
//! incremental form (a change recomputes the segments it touches, then weeks and months).
//!
//! # Layout
//! - [`art36`]: Article 36 limits on payroll months: the agreement year, the 2-6 month
//!   averages, the alert codes (§4.9).
//! - [`rulebook`]: [`RuleVersion`] (every rule with its default, read from JSON with errors
//!   naming the key) and [`Rulebook`] (which version holds at an instant, on a date).
//! - [`calendar`]: work dates, wall-clock windows across DST, weeks, payroll [`Month`]s.
//! - [`correction`]: corrections applied: raw punches plus added less voided.
//! - [`pairing`]: the state machine over all of an employee's punches in order.
//! - [`figures`]: [`DayFigures`], [`MonthFigures`], [`Anomaly`], and the one list of their
//!   figures ([`figures::DAY_FIELDS`], [`figures::MONTH_FIELDS`]).
//! - [`rollup`]: a day's figures, weekly overtime, months.
//! - [`window`]: segments, the dates a recompute needs, merging a recomputed window.

pub mod art36;
pub mod calendar;
pub mod correction;
pub mod figures;
pub mod pairing;
pub mod rollup;
pub mod rulebook;
pub mod window;

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;

pub use calendar::Month;
pub use correction::{Correction, CorrectionAction};
pub use dakoku_schemas::PunchKind;
pub use figures::{Anomaly, DayFigures, MonthFigures};
pub use rulebook::{RuleVersion, Rulebook};

/// One punch as the rules see it: a kept raw punch or an added correction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Punch {
    /// `punch_id`, or the adding correction's id.
    pub id: String,
    /// The recorder's sequence number (0 for an added punch).
    pub seq: u64,
    /// What was punched.
    pub kind: PunchKind,
    /// Unix seconds (fractions dropped).
    pub at: i64,
    /// Whether a correction added it.
    pub added: bool,
}

/// One employee's computed figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Computed {
    /// Day records by work date.
    pub days: BTreeMap<NaiveDate, DayFigures>,
    /// Month records by payroll month.
    pub months: BTreeMap<Month, MonthFigures>,
    /// Punches ignored as double taps.
    pub double_taps: u64,
}

/// Computes one employee's days and months from all their punches (any order, duplicates by
/// `id` counted once: the first stands) and corrections.
pub fn compute(rules: &Rulebook, punches: &[Punch], corrections: &[Correction]) -> Computed {
    let (mut days, double_taps) = daily(rules, punches, corrections);
    rollup::weekly(rules, &mut days, ..);
    let months = rollup::months(rules, &days);
    Computed {
        days,
        months,
        double_taps,
    }
}

/// Each work date's figures but weekly overtime (which needs the whole week), from the
/// punches and corrections given, and the double taps ignored.
pub fn daily(
    rules: &Rulebook,
    punches: &[Punch],
    corrections: &[Correction],
) -> (BTreeMap<NaiveDate, DayFigures>, u64) {
    let (days, tapped) = daily_with_taps(rules, punches, corrections);
    (days, tapped.len() as u64)
}

/// As [`daily`], with the instants of the punches ignored as double taps (a consumer counts
/// those of the punches it just stored).
pub fn daily_with_taps(
    rules: &Rulebook,
    punches: &[Punch],
    corrections: &[Correction],
) -> (BTreeMap<NaiveDate, DayFigures>, Vec<i64>) {
    let applied = correction::apply(punches, corrections);
    let mut kept = applied.punches;
    kept.sort_by(|a, b| (a.at, a.seq, &a.id).cmp(&(b.at, b.seq, &b.id)));
    let mut paired = pairing::pair(rules, &kept);
    for (voided, voids) in &applied.voided {
        let date = calendar::work_date(voided.at, rules.at_instant(voided.at));
        let tally = paired.dates.entry(date).or_default();
        tally.corrected = true;
        tally.note_corrections(voids.iter().cloned());
        if voided.added {
            // The add that was voided touched its date too: an auditor looks both up.
            tally.note_corrections([voided.id.clone()]);
        }
    }
    let days = paired
        .dates
        .iter()
        .map(|(date, tally)| (*date, rollup::day(rules, *date, tally)))
        .collect();
    (days, paired.tapped)
}

/// Keeps the first of each id.
pub fn first_of_each<T: Clone>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<T> {
    let mut seen = HashSet::new();
    items
        .iter()
        .filter(|item| seen.insert(id(item).to_owned()))
        .cloned()
        .collect()
}
