//! The work date of a punch (CONTRACT §4 "Work date"): the tenant's local wall-clock time of
//! the punch, minus the tenant's day-change time, taken as a date. A night shift's 02:00
//! clock-out with day change 05:00 belongs to the previous work date.
//!
//! Shared by licence-check (licence validity on the work date) and attendance (which day a
//! punch counts towards), so both always agree.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

/// The work date of the instant `at_utc_millis` (milliseconds since the Unix epoch, as in
/// `RawPunch::at`) for a tenant in time zone `tz` whose work date starts at local time
/// `day_change`.
///
/// The local wall-clock time comes from the zone's offset at that instant, so daylight-saving
/// changes are handled by the zone rules; the day change is subtracted from the wall clock
/// (not from the instant), so a zone's 23- or 25-hour days still switch at `day_change` local.
/// An instant beyond chrono's range (about ±262,000 years) saturates to the nearest
/// representable date, so the function is total.
pub fn work_date(at_utc_millis: i64, tz: Tz, day_change: NaiveTime) -> NaiveDate {
    let Some(at) = DateTime::<Utc>::from_timestamp_millis(at_utc_millis) else {
        return if at_utc_millis < 0 {
            NaiveDate::MIN
        } else {
            NaiveDate::MAX
        };
    };
    let local = at.with_timezone(&tz).naive_local();
    let since_midnight = day_change.signed_duration_since(NaiveTime::MIN);
    local
        .checked_sub_signed(since_midnight)
        .unwrap_or(local)
        .date()
}

/// [`work_date`] with the contract's defaults, `Asia/Tokyo` and `05:00`.
pub fn work_date_default(at_utc_millis: i64) -> NaiveDate {
    work_date(at_utc_millis, DEFAULT_TIME_ZONE, DEFAULT_DAY_CHANGE)
}

/// The contract's default tenant time zone (CONTRACT §4).
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Tokyo;

/// The contract's default day-change time, `05:00` (CONTRACT §4).
pub const DEFAULT_DAY_CHANGE: NaiveTime = match NaiveTime::from_hms_opt(5, 0, 0) {
    Some(time) => time,
    None => panic!("05:00 is a valid time"),
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn millis(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("valid RFC 3339 in test")
            .timestamp_millis()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date in test")
    }

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid time in test")
    }

    #[test]
    fn a_punch_before_the_day_change_belongs_to_the_previous_date() {
        let tokyo = chrono_tz::Asia::Tokyo;
        let five = time(5, 0);
        assert_eq!(
            work_date(millis("2020-12-05T02:00:00+09:00"), tokyo, five),
            date(2020, 12, 4)
        );
        assert_eq!(
            work_date(millis("2020-12-05T04:59:59.999+09:00"), tokyo, five),
            date(2020, 12, 4)
        );
        assert_eq!(
            work_date(millis("2020-12-05T05:00:00+09:00"), tokyo, five),
            date(2020, 12, 5)
        );
        // 08:44:59 Tokyo is 23:44:59Z the day before: the local date counts, not the UTC one.
        assert_eq!(
            work_date_default(millis("2020-12-04T08:44:59+09:00")),
            date(2020, 12, 4)
        );
    }

    #[test]
    fn midnight_day_change_is_the_plain_local_date() {
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(
            work_date(millis("2020-12-04T23:59:59+09:00"), tokyo, NaiveTime::MIN),
            date(2020, 12, 4)
        );
        assert_eq!(
            work_date(millis("2020-12-05T00:00:00+09:00"), tokyo, NaiveTime::MIN),
            date(2020, 12, 5)
        );
    }

    #[test]
    fn daylight_saving_zones_use_the_offset_in_force_at_the_instant() {
        let berlin = chrono_tz::Europe::Berlin;
        let five = time(5, 0);
        // 2021-03-28: clocks jump 02:00 CET -> 03:00 CEST. 00:30Z is 01:30 CET (before the
        // change, date 27th); 01:30Z is 03:30 CEST (after the jump, still before 05:00).
        assert_eq!(
            work_date(millis("2021-03-28T00:30:00Z"), berlin, five),
            date(2021, 3, 27)
        );
        assert_eq!(
            work_date(millis("2021-03-28T01:30:00Z"), berlin, five),
            date(2021, 3, 27)
        );
        // 03:00Z is 05:00 CEST: the new work date starts at 05:00 local, one hour earlier in UTC
        // than the day before (04:00Z on the 27th was 05:00 CET).
        assert_eq!(
            work_date(millis("2021-03-28T03:00:00Z"), berlin, five),
            date(2021, 3, 28)
        );
        assert_eq!(
            work_date(millis("2021-03-27T03:59:59Z"), berlin, five),
            date(2021, 3, 26)
        );
        assert_eq!(
            work_date(millis("2021-03-27T04:00:00Z"), berlin, five),
            date(2021, 3, 27)
        );
        // 2021-10-31: 03:00 CEST -> 02:00 CET; the repeated 02:xx hour is the 30th both times.
        assert_eq!(
            work_date(millis("2021-10-31T00:30:00Z"), berlin, five),
            date(2021, 10, 30)
        );
        assert_eq!(
            work_date(millis("2021-10-31T01:30:00Z"), berlin, five),
            date(2021, 10, 30)
        );
        assert_eq!(
            work_date(millis("2021-10-31T04:00:00Z"), berlin, five),
            date(2021, 10, 31)
        );
    }

    #[test]
    fn out_of_range_instants_saturate_instead_of_panicking() {
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(work_date(i64::MAX, tokyo, time(5, 0)), NaiveDate::MAX);
        assert_eq!(work_date(i64::MIN, tokyo, time(5, 0)), NaiveDate::MIN);
    }

    proptest! {
        #[test]
        fn total_and_within_a_day_of_the_local_date(at in any::<i64>(), minutes in 0u32..1440) {
            let day_change = time(minutes / 60, minutes % 60);
            let tz = chrono_tz::America::New_York;
            let got = work_date(at, tz, day_change);
            if let Some(instant) = DateTime::<Utc>::from_timestamp_millis(at) {
                let local = instant.with_timezone(&tz).date_naive();
                prop_assert!(got == local || got.succ_opt() == Some(local));
            }
        }
    }
}
