//! How people read figures and instants: durations as `h:mm:ss`, instants on the tenant's wall
//! clock. Used by the views (the `*_local` fields) and by `punchctl`'s text output.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

/// Seconds as `h:mm:ss` (hours not wrapped at 24; negative with a leading `-`).
pub fn hms(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    format!("{sign}{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// An instant in RFC 3339 on the zone's wall clock, e.g. `2026-11-03T18:00:00+09:00`.
pub fn local_rfc3339(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// An instant in RFC 3339 UTC, e.g. `2026-11-03T09:00:00Z`.
pub fn utc_rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The wall-clock time of day, `HH:MM:SS`.
pub fn local_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%H:%M:%S").to_string()
}

/// Parses a stored IANA zone name; the store checks names when tenants are added, so an
/// unknown one falls back to UTC rather than failing a read.
pub fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(Tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(hms(0), "0:00:00");
        assert_eq!(hms(28_800 + 61), "8:01:01");
        assert_eq!(hms(100 * 3600), "100:00:00");
        assert_eq!(hms(-90), "-0:01:30");
    }

    #[test]
    fn instants_on_the_tenant_clock() {
        let at: DateTime<Utc> = "2026-11-03T09:00:00Z".parse().unwrap();
        let tokyo = zone("Asia/Tokyo");
        assert_eq!(local_rfc3339(at, tokyo), "2026-11-03T18:00:00+09:00");
        assert_eq!(utc_rfc3339(at), "2026-11-03T09:00:00Z");
        assert_eq!(local_time(at, tokyo), "18:00:00");
        assert_eq!(zone("Not/AZone"), Tz::UTC);
    }
}
