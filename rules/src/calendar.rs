//! A tenant's calendar: its time zone and its day-change time, which together give the work
//! date of a punch (CONTRACT §4). The one `Calendar` of the workspace.

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;

pub use dakoku_schemas::{DEFAULT_DAY_CHANGE, DEFAULT_TIME_ZONE, work_date};

/// A tenant's calendar settings (`tenants.time_zone`, `tenants.day_change_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    /// The time zone of the tenant's wall clock (work dates, night work).
    pub tz: Tz,
    /// The local time at which one work date ends and the next begins.
    pub day_change: NaiveTime,
}

impl Default for Calendar {
    /// The contract's defaults: Asia/Tokyo, 05:00.
    fn default() -> Self {
        Self {
            tz: DEFAULT_TIME_ZONE,
            day_change: DEFAULT_DAY_CHANGE,
        }
    }
}

impl Calendar {
    /// The work date of a punch at `at` (milliseconds since the Unix epoch, UTC).
    pub fn work_date(&self, at: i64) -> NaiveDate {
        work_date(at, self.tz, self.day_change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_calendar_changes_day_at_five_in_tokyo() {
        let calendar = Calendar::default();
        // 2020-12-04T19:59:59Z is 04:59:59 on the 5th in Tokyo: still the 4th's work date.
        let before = 1_607_111_999_000;
        assert_eq!(
            calendar.work_date(before),
            NaiveDate::from_ymd_opt(2020, 12, 4).expect("date")
        );
        assert_eq!(
            calendar.work_date(before + 1_000),
            NaiveDate::from_ymd_opt(2020, 12, 5).expect("date")
        );
    }
}
