//! A tenant's work rules (CONTRACT §4.1): effective-dated versions, each holding from 00:00 of
//! its `effective_from` on its own zone's wall clock until the next one begins, and which
//! version decides what: the one in force at a punch's instant gives its work date; the one in
//! force on a work date gives every other rule of that date.

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime, TimeZone as _, Timelike as _, Weekday};
use chrono_tz::Tz;
use serde_json::{Map, Value};

/// How monthly payable minutes are rounded (§4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonthlyRounding {
    /// No rounding.
    None,
    /// A remainder under 30 minutes is dropped; 30 minutes or more becomes a full hour.
    HalfHourToHour,
}

impl MonthlyRounding {
    /// Applies the rounding to whole minutes.
    pub fn apply(self, minutes: i64) -> i64 {
        match self {
            MonthlyRounding::None => minutes,
            MonthlyRounding::HalfHourToHour => {
                let rest = minutes.rem_euclid(60);
                if rest < 30 {
                    minutes - rest
                } else {
                    minutes - rest + 60
                }
            }
        }
    }

    /// The rules-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MonthlyRounding::None => "none",
            MonthlyRounding::HalfHourToHour => "half_hour_to_hour",
        }
    }
}

/// One version of a tenant's work rules, every field with the contract's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleVersion {
    /// The first date (on this version's wall clock) the version holds.
    pub effective_from: NaiveDate,
    /// The tenant's wall clock.
    pub time_zone: Tz,
    /// Local time at which a work date begins.
    pub day_change: NaiveTime,
    /// Longest span: a punch later than this after the open `clock_in` does not belong to it.
    pub max_shift_minutes: i64,
    /// Repeat window for same-kind punches.
    pub double_tap_seconds: i64,
    /// Start of the night window (local wall clock).
    pub night_start: NaiveTime,
    /// End of the night window (local wall clock).
    pub night_end: NaiveTime,
    /// Statutory daily limit (LSA art. 32).
    pub daily_limit_minutes: i64,
    /// Statutory weekly limit.
    pub weekly_limit_minutes: i64,
    /// First day of the week for weekly overtime.
    pub week_start: Weekday,
    /// Weekday of the statutory weekly holiday, if the tenant designates one.
    pub legal_holiday: Option<Weekday>,
    /// Contractual daily hours.
    pub scheduled_daily_minutes: i64,
    /// The payroll month's closing day (1-28), or `None` for calendar months.
    pub closing_day: Option<u32>,
    /// First payroll month of the Article 36 agreement year.
    pub agreement_start_month: u32,
    /// Article 36 agreement: monthly overtime limit.
    pub agreement_monthly_limit_minutes: i64,
    /// Article 36 agreement: yearly overtime limit.
    pub agreement_yearly_limit_minutes: i64,
    /// Rounding of monthly payable minutes.
    pub monthly_rounding: MonthlyRounding,
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("a valid constant time")
}

impl RuleVersion {
    /// A version with every default, from `effective_from`.
    pub fn defaults(effective_from: NaiveDate) -> Self {
        Self {
            effective_from,
            time_zone: chrono_tz::Asia::Tokyo,
            day_change: hm(5, 0),
            max_shift_minutes: 1440,
            double_tap_seconds: 60,
            night_start: hm(22, 0),
            night_end: hm(5, 0),
            daily_limit_minutes: 480,
            weekly_limit_minutes: 2400,
            week_start: Weekday::Sun,
            legal_holiday: None,
            scheduled_daily_minutes: 480,
            closing_day: None,
            agreement_start_month: 4,
            agreement_monthly_limit_minutes: 2700,
            agreement_yearly_limit_minutes: 21600,
            monthly_rounding: MonthlyRounding::None,
        }
    }

    /// Seconds after local midnight at which a work date begins.
    pub fn day_change_seconds(&self) -> i64 {
        i64::from(self.day_change.num_seconds_from_midnight())
    }

    /// The instant (Unix seconds) the version begins: 00:00 of `effective_from` on its wall
    /// clock, or the first instant after a gap if that midnight does not exist.
    pub fn starts_at(&self) -> i64 {
        let midnight = self.effective_from.and_time(NaiveTime::MIN);
        let mut probe = midnight;
        // A zone may skip midnight (DST at 00:00): the version starts when the wall clock
        // first shows a time on that date.
        for _ in 0..(24 * 4) {
            if let Some(at) = self.time_zone.from_local_datetime(&probe).earliest() {
                return at.timestamp();
            }
            probe += chrono::Duration::minutes(15);
        }
        midnight.and_utc().timestamp()
    }
}

/// The keys of a version in the rules file, in the contract's order.
pub const KEYS: &[&str] = &[
    "effective_from",
    "time_zone",
    "day_change",
    "max_shift_minutes",
    "double_tap_seconds",
    "night_start",
    "night_end",
    "daily_limit_minutes",
    "weekly_limit_minutes",
    "week_start",
    "legal_holiday",
    "scheduled_daily_minutes",
    "closing_day",
    "agreement_start_month",
    "agreement_monthly_limit_minutes",
    "agreement_yearly_limit_minutes",
    "monthly_rounding",
];

/// What is wrong with a rules version, naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct RuleError {
    /// The version's index in the list it came in.
    pub version: usize,
    /// The key at fault.
    pub key: String,
    /// What is wrong, and what is expected.
    pub message: String,
}

fn weekday(value: &str) -> Option<Weekday> {
    Some(match value {
        "monday" => Weekday::Mon,
        "tuesday" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// The rules-file spelling of a weekday.
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

/// `HH:MM` (or `HH:MM:SS`) wall-clock time.
fn clock(value: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(value, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(value, "%H:%M:%S"))
        .ok()
}

/// Reads the values of one version's keys, with errors naming the key.
struct KeyReader {
    version: usize,
}

impl KeyReader {
    fn fail(&self, key: &str, message: String) -> RuleError {
        RuleError {
            version: self.version,
            key: key.to_owned(),
            message,
        }
    }

    fn text(&self, key: &str, value: &Value) -> Result<String, RuleError> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.fail(key, format!("expected a string, got {value}")))
    }

    fn minutes(&self, key: &str, value: &Value, min: i64, max: i64) -> Result<i64, RuleError> {
        value
            .as_i64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                self.fail(
                    key,
                    format!("expected a whole number from {min} to {max}, got {value}"),
                )
            })
    }
}

impl RuleVersion {
    /// Reads one version from its JSON object; missing keys take the defaults. `index` is its
    /// place in the list, for errors.
    pub fn from_json(index: usize, object: &Map<String, Value>) -> Result<Self, RuleError> {
        let r = KeyReader { version: index };
        let effective_from = match object.get("effective_from") {
            Some(value) => {
                let s = r.text("effective_from", value)?;
                NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| {
                    r.fail("effective_from", format!("expected YYYY-MM-DD, got {s:?}"))
                })?
            }
            None => return Err(r.fail("effective_from", "is required".into())),
        };
        let mut v = RuleVersion::defaults(effective_from);
        for (key, value) in object {
            v.set(&r, key, value)?;
        }
        if v.night_start == v.night_end {
            let key = if object.contains_key("night_end") {
                "night_end"
            } else {
                "night_start"
            };
            return Err(r.fail(key, "night_start and night_end must differ".into()));
        }
        Ok(v)
    }

    /// Sets one key from its JSON value.
    fn set(&mut self, r: &KeyReader, key: &str, value: &Value) -> Result<(), RuleError> {
        match key {
            "effective_from" => {}
            "time_zone" => {
                let s = r.text(key, value)?;
                self.time_zone = Tz::from_str(&s)
                    .map_err(|_| r.fail(key, format!("unknown IANA time zone {s:?}")))?;
            }
            "day_change" | "night_start" | "night_end" => {
                let s = r.text(key, value)?;
                let t =
                    clock(&s).ok_or_else(|| r.fail(key, format!("expected HH:MM, got {s:?}")))?;
                match key {
                    "day_change" => self.day_change = t,
                    "night_start" => self.night_start = t,
                    _ => self.night_end = t,
                }
            }
            "max_shift_minutes" => self.max_shift_minutes = r.minutes(key, value, 1, 10_080)?,
            "double_tap_seconds" => self.double_tap_seconds = r.minutes(key, value, 0, 3_600)?,
            "daily_limit_minutes" => self.daily_limit_minutes = r.minutes(key, value, 0, 1_440)?,
            "weekly_limit_minutes" => {
                self.weekly_limit_minutes = r.minutes(key, value, 0, 10_080)?;
            }
            "scheduled_daily_minutes" => {
                self.scheduled_daily_minutes = r.minutes(key, value, 0, 1_440)?;
            }
            "agreement_monthly_limit_minutes" => {
                self.agreement_monthly_limit_minutes = r.minutes(key, value, 0, 44_640)?;
            }
            "agreement_yearly_limit_minutes" => {
                self.agreement_yearly_limit_minutes = r.minutes(key, value, 0, 527_040)?;
            }
            "agreement_start_month" => {
                self.agreement_start_month = u32::try_from(r.minutes(key, value, 1, 12)?)
                    .map_err(|e| r.fail(key, e.to_string()))?;
            }
            "week_start" => {
                let s = r.text(key, value)?;
                self.week_start = weekday(&s)
                    .ok_or_else(|| r.fail(key, format!("expected a weekday name, got {s:?}")))?;
            }
            "legal_holiday" => {
                self.legal_holiday = match value {
                    Value::Null => None,
                    _ => {
                        let s = r.text(key, value)?;
                        Some(weekday(&s).ok_or_else(|| {
                            r.fail(key, format!("expected a weekday name or null, got {s:?}"))
                        })?)
                    }
                };
            }
            "closing_day" => {
                self.closing_day = match value {
                    Value::Null => None,
                    _ => Some(
                        u32::try_from(r.minutes(key, value, 1, 28)?)
                            .map_err(|e| r.fail(key, e.to_string()))?,
                    ),
                };
            }
            "monthly_rounding" => {
                self.monthly_rounding = match r.text(key, value)?.as_str() {
                    "none" => MonthlyRounding::None,
                    "half_hour_to_hour" => MonthlyRounding::HalfHourToHour,
                    other => {
                        return Err(r.fail(
                            key,
                            format!("expected none or half_hour_to_hour, got {other:?}"),
                        ));
                    }
                };
            }
            other => {
                return Err(r.fail(
                    other,
                    format!("unknown rule; the rules are {}", KEYS.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

/// A wall-clock time as the rules file writes it: `HH:MM`, or `HH:MM:SS` when it has seconds.
fn clock_text(t: NaiveTime) -> String {
    if t.second() == 0 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M:%S").to_string()
    }
}

impl RuleVersion {
    /// The version as a rules-file object with every key of [`KEYS`] (the inverse of
    /// [`RuleVersion::from_json`]): what is stored, and what `rules show --json` prints.
    pub fn to_json(&self) -> Map<String, Value> {
        let number = |n: i64| Value::from(n);
        let day = |d: Option<Weekday>| d.map_or(Value::Null, |d| Value::from(weekday_name(d)));
        let mut object = Map::new();
        for key in KEYS {
            let value = match *key {
                "effective_from" => Value::from(self.effective_from.format("%Y-%m-%d").to_string()),
                "time_zone" => Value::from(self.time_zone.name()),
                "day_change" => Value::from(clock_text(self.day_change)),
                "max_shift_minutes" => number(self.max_shift_minutes),
                "double_tap_seconds" => number(self.double_tap_seconds),
                "night_start" => Value::from(clock_text(self.night_start)),
                "night_end" => Value::from(clock_text(self.night_end)),
                "daily_limit_minutes" => number(self.daily_limit_minutes),
                "weekly_limit_minutes" => number(self.weekly_limit_minutes),
                "week_start" => Value::from(weekday_name(self.week_start)),
                "legal_holiday" => day(self.legal_holiday),
                "scheduled_daily_minutes" => number(self.scheduled_daily_minutes),
                "closing_day" => self.closing_day.map_or(Value::Null, Value::from),
                "agreement_start_month" => Value::from(self.agreement_start_month),
                "agreement_monthly_limit_minutes" => number(self.agreement_monthly_limit_minutes),
                "agreement_yearly_limit_minutes" => number(self.agreement_yearly_limit_minutes),
                _ => Value::from(self.monthly_rounding.as_str()),
            };
            object.insert((*key).to_owned(), value);
        }
        object
    }
}

/// The rules whose value is a whole number in the rules file.
const NUMBER_KEYS: &[&str] = &[
    "max_shift_minutes",
    "double_tap_seconds",
    "daily_limit_minutes",
    "weekly_limit_minutes",
    "scheduled_daily_minutes",
    "agreement_start_month",
    "agreement_monthly_limit_minutes",
    "agreement_yearly_limit_minutes",
];

/// The rules that may be `null` (none).
const NULLABLE_KEYS: &[&str] = &["legal_holiday", "closing_day"];

/// One rule given as `key=value` text (an administrator's `punchctl rules set`), its value
/// typed as the rules file types it and checked as [`RuleVersion::from_json`] checks it.
///
/// Numbers are written plainly (`daily_limit_minutes=420`), times and names without quotes
/// (`night_start=23:00`, `week_start=monday`), and `null` or `none` clears `legal_holiday` or
/// `closing_day`. `effective_from` is not a rule: it is the date the version starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleChange {
    /// The rule (a key of [`KEYS`] other than `effective_from`).
    pub key: String,
    /// Its value as the rules file holds it.
    pub value: Value,
}

impl RuleChange {
    /// The change of `key` to the value written as `text`; the error names the key.
    pub fn new(key: &str, text: &str) -> Result<Self, RuleError> {
        let fail = |message: String| RuleError {
            version: 0,
            key: key.to_owned(),
            message,
        };
        if key == "effective_from" {
            return Err(fail(
                "is the date a version starts, not a rule; give it as the version's start".into(),
            ));
        }
        let text = text.trim();
        let value = if NULLABLE_KEYS.contains(&key) && matches!(text, "null" | "none") {
            Value::Null
        } else if NUMBER_KEYS.contains(&key) || key == "closing_day" {
            text.parse::<i64>()
                .map(Value::from)
                .map_err(|_| fail(format!("expected a whole number, got {text:?}")))?
        } else {
            Value::from(text)
        };
        // The same checks as a rules file's, on a version of defaults.
        let mut probe = RuleVersion::defaults(NaiveDate::MIN);
        probe.set(&KeyReader { version: 0 }, key, &value)?;
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }

    /// The value as an administrator writes it (`420`, `23:00`, `null`).
    pub fn value_text(&self) -> String {
        value_text(&self.value)
    }
}

/// A rules-file value as an administrator writes it: strings without quotes.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl FromStr for RuleChange {
    type Err = RuleError;

    /// `key=value`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('=') {
            Some((key, value)) => Self::new(key.trim(), value),
            None => Err(RuleError {
                version: 0,
                key: text.to_owned(),
                message: "expected key=value, e.g. daily_limit_minutes=420".into(),
            }),
        }
    }
}

/// A tenant's rules: its versions in `effective_from` order (never empty: no versions means
/// one version of defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rulebook {
    versions: Vec<RuleVersion>,
    /// When each version begins (Unix seconds), parallel to `versions`.
    starts: Vec<i64>,
}

impl Rulebook {
    /// The rulebook of `versions` (any order). Two versions with one `effective_from`, or
    /// versions that disagree on `closing_day` (which must be the same in every version), are
    /// refused, naming the later version.
    pub fn new(mut versions: Vec<(usize, RuleVersion)>) -> Result<Self, RuleError> {
        if versions.is_empty() {
            versions.push((0, RuleVersion::defaults(NaiveDate::MIN)));
        }
        versions.sort_by_key(|(index, v)| (v.effective_from, *index));
        for pair in versions.windows(2) {
            let ((_, a), (index, b)) = (&pair[0], &pair[1]);
            if a.effective_from == b.effective_from {
                return Err(RuleError {
                    version: *index,
                    key: "effective_from".into(),
                    message: format!("two versions start on {}", b.effective_from),
                });
            }
        }
        if let Some((index, v)) = versions
            .iter()
            .find(|(_, v)| v.closing_day != versions[0].1.closing_day)
        {
            return Err(RuleError {
                version: *index,
                key: "closing_day".into(),
                message: format!(
                    "must be the same in every version ({} here, {} in the first)",
                    show(v.closing_day),
                    show(versions[0].1.closing_day)
                ),
            });
        }
        let versions: Vec<RuleVersion> = versions.into_iter().map(|(_, v)| v).collect();
        let starts = versions.iter().map(RuleVersion::starts_at).collect();
        Ok(Self { versions, starts })
    }

    /// One version of defaults.
    pub fn defaults() -> Self {
        Self::new(Vec::new()).expect("defaults are valid")
    }

    /// The versions, in order.
    pub fn versions(&self) -> &[RuleVersion] {
        &self.versions
    }

    /// The index of the version in force at an instant (Unix seconds); before the first, the
    /// first.
    pub fn index_at(&self, at: i64) -> usize {
        self.starts.partition_point(|start| *start <= at).max(1) - 1
    }

    /// The version in force at an instant.
    pub fn at_instant(&self, at: i64) -> &RuleVersion {
        &self.versions[self.index_at(at)]
    }

    /// The version in force on a date; before the first, the first.
    pub fn on_date(&self, date: NaiveDate) -> &RuleVersion {
        &self.versions[self.index_on(date)]
    }

    /// The index of the version in force on a date; before the first, the first.
    pub fn index_on(&self, date: NaiveDate) -> usize {
        self.versions
            .partition_point(|v| v.effective_from <= date)
            .max(1)
            - 1
    }

    /// The payroll closing day (the same in every version).
    pub fn closing_day(&self) -> Option<u32> {
        self.versions[0].closing_day
    }
}

fn show(day: Option<u32>) -> String {
    day.map_or_else(|| "null".into(), |d| d.to_string())
}

impl fmt::Display for MonthlyRounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(json: &str) -> Result<RuleVersion, RuleError> {
        let value: Value = serde_json::from_str(json).expect("test JSON");
        RuleVersion::from_json(0, value.as_object().expect("object"))
    }

    #[test]
    fn missing_keys_take_the_defaults_and_bad_keys_are_named() {
        let v = version(r#"{"effective_from": "2026-01-01"}"#).expect("valid");
        assert_eq!(v, RuleVersion::defaults(v.effective_from));
        for (json, key) in [
            (
                r#"{"effective_from": "2026-01-01", "nite_start": "22:00"}"#,
                "nite_start",
            ),
            (r#"{"effective_from": "2026-1-1x"}"#, "effective_from"),
            (
                r#"{"effective_from": "2026-01-01", "time_zone": "Mars/Base"}"#,
                "time_zone",
            ),
            (
                r#"{"effective_from": "2026-01-01", "night_end": "22:00"}"#,
                "night_end",
            ),
            (
                r#"{"effective_from": "2026-01-01", "closing_day": 31}"#,
                "closing_day",
            ),
            (
                r#"{"effective_from": "2026-01-01", "week_start": "sun"}"#,
                "week_start",
            ),
            (
                r#"{"effective_from": "2026-01-01", "monthly_rounding": "up"}"#,
                "monthly_rounding",
            ),
            (
                r#"{"effective_from": "2026-01-01", "daily_limit_minutes": "480"}"#,
                "daily_limit_minutes",
            ),
            (r#"{"time_zone": "UTC"}"#, "effective_from"),
        ] {
            assert_eq!(version(json).expect_err(json).key, key, "{json}");
        }
    }

    #[test]
    fn versions_hold_from_local_midnight_and_dates_pick_their_version() {
        let a = version(r#"{"effective_from": "2026-01-01"}"#).expect("valid");
        let b = version(r#"{"effective_from": "2026-06-01", "daily_limit_minutes": 420}"#)
            .expect("valid");
        let book = Rulebook::new(vec![(1, b.clone()), (0, a.clone())]).expect("valid");
        let june_first_tokyo = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00+09:00")
            .expect("rfc3339")
            .timestamp();
        assert_eq!(book.at_instant(june_first_tokyo - 1), &a);
        assert_eq!(book.at_instant(june_first_tokyo), &b);
        assert_eq!(book.at_instant(0), &a, "before the first: the first");
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(book.on_date(d("2026-05-31")), &a);
        assert_eq!(book.on_date(d("2026-06-01")), &b);
        assert_eq!(book.on_date(d("2020-01-01")), &a);
        let twice = Rulebook::new(vec![(0, a.clone()), (1, a.clone())]).expect_err("twice");
        assert_eq!((twice.version, twice.key.as_str()), (1, "effective_from"));
    }

    #[test]
    fn half_hour_to_hour_rounds_the_remainder() {
        let r = MonthlyRounding::HalfHourToHour;
        assert_eq!(r.apply(0), 0);
        assert_eq!(r.apply(89), 60);
        assert_eq!(r.apply(90), 120);
        assert_eq!(r.apply(629), 600);
        assert_eq!(MonthlyRounding::None.apply(629), 629);
    }

    #[test]
    fn to_json_gives_every_key_and_reads_back_the_same_version() {
        let v = version(
            r#"{"effective_from": "2026-04-01", "time_zone": "Europe/Berlin", "day_change": "04:30:15",
                "legal_holiday": "sunday", "closing_day": 20, "week_start": "monday",
                "monthly_rounding": "half_hour_to_hour", "night_start": "23:00", "night_end": "06:00"}"#,
        )
        .expect("valid");
        let json = v.to_json();
        assert_eq!(json.keys().count(), KEYS.len());
        assert_eq!(json["day_change"], "04:30:15");
        assert_eq!(json["night_start"], "23:00");
        assert_eq!(json["closing_day"], 20);
        assert_eq!(RuleVersion::from_json(0, &json).expect("reads back"), v);
        let defaults = RuleVersion::defaults(v.effective_from);
        let json = defaults.to_json();
        assert_eq!(json["legal_holiday"], Value::Null);
        assert_eq!(json["closing_day"], Value::Null);
        assert_eq!(json["time_zone"], "Asia/Tokyo");
        assert_eq!(
            RuleVersion::from_json(0, &json).expect("reads back"),
            defaults
        );
    }

    #[test]
    fn key_value_text_takes_the_rules_file_types_and_names_the_key_at_fault() {
        let change = |s: &str| s.parse::<RuleChange>();
        assert_eq!(
            change("daily_limit_minutes=420").expect("valid").value,
            Value::from(420)
        );
        assert_eq!(change("night_start=23:00").expect("valid").value, "23:00");
        assert_eq!(
            change("legal_holiday=none").expect("valid").value,
            Value::Null
        );
        assert_eq!(
            change("closing_day=null").expect("valid").value,
            Value::Null
        );
        assert_eq!(
            change("closing_day=20").expect("valid").value,
            Value::from(20)
        );
        assert_eq!(change("time_zone=UTC").expect("valid").value_text(), "UTC");
        assert_eq!(change("closing_day=20").expect("valid").value_text(), "20");
        for (text, key) in [
            ("daily_limit_minutes=abc", "daily_limit_minutes"),
            ("daily_limit_minutes=5000", "daily_limit_minutes"),
            ("nite_start=22:00", "nite_start"),
            ("night_start=25:00", "night_start"),
            ("week_start=sun", "week_start"),
            ("time_zone=Mars/Base", "time_zone"),
            ("closing_day=29", "closing_day"),
            ("max_shift_minutes=null", "max_shift_minutes"),
            ("monthly_rounding=up", "monthly_rounding"),
            ("effective_from=2026-01-01", "effective_from"),
            ("daily_limit_minutes", "daily_limit_minutes"),
        ] {
            assert_eq!(change(text).expect_err(text).key, key, "{text}");
        }
    }

    #[test]
    fn index_on_agrees_with_on_date() {
        let a = version(r#"{"effective_from": "2026-01-01"}"#).expect("valid");
        let b = version(r#"{"effective_from": "2026-06-01", "daily_limit_minutes": 420}"#)
            .expect("valid");
        let book = Rulebook::new(vec![(0, a), (1, b)]).expect("valid");
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        for (date, index) in [("2020-01-01", 0), ("2026-05-31", 0), ("2026-06-01", 1)] {
            assert_eq!(book.index_on(d(date)), index);
            assert_eq!(book.on_date(d(date)), &book.versions()[index]);
        }
    }

    fn any_version() -> impl proptest::strategy::Strategy<Value = RuleVersion> {
        use proptest::prelude::*;
        let zones = prop::sample::select(vec![
            chrono_tz::Asia::Tokyo,
            chrono_tz::Europe::Berlin,
            chrono_tz::America::New_York,
            chrono_tz::UTC,
        ]);
        let time = (0u32..24, 0u32..60, prop::sample::select(vec![0u32, 0, 30]))
            .prop_map(|(h, m, s)| NaiveTime::from_hms_opt(h, m, s).expect("valid"));
        let day = (0u8..7).prop_map(|d| Weekday::try_from(d).expect("weekday"));
        (
            (
                0i32..20_000,
                zones,
                time.clone(),
                1i64..=10_080,
                0i64..=3_600,
            ),
            (time.clone(), time, 0i64..=1_440, 0i64..=10_080, day.clone()),
            (
                proptest::option::of(day),
                0i64..=1_440,
                proptest::option::of(1u32..=28),
            ),
            (1u32..=12, 0i64..=44_640, 0i64..=527_040, any::<bool>()),
        )
            .prop_filter("night_start and night_end differ", |(_, (a, b, ..), ..)| {
                a != b
            })
            .prop_map(|(a, b, c, d)| RuleVersion {
                effective_from: NaiveDate::from_num_days_from_ce_opt(730_000 + a.0).expect("date"),
                time_zone: a.1,
                day_change: a.2,
                max_shift_minutes: a.3,
                double_tap_seconds: a.4,
                night_start: b.0,
                night_end: b.1,
                daily_limit_minutes: b.2,
                weekly_limit_minutes: b.3,
                week_start: b.4,
                legal_holiday: c.0,
                scheduled_daily_minutes: c.1,
                closing_day: c.2,
                agreement_start_month: d.0,
                agreement_monthly_limit_minutes: d.1,
                agreement_yearly_limit_minutes: d.2,
                monthly_rounding: if d.3 {
                    MonthlyRounding::HalfHourToHour
                } else {
                    MonthlyRounding::None
                },
            })
    }

    proptest::proptest! {
        /// What is stored (and what `rules show` prints) reads back as the same version, and
        /// every value as shown can be given back as `key=value`.
        #[test]
        fn every_version_survives_json_and_key_value_text(v in any_version()) {
            let json = v.to_json();
            proptest::prop_assert_eq!(RuleVersion::from_json(0, &json).expect("reads back"), v);
            for key in KEYS.iter().filter(|k| **k != "effective_from") {
                let change = RuleChange::new(key, &value_text(&json[*key])).expect("valid text");
                proptest::prop_assert_eq!(&change.value, &json[*key], "{}", key);
            }
        }
    }
}
