//! Employees' licence grants as history (CONTRACT §3): `licence set --employee E --from D
//! [--until U]` records that E holds a seat on `[D, U)`, `--revoke` that E does not. Rows are
//! appended; where they overlap, the one recorded last holds, so a change from today leaves
//! every earlier instant as it was.

use chrono::{DateTime, SecondsFormat, Utc};
use dakoku_schemas::{EmployeeId, TenantId};
use tokio_postgres::GenericClient;

use super::employees::{Moment, load_employees};
use super::history::{ActiveRange, Grant};
use super::licences::{LicenceError, lock_tenant, record_grant, require_seat};
use super::outcome::Added;

/// A grant or revocation as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantChange {
    /// Licensed (true) or revoked (false) on the range.
    pub granted: bool,
    /// From (inclusive); `None` = always.
    pub from: Option<Moment>,
    /// Until (exclusive); `None` = open.
    pub until: Option<Moment>,
}

/// One recorded grant row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// Granted or revoked.
    pub granted: bool,
    /// From (inclusive); `None` = always.
    pub from: Option<DateTime<Utc>>,
    /// Until (exclusive); `None` = open.
    pub until: Option<DateTime<Utc>>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

impl std::fmt::Display for GrantRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |at: Option<DateTime<Utc>>, open: &'static str| {
            at.map_or_else(
                || open.to_owned(),
                |at| at.to_rfc3339_opts(SecondsFormat::Secs, true),
            )
        };
        write!(
            f,
            "{} from {} until {}",
            if self.granted { "licensed" } else { "revoked" },
            at(self.from, "always"),
            at(self.until, "open")
        )
    }
}

/// The employee's grant rows, oldest first.
pub async fn grant_history(
    client: &impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
) -> Result<Vec<GrantRecord>, LicenceError> {
    let rows = client
        .query(
            "SELECT granted, CASE WHEN isfinite(valid_from) THEN valid_from END,
                    CASE WHEN isfinite(valid_until) THEN valid_until END, recorded_at
             FROM licence_grants WHERE tenant_id = $1 AND employee_id = $2 ORDER BY seq",
            &[&tenant.as_str(), &employee.as_str()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| GrantRecord {
            granted: row.get(0),
            from: row.get(1),
            until: row.get(2),
            recorded_at: row.get(3),
        })
        .collect())
}

/// Records a grant (or revocation) of `employee`'s licence, in one transaction with the tenant
/// row locked. A grant needs a free seat at every instant it covers from now on.
///
/// Idempotent: when the row recorded last for the employee says the same, nothing is written
/// ([`Added::Unchanged`]). Unknown tenant or employee, or a range that ends before it starts:
/// an error, nothing written.
pub async fn set_grant(
    client: &mut impl GenericClient,
    tenant: &TenantId,
    employee: &EmployeeId,
    change: GrantChange,
) -> Result<(Added, GrantRecord), LicenceError> {
    let tx = client.transaction().await?;
    let (tz, terms) = lock_tenant(&tx, tenant).await?;
    if load_employees(&tx, tenant, Some(employee))
        .await?
        .is_empty()
    {
        return Err(LicenceError::EmployeeNotFound {
            tenant: tenant.clone(),
            employee: employee.clone(),
        });
    }
    let from = change.from.map(|m| m.resolve(tz));
    let until = change.until.map(|m| m.resolve(tz));
    if let (Some(from), Some(until)) = (from, until)
        && from >= until
    {
        return Err(LicenceError::InvalidRange {
            what: "licence grant (--from must be before --until)",
            from: from.to_rfc3339_opts(SecondsFormat::Secs, true),
            until: until.to_rfc3339_opts(SecondsFormat::Secs, true),
        });
    }
    let same = |last: &GrantRecord| {
        last.granted == change.granted && last.from == from && last.until == until
    };
    let history = grant_history(&tx, tenant, employee).await?;
    if let Some(last) = history.last().filter(|last| same(last)) {
        return Ok((Added::Unchanged, last.clone()));
    }
    let grant = Grant {
        granted: change.granted,
        range: ActiveRange {
            from: from.map(|at| at.timestamp_millis()),
            until: until.map(|at| at.timestamp_millis()),
        },
    };
    if change.granted {
        require_seat(&tx, tenant, employee, &terms, grant).await?;
    }
    record_grant(&tx, tenant, employee, grant).await?;
    let recorded = grant_history(&tx, tenant, employee)
        .await?
        .pop()
        .expect("recorded in this transaction");
    tx.commit().await?;
    Ok((Added::Created, recorded))
}
