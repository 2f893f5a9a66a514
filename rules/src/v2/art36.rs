//! Article 36 limits (36協定, CONTRACT §4.9) on an employee's payroll months: the agreement
//! year's running overtime, the months over the monthly limit, the largest 2-6 month average
//! of overtime plus holiday work, and the alert codes that hold. Pure: from the months' figures
//! and the rules, the same for every caller.

use std::collections::BTreeMap;

use crate::v2::{Month, MonthFigures, Rulebook};

/// LSA art. 36(6)(ii): overtime plus holiday work of a month must stay under 100 h.
const MONTHLY_100H: i64 = 100 * 3_600;
/// LSA art. 36(6)(iii): on average over any 2 to 6 months, at most 80 h.
const AVERAGE_80H: i64 = 80 * 3_600;
/// LSA art. 36(5): at most 720 h of overtime a year, whatever the agreement says.
const YEARLY_720H: i64 = 720 * 3_600;
/// LSA art. 36(5): the monthly limit may be exceeded in at most 6 months of a year.
const MONTHS_OVER_ALLOWED: i64 = 6;

/// An Article 36 condition that holds for a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Art36Alert {
    /// Overtime above the agreement's monthly limit.
    MonthlyLimit,
    /// The agreement year's overtime so far above the agreement's yearly limit.
    YearlyLimit,
    /// More than 6 months of the agreement year over the monthly limit.
    SixMonths,
    /// The agreement year's overtime so far above 720 h.
    Yearly720h,
    /// Overtime plus holiday work of the month 100 h or more.
    Monthly100h,
    /// An average of overtime plus holiday work over the last 2-6 months above 80 h.
    Average80h,
}

impl Art36Alert {
    /// Every code.
    pub const ALL: [Art36Alert; 6] = [
        Art36Alert::MonthlyLimit,
        Art36Alert::YearlyLimit,
        Art36Alert::SixMonths,
        Art36Alert::Yearly720h,
        Art36Alert::Monthly100h,
        Art36Alert::Average80h,
    ];

    /// The code as records and files write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Art36Alert::MonthlyLimit => "monthly_limit",
            Art36Alert::YearlyLimit => "yearly_limit",
            Art36Alert::SixMonths => "six_months",
            Art36Alert::Yearly720h => "yearly_720h",
            Art36Alert::Monthly100h => "monthly_100h",
            Art36Alert::Average80h => "average_80h",
        }
    }
}

/// A month's Article 36 figures (§4.9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Art36 {
    /// Overtime plus holiday work of the month.
    pub overtime_and_holiday_seconds: i64,
    /// Overtime of the agreement year's months up to and including this one.
    pub year_overtime_seconds: i64,
    /// Months of the agreement year up to this one with overtime above the monthly limit.
    pub months_over_limit: i64,
    /// The largest average of overtime plus holiday work over the last 2 to 6 months ending
    /// with this one (a month without a record counts 0), floored to whole seconds.
    pub max_average_seconds: i64,
    /// The codes that hold, sorted by code.
    pub alerts: Vec<Art36Alert>,
}

/// The first payroll month of the agreement year that `month` belongs to.
pub fn agreement_year_start(month: Month, start_month: u32) -> Month {
    let year = if month.month >= start_month {
        month.year
    } else {
        month.year - 1
    };
    Month {
        year,
        month: start_month,
    }
}

/// The Article 36 figures of each month in `months` (one employee's month figures by payroll
/// month; a month missing from the map counts as zero), with the rules in force on each
/// month's last day.
pub fn annotate(
    rules: &Rulebook,
    months: &BTreeMap<Month, MonthFigures>,
) -> BTreeMap<Month, Art36> {
    months
        .keys()
        .map(|&month| (month, of_month(rules, months, month)))
        .collect()
}

/// The Article 36 figures of `month`, from the figures of it and the months before it.
pub fn of_month(rules: &Rulebook, months: &BTreeMap<Month, MonthFigures>, month: Month) -> Art36 {
    let version = rules.on_date(month.last_day(rules.closing_day()));
    let monthly_limit = version.agreement_monthly_limit_minutes * 60;
    let yearly_limit = version.agreement_yearly_limit_minutes * 60;
    let figures = |m: Month| months.get(&m).cloned().unwrap_or_default();
    let with_holiday = |m: Month| {
        let f = figures(m);
        f.overtime_seconds + f.holiday_seconds
    };

    let mut year_overtime = 0;
    let mut over_limit = 0;
    let start = agreement_year_start(month, version.agreement_start_month);
    for (_, f) in months.range(start..=month) {
        year_overtime += f.overtime_seconds;
        if f.overtime_seconds > monthly_limit {
            over_limit += 1;
        }
    }

    let mut sum = with_holiday(month);
    let mut earlier = month;
    let mut max_average = 0;
    let mut average_over = false;
    for k in 2..=6i64 {
        earlier = earlier.previous();
        sum += with_holiday(earlier);
        max_average = max_average.max(sum.div_euclid(k));
        // "Above 80 h" on the exact average, not the floored one.
        average_over |= sum > AVERAGE_80H * k;
    }

    let this = figures(month);
    let holds = [
        (
            Art36Alert::MonthlyLimit,
            this.overtime_seconds > monthly_limit,
        ),
        (Art36Alert::YearlyLimit, year_overtime > yearly_limit),
        (Art36Alert::SixMonths, over_limit > MONTHS_OVER_ALLOWED),
        (Art36Alert::Yearly720h, year_overtime > YEARLY_720H),
        (Art36Alert::Monthly100h, with_holiday(month) >= MONTHLY_100H),
        (Art36Alert::Average80h, average_over),
    ];
    let mut alerts: Vec<Art36Alert> = holds
        .into_iter()
        .filter_map(|(alert, holds)| holds.then_some(alert))
        .collect();
    alerts.sort_by_key(|a| a.as_str());
    Art36 {
        overtime_and_holiday_seconds: with_holiday(month),
        year_overtime_seconds: year_overtime,
        months_over_limit: over_limit,
        max_average_seconds: max_average,
        alerts,
    }
}

/// The months whose Article 36 figures a change to `changed` can alter: the next 5 months
/// (their 2-6 month averages reach back to it) and the rest of its agreement year (the year's
/// overtime and months over the limit), as in force on `changed`'s last day.
pub fn affected(rules: &Rulebook, changed: Month) -> (Month, Month) {
    let version = rules.on_date(changed.last_day(rules.closing_day()));
    let start = agreement_year_start(changed, version.agreement_start_month);
    let mut year_end = start;
    for _ in 0..11 {
        year_end = year_end.next();
    }
    let mut averages_end = changed;
    for _ in 0..5 {
        averages_end = averages_end.next();
    }
    (changed, year_end.max(averages_end))
}
