//! The keys a batch works with: an employee (tenant, employee) and a touched punch (its
//! employee and instant), alone and as the column arrays the statements take.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

/// An employee of a tenant: whose punches pair together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct EmployeeKey {
    pub(crate) tenant: String,
    pub(crate) employee: String,
}

/// A punch whose standing a batch changed (stored, withdrawn, reinstated): its employee,
/// instant (milliseconds) and whether it stopped counting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Touch {
    pub(super) employee: EmployeeKey,
    pub(super) at: i64,
    pub(super) removed: bool,
}

/// Per employee, an instant range (UTC) as query parameters: `tenants, employees, from, to`.
#[derive(Debug, Default)]
pub(super) struct Ranges<'a> {
    pub(super) tenants: Vec<&'a str>,
    pub(super) employees: Vec<&'a str>,
    pub(super) from: Vec<DateTime<Utc>>,
    pub(super) to: Vec<DateTime<Utc>>,
}

impl<'a> Ranges<'a> {
    pub(super) fn of(ranges: &'a BTreeMap<EmployeeKey, (i64, i64)>) -> Self {
        let mut out = Ranges::default();
        for (key, (from, to)) in ranges {
            out.tenants.push(&key.tenant);
            out.employees.push(&key.employee);
            out.from.push(seconds_to_time(*from));
            out.to.push(seconds_to_time(*to));
        }
        out
    }
}

/// Per employee, a work-date range as query parameters: `tenants, employees, from, to`.
#[derive(Debug, Default)]
pub(super) struct DateRanges<'a> {
    pub(super) tenants: Vec<&'a str>,
    pub(super) employees: Vec<&'a str>,
    pub(super) from: Vec<NaiveDate>,
    pub(super) to: Vec<NaiveDate>,
}

impl<'a> DateRanges<'a> {
    pub(super) fn of(ranges: &'a BTreeMap<EmployeeKey, (NaiveDate, NaiveDate)>) -> Self {
        let mut out = DateRanges::default();
        for (key, (from, to)) in ranges {
            out.tenants.push(&key.tenant);
            out.employees.push(&key.employee);
            out.from.push(*from);
            out.to.push(*to);
        }
        out
    }
}

/// Unix seconds as a timestamp (clamped to chrono's range).
pub(super) fn seconds_to_time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(if seconds < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}
