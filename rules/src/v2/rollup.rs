//! From pairing's tallies to figures: each day's own figures (§4.3), the week's running
//! regular time that makes weekly overtime, and the payroll months (§4.4).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::v2::calendar::{Month, Window, seconds_in_window, seconds_on_weekday, week_of};
use crate::v2::figures::{Anomaly, DayFigures, MonthFigures};
use crate::v2::pairing::Tally;
use crate::v2::rulebook::Rulebook;

/// LSA art. 34: over 6 h a day needs 45 min of breaks, over 8 h needs 60 min.
const BREAK_RULES: [(i64, i64); 2] = [(6 * 3_600, 45 * 60), (8 * 3_600, 60 * 60)];
/// LSA art. 37(1): overtime of a month beyond 60 h earns the higher premium.
const OVER60: i64 = 60 * 3_600;

/// A day's figures from its tally, all but weekly overtime (which needs its week).
pub fn day(rules: &Rulebook, date: NaiveDate, tally: &Tally) -> DayFigures {
    let version = rules.on_date(date);
    let tz = version.time_zone;
    let night = Window::night(version);
    let mut d = DayFigures {
        first_in: tally.first_in,
        last_out: tally.last_out,
        punch_count: tally.punch_count,
        anomalies: tally.anomalies.clone(),
        corrected: tally.corrected,
        correction_ids: tally.correction_ids.clone(),
        ..DayFigures::default()
    };
    for span in &tally.spans {
        d.break_seconds += span.break_seconds();
        for (from, to) in span.worked() {
            d.worked_seconds += to - from;
            d.night_seconds += seconds_in_window(from, to, tz, night);
            if let Some(holiday) = version.legal_holiday {
                d.holiday_seconds += seconds_on_weekday(from, to, tz, holiday);
            }
        }
    }
    let regular = d.regular_seconds();
    let daily_limit = version.daily_limit_minutes * 60;
    d.overtime_daily_seconds = (regular - daily_limit).max(0);
    d.within_statutory_seconds =
        (regular.min(daily_limit) - version.scheduled_daily_minutes * 60).max(0);
    if BREAK_RULES
        .iter()
        .any(|&(worked, breaks)| d.worked_seconds > worked && d.break_seconds < breaks)
    {
        d.anomalies.push(Anomaly::BreakShort);
        d.anomalies.sort_unstable();
        d.anomalies.dedup();
    }
    d
}

/// Sets the weekly overtime of each day in `dates`: walking the work dates of its week (from
/// `week_start`, both as in force on the day) in order, the part of the day that takes the
/// running regular time past `weekly_limit`. `days` must hold every earlier day of those weeks
/// (the caller includes them, even from the previous month).
pub fn weekly(
    rules: &Rulebook,
    days: &mut BTreeMap<NaiveDate, DayFigures>,
    dates: impl std::ops::RangeBounds<NaiveDate>,
) {
    let dates: Vec<NaiveDate> = days.range(dates).map(|(date, _)| *date).collect();
    for date in dates {
        let version = rules.on_date(date);
        let start = week_of(date, version.week_start);
        let before: i64 = days
            .range(start..date)
            .map(|(_, d)| d.weekly_base_seconds())
            .sum();
        let limit = version.weekly_limit_minutes * 60;
        let day = days.get_mut(&date).expect("a key of the map");
        let after = before + day.weekly_base_seconds();
        day.overtime_weekly_seconds = (after - limit).max(0) - (before - limit).max(0);
    }
}

/// The payroll months of `days` (every day of a month must be there).
pub fn months(
    rules: &Rulebook,
    days: &BTreeMap<NaiveDate, DayFigures>,
) -> BTreeMap<Month, MonthFigures> {
    let closing = rules.closing_day();
    let mut out: BTreeMap<Month, MonthFigures> = BTreeMap::new();
    for (date, d) in days {
        let m = out.entry(Month::of(*date, closing)).or_default();
        m.days_worked += i64::from(d.worked_seconds > 0);
        m.anomaly_days += i64::from(!d.anomalies.is_empty());
        m.worked_seconds += d.worked_seconds;
        m.break_seconds += d.break_seconds;
        m.night_seconds += d.night_seconds;
        m.holiday_seconds += d.holiday_seconds;
        m.within_statutory_seconds += d.within_statutory_seconds;
        m.overtime_seconds += d.overtime_daily_seconds + d.overtime_weekly_seconds;
    }
    for (month, m) in &mut out {
        m.overtime_over60_seconds = (m.overtime_seconds - OVER60).max(0);
        let rounding = rules.on_date(month.last_day(closing)).monthly_rounding;
        m.worked_minutes = m.worked_seconds.div_euclid(60);
        m.overtime_minutes = rounding.apply(m.overtime_seconds.div_euclid(60));
        m.overtime_over60_minutes = rounding.apply(m.overtime_over60_seconds.div_euclid(60));
        m.night_minutes = rounding.apply(m.night_seconds.div_euclid(60));
        m.holiday_minutes = rounding.apply(m.holiday_seconds.div_euclid(60));
    }
    out
}
