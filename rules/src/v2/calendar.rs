//! Civil time for the rules: a punch's work date, the wall-clock windows (night, legal holiday)
//! measured over real elapsed seconds across daylight-saving changes, weeks and payroll months.
//! All instants are Unix seconds.

use std::fmt;

use chrono::{Datelike as _, NaiveDate, Offset as _, TimeZone as _, Timelike as _, Weekday};
use chrono_tz::Tz;

use crate::v2::rulebook::RuleVersion;

const DAY: i64 = 86_400;
/// No real zone changes its offset twice within this long, so a piece of time this short
/// whose two ends have one offset has that offset throughout.
const OFFSET_PROBE: i64 = 6 * 3_600;

/// The zone's offset from UTC at an instant, in seconds.
pub fn offset(at: i64, tz: Tz) -> i64 {
    match chrono::DateTime::from_timestamp(at, 0) {
        Some(utc) => i64::from(
            tz.offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc(),
        ),
        None => 0,
    }
}

/// The work date of an instant under `version`: the wall-clock date-time in its zone, less
/// `day_change` (from the wall-clock value, not the instant: DST days differ), as a date.
pub fn work_date(at: i64, version: &RuleVersion) -> NaiveDate {
    let local = at + offset(at, version.time_zone) - version.day_change_seconds();
    date_of_local(local)
}

/// The date of a local wall-clock value (seconds since 1970-01-01T00:00 local).
fn date_of_local(local: i64) -> NaiveDate {
    let days = local.div_euclid(DAY);
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(days + 719_163).unwrap_or(if days < 0 {
        i32::MIN
    } else {
        i32::MAX
    }))
    .unwrap_or(if days < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    })
}

/// Splits `[from, to)` into pieces of constant offset and calls `each(local_from, local_to)`
/// with each piece as wall-clock values, summing what it returns.
fn sum_local(from: i64, to: i64, tz: Tz, mut each: impl FnMut(i64, i64) -> i64) -> i64 {
    let mut total = 0;
    let mut at = from;
    while at < to {
        let off = offset(at, tz);
        let end = constant_until(at, to, off, tz);
        total += each(at + off, end + off);
        at = end;
    }
    total
}

/// The end of the piece from `at` (at most `to`) over which the offset stays `off`.
fn constant_until(at: i64, to: i64, off: i64, tz: Tz) -> i64 {
    let mut good = at;
    loop {
        let probe = good.saturating_add(OFFSET_PROBE).min(to);
        if offset(probe - 1, tz) != off {
            // The change is in (good, probe]: find the first instant with another offset.
            let (mut lo, mut hi) = (good, probe - 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid, tz) == off {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return hi;
        }
        if probe == to {
            return to;
        }
        good = probe;
    }
}

/// A daily wall-clock window `[start, end)` in seconds after midnight; `start > end` wraps
/// past midnight (22:00-05:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: i64,
    end: i64,
}

impl Window {
    /// The night window of a rules version.
    pub fn night(version: &RuleVersion) -> Self {
        Self {
            start: i64::from(version.night_start.num_seconds_from_midnight()),
            end: i64::from(version.night_end.num_seconds_from_midnight()),
        }
    }

    /// Seconds of `[0, r)` (0 <= r <= a day) inside the window.
    fn within_day(&self, r: i64) -> i64 {
        let part = |a: i64, b: i64| (r.min(b) - a).max(0);
        if self.start < self.end {
            part(self.start, self.end)
        } else {
            part(0, self.end) + part(self.start, DAY)
        }
    }

    /// Seconds of the local range `[0, x)` inside the window (any sign of `x`).
    fn cumulative(&self, x: i64) -> i64 {
        x.div_euclid(DAY) * self.within_day(DAY) + self.within_day(x.rem_euclid(DAY))
    }

    /// Seconds of the local range `[a, b)` inside the window.
    fn local(&self, a: i64, b: i64) -> i64 {
        self.cumulative(b) - self.cumulative(a)
    }
}

/// Elapsed seconds of `[from, to)` whose wall-clock time in `tz` lies in `window`.
pub fn seconds_in_window(from: i64, to: i64, tz: Tz, window: Window) -> i64 {
    sum_local(from, to, tz, |a, b| window.local(a, b))
}

/// Elapsed seconds of `[from, to)` that fall on a wall-clock calendar day (00:00-24:00) whose
/// weekday is `weekday`.
pub fn seconds_on_weekday(from: i64, to: i64, tz: Tz, weekday: Weekday) -> i64 {
    sum_local(from, to, tz, |a, b| {
        let mut total = 0;
        let mut day = a.div_euclid(DAY);
        while day * DAY < b {
            // 1970-01-01 was a Thursday.
            if (day + 3).rem_euclid(7) == i64::from(weekday.num_days_from_monday()) {
                total += b.min((day + 1) * DAY) - a.max(day * DAY);
            }
            day += 1;
        }
        total
    })
}

/// The first day of the week holding `date`, weeks starting on `week_start`.
pub fn week_of(date: NaiveDate, week_start: Weekday) -> NaiveDate {
    let back = (7 + date.weekday().num_days_from_monday() - week_start.num_days_from_monday()) % 7;
    date - chrono::Days::new(u64::from(back))
}

/// A payroll month, named by the calendar month it ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// The year.
    pub year: i32,
    /// 1-12.
    pub month: u32,
}

impl Month {
    /// The payroll month of a work date: with a closing day `c`, the period from day `c + 1`
    /// of one month to day `c` of the next is the later month; without one, the calendar month.
    pub fn of(date: NaiveDate, closing_day: Option<u32>) -> Self {
        let this = Month {
            year: date.year(),
            month: date.month(),
        };
        match closing_day {
            Some(c) if date.day() > c => this.next(),
            _ => this,
        }
    }

    /// The month after.
    pub fn next(self) -> Self {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before.
    pub fn previous(self) -> Self {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The period's last work date.
    pub fn last_day(self, closing_day: Option<u32>) -> NaiveDate {
        match closing_day {
            Some(c) => NaiveDate::from_ymd_opt(self.year, self.month, c),
            None => NaiveDate::from_ymd_opt(self.next().year, self.next().month, 1)
                .and_then(|d| d.pred_opt()),
        }
        .unwrap_or(NaiveDate::MAX)
    }

    /// The period's first work date.
    pub fn first_day(self, closing_day: Option<u32>) -> NaiveDate {
        match closing_day {
            Some(_) => self
                .previous()
                .last_day(closing_day)
                .succ_opt()
                .unwrap_or(NaiveDate::MIN),
            None => NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN),
        }
    }

    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Self> {
        let (y, m) = text.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let month = m.parse().ok().filter(|m| (1..=12).contains(m))?;
        Some(Month {
            year: y.parse().ok()?,
            month,
        })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn at(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .timestamp()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn work_dates_change_at_the_day_change_on_the_wall_clock() {
        let v = RuleVersion::defaults(date("2026-01-01"));
        assert_eq!(
            work_date(at("2026-11-03T04:59:59+09:00"), &v),
            date("2026-11-02")
        );
        assert_eq!(
            work_date(at("2026-11-03T05:00:00+09:00"), &v),
            date("2026-11-03")
        );
        let mut ny = v.clone();
        ny.time_zone = chrono_tz::America::New_York;
        // 2026-03-08 is a 23-hour day in New York; 05:00 local is still the change.
        assert_eq!(
            work_date(at("2026-03-08T04:59:00-04:00"), &ny),
            date("2026-03-07")
        );
        assert_eq!(
            work_date(at("2026-03-08T05:00:00-04:00"), &ny),
            date("2026-03-08")
        );
    }

    #[test]
    fn night_seconds_match_a_minute_by_minute_count_across_dst() {
        let mut v = RuleVersion::defaults(date("2026-01-01"));
        for (tz, start, end) in [
            (chrono_tz::America::New_York, "22:00", "05:00"),
            (chrono_tz::Australia::Lord_Howe, "23:00", "06:00"),
            (chrono_tz::Asia::Kathmandu, "01:00", "04:30"),
            (chrono_tz::Europe::Berlin, "22:00", "05:00"),
        ] {
            v.time_zone = tz;
            v.night_start = NaiveTime::parse_from_str(start, "%H:%M").expect("time");
            v.night_end = NaiveTime::parse_from_str(end, "%H:%M").expect("time");
            let w = Window::night(&v);
            for (from, hours) in [
                ("2026-03-07T12:00:00Z", 40),
                ("2026-10-24T20:00:00Z", 30),
                ("2026-04-04T10:00:00Z", 30),
                ("2026-11-01T01:00:00Z", 20),
            ] {
                let a = at(from);
                let b = a + hours * 3_600;
                let brute = (a..b)
                    .step_by(60)
                    .filter(|&t| {
                        let s = (t + offset(t, tz)).rem_euclid(DAY);
                        if w.start < w.end {
                            (w.start..w.end).contains(&s)
                        } else {
                            s >= w.start || s < w.end
                        }
                    })
                    .count() as i64
                    * 60;
                assert_eq!(seconds_in_window(a, b, tz, w), brute, "{tz} {from}");
            }
        }
    }

    #[test]
    fn holiday_seconds_are_the_whole_wall_clock_day() {
        let tokyo = chrono_tz::Asia::Tokyo;
        let sat22 = at("2026-11-14T22:00:00+09:00");
        let sun07 = at("2026-11-15T07:00:00+09:00");
        assert_eq!(
            seconds_on_weekday(sat22, sun07, tokyo, Weekday::Sun),
            7 * 3_600
        );
        let sun20 = at("2026-11-15T20:00:00+09:00");
        let mon02 = at("2026-11-16T02:00:00+09:00");
        assert_eq!(
            seconds_on_weekday(sun20, mon02, tokyo, Weekday::Sun),
            4 * 3_600
        );
    }

    #[test]
    fn payroll_months_and_weeks() {
        assert_eq!(
            Month::of(date("2026-11-21"), Some(20)).to_string(),
            "2026-12"
        );
        assert_eq!(
            Month::of(date("2026-12-20"), Some(20)).to_string(),
            "2026-12"
        );
        assert_eq!(
            Month::of(date("2026-12-21"), Some(20)).to_string(),
            "2027-01"
        );
        assert_eq!(Month::of(date("2026-12-31"), None).to_string(), "2026-12");
        let dec = Month::parse("2026-12").expect("month");
        assert_eq!(dec.first_day(Some(20)), date("2026-11-21"));
        assert_eq!(dec.last_day(Some(20)), date("2026-12-20"));
        assert_eq!(dec.first_day(None), date("2026-12-01"));
        assert_eq!(dec.last_day(None), date("2026-12-31"));
        assert_eq!(Month::parse("2026-13"), None);
        // 2026-11-01 is a Sunday.
        assert_eq!(
            week_of(date("2026-11-07"), Weekday::Sun),
            date("2026-11-01")
        );
        assert_eq!(
            week_of(date("2026-11-01"), Weekday::Sun),
            date("2026-11-01")
        );
        assert_eq!(
            week_of(date("2026-11-01"), Weekday::Mon),
            date("2026-10-26")
        );
    }
}
