//! The key of an attendance day (tenant, employee, work date), alone and as the column arrays
//! the statements take.

use std::collections::BTreeSet;

use chrono::NaiveDate;

/// An employee's work date: the key of `attendance_days`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct DayKey {
    pub(super) tenant: String,
    pub(super) employee: String,
    pub(super) date: NaiveDate,
}

/// The column arrays of the touched days, as query parameters.
pub(super) struct DayKeys<'a> {
    pub(super) tenants: Vec<&'a str>,
    pub(super) employees: Vec<&'a str>,
    pub(super) dates: Vec<NaiveDate>,
}

impl<'a> DayKeys<'a> {
    pub(super) fn of(touched: &'a BTreeSet<DayKey>) -> Self {
        Self {
            tenants: touched.iter().map(|k| k.tenant.as_str()).collect(),
            employees: touched.iter().map(|k| k.employee.as_str()).collect(),
            dates: touched.iter().map(|k| k.date).collect(),
        }
    }
}
