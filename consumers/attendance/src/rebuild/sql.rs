//! The rebuild's own statements (the batch's are the store's): the group's session lock, the
//! scope's rows, the clear, the days to recompute.

pub(super) const SQL_TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))";
pub(super) const SQL_UNLOCK: &str = "SELECT pg_advisory_unlock(hashtextextended($1, 0))";
pub(super) const SQL_SCOPE_ROWS: &str = "SELECT \
     (SELECT count(*) FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2)), \
     (SELECT count(*) FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
      AND withdrawn), \
     (SELECT count(*) FROM punch_rejections WHERE source_topic = $3 \
      AND ($2::text IS NULL OR tenant_id = $2)), \
     (SELECT count(*) FROM punch_conflicts c JOIN punches p USING (punch_id) \
      WHERE p.group_id = $1 AND ($2::text IS NULL OR p.tenant_id = $2)), \
     (SELECT count(*) FROM attendance_days WHERE group_id = $1 \
      AND ($2::text IS NULL OR tenant_id = $2))";
pub(super) const SQL_CLEAR_CONFLICTS: &str = "DELETE FROM punch_conflicts WHERE punch_id IN \
     (SELECT punch_id FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2))";
pub(super) const SQL_CLEAR_PUNCHES: &str =
    "DELETE FROM punches WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2)";
pub(super) const SQL_CLEAR_REJECTIONS: &str = "DELETE FROM punch_rejections WHERE source_topic = $1 \
     AND ($2::text IS NULL OR tenant_id = $2)";
/// Every employee of the scope with a punch, a correction, a day or a month row.
pub(super) const SQL_SCOPE_EMPLOYEES: &str = "SELECT tenant_id, employee_id FROM punches \
     WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
     UNION SELECT tenant_id, employee_id FROM corrections \
     WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
     UNION SELECT tenant_id, employee_id FROM attendance_days \
     WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
     UNION SELECT tenant_id, employee_id FROM attendance_months \
     WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
     ORDER BY 1, 2";
pub(super) const SQL_SCOPE_DAY_ROWS: &str = "SELECT count(*) FROM attendance_days \
     WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2)";
