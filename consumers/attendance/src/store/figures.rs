//! What a recompute writes: an employee's recomputed days and months compared with the stored
//! ones. Only a record whose figures (or rules version) changed is written, with `revision +
//! 1`; a stored record the recompute no longer produces is written as zeros, so readers of the
//! compacted topics, which keep the latest record per key, see it go.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use dakoku_rules::v2::calendar::work_date;
use dakoku_rules::v2::window::{self, Recompute};
use dakoku_rules::v2::{
    self as engine, Computed, Correction, CorrectionAction, DayFigures, Month, MonthFigures, Punch,
    Rulebook,
};

use super::keys::EmployeeKey;
use super::rulebooks::TenantRules;

/// One employee's punches loaded for a recompute, as the engine reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// Raw and added punches that count, sorted as pairing reads them.
    pub(crate) kept: Vec<Punch>,
    /// Voided punches with the ids of the corrections voiding them.
    pub(crate) voided: Vec<(Punch, Vec<String>)>,
}

/// A stored day record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredDay {
    pub(super) figures: DayFigures,
    pub(super) revision: i64,
    pub(super) rules_version: i64,
}

/// A stored month record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredMonth {
    pub(super) figures: MonthFigures,
    pub(super) revision: i64,
    pub(super) rules_version: i64,
}

/// A day to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayWrite {
    pub(crate) key: EmployeeKey,
    pub(crate) date: NaiveDate,
    pub(crate) figures: DayFigures,
    pub(crate) revision: i64,
    pub(crate) rules_version: i64,
}

/// A month to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MonthWrite {
    pub(crate) key: EmployeeKey,
    pub(crate) month: Month,
    pub(crate) first_day: NaiveDate,
    pub(crate) last_day: NaiveDate,
    pub(crate) figures: MonthFigures,
    pub(crate) revision: i64,
    pub(crate) rules_version: i64,
}

/// The writes of one or more recomputes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) days: Vec<DayWrite>,
    pub(crate) months: Vec<MonthWrite>,
    /// Records recomputed and found unchanged.
    pub(crate) unchanged: u64,
    /// Punches of the change ignored as double taps.
    pub(crate) double_taps: u64,
}

impl Changes {
    /// Adds another recompute's writes.
    pub(crate) fn extend(&mut self, other: Changes) {
        self.days.extend(other.days);
        self.months.extend(other.months);
        self.unchanged += other.unchanged;
        self.double_taps += other.double_taps;
    }
}

/// The engine's input for `kept` punches and the `voided` ones: raw punches, and corrections
/// that add (the added punches, voided or not) and void.
fn engine_input<'a>(
    kept: &[Punch],
    voided: impl Iterator<Item = &'a (Punch, Vec<String>)>,
) -> (Vec<Punch>, Vec<Correction>) {
    let mut punches = Vec::with_capacity(kept.len());
    let mut corrections = Vec::new();
    let mut take = |p: &Punch, corrections: &mut Vec<Correction>| {
        if p.added {
            corrections.push(Correction {
                id: p.id.clone(),
                action: CorrectionAction::Add {
                    kind: p.kind,
                    at: p.at,
                },
            });
        } else {
            punches.push(p.clone());
        }
    };
    for p in kept {
        take(p, &mut corrections);
    }
    for (p, voids) in voided {
        take(p, &mut corrections);
        corrections.extend(voids.iter().map(|id| Correction {
            id: id.clone(),
            action: CorrectionAction::Void {
                target: p.id.clone(),
            },
        }));
    }
    (punches, corrections)
}

/// The incremental window's input: the kept punches the plan recomputes, and the voided
/// punches whose own work date is one of its dates (a voided punch counts only there, marking
/// it `corrected`, wherever its instant lies).
fn window_input(
    book: &Rulebook,
    loaded: &Loaded,
    plan: &Recompute,
) -> (Vec<Punch>, Vec<Correction>) {
    let (first, last) = plan.dates;
    let voided_here = |at: i64| (first..=last).contains(&work_date(at, book.at_instant(at)));
    engine_input(
        &loaded.kept[plan.punches.clone()],
        loaded.voided.iter().filter(|(p, _)| voided_here(p.at)),
    )
}

/// The incremental recompute of one employee: `loaded` holds the kept punches (sorted) the
/// `plan` was made on and the voided ones, for the change at instants `touched`; `stored_days` every stored
/// day of [`window::needed_dates`] of the plan's dates, `stored_months` every stored month of
/// those days.
pub(super) fn incremental(
    rules: &TenantRules,
    key: &EmployeeKey,
    loaded: &Loaded,
    touched: &[i64],
    plan: &Recompute,
    stored_days: &BTreeMap<NaiveDate, StoredDay>,
    stored_months: &BTreeMap<Month, StoredMonth>,
) -> Changes {
    let book = rules.rulebook();
    let (first, last) = plan.dates;
    if first > last {
        return Changes::default();
    }
    let (punches, corrections) = window_input(book, loaded, plan);
    let (mut fresh, tapped) = engine::daily_with_taps(book, &punches, &corrections);
    fresh.retain(|date, _| (first..=last).contains(date));
    let stored: BTreeMap<NaiveDate, DayFigures> = stored_days
        .iter()
        .map(|(date, day)| (*date, day.figures.clone()))
        .collect();
    let delta = window::merge(book, &stored, fresh, plan.dates);
    let mut changes = Changes {
        double_taps: tapped.iter().filter(|at| touched.contains(at)).count() as u64,
        ..Changes::default()
    };
    for (date, day) in delta.days {
        day_write(rules, key, date, day, stored_days.get(&date), &mut changes);
    }
    for (month, figures) in delta.months {
        month_write(
            rules,
            key,
            month,
            figures,
            stored_months.get(&month),
            &mut changes,
        );
    }
    changes
}

/// The full recompute of one employee from all their punches and corrections, against every
/// stored day and month of theirs.
pub(super) fn full(
    rules: &TenantRules,
    key: &EmployeeKey,
    loaded: &Loaded,
    stored_days: &BTreeMap<NaiveDate, StoredDay>,
    stored_months: &BTreeMap<Month, StoredMonth>,
) -> Changes {
    let (punches, corrections) = engine_input(&loaded.kept, loaded.voided.iter());
    let Computed { days, months, .. } = engine::compute(rules.rulebook(), &punches, &corrections);
    let mut changes = Changes::default();
    let dates: BTreeSet<NaiveDate> = days.keys().chain(stored_days.keys()).copied().collect();
    for date in dates {
        let stored = stored_days.get(&date);
        let new = days.get(&date).cloned();
        if new.as_ref() == stored.map(|s| &s.figures)
            && stored.is_some_and(|s| s.rules_version == rules.version_on(date))
        {
            changes.unchanged += 1;
            continue;
        }
        day_write(rules, key, date, new, stored, &mut changes);
    }
    let all: BTreeSet<Month> = months.keys().chain(stored_months.keys()).copied().collect();
    for month in all {
        let stored = stored_months.get(&month);
        let new = months.get(&month).cloned();
        let version = rules.version_on(month.last_day(rules.rulebook().closing_day()));
        if new.as_ref() == stored.map(|s| &s.figures)
            && stored.is_some_and(|s| s.rules_version == version)
        {
            changes.unchanged += 1;
            continue;
        }
        month_write(rules, key, month, new, stored, &mut changes);
    }
    changes
}

/// A day's write: its new figures, or zeros for a record that no longer exists (nothing when
/// there is no record, or it is zeros already).
fn day_write(
    rules: &TenantRules,
    key: &EmployeeKey,
    date: NaiveDate,
    figures: Option<DayFigures>,
    stored: Option<&StoredDay>,
    changes: &mut Changes,
) {
    let rules_version = rules.version_on(date);
    let figures = match (figures, stored) {
        (Some(figures), _) => figures,
        (None, Some(s)) if s.figures != DayFigures::default() => DayFigures::default(),
        (None, _) => {
            changes.unchanged += 1;
            return;
        }
    };
    if stored.is_some_and(|s| s.figures == figures && s.rules_version == rules_version) {
        changes.unchanged += 1;
        return;
    }
    changes.days.push(DayWrite {
        key: key.clone(),
        date,
        figures,
        revision: stored.map_or(1, |s| s.revision + 1),
        rules_version,
    });
}

fn month_write(
    rules: &TenantRules,
    key: &EmployeeKey,
    month: Month,
    figures: Option<MonthFigures>,
    stored: Option<&StoredMonth>,
    changes: &mut Changes,
) {
    let closing = rules.rulebook().closing_day();
    let last_day = month.last_day(closing);
    let rules_version = rules.version_on(last_day);
    let figures = match (figures, stored) {
        (Some(figures), _) => figures,
        (None, Some(s)) if s.figures != MonthFigures::default() => MonthFigures::default(),
        (None, _) => {
            changes.unchanged += 1;
            return;
        }
    };
    if stored.is_some_and(|s| s.figures == figures && s.rules_version == rules_version) {
        changes.unchanged += 1;
        return;
    }
    changes.months.push(MonthWrite {
        key: key.clone(),
        month,
        first_day: month.first_day(closing),
        last_day,
        figures,
        revision: stored.map_or(1, |s| s.revision + 1),
        rules_version,
    });
}
