//! Payroll months as administrators name them (`YYYY-MM`) and the work dates they cover under
//! a tenant's `closing_day` (CONTRACT §4.4: the month a closing period ends in).

use chrono::NaiveDate;
use dakoku_rules::v2::{Month, Rulebook};

use crate::AdminError;

/// Parses `YYYY-MM` into a payroll month.
pub fn parse_month(text: &str) -> Result<Month, AdminError> {
    Month::parse(text.trim()).ok_or_else(|| {
        AdminError::invalid(
            "month",
            format!("{text:?} is not a month: use YYYY-MM, e.g. 2026-11"),
        )
    })
}

/// The first and last work date (inclusive) of `month` under the tenant's rules.
pub fn bounds(month: Month, rules: &Rulebook) -> (NaiveDate, NaiveDate) {
    let closing_day = rules.closing_day();
    (month.first_day(closing_day), month.last_day(closing_day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dakoku_rules::v2::RuleVersion;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn months_parse_strictly() {
        assert_eq!(parse_month("2026-11").unwrap().to_string(), "2026-11");
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-11-01"] {
            assert!(
                matches!(
                    parse_month(bad),
                    Err(AdminError::Invalid { field: "month", .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn calendar_months_without_a_closing_day() {
        let rules = Rulebook::defaults();
        assert_eq!(
            bounds(parse_month("2026-02").unwrap(), &rules),
            (date("2026-02-01"), date("2026-02-28"))
        );
    }

    #[test]
    fn a_closing_day_ends_the_month_it_names() {
        let mut version = RuleVersion::defaults(NaiveDate::MIN);
        version.closing_day = Some(20);
        let rules = Rulebook::new(vec![(0, version)]).unwrap();
        assert_eq!(
            bounds(parse_month("2026-01").unwrap(), &rules),
            (date("2025-12-21"), date("2026-01-20"))
        );
    }
}
