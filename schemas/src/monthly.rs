//! [`MonthlyAttendance`]: the value of `payroll.monthly.<group>`, one employee's payroll figures
//! for one payroll month.

use std::sync::LazyLock;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{
    catalog,
    codec::{AvroRecord, ParsedSchema},
    ids::{EmployeeId, TenantId},
    records::from_epoch_days,
};

/// One employee's figures for one payroll month; mirrors `avro/MonthlyAttendance.avsc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthlyAttendance {
    /// Tenant of the employee.
    pub tenant_id: TenantId,
    /// The employee.
    pub employee_id: EmployeeId,
    /// Payroll month, `YYYY-MM` (the month its closing period ends in).
    pub month: String,
    /// First work date of the month, days since 1970-01-01.
    pub first_day: i32,
    /// Last work date of the month, days since 1970-01-01.
    pub last_day: i32,
    /// Work dates with worked seconds.
    pub days_worked: i32,
    /// Work dates with an anomaly.
    pub anomaly_days: i32,
    /// Sum of worked seconds.
    pub worked_seconds: i64,
    /// Sum of break seconds.
    pub break_seconds: i64,
    /// Sum of night seconds.
    pub night_seconds: i64,
    /// Sum of legal-holiday seconds.
    pub holiday_seconds: i64,
    /// Sum of within-statutory overtime seconds.
    pub within_statutory_seconds: i64,
    /// Daily plus weekly overtime seconds.
    pub overtime_seconds: i64,
    /// The running overtime beyond 60 h.
    pub overtime_over60_seconds: i64,
    /// Payable minutes worked.
    pub worked_minutes: i64,
    /// Payable overtime minutes (rounded by the month's rule).
    pub overtime_minutes: i64,
    /// Payable over-60 h minutes.
    pub overtime_over60_minutes: i64,
    /// Payable night minutes.
    pub night_minutes: i64,
    /// Payable legal-holiday minutes.
    pub holiday_minutes: i64,
    /// The rules version in force on the month's last day.
    pub rules_version: i64,
    /// Bumped on every change.
    pub revision: i64,
    /// When this revision was computed, milliseconds since the Unix epoch.
    pub computed_at: i64,
    /// The month's figures, or an adjustment of a closed month (figures are differences).
    pub record: MonthlyRecordKind,
    /// An adjustment's number among its month's adjustments, from 1.
    pub adjustment_seq: Option<i64>,
    /// The payroll month whose export carries an adjustment.
    pub export_month: Option<String>,
    /// What changed a closed month (`punch:<id>`, `correction:<id>`, `rules:<version>`,
    /// `rebuild`); empty for a month record.
    pub causes: Vec<String>,
}

symbols! {
    /// What a `payroll.monthly` record is (Avro enum `dakoku.MonthlyRecordKind`).
    MonthlyRecordKind {
        /// The month's figures.
        Month = "month",
        /// A difference to a closed month's figures as paid.
        Adjustment = "adjustment",
    }
}

impl MonthlyAttendance {
    /// Its key on `payroll.monthly.<group>`: the month's own key for a month record, the
    /// adjustment's own key (one per adjustment, so compaction keeps them all) otherwise.
    pub fn topic_key(&self) -> String {
        match (self.record, self.adjustment_seq) {
            (MonthlyRecordKind::Adjustment, Some(seq)) => {
                crate::adjustment_key(&self.tenant_id, &self.employee_id, &self.month, seq)
            }
            _ => crate::monthly_key(&self.tenant_id, &self.employee_id, &self.month),
        }
    }

    /// `first_day` as a date.
    pub fn first_day(&self) -> Option<NaiveDate> {
        from_epoch_days(self.first_day)
    }

    /// `last_day` as a date.
    pub fn last_day(&self) -> Option<NaiveDate> {
        from_epoch_days(self.last_day)
    }
}

impl AvroRecord for MonthlyAttendance {
    fn schema() -> &'static ParsedSchema {
        static SCHEMA: LazyLock<ParsedSchema> =
            LazyLock::new(|| ParsedSchema::embedded(catalog::MONTHLY_ATTENDANCE));
        &SCHEMA
    }
}
