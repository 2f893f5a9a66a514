//! Recompute requests: a rules change (`punchctl rules set`) records one per tenant and date in
//! `attendance_recompute_requests`, in the transaction of the new rules version; the group's
//! consumer serves them between batches. Serving recomputes every employee of the tenant in
//! full (chunks of employees, one transaction each, published like a batch) and deletes the
//! request in the last chunk's transaction, so a crash part-way serves it again and finds the
//! finished chunks unchanged.

use chrono::NaiveDate;

/// One pending request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecomputeRequest {
    /// `attendance_recompute_requests.request_id`.
    pub id: i64,
    /// The tenant whose rules changed.
    pub tenant: String,
    /// The first work date the change can alter.
    pub from: NaiveDate,
    /// The rules version recorded (the cause of the adjustments it makes).
    pub rules_version: i64,
}

/// The group's pending requests, oldest first.
pub(super) const SQL_PENDING: &str = "SELECT r.request_id, r.tenant_id, r.from_date, r.rules_version \
     FROM attendance_recompute_requests r JOIN tenants t ON t.tenant_id = r.tenant_id \
     WHERE t.group_id = $1 ORDER BY r.request_id";

/// Every employee of a tenant with a punch, a correction, a day or a month.
pub(super) const SQL_TENANT_EMPLOYEES: &str = "SELECT employee_id FROM punches \
     WHERE tenant_id = $1 UNION SELECT employee_id FROM corrections WHERE tenant_id = $1 \
     UNION SELECT employee_id FROM attendance_days WHERE tenant_id = $1 \
     UNION SELECT employee_id FROM attendance_months WHERE tenant_id = $1 ORDER BY 1";

/// Served: gone (requests of the same tenant up to this one are covered too).
pub(super) const SQL_SERVED: &str =
    "DELETE FROM attendance_recompute_requests WHERE tenant_id = $1 AND request_id <= $2";
