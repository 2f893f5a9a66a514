//! Night work: worked time whose local wall-clock time is within 22:00-05:00, counted instant
//! by instant, so daylight-saving days count the real time worked.

use chrono::{DateTime, Offset as _, TimeZone as _};
use chrono_tz::Tz;

use crate::units::{DAY_MS, HOUR_MS};

/// Local time of day at which night work starts (22:00), in milliseconds after midnight.
pub const NIGHT_START_MS: i64 = 22 * HOUR_MS;
/// Local time of day at which night work ends (05:00), in milliseconds after midnight.
pub const NIGHT_END_MS: i64 = 5 * HOUR_MS;

/// No real time zone changes its offset twice within this long, so a piece of time this short
/// whose two ends have the same offset has that offset throughout.
const OFFSET_PROBE_MS: i64 = 6 * HOUR_MS;

/// The UTC offset of `tz` at the instant `at`, in milliseconds.
pub(crate) fn offset_ms(at: i64, tz: Tz) -> i64 {
    let instant = DateTime::from_timestamp_millis(at).unwrap_or(if at < 0 {
        DateTime::<chrono::Utc>::MIN_UTC
    } else {
        DateTime::<chrono::Utc>::MAX_UTC
    });
    i64::from(
        tz.offset_from_utc_datetime(&instant.naive_utc())
            .fix()
            .local_minus_utc(),
    ) * 1000
}

/// Milliseconds of `[from, to)` (UTC instants) whose local wall-clock time in `tz` is within
/// 22:00-05:00. Splits the interval where the zone's offset changes, then counts each
/// constant-offset piece on the local time line.
pub fn night_ms(from: i64, to: i64, tz: Tz) -> i64 {
    let mut total = 0;
    let mut at = from;
    while at < to {
        let offset = offset_ms(at, tz);
        let end = constant_offset_until(at, to, offset, tz);
        total += night_in_local(at + offset, end + offset);
        at = end;
    }
    total
}

/// The first instant in `(from, to]` where the offset is no longer `offset` (or `to`).
fn constant_offset_until(from: i64, to: i64, offset: i64, tz: Tz) -> i64 {
    let mut good = from;
    loop {
        let probe = good.saturating_add(OFFSET_PROBE_MS).min(to);
        if offset_ms(probe - 1, tz) != offset {
            // A change in (good, probe - 1]: bisect to the first millisecond with the new offset.
            let mut bad = probe - 1;
            while bad - good > 1 {
                let mid = good + (bad - good) / 2;
                if offset_ms(mid, tz) == offset {
                    good = mid;
                } else {
                    bad = mid;
                }
            }
            return bad;
        }
        if probe == to {
            return to;
        }
        good = probe - 1;
    }
}

/// Milliseconds of `[from, to)` on the local time line (local wall-clock milliseconds since
/// 1970-01-01T00:00 local) within a night window `[d 22:00, d+1 05:00)`.
fn night_in_local(from: i64, to: i64) -> i64 {
    let window_before_midnight = DAY_MS - NIGHT_START_MS;
    // Window `d` is [d*DAY - 2h, d*DAY + 5h): the night that ends on local date d.
    let first = (from + window_before_midnight).div_euclid(DAY_MS);
    let last = (to + window_before_midnight).div_euclid(DAY_MS);
    (first..=last)
        .map(|d| {
            let start = d * DAY_MS - window_before_midnight;
            let end = d * DAY_MS + NIGHT_END_MS;
            (to.min(end) - from.max(start)).max(0)
        })
        .sum()
}
