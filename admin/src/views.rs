//! What the operations return, as the admin API serialises them: snake_case fields, instants
//! in RFC 3339 UTC (with the tenant's local rendering beside them where a person reads it),
//! durations in whole seconds.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// One employee's work date as stored, with the inputs that made it (§4.6 audit view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayView {
    /// The tenant.
    pub tenant_id: String,
    /// The employee.
    pub employee_id: String,
    /// The work date shown.
    pub work_date: NaiveDate,
    /// The tenant's IANA time zone (the `*_local` fields are in it).
    pub time_zone: String,
    /// The stored day record, or `None` when the consumer has none for the date.
    pub day: Option<DayFigures>,
    /// The employee's raw punches whose work date is the date or whose instant lies within the
    /// day ±1 day, in time order.
    pub punches: Vec<PunchView>,
    /// The employee's corrections in that range: adds there, voids of those punches or adds.
    pub corrections: Vec<CorrectionView>,
}

/// An `attendance_days` row (CONTRACT §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    /// Worked time of the good spans.
    pub worked_seconds: i64,
    /// Breaks of the good spans.
    pub break_seconds: i64,
    /// Worked time in the night window.
    pub night_seconds: i64,
    /// Worked time on the legal holiday.
    pub holiday_seconds: i64,
    /// Daily overtime.
    pub overtime_daily_seconds: i64,
    /// Weekly overtime attributed to this day.
    pub overtime_weekly_seconds: i64,
    /// Overtime within the statutory limit (法定内残業).
    pub within_statutory_seconds: i64,
    /// floor(worked / 60), for display.
    pub worked_minutes: i64,
    /// floor(break / 60).
    pub break_minutes: i64,
    /// floor(night / 60).
    pub night_minutes: i64,
    /// floor(overtime / 60).
    pub overtime_minutes: i64,
    /// Earliest kept clock-in.
    pub first_in: Option<DateTime<Utc>>,
    /// Latest kept clock-out.
    pub last_out: Option<DateTime<Utc>>,
    /// Kept punches assigned to the date.
    pub punch_count: i64,
    /// Ignored double taps.
    pub double_taps: i64,
    /// Anomaly codes, sorted.
    pub anomalies: Vec<String>,
    /// Whether a correction touched the day.
    pub corrected: bool,
    /// The corrections that touched it, sorted.
    pub correction_ids: Vec<String>,
    /// The tenant rules version used (0: v1 defaults).
    pub rules_version: i64,
    /// Grows each time the day changes.
    pub revision: i64,
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
}

/// A raw punch as stored, with its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PunchView {
    /// The punch id (UUID).
    pub punch_id: String,
    /// `clock_in`, `clock_out`, `break_start`, `break_end`.
    pub kind: String,
    /// The instant, UTC.
    pub at: DateTime<Utc>,
    /// The instant on the tenant's wall clock, RFC 3339 with offset.
    pub at_local: String,
    /// The work date the punch belongs to.
    pub work_date: NaiveDate,
    /// The recorder.
    pub device_id: String,
    /// The recorder's sequence number.
    pub seq: i64,
    /// `accepted` (counts) or `rejected` (stored, then withdrawn by a later verdict).
    pub verdict: String,
    /// Why it was rejected, when known.
    pub reason: Option<String>,
    /// A stored punch whose latest verdict is a rejection: it does not count.
    pub withdrawn: bool,
    /// A stored correction voids it.
    pub voided: bool,
}

/// A stored correction (what the attendance consumer read from the corrections topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorrectionView {
    /// The correction id (an add's punch id).
    pub correction_id: String,
    /// `add` or `void`.
    pub action: String,
    /// The added punch's kind.
    pub kind: Option<String>,
    /// The added punch's instant, UTC.
    pub at: Option<DateTime<Utc>>,
    /// The added punch's instant on the tenant's wall clock.
    pub at_local: Option<String>,
    /// What a void removes.
    pub target_id: Option<String>,
    /// Who made it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// A later stored correction voids this add.
    pub voided: bool,
}

/// One day of the anomaly queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnomalyDay {
    /// The work date.
    pub work_date: NaiveDate,
    /// The employee.
    pub employee_id: String,
    /// The codes (`missing_clock_out`, `missing_clock_in`, `unclosed_break`,
    /// `break_end_without_start`, `break_short`).
    pub anomalies: Vec<String>,
    /// Whether a correction already touched the day.
    pub corrected: bool,
    /// The employee's stored raw punches from the previous work date through the next, in
    /// time order.
    pub punches: Vec<PunchView>,
}

/// What [`Admin::close_month`](crate::Admin::close_month) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closed {
    /// The tenant.
    pub tenant_id: String,
    /// The payroll month, `YYYY-MM`.
    pub month: String,
    /// The `month_closings` row recorded.
    pub closing_id: i64,
    /// Who closed it.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Employees whose month was frozen into `paid_months`.
    pub employees_frozen: u64,
}

/// What [`Admin::reopen_month`](crate::Admin::reopen_month) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reopened {
    /// The tenant.
    pub tenant_id: String,
    /// The payroll month, `YYYY-MM`.
    pub month: String,
    /// The `month_closings` row recorded.
    pub closing_id: i64,
    /// Who reopened it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Paid months dropped (the employees frozen at the closing).
    pub employees_unfrozen: u64,
    /// Adjustments marked superseded (the month record is republished whole).
    pub adjustments_superseded: u64,
}

/// One row of a tenant's closing history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosingEvent {
    /// The `month_closings` id.
    pub closing_id: i64,
    /// The payroll month.
    pub month: String,
    /// `close` or `reopen`.
    pub action: String,
    /// Who.
    pub actor: String,
    /// Why (empty for a close).
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}
