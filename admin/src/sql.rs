//! Every query of the admin operations. Reads only, except closing and reopening, which take
//! the attendance consumer group's advisory lock so that no consumer batch interleaves with
//! them. Corrections are never written here: they go to Kafka and the consumer stores them.

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_schemas::{EmployeeId, GroupId, TenantId};
use tokio_postgres::{GenericClient, Row, Transaction};
use uuid::Uuid;

use crate::AdminError;
use crate::format::local_rfc3339;
use crate::views::{ClosingEvent, CorrectionView, DayFigures, PunchView};

/// A tenant's routing and clock.
#[derive(Debug, Clone)]
pub(crate) struct TenantRow {
    pub group: GroupId,
    pub time_zone: String,
}

pub(crate) async fn tenant(
    client: &impl GenericClient,
    tenant: &TenantId,
) -> Result<TenantRow, AdminError> {
    let row = client
        .query_opt(
            "SELECT group_id, time_zone FROM tenants WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?
        .ok_or_else(|| AdminError::NotFound {
            what: "tenant",
            id: tenant.to_string(),
        })?;
    let group: String = row.get(0);
    Ok(TenantRow {
        group: group
            .parse()
            .map_err(|e| AdminError::Unavailable(format!("stored group {group:?}: {e}")))?,
        time_zone: row.get(1),
    })
}

pub(crate) async fn employee_exists(
    client: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
) -> Result<bool, AdminError> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM employees WHERE tenant_id = $1 AND employee_id = $2",
            &[&tenant.as_str(), &employee.as_str()],
        )
        .await?
        .is_some())
}

/// What a void may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A stored raw punch (either verdict) of this employee.
    Punch(String),
    /// A stored add of this employee.
    Add(String),
    /// A stored void: not voidable.
    Void,
}

pub(crate) async fn target(
    client: &impl GenericClient,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<Target>, AdminError> {
    if let Some(row) = client
        .query_opt(
            "SELECT employee_id FROM punches WHERE tenant_id = $1 AND punch_id = $2",
            &[&tenant.as_str(), &id],
        )
        .await?
    {
        return Ok(Some(Target::Punch(row.get(0))));
    }
    let row = client
        .query_opt(
            "SELECT employee_id, action FROM corrections \
             WHERE tenant_id = $1 AND correction_id = $2",
            &[&tenant.as_str(), &id],
        )
        .await?;
    Ok(row.map(|row| match row.get::<_, &str>(1) {
        "add" => Target::Add(row.get(0)),
        _ => Target::Void,
    }))
}

/// The stored void of `id`, if any.
pub(crate) async fn voided_by(
    client: &impl GenericClient,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<Uuid>, AdminError> {
    Ok(client
        .query_opt(
            "SELECT correction_id FROM corrections \
             WHERE tenant_id = $1 AND target_id = $2 AND action = 'void' \
             ORDER BY created_at LIMIT 1",
            &[&tenant.as_str(), &id],
        )
        .await?
        .map(|row| row.get(0)))
}

const DAY_COLUMNS: &str = "worked_seconds, break_seconds, night_seconds, holiday_seconds, \
     overtime_daily_seconds, overtime_weekly_seconds, within_statutory_seconds, \
     worked_minutes::bigint, break_minutes::bigint, night_minutes::bigint, \
     overtime_minutes::bigint, first_in, last_out, punch_count::bigint, double_taps::bigint, \
     anomalies, corrected, correction_ids, rules_version, revision, computed_at";

fn day_figures(row: &Row) -> DayFigures {
    DayFigures {
        worked_seconds: row.get(0),
        break_seconds: row.get(1),
        night_seconds: row.get(2),
        holiday_seconds: row.get(3),
        overtime_daily_seconds: row.get(4),
        overtime_weekly_seconds: row.get(5),
        within_statutory_seconds: row.get(6),
        worked_minutes: row.get(7),
        break_minutes: row.get(8),
        night_minutes: row.get(9),
        overtime_minutes: row.get(10),
        first_in: row.get(11),
        last_out: row.get(12),
        punch_count: row.get(13),
        double_taps: row.get(14),
        anomalies: row.get(15),
        corrected: row.get(16),
        correction_ids: row.get(17),
        rules_version: row.get(18),
        revision: row.get(19),
        computed_at: row.get(20),
    }
}

pub(crate) async fn day(
    client: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
    date: NaiveDate,
) -> Result<Option<DayFigures>, AdminError> {
    let sql = format!(
        "SELECT {DAY_COLUMNS} FROM attendance_days \
         WHERE tenant_id = $1 AND employee_id = $2 AND work_date = $3"
    );
    Ok(client
        .query_opt(&sql, &[&tenant.as_str(), &employee.as_str(), &date])
        .await?
        .map(|row| day_figures(&row)))
}

/// A stored raw punch.
#[derive(Debug, Clone)]
pub(crate) struct PunchRow {
    pub punch_id: Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub work_date: NaiveDate,
    pub device_id: String,
    pub seq: i64,
    pub withdrawn: bool,
    pub reason: Option<String>,
    pub voided: bool,
}

/// The punches' columns; a withdrawn punch's reason is its latest rejection's (recheck
/// updates `punch_verdicts`; `punch_rejections` holds rejections read before the acceptance).
const PUNCH_SELECT: &str = "SELECT p.punch_id, p.kind, p.at, p.work_date, p.device_id, p.seq, \
     p.withdrawn, CASE WHEN p.withdrawn THEN COALESCE(pv.reason, pr.reason) END, \
     EXISTS (SELECT 1 FROM corrections c WHERE c.tenant_id = p.tenant_id \
             AND c.target_id = p.punch_id AND c.action = 'void') \
     FROM punches p \
     LEFT JOIN punch_verdicts pv ON pv.punch_id = p.punch_id AND pv.verdict = 'rejected' \
     LEFT JOIN punch_rejections pr ON pr.punch_id = p.punch_id \
     WHERE p.tenant_id = $1 AND p.employee_id = $2";

fn punch_row(row: &Row) -> PunchRow {
    PunchRow {
        punch_id: row.get(0),
        kind: row.get(1),
        at: row.get(2),
        work_date: row.get(3),
        device_id: row.get(4),
        seq: row.get(5),
        withdrawn: row.get(6),
        reason: row.get(7),
        voided: row.get(8),
    }
}

/// The employee's punches whose work date is in `[from, to]` or whose instant lies between
/// local midnight of `from` and local midnight after `to` in `tz`; ordered by instant.
pub(crate) async fn punches_around(
    client: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
    (from, to): (NaiveDate, NaiveDate),
    tz: &str,
) -> Result<Vec<PunchRow>, AdminError> {
    let sql = format!(
        "{PUNCH_SELECT} AND (p.work_date BETWEEN $3 AND $4 \
         OR (p.at >= $3::date::timestamp AT TIME ZONE $5 \
             AND p.at < ($4::date + 1)::timestamp AT TIME ZONE $5)) \
         ORDER BY p.at, p.device_id, p.seq"
    );
    let rows = client
        .query(
            &sql,
            &[&tenant.as_str(), &employee.as_str(), &from, &to, &tz],
        )
        .await?;
    Ok(rows.iter().map(punch_row).collect())
}

/// A stored correction.
#[derive(Debug, Clone)]
pub(crate) struct CorrectionRow {
    pub correction_id: Uuid,
    pub action: String,
    pub kind: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub target_id: Option<Uuid>,
    pub actor: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub voided: bool,
}

/// The employee's corrections that are adds in the instant range of [`punches_around`], voids
/// of `targets`, or named in `ids`; ordered by creation.
pub(crate) async fn corrections_around(
    client: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
    (from, to): (NaiveDate, NaiveDate),
    tz: &str,
    targets: &[Uuid],
    ids: &[Uuid],
) -> Result<Vec<CorrectionRow>, AdminError> {
    let rows = client
        .query(
            "WITH adds AS ( \
               SELECT correction_id FROM corrections \
               WHERE tenant_id = $1 AND employee_id = $2 AND action = 'add' \
                 AND at >= $3::date::timestamp AT TIME ZONE $5 \
                 AND at < ($4::date + 1)::timestamp AT TIME ZONE $5) \
             SELECT c.correction_id, c.action, c.kind, c.at, c.target_id, c.actor, c.reason, \
               c.created_at, \
               EXISTS (SELECT 1 FROM corrections v WHERE v.tenant_id = c.tenant_id \
                       AND v.target_id = c.correction_id AND v.action = 'void') \
             FROM corrections c \
             WHERE c.tenant_id = $1 AND c.employee_id = $2 \
               AND (c.correction_id IN (SELECT correction_id FROM adds) \
                    OR c.target_id = ANY($6) \
                    OR c.target_id IN (SELECT correction_id FROM adds) \
                    OR c.correction_id = ANY($7)) \
             ORDER BY c.created_at, c.correction_id",
            &[
                &tenant.as_str(),
                &employee.as_str(),
                &from,
                &to,
                &tz,
                &targets,
                &ids,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| CorrectionRow {
            correction_id: row.get(0),
            action: row.get(1),
            kind: row.get(2),
            at: row.get(3),
            target_id: row.get(4),
            actor: row.get(5),
            reason: row.get(6),
            created_at: row.get(7),
            voided: row.get(8),
        })
        .collect())
}

/// A day with anomalies.
#[derive(Debug, Clone)]
pub(crate) struct AnomalyRow {
    pub employee_id: String,
    pub work_date: NaiveDate,
    pub anomalies: Vec<String>,
    pub corrected: bool,
}

/// The tenant's days in `[first, last]` with anomalies, oldest first.
pub(crate) async fn anomaly_days(
    client: &impl GenericClient,
    tenant: &TenantId,
    (first, last): (NaiveDate, NaiveDate),
) -> Result<Vec<AnomalyRow>, AdminError> {
    let rows = client
        .query(
            "SELECT employee_id, work_date, anomalies, corrected FROM attendance_days \
             WHERE tenant_id = $1 AND work_date BETWEEN $2 AND $3 AND anomalies <> '{}' \
             ORDER BY work_date, employee_id",
            &[&tenant.as_str(), &first, &last],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| AnomalyRow {
            employee_id: row.get(0),
            work_date: row.get(1),
            anomalies: row.get(2),
            corrected: row.get(3),
        })
        .collect())
}

/// Waits for the attendance consumer group's lock of the tenant's group (no batch of it runs
/// until the transaction ends) and returns a fresh outbox batch number.
async fn lock_group(tx: &Transaction<'_>, consumer_group: &str) -> Result<i64, AdminError> {
    let row = tx
        .query_one(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), \
             nextval('attendance_batch_seq')",
            &[&consumer_group],
        )
        .await?;
    Ok(row.get(1))
}

/// A recorded close or reopen.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub closing_id: i64,
    pub at: DateTime<Utc>,
    /// Close: employees frozen. Reopen: paid months dropped.
    pub employees: u64,
    /// Reopen: adjustments superseded.
    pub adjustments: u64,
}

const FIGURES: &str = "group_id, first_day, last_day, days_worked, anomaly_days, \
     worked_seconds, break_seconds, night_seconds, holiday_seconds, within_statutory_seconds, \
     overtime_seconds, overtime_over60_seconds, worked_minutes, overtime_minutes, \
     overtime_over60_minutes, night_minutes, holiday_minutes, rules_version, revision, \
     computed_at";

pub(crate) async fn close(
    tx: &Transaction<'_>,
    consumer_group: &str,
    tenant: &TenantId,
    month: &str,
    actor: &str,
) -> Result<Recorded, AdminError> {
    let batch = lock_group(tx, consumer_group).await?;
    let t = tenant.as_str();
    if let Some(row) = tx
        .query_opt(
            "SELECT c.closing_id, m.actor, m.at FROM closed_months c \
             JOIN month_closings m USING (closing_id) WHERE c.tenant_id = $1 AND c.month = $2",
            &[&t, &month],
        )
        .await?
    {
        let (id, by, at): (i64, String, DateTime<Utc>) = (row.get(0), row.get(1), row.get(2));
        return Err(AdminError::Conflict(format!(
            "{tenant} {month} is already closed (closing {id} by {by} at {}); reopen it first \
             (with a reason) to close it again",
            crate::format::utc_rfc3339(at)
        )));
    }
    let row = tx
        .query_one(
            "INSERT INTO month_closings (tenant_id, month, action, actor) \
             VALUES ($1, $2, 'close', $3) RETURNING closing_id, at",
            &[&t, &month, &actor],
        )
        .await?;
    let (closing_id, at): (i64, DateTime<Utc>) = (row.get(0), row.get(1));
    tx.execute(
        "INSERT INTO closed_months (tenant_id, month, closing_id) VALUES ($1, $2, $3)",
        &[&t, &month, &closing_id],
    )
    .await?;
    let frozen = tx
        .execute(
            &format!(
                "INSERT INTO paid_months (tenant_id, employee_id, month, {FIGURES}, closing_id) \
                 SELECT tenant_id, employee_id, month, {FIGURES}, $3 FROM attendance_months \
                 WHERE tenant_id = $1 AND month = $2"
            ),
            &[&t, &month, &closing_id],
        )
        .await?;
    tx.execute(
        "UPDATE attendance_months SET batch_seq = $3 WHERE tenant_id = $1 AND month = $2",
        &[&t, &month, &batch],
    )
    .await?;
    Ok(Recorded {
        closing_id,
        at,
        employees: frozen,
        adjustments: 0,
    })
}

pub(crate) async fn reopen(
    tx: &Transaction<'_>,
    consumer_group: &str,
    tenant: &TenantId,
    month: &str,
    actor: &str,
    reason: &str,
) -> Result<Recorded, AdminError> {
    let batch = lock_group(tx, consumer_group).await?;
    let t = tenant.as_str();
    if tx
        .query_opt(
            "SELECT 1 FROM closed_months WHERE tenant_id = $1 AND month = $2",
            &[&t, &month],
        )
        .await?
        .is_none()
    {
        return Err(AdminError::Conflict(format!(
            "{tenant} {month} is not closed, so there is nothing to reopen; \
             see `punchctl close --help` and the tenant's closing history"
        )));
    }
    let row = tx
        .query_one(
            "INSERT INTO month_closings (tenant_id, month, action, actor, reason) \
             VALUES ($1, $2, 'reopen', $3, $4) RETURNING closing_id, at",
            &[&t, &month, &actor, &reason],
        )
        .await?;
    let (closing_id, at): (i64, DateTime<Utc>) = (row.get(0), row.get(1));
    let paid: i64 = tx
        .query_one(
            "SELECT count(*) FROM paid_months WHERE tenant_id = $1 AND month = $2",
            &[&t, &month],
        )
        .await?
        .get(0);
    // Cascades to paid_months.
    tx.execute(
        "DELETE FROM closed_months WHERE tenant_id = $1 AND month = $2",
        &[&t, &month],
    )
    .await?;
    let superseded = tx
        .execute(
            "UPDATE attendance_adjustments SET superseded_at = now() \
             WHERE tenant_id = $1 AND month = $2 AND superseded_at IS NULL",
            &[&t, &month],
        )
        .await?;
    tx.execute(
        "UPDATE attendance_months SET batch_seq = $3 WHERE tenant_id = $1 AND month = $2",
        &[&t, &month, &batch],
    )
    .await?;
    Ok(Recorded {
        closing_id,
        at,
        employees: u64::try_from(paid).unwrap_or(0),
        adjustments: superseded,
    })
}

pub(crate) async fn closings(
    client: &impl GenericClient,
    tenant: &TenantId,
) -> Result<Vec<ClosingEvent>, AdminError> {
    let rows = client
        .query(
            "SELECT closing_id, month, action, actor, reason, at FROM month_closings \
             WHERE tenant_id = $1 ORDER BY closing_id",
            &[&tenant.as_str()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ClosingEvent {
            closing_id: row.get(0),
            month: row.get(1),
            action: row.get(2),
            actor: row.get(3),
            reason: row.get(4),
            at: row.get(5),
        })
        .collect())
}

impl PunchRow {
    /// The row as the views show it, its instant also on the tenant's clock.
    pub(crate) fn into_view(self, tz: chrono_tz::Tz) -> PunchView {
        PunchView {
            punch_id: self.punch_id.to_string(),
            kind: self.kind,
            at: self.at,
            at_local: local_rfc3339(self.at, tz),
            work_date: self.work_date,
            device_id: self.device_id,
            seq: self.seq,
            verdict: if self.withdrawn {
                "rejected"
            } else {
                "accepted"
            }
            .to_owned(),
            reason: self.reason,
            withdrawn: self.withdrawn,
            voided: self.voided,
        }
    }
}

impl CorrectionRow {
    /// The row as the views show it, an add's instant also on the tenant's clock.
    pub(crate) fn into_view(self, tz: chrono_tz::Tz) -> CorrectionView {
        CorrectionView {
            correction_id: self.correction_id.to_string(),
            action: self.action,
            kind: self.kind,
            at: self.at,
            at_local: self.at.map(|at| local_rfc3339(at, tz)),
            target_id: self.target_id.map(|id| id.to_string()),
            actor: self.actor,
            reason: self.reason,
            created_at: self.created_at,
            voided: self.voided,
        }
    }
}
