//! Typed records, one per topic value. Field names and order mirror the `.avsc` files exactly:
//! the encoder writes fields in declaration order and enums by variant index.
//!
//! Timestamps stay `i64` milliseconds (and `work_date` `i32` days) as in Avro, with chrono
//! helpers beside them: any `i64` decodes, while not every `i64` is a `chrono` date.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    catalog,
    codec::{AvroRecord, ParsedSchema},
    ids::{CardId, DeviceId, EmployeeId, GroupId, PunchId, TenantId},
};

/// Milliseconds since the Unix epoch, as stored in `timestamp-millis` fields.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The instant of a `timestamp-millis` value; `None` beyond chrono's range (about ±262,000
/// years).
pub fn from_millis(millis: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
}

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Days since 1970-01-01, as stored in `date` fields.
pub fn to_epoch_days(date: NaiveDate) -> i32 {
    // Cannot overflow: chrono dates span about ±262,000 years.
    date.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// The date of a `date` value; `None` beyond chrono's range.
pub fn from_epoch_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_DAYS_FROM_CE)?)
}

macro_rules! avro_record {
    ($record:ty, $file:expr) => {
        impl AvroRecord for $record {
            fn schema() -> &'static ParsedSchema {
                static SCHEMA: ::std::sync::LazyLock<ParsedSchema> =
                    ::std::sync::LazyLock::new(|| ParsedSchema::embedded($file));
                &SCHEMA
            }
        }
    };
}

macro_rules! symbols {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $symbol:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $symbol)] $variant,)+
        }

        impl $name {
            /// Every value, in the schema's symbol order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The Avro symbol, also used in JSON, logs and metrics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $symbol,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

symbols! {
    /// What the employee did at the recorder (Avro enum `dakoku.PunchKind`).
    PunchKind {
        /// Start of work.
        ClockIn = "clock_in",
        /// End of work.
        ClockOut = "clock_out",
        /// Start of a break.
        BreakStart = "break_start",
        /// End of a break.
        BreakEnd = "break_end",
    }
}

symbols! {
    /// Outcome of the licence check (Avro enum `dakoku.Verdict`).
    Verdict {
        /// Counts towards attendance.
        Accepted = "accepted",
        /// Kept, but does not count until a recheck accepts it.
        Rejected = "rejected",
    }
}

symbols! {
    /// Why a punch was rejected (Avro enum `dakoku.RejectReason`).
    RejectReason {
        /// No employee of the tenant has this card.
        UnknownCard = "unknown_card",
        /// The employee was not active at the punch time.
        EmployeeInactive = "employee_inactive",
        /// The employee holds no licence seat.
        NotLicensed = "not_licensed",
        /// The tenant's licence was not valid on the work date.
        LicenceExpired = "licence_expired",
        /// The tenant is not in the master data.
        UnknownTenant = "unknown_tenant",
    }
}

/// A punch as accepted from a recorder: the value of `punches.raw.<group>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawPunch {
    /// `PunchId::derive(tenant_id, device_id, seq)`.
    pub punch_id: PunchId,
    /// Tenant owning the recorder.
    pub tenant_id: TenantId,
    /// Tenant group the punch was routed to.
    pub group: GroupId,
    /// Recorder that sent the punch.
    pub device_id: DeviceId,
    /// The recorder's sequence number, at most [`RawPunch::MAX_SEQ`].
    pub seq: u64,
    /// Card presented.
    pub card_id: CardId,
    /// What was punched.
    pub kind: PunchKind,
    /// The punch instant, milliseconds since the Unix epoch (`timestamp-millis`).
    pub at: i64,
    /// The recorder's UTC offset at `at`, minutes east of UTC.
    pub at_offset_minutes: i32,
    /// When the acceptor received it, milliseconds since the Unix epoch.
    pub received_at: i64,
    /// Acceptor instance that accepted it.
    pub acceptor_id: String,
}

impl RawPunch {
    /// Largest `seq` an Avro `long` can carry; the acceptor rejects larger ones.
    pub const MAX_SEQ: u64 = i64::MAX as u64;

    /// Splits a recorder's RFC 3339 time into the `(at, at_offset_minutes)` fields.
    pub fn at_fields(at: DateTime<FixedOffset>) -> (i64, i32) {
        (at.timestamp_millis(), at.offset().local_minus_utc() / 60)
    }

    /// `at` as a UTC instant.
    pub fn at_utc(&self) -> Option<DateTime<Utc>> {
        from_millis(self.at)
    }

    /// `at` in the recorder's own offset, as the recorder displayed it.
    pub fn at_recorder_time(&self) -> Option<DateTime<FixedOffset>> {
        let offset = FixedOffset::east_opt(self.at_offset_minutes.checked_mul(60)?)?;
        Some(self.at_utc()?.with_timezone(&offset))
    }

    /// `received_at` as a UTC instant.
    pub fn received_at_utc(&self) -> Option<DateTime<Utc>> {
        from_millis(self.received_at)
    }
}

avro_record!(RawPunch, catalog::RAW_PUNCH);

/// Input that could not be accepted or processed: the value of `punches.quarantine`.
///
/// Identifiers here are plain strings, not validated newtypes: quarantine must accept exactly
/// what was seen, including the invalid ids that put it here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedInput {
    /// When it was quarantined, milliseconds since the Unix epoch.
    pub received_at: i64,
    /// Quarantining component, e.g. `"ingest-api"`.
    pub source: String,
    /// Stable machine-readable code, e.g. `"invalid_json"`.
    pub error_code: String,
    /// Human-readable error.
    pub error: String,
    /// Tenant, if known.
    pub tenant_id: Option<String>,
    /// Device, if known.
    pub device_id: Option<String>,
    /// Topic of a poison record.
    pub origin_topic: Option<String>,
    /// Partition of a poison record.
    pub origin_partition: Option<i32>,
    /// Offset of a poison record.
    pub origin_offset: Option<i64>,
    /// Content type of the payload, if known.
    pub content_type: Option<String>,
    /// The raw input, possibly truncated.
    #[serde(with = "apache_avro::serde_avro_bytes")]
    pub payload: Vec<u8>,
    /// Whether `payload` was truncated.
    pub payload_truncated: bool,
    /// Size of the input before truncation.
    pub original_size: i64,
}

impl QuarantinedInput {
    /// A quarantine record holding at most `max_payload` bytes of `input`, with the optional
    /// fields empty for the caller to fill.
    pub fn new(
        received_at: i64,
        source: &str,
        error_code: &str,
        error: String,
        input: &[u8],
        max_payload: usize,
    ) -> Self {
        let kept = input.len().min(max_payload);
        Self {
            received_at,
            source: source.to_owned(),
            error_code: error_code.to_owned(),
            error,
            tenant_id: None,
            device_id: None,
            origin_topic: None,
            origin_partition: None,
            origin_offset: None,
            content_type: None,
            payload: input[..kept].to_vec(),
            payload_truncated: kept < input.len(),
            original_size: i64::try_from(input.len()).unwrap_or(i64::MAX),
        }
    }

    /// `received_at` as a UTC instant.
    pub fn received_at_utc(&self) -> Option<DateTime<Utc>> {
        from_millis(self.received_at)
    }
}

avro_record!(QuarantinedInput, catalog::QUARANTINED_INPUT);

/// A raw punch with its licence verdict: the value of `punches.checked.<group>`. The first
/// eleven fields are the [`RawPunch`] unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedPunch {
    /// See [`RawPunch::punch_id`].
    pub punch_id: PunchId,
    /// See [`RawPunch::tenant_id`].
    pub tenant_id: TenantId,
    /// See [`RawPunch::group`].
    pub group: GroupId,
    /// See [`RawPunch::device_id`].
    pub device_id: DeviceId,
    /// See [`RawPunch::seq`].
    pub seq: u64,
    /// See [`RawPunch::card_id`].
    pub card_id: CardId,
    /// See [`RawPunch::kind`].
    pub kind: PunchKind,
    /// See [`RawPunch::at`].
    pub at: i64,
    /// See [`RawPunch::at_offset_minutes`].
    pub at_offset_minutes: i32,
    /// See [`RawPunch::received_at`].
    pub received_at: i64,
    /// See [`RawPunch::acceptor_id`].
    pub acceptor_id: String,
    /// The licence verdict.
    pub verdict: Verdict,
    /// Why it was rejected: `None` exactly when `verdict` is `Accepted`.
    pub reason: Option<RejectReason>,
    /// The card's employee, if known.
    pub employee_id: Option<EmployeeId>,
    /// Master-data snapshot version the verdict used.
    pub master_data_version: i64,
    /// When the verdict was computed, milliseconds since the Unix epoch.
    pub checked_at: i64,
}

/// The order of the verdicts of one punch: the greatest is the one that counts.
///
/// licence-check may judge one `punch_id` several times (a resend is checked again; `punchctl
/// recheck` adds verdicts after master data is fixed), and those verdicts can sit on different
/// partitions (an unknown card is keyed by card, a known one by employee), so log order means
/// nothing. Every reader that decides a punch's standing (the attendance projection, recheck,
/// audit) uses this order, so they agree: master-data version, then `checked_at`, then a
/// rejection after an acceptance (never pay on a tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VerdictKey {
    /// `master_data_version` the verdict used: newer master data judges later.
    pub master_data_version: i64,
    /// When licence-check computed it, milliseconds since the Unix epoch.
    pub checked_at: i64,
    /// 0 accepted, 1 rejected.
    pub rank: u8,
}

impl VerdictKey {
    /// The key of `verdict`.
    pub fn of(verdict: &CheckedPunch) -> Self {
        Self {
            master_data_version: verdict.master_data_version,
            checked_at: verdict.checked_at,
            rank: match verdict.verdict {
                Verdict::Accepted => 0,
                Verdict::Rejected => 1,
            },
        }
    }
}

impl CheckedPunch {
    /// `raw` with its verdict.
    pub fn from_raw(
        raw: RawPunch,
        verdict: Verdict,
        reason: Option<RejectReason>,
        employee_id: Option<EmployeeId>,
        master_data_version: i64,
        checked_at: i64,
    ) -> Self {
        let RawPunch {
            punch_id,
            tenant_id,
            group,
            device_id,
            seq,
            card_id,
            kind,
            at,
            at_offset_minutes,
            received_at,
            acceptor_id,
        } = raw;
        Self {
            punch_id,
            tenant_id,
            group,
            device_id,
            seq,
            card_id,
            kind,
            at,
            at_offset_minutes,
            received_at,
            acceptor_id,
            verdict,
            reason,
            employee_id,
            master_data_version,
            checked_at,
        }
    }

    /// The raw punch this verdict is about, e.g. to check it again.
    pub fn raw(&self) -> RawPunch {
        RawPunch {
            punch_id: self.punch_id,
            tenant_id: self.tenant_id.clone(),
            group: self.group.clone(),
            device_id: self.device_id.clone(),
            seq: self.seq,
            card_id: self.card_id.clone(),
            kind: self.kind,
            at: self.at,
            at_offset_minutes: self.at_offset_minutes,
            received_at: self.received_at,
            acceptor_id: self.acceptor_id.clone(),
        }
    }

    /// `at` as a UTC instant.
    pub fn at_utc(&self) -> Option<DateTime<Utc>> {
        from_millis(self.at)
    }

    /// `checked_at` as a UTC instant.
    pub fn checked_at_utc(&self) -> Option<DateTime<Utc>> {
        from_millis(self.checked_at)
    }
}

avro_record!(CheckedPunch, catalog::CHECKED_PUNCH);

/// Whole-day attendance of one employee: the value of `attendance.daily.<group>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceDay {
    /// Tenant of the employee.
    pub tenant_id: TenantId,
    /// The employee.
    pub employee_id: EmployeeId,
    /// Work date, days since 1970-01-01 (`date`); see [`AttendanceDay::work_date`].
    pub work_date: i32,
    /// Earliest kept clock-in, milliseconds since the Unix epoch.
    pub first_in: Option<i64>,
    /// Latest kept clock-out, milliseconds since the Unix epoch.
    pub last_out: Option<i64>,
    /// Whole minutes worked.
    pub worked_minutes: i32,
    /// Whole minutes of breaks.
    pub break_minutes: i32,
    /// Whole minutes worked between 22:00 and 05:00 local time.
    pub night_minutes: i32,
    /// `max(0, worked_minutes - 480)`.
    pub overtime_minutes: i32,
    /// Kept punches.
    pub punch_count: i32,
    /// Distinct anomaly codes, sorted.
    pub anomalies: Vec<String>,
    /// Bumped on every change.
    pub revision: i64,
    /// When this revision was computed, milliseconds since the Unix epoch.
    pub computed_at: i64,
    /// Exact seconds worked (rules v2); `None` in records written before v2.
    pub worked_seconds: Option<i64>,
    /// Exact seconds of breaks within good spans.
    pub break_seconds: Option<i64>,
    /// Worked seconds inside the night window.
    pub night_seconds: Option<i64>,
    /// Worked seconds on the legal holiday.
    pub holiday_seconds: Option<i64>,
    /// Daily statutory overtime in seconds.
    pub overtime_daily_seconds: Option<i64>,
    /// Weekly statutory overtime in seconds, on the day it arises.
    pub overtime_weekly_seconds: Option<i64>,
    /// Overtime within the statutory limit (法定内残業) in seconds.
    pub within_statutory_seconds: Option<i64>,
    /// Whether a correction touched the day.
    pub corrected: bool,
    /// The tenant's rules version that computed the figures.
    pub rules_version: Option<i64>,
    /// The corrections that touched the day, sorted.
    pub correction_ids: Vec<String>,
}

impl AttendanceDay {
    /// `work_date` as a date.
    pub fn work_date(&self) -> Option<NaiveDate> {
        from_epoch_days(self.work_date)
    }

    /// `first_in` as a UTC instant.
    pub fn first_in_utc(&self) -> Option<DateTime<Utc>> {
        self.first_in.and_then(from_millis)
    }

    /// `last_out` as a UTC instant.
    pub fn last_out_utc(&self) -> Option<DateTime<Utc>> {
        self.last_out.and_then(from_millis)
    }

    /// `computed_at` as a UTC instant.
    pub fn computed_at_utc(&self) -> Option<DateTime<Utc>> {
        from_millis(self.computed_at)
    }
}

avro_record!(AttendanceDay, catalog::ATTENDANCE_DAY);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrono_helpers_invert_each_other() {
        let at = DateTime::parse_from_rfc3339("2020-12-04T08:44:59.123+09:00").expect("valid");
        let (millis, offset) = RawPunch::at_fields(at);
        assert_eq!(offset, 540);
        assert_eq!(from_millis(millis), Some(at.with_timezone(&Utc)));
        assert_eq!(to_millis(at.with_timezone(&Utc)), millis);
        let day = NaiveDate::from_ymd_opt(2020, 12, 4).expect("valid");
        assert_eq!(to_epoch_days(day), 18_600);
        assert_eq!(from_epoch_days(18_600), Some(day));
        assert_eq!(from_epoch_days(-1), NaiveDate::from_ymd_opt(1969, 12, 31));
        assert_eq!(from_millis(i64::MAX), None);
        assert_eq!(from_epoch_days(i32::MAX), None);
    }

    #[test]
    fn quarantine_truncates_and_remembers_the_size() {
        let q = QuarantinedInput::new(0, "ingest-api", "invalid_json", "eof".into(), b"{\"dev", 3);
        assert_eq!(q.payload, b"{\"d");
        assert!(q.payload_truncated);
        assert_eq!(q.original_size, 5);
        let q = QuarantinedInput::new(0, "ingest-api", "invalid_json", "eof".into(), b"{}", 3);
        assert!(!q.payload_truncated);
    }

    #[test]
    fn symbol_lists_are_complete() {
        assert_eq!(PunchKind::ALL.len(), 4);
        assert_eq!(Verdict::ALL.len(), 2);
        assert_eq!(RejectReason::ALL.len(), 5);
        assert_eq!(RejectReason::LicenceExpired.to_string(), "licence_expired");
    }
}
