//! Incremental recompute that equals a full recompute (§4.5). [`plan`] picks the run of an
//! employee's punches a change can affect (the *groups* of segments around it, see there) and
//! the work dates whose days it replaces; the caller recomputes those days with
//! [`daily`](crate::v2::daily), then [`merge`] recomputes weekly overtime from there to the
//! end of their weeks and the months of every day whose figures moved.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};

use crate::v2::calendar::{Month, work_date};
use crate::v2::figures::{DayFigures, MonthFigures};
use crate::v2::pairing::pair;
use crate::v2::rollup;
use crate::v2::rulebook::Rulebook;
use crate::v2::{Punch, PunchKind};

/// Punches further apart than this cannot pair or double-tap across the gap.
pub fn pairing_gap(rules: &Rulebook) -> i64 {
    rules
        .versions()
        .iter()
        .map(|v| (v.max_shift_minutes * 60).max(v.double_tap_seconds))
        .max()
        .unwrap_or(0)
}

/// What a recompute covers: a run of the employee's punches and the work dates whose days it
/// replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recompute {
    /// Indexes into the loaded punches: recompute the days of exactly these.
    pub punches: std::ops::Range<usize>,
    /// The work dates (inclusive) whose stored days the recomputed ones replace; a stored day
    /// in them that the recompute does not produce no longer exists.
    pub dates: (NaiveDate, NaiveDate),
}

/// Plans the recompute of a change: the instants `added` (punches stored, reinstated or added
/// by a correction) and `removed` (punches withdrawn or voided), given the employee's kept
/// punches `loaded` (sorted by `at`, `seq`, `id`, the change applied) as far as the caller
/// loaded them; `complete` says whether they reach the start and the end of the history.
/// `None`: load more and ask again.
///
/// The punches fall into *segments* at sync points: between two punches more than the longest
/// double tap apart where the earlier one is a `clock_out` (after it no span is open, whatever
/// came before) or the gap exceeds the longest `max_shift` (any open span is discarded). From
/// a sync point pairing needs nothing earlier, so each segment pairs alone. Segments whose
/// work dates meet are joined into *groups*; a group's days depend on its punches only. The
/// plan is the groups around the touched instants, with the dates a removed punch may have
/// been assigned to.
pub fn plan(
    rules: &Rulebook,
    loaded: &[Punch],
    added: &[i64],
    removed: &[i64],
    complete: (bool, bool),
) -> Option<Recompute> {
    let all = || added.iter().chain(removed).copied();
    let (Some(low), Some(high)) = (all().min(), all().max()) else {
        return Some(Recompute {
            punches: 0..0,
            dates: (NaiveDate::MAX, NaiveDate::MIN),
        });
    };
    let reach = reach(rules);
    let own = |at: i64| work_date(at, rules.at_instant(at));
    // An added punch counts in the group that holds it (chosen below as near). A removed one
    // was assigned to its own date or to that of a span opened since `reach` before it; two
    // days more on each side, as own dates are monotonic in time but where a rules version
    // changes the time zone or the day change, by up to a day or two.
    let margin = Days::new(2);
    let mut dates = (NaiveDate::MAX, NaiveDate::MIN);
    for &at in added {
        dates = (dates.0.min(own(at)), dates.1.max(own(at)));
    }
    for &at in removed {
        dates = (
            dates.0.min(own(at - reach).min(own(at)) - margin),
            dates.1.max(own(at).max(own(at + reach)) + margin),
        );
    }
    let groups = groups(rules, loaded);
    let mut chosen: Option<(usize, usize)> = None;
    loop {
        let before = (chosen, dates);
        for (k, group) in groups.iter().enumerate() {
            let near = loaded[group.punches.start].at <= high + reach
                && loaded[group.punches.end - 1].at >= low - reach;
            let meets = group.dates.0 <= dates.1 && group.dates.1 >= dates.0;
            if near || meets {
                chosen = Some(chosen.map_or((k, k), |(a, b)| (a.min(k), b.max(k))));
                // Its punches counted on their own dates or on these before the change.
                dates = (
                    dates.0.min(group.dates.0).min(group.own.0),
                    dates.1.max(group.dates.1).max(group.own.1),
                );
            }
        }
        if (chosen, dates) == before {
            break;
        }
    }
    // The loaded punches must reach past the chosen groups on each side (a group not chosen
    // lies there), or be the whole history on that side: a group beyond what was loaded
    // might otherwise belong to the change.
    let (before, after) = match chosen {
        Some((first, last)) => (first, groups.len() - 1 - last),
        None => {
            let before = groups
                .iter()
                .filter(|g| loaded[g.punches.end - 1].at < low)
                .count();
            (before, groups.len() - before)
        }
    };
    if (before == 0 && !complete.0) || (after == 0 && !complete.1) {
        return None;
    }
    let Some((first, last)) = chosen else {
        // Nothing near: the change removed the only punches there.
        return Some(Recompute {
            punches: 0..0,
            dates,
        });
    };
    Some(Recompute {
        punches: groups[first].punches.start..groups[last].punches.end,
        dates,
    })
}

/// How far (seconds) one punch's pairing or double tap can reach.
fn reach(rules: &Rulebook) -> i64 {
    pairing_gap(rules)
}

/// A run of segments whose work dates meet.
struct Group {
    punches: std::ops::Range<usize>,
    /// The work dates its punches count on.
    dates: (NaiveDate, NaiveDate),
    /// The own work dates of its punches.
    own: (NaiveDate, NaiveDate),
}

/// The groups of `punches` (sorted), in order.
fn groups(rules: &Rulebook, punches: &[Punch]) -> Vec<Group> {
    let double_tap = rules
        .versions()
        .iter()
        .map(|v| v.double_tap_seconds)
        .max()
        .unwrap_or(0);
    let max_shift = rules
        .versions()
        .iter()
        .map(|v| v.max_shift_minutes * 60)
        .max()
        .unwrap_or(0);
    let mut out: Vec<Group> = Vec::new();
    let mut start = 0;
    for end in 1..=punches.len() {
        let sync = end == punches.len() || {
            let (a, b) = (&punches[end - 1], &punches[end]);
            let gap = b.at - a.at;
            gap > double_tap && (a.kind == PunchKind::ClockOut || gap > max_shift)
        };
        if !sync {
            continue;
        }
        let paired = pair(rules, &punches[start..end]);
        let (Some(first), Some(last)) = (paired.dates.keys().next(), paired.dates.keys().last())
        else {
            start = end;
            continue;
        };
        let own = punches[start..end]
            .iter()
            .map(|p| work_date(p.at, rules.at_instant(p.at)))
            .fold((NaiveDate::MAX, NaiveDate::MIN), |(a, b), d| {
                (a.min(d), b.max(d))
            });
        match out.last_mut() {
            Some(group) if *first <= group.dates.1 => {
                group.punches.end = end;
                group.dates.1 = group.dates.1.max(*last);
                group.dates.0 = group.dates.0.min(*first);
                group.own = (group.own.0.min(own.0), group.own.1.max(own.1));
            }
            _ => out.push(Group {
                punches: start..end,
                dates: (*first, *last),
                own,
            }),
        }
        start = end;
    }
    out
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
