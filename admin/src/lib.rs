//! The administrators' operations (CONTRACT §4.6, §4.7), shared by `punchctl` and the
//! `admin-api` binary: corrections checked against stored data and appended to Kafka (never
//! written to Postgres here: the attendance consumer stores and applies them), the audit view
//! of one employee's day, the anomaly queue of a payroll month, and closing and reopening
//! payroll months.
//!
//! # Layout
//! - [`error`](AdminError): the four failure kinds (invalid, not found, conflict,
//!   unavailable).
//! - `request`: [`CorrectionRequest`] and its data-free checks.
//! - `month`: `YYYY-MM` parsing and a payroll month's work dates ([`bounds`]).
//! - [`format`]: `h:mm:ss` and tenant-local instants.
//! - `views`: the serialisable results ([`DayView`], [`AnomalyDay`], [`Closed`],
//!   [`Reopened`], [`ClosingEvent`]).
//! - `sql`: every query; `produce`: the Kafka append.

mod error;
pub mod format;
mod month;
mod produce;
mod request;
mod sql;
mod views;

use chrono::{NaiveDate, Utc};
use dakoku_kafka::KafkaArgs;
use dakoku_schemas::{ConsumerGroup, Correction, EmployeeId, PunchId, TenantId};
use deadpool_postgres::Pool;

pub use dakoku_schemas::{CorrectionAction, MAX_REASON_CHARS, PunchKind};
pub use error::AdminError;
pub use month::{bounds, parse_month};
pub use request::{CorrectionRequest, parse_kind};
pub use views::{
    AnomalyDay, Closed, ClosingEvent, CorrectionView, DayFigures, DayView, PunchView, Reopened,
};

use produce::Appender;
use request::Checked;

/// Connections the operations share: a small Postgres pool and the corrections producer
/// (made on the first correction, so the reading operations never touch Kafka).
pub struct Admin {
    pool: Pool,
    kafka: KafkaArgs,
    appender: tokio::sync::OnceCell<Appender>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

/// Postgres connections an [`Admin`] keeps at most.
const POOL_SIZE: usize = 8;

impl Admin {
    /// Builds the pool, checks that Postgres answers and that the Kafka settings can be used
    /// (Kafka itself is reached on the first correction).
    pub async fn connect(database_url: &str, kafka: &KafkaArgs) -> Result<Admin, AdminError> {
        let pool = dakoku_store::pool(database_url, POOL_SIZE)
            .map_err(|e| AdminError::invalid("database_url", format!("{e}")))?;
        drop(pool.get().await?);
        kafka
            .factory()
            .map_err(|e| AdminError::invalid("kafka-properties", e.to_string()))?;
        Ok(Admin {
            pool,
            kafka: kafka.clone(),
            appender: tokio::sync::OnceCell::new(),
        })
    }

    /// Checks `req` against the tenant's data and appends the correction; returns it once
    /// Kafka acknowledged it. The attendance consumer stores it and recomputes the days it
    /// touches shortly after (closed months included: they get adjustments).
    pub async fn submit_correction(
        &self,
        tenant: &TenantId,
        req: CorrectionRequest,
    ) -> Result<Correction, AdminError> {
        let checked = request::check(&req)?;
        let client = self.pool.get().await?;
        let stored = sql::tenant(&**client, tenant).await?;
        let id = PunchId::random();
        let now = Utc::now().timestamp_millis();
        let correction = match checked {
            Checked::Add { employee, kind, at } => {
                if !sql::employee_exists(&**client, tenant, &employee).await? {
                    return Err(AdminError::NotFound {
                        what: "employee",
                        id: format!("{tenant}/{employee}"),
                    });
                }
                Correction::add(
                    id,
                    tenant.clone(),
                    employee,
                    kind,
                    at.timestamp_millis(),
                    req.actor,
                    req.reason,
                    now,
                )
            }
            Checked::Void { target, employee } => {
                let owner = void_target(&client, tenant, target).await?;
                if let Some(given) = employee.filter(|given| *given != owner) {
                    return Err(AdminError::invalid(
                        "employee_id",
                        format!(
                            "{target} belongs to employee {owner}, not {given}; leave the \
                             employee out or give the right one"
                        ),
                    ));
                }
                Correction::void(
                    id,
                    tenant.clone(),
                    owner,
                    target,
                    req.actor,
                    req.reason,
                    now,
                )
            }
        };
        correction
            .check()
            .map_err(|e| AdminError::invalid(e.field, e.problem))?;
        let appender = self
            .appender
            .get_or_try_init(|| async { Appender::new(&self.kafka) })
            .await?;
        appender.append(&stored.group, &correction).await?;
        Ok(correction)
    }

    /// One employee's work date: the stored day record, the raw punches around it and the
    /// corrections that concern them.
    pub async fn day(
        &self,
        tenant: &TenantId,
        employee: &EmployeeId,
        date: NaiveDate,
    ) -> Result<DayView, AdminError> {
        let client = self.pool.get().await?;
        let stored = sql::tenant(&**client, tenant).await?;
        if !sql::employee_exists(&**client, tenant, employee).await? {
            return Err(AdminError::NotFound {
                what: "employee",
                id: format!("{tenant}/{employee}"),
            });
        }
        let range = window(date)?;
        let day = sql::day(&**client, tenant, employee, date).await?;
        let punches =
            sql::punches_around(&**client, tenant, employee, range, &stored.time_zone).await?;
        let targets: Vec<uuid::Uuid> = punches.iter().map(|p| p.punch_id).collect();
        let ids: Vec<uuid::Uuid> = day
            .iter()
            .flat_map(|d| d.correction_ids.iter())
            .filter_map(|id| id.parse().ok())
            .collect();
        let corrections = sql::corrections_around(
            &**client,
            tenant,
            employee,
            range,
            &stored.time_zone,
            &targets,
            &ids,
        )
        .await?;
        let tz = format::zone(&stored.time_zone);
        Ok(DayView {
            tenant_id: tenant.to_string(),
            employee_id: employee.to_string(),
            work_date: date,
            time_zone: stored.time_zone,
            day,
            punches: punches.into_iter().map(|p| p.into_view(tz)).collect(),
            corrections: corrections.into_iter().map(|c| c.into_view(tz)).collect(),
        })
    }

    /// The tenant's anomalous days of payroll month `month` (`YYYY-MM`), oldest first, each
    /// with the employee's punches from the previous work date through the next.
    pub async fn anomalies(
        &self,
        tenant: &TenantId,
        month: &str,
    ) -> Result<Vec<AnomalyDay>, AdminError> {
        let month = parse_month(month)?;
        let client = self.pool.get().await?;
        let stored = sql::tenant(&**client, tenant).await?;
        let rules = dakoku_store::master::rules::show_rules(&**client, tenant)
            .await
            .and_then(|r| r.rulebook())
            .map_err(|e| AdminError::Unavailable(format!("reading the tenant's rules: {e}")))?;
        let days = sql::anomaly_days(&**client, tenant, bounds(month, rules.rulebook())).await?;
        let tz = format::zone(&stored.time_zone);
        let mut queue = Vec::with_capacity(days.len());
        for day in days {
            let employee: EmployeeId = day.employee_id.parse().map_err(|e| {
                AdminError::Unavailable(format!("stored employee id {:?}: {e}", day.employee_id))
            })?;
            let punches = sql::punches_around(
                &**client,
                tenant,
                &employee,
                window(day.work_date)?,
                &stored.time_zone,
            )
            .await?;
            queue.push(AnomalyDay {
                work_date: day.work_date,
                employee_id: day.employee_id,
                anomalies: day.anomalies,
                corrected: day.corrected,
                punches: punches.into_iter().map(|p| p.into_view(tz)).collect(),
            });
        }
        Ok(queue)
    }

    /// Closes payroll month `month`: freezes every employee's monthly record as paid and has
    /// the outbox publish it again. Refused if it is already closed.
    pub async fn close_month(
        &self,
        tenant: &TenantId,
        month: &str,
        actor: &str,
    ) -> Result<Closed, AdminError> {
        let month = parse_month(month)?.to_string();
        let actor = required("actor", actor)?;
        let mut client = self.pool.get().await?;
        let stored = sql::tenant(&**client, tenant).await?;
        let consumer_group = ConsumerGroup::Attendance(stored.group).name();
        let tx = client.transaction().await?;
        let done = sql::close(&tx, &consumer_group, tenant, &month, actor).await?;
        tx.commit().await?;
        tracing::info!(%tenant, month, actor, frozen = done.employees, "month closed");
        Ok(Closed {
            tenant_id: tenant.to_string(),
            month,
            closing_id: done.closing_id,
            actor: actor.to_owned(),
            at: done.at,
            employees_frozen: done.employees,
        })
    }

    /// Reopens payroll month `month` (a reason is required): drops the paid figures,
    /// supersedes its adjustments and has the month republished whole. Refused if it is not
    /// closed.
    pub async fn reopen_month(
        &self,
        tenant: &TenantId,
        month: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Reopened, AdminError> {
        let month = parse_month(month)?.to_string();
        let actor = required("actor", actor)?;
        let reason = required("reason", reason)?;
        let chars = reason.chars().count();
        if chars > MAX_REASON_CHARS {
            return Err(AdminError::invalid(
                "reason",
                format!("{chars} characters; at most {MAX_REASON_CHARS}, shorten it"),
            ));
        }
        let mut client = self.pool.get().await?;
        let stored = sql::tenant(&**client, tenant).await?;
        let consumer_group = ConsumerGroup::Attendance(stored.group).name();
        let tx = client.transaction().await?;
        let done = sql::reopen(&tx, &consumer_group, tenant, &month, actor, reason).await?;
        tx.commit().await?;
        tracing::info!(%tenant, month, actor, superseded = done.adjustments, "month reopened");
        Ok(Reopened {
            tenant_id: tenant.to_string(),
            month,
            closing_id: done.closing_id,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            at: done.at,
            employees_unfrozen: done.employees,
            adjustments_superseded: done.adjustments,
        })
    }

    /// The tenant's closes and reopens, oldest first.
    pub async fn closings(&self, tenant: &TenantId) -> Result<Vec<ClosingEvent>, AdminError> {
        let client = self.pool.get().await?;
        sql::tenant(&**client, tenant).await?;
        sql::closings(&**client, tenant).await
    }
}

/// The stored owner of a void's target, or why it cannot be voided.
async fn void_target(
    client: &tokio_postgres::Client,
    tenant: &TenantId,
    target: PunchId,
) -> Result<EmployeeId, AdminError> {
    let id = *target.as_uuid();
    let owner = match sql::target(client, tenant, id).await? {
        None => {
            return Err(AdminError::NotFound {
                what: "target",
                id: target.to_string(),
            });
        }
        Some(sql::Target::Void) => {
            return Err(AdminError::invalid(
                "target_id",
                format!(
                    "{target} is a void; a void cannot be voided: to bring the punch back, add \
                     it again"
                ),
            ));
        }
        Some(sql::Target::Punch(owner) | sql::Target::Add(owner)) => owner,
    };
    if let Some(by) = sql::voided_by(client, tenant, id).await? {
        return Err(AdminError::Conflict(format!(
            "{target} is already voided by correction {by}; nothing to do"
        )));
    }
    owner
        .parse()
        .map_err(|e| AdminError::Unavailable(format!("stored employee id {owner:?}: {e}")))
}

/// The previous through the next work date of `date`.
fn window(date: NaiveDate) -> Result<(NaiveDate, NaiveDate), AdminError> {
    match (date.pred_opt(), date.succ_opt()) {
        (Some(before), Some(after)) => Ok((before, after)),
        _ => Err(AdminError::invalid(
            "date",
            format!("{date} is out of range"),
        )),
    }
}

/// `value` trimmed, or [`AdminError::Invalid`] when empty.
fn required<'a>(field: &'static str, value: &'a str) -> Result<&'a str, AdminError> {
    let value = value.trim();
    if value.is_empty() {
        Err(AdminError::invalid(field, format!("{field} is required")))
    } else {
        Ok(value)
    }
}
