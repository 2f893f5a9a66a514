//! Article 36 limits (§4.9) at their boundaries, across an agreement year, with `closing_day`
//! 20; and a property: a change to one month alters no month outside `art36::affected`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use dakoku_rules::v2::MonthFigures;
use dakoku_rules::v2::art36::{Art36Alert, affected, agreement_year_start, annotate, of_month};
use dakoku_rules::v2::calendar::Month;
use dakoku_rules::v2::rulebook::{RuleVersion, Rulebook};
use proptest::prelude::*;

const H: i64 = 3_600;

fn m(year: i32, month: u32) -> Month {
    Month { year, month }
}

fn figures(overtime: i64, holiday: i64) -> MonthFigures {
    MonthFigures {
        overtime_seconds: overtime,
        holiday_seconds: holiday,
        ..MonthFigures::default()
    }
}

fn rules(closing_day: Option<u32>) -> Rulebook {
    let mut v = RuleVersion::defaults(NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"));
    v.closing_day = closing_day;
    Rulebook::new(vec![(0, v)]).expect("valid rules")
}

fn alerts(
    rules: &Rulebook,
    months: &BTreeMap<Month, MonthFigures>,
    month: Month,
) -> Vec<&'static str> {
    of_month(rules, months, month)
        .alerts
        .iter()
        .map(|a| a.as_str())
        .collect()
}

#[test]
fn exactly_45_hours_is_within_the_monthly_limit_one_second_more_is_not() {
    let r = rules(None);
    let at = BTreeMap::from([(m(2026, 5), figures(45 * H, 0))]);
    assert!(alerts(&r, &at, m(2026, 5)).is_empty());
    let over = BTreeMap::from([(m(2026, 5), figures(45 * H + 1, 0))]);
    assert_eq!(alerts(&r, &over, m(2026, 5)), ["monthly_limit"]);
}

#[test]
fn exactly_100_hours_of_overtime_and_holiday_work_is_an_alert() {
    let r = rules(None);
    let just_under = BTreeMap::from([(m(2026, 5), figures(60 * H, 40 * H - 1))]);
    assert!(!alerts(&r, &just_under, m(2026, 5)).contains(&"monthly_100h"));
    let exactly = BTreeMap::from([(m(2026, 5), figures(60 * H, 40 * H))]);
    let a = of_month(&r, &exactly, m(2026, 5));
    assert_eq!(a.overtime_and_holiday_seconds, 100 * H);
    // 100 h in one month is also a 2-month average of 50 h: no average alert.
    // Sorted by code: `monthly_100h` before `monthly_limit`.
    assert_eq!(
        a.alerts,
        vec![Art36Alert::Monthly100h, Art36Alert::MonthlyLimit]
    );
}

#[test]
fn a_two_month_average_just_above_80_hours_is_an_alert_at_80_it_is_not() {
    let r = rules(None);
    let at = BTreeMap::from([
        (m(2026, 4), figures(80 * H, 0)),
        (m(2026, 5), figures(70 * H, 10 * H)),
    ]);
    let a = of_month(&r, &at, m(2026, 5));
    assert_eq!(a.max_average_seconds, 80 * H);
    assert!(!a.alerts.contains(&Art36Alert::Average80h));
    let above = BTreeMap::from([
        (m(2026, 4), figures(80 * H, 0)),
        (m(2026, 5), figures(70 * H, 10 * H + 1)),
    ]);
    let a = of_month(&r, &above, m(2026, 5));
    // The exact average is 80 h and half a second: above 80 h, though it floors to 80 h.
    assert_eq!(a.max_average_seconds, 80 * H);
    assert!(a.alerts.contains(&Art36Alert::Average80h));
}

#[test]
fn averages_reach_back_six_months_and_count_missing_months_as_zero() {
    let r = rules(None);
    // 81 h in April to July and in September, but August has no record: every average that
    // ends in September runs through August (0), so none is above 80 h.
    let mut months = BTreeMap::new();
    for month in [3, 4, 5, 6, 7, 9] {
        months.insert(m(2026, month), figures(81 * H, 0));
    }
    let a = of_month(&r, &months, m(2026, 9));
    assert!(!a.alerts.contains(&Art36Alert::Average80h), "{a:?}");
    assert_eq!(
        a.max_average_seconds,
        5 * 81 * H / 6,
        "April to September, 405 h / 6"
    );
    let a = of_month(&r, &months, m(2026, 7));
    assert!(a.alerts.contains(&Art36Alert::Average80h));
}

#[test]
fn the_seventh_month_over_the_limit_in_an_agreement_year_is_an_alert() {
    let r = rules(None);
    // The agreement year starts in April (default): April to October, 46 h each.
    let mut months = BTreeMap::new();
    for month in 4..=10 {
        months.insert(m(2026, month), figures(46 * H, 0));
    }
    let sixth = of_month(&r, &months, m(2026, 9));
    assert_eq!(sixth.months_over_limit, 6);
    assert!(!sixth.alerts.contains(&Art36Alert::SixMonths));
    let seventh = of_month(&r, &months, m(2026, 10));
    assert_eq!(seventh.months_over_limit, 7);
    assert!(seventh.alerts.contains(&Art36Alert::SixMonths));
    assert_eq!(seventh.year_overtime_seconds, 7 * 46 * H);
}

#[test]
fn the_agreement_year_restarts_in_its_first_month() {
    let r = rules(None);
    let mut months = BTreeMap::new();
    for month in 1..=12 {
        months.insert(m(2026, month), figures(36 * H, 0));
    }
    months.insert(m(2027, 1), figures(36 * H, 0));
    // March closes the agreement year April 2025 - March 2026: January to March 2026.
    assert_eq!(
        of_month(&r, &months, m(2026, 3)).year_overtime_seconds,
        3 * 36 * H
    );
    // April starts the next.
    assert_eq!(
        of_month(&r, &months, m(2026, 4)).year_overtime_seconds,
        36 * H
    );
    // January 2027 is its tenth month: 360 h, exactly the yearly limit, not above it.
    let january = of_month(&r, &months, m(2027, 1));
    assert_eq!(january.year_overtime_seconds, 360 * H);
    assert!(january.alerts.is_empty(), "{january:?}");
    months.insert(m(2027, 1), figures(36 * H + 1, 0));
    assert_eq!(
        of_month(&r, &months, m(2027, 1)).alerts,
        vec![Art36Alert::YearlyLimit]
    );
    assert_eq!(agreement_year_start(m(2027, 3), 4), m(2026, 4));
    assert_eq!(agreement_year_start(m(2027, 4), 4), m(2027, 4));
}

#[test]
fn over_720_hours_a_year_is_an_alert_whatever_the_agreement() {
    let mut v = RuleVersion::defaults(NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"));
    v.agreement_yearly_limit_minutes = 1_000 * 60;
    v.agreement_monthly_limit_minutes = 100 * 60;
    let r = Rulebook::new(vec![(0, v)]).expect("rules");
    // 60 h in each month of the agreement year April 2026 - March 2027: 720 h, not above.
    let mut months = BTreeMap::new();
    let mut month = m(2026, 4);
    for _ in 0..12 {
        months.insert(month, figures(60 * H, 0));
        month = month.next();
    }
    let march = m(2027, 3);
    assert!(of_month(&r, &months, march).alerts.is_empty());
    months.insert(march, figures(60 * H + 1, 0));
    assert_eq!(
        of_month(&r, &months, march).alerts,
        vec![Art36Alert::Yearly720h]
    );
}

#[test]
fn with_closing_day_20_the_months_are_payroll_months() {
    let r = rules(Some(20));
    let months = BTreeMap::from([
        (m(2026, 3), figures(50 * H, 0)),
        (m(2026, 4), figures(10 * H, 0)),
    ]);
    // Payroll month 2026-04 is 03-21..04-20; the agreement year starts with it.
    assert_eq!(
        of_month(&r, &months, m(2026, 4)).year_overtime_seconds,
        10 * H
    );
    assert_eq!(
        of_month(&r, &months, m(2026, 3)).alerts,
        vec![Art36Alert::MonthlyLimit]
    );
    assert_eq!(annotate(&r, &months).len(), 2);
}

fn month_strategy() -> impl Strategy<Value = Month> {
    (2025i32..=2027, 1u32..=12).prop_map(|(year, month)| Month { year, month })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_change_alters_no_month_outside_the_affected_range(
        before in prop::collection::btree_map(month_strategy(), (0i64..120, 0i64..40), 0..20),
        changed in month_strategy(),
        now in (0i64..120, 0i64..40),
        start_month in 1u32..=12,
    ) {
        let mut v = RuleVersion::defaults(NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"));
        v.agreement_start_month = start_month;
        let r = Rulebook::new(vec![(0, v)]).expect("rules");
        let before: BTreeMap<Month, MonthFigures> = before
            .into_iter()
            .map(|(month, (o, h))| (month, figures(o * H, h * H)))
            .collect();
        let mut after = before.clone();
        after.insert(changed, figures(now.0 * H, now.1 * H));
        let (from, to) = affected(&r, changed);
        for month in before.keys().chain(after.keys()) {
            if *month < from || *month > to {
                prop_assert_eq!(
                    of_month(&r, &before, *month),
                    of_month(&r, &after, *month),
                    "{} changed by a change to {}", month, changed
                );
            }
        }
    }
}
