//! The rebuild marker: a group's row of `attendance_rebuilds` while a rebuild of it has
//! cleared its scope and not finished its recompute. The batch transaction reads it (and
//! refuses to write while it exists); the rebuild writes and deletes it.

use chrono::{DateTime, Utc};
use dakoku_schemas::{ConsumerGroup, GroupId, TenantId};
use tokio_postgres::GenericClient;

/// Whose projection is rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every tenant of the group.
    Group,
    /// One tenant of the group.
    Tenant(TenantId),
}

impl Scope {
    /// Whether `tenant`'s rows are in the scope.
    pub fn covers(&self, tenant: &str) -> bool {
        match self {
            Scope::Group => true,
            Scope::Tenant(t) => t.as_str() == tenant,
        }
    }

    /// Whether a rebuild of this scope also rebuilds everything of `other` (a whole-group
    /// rebuild covers any scope of the group; a tenant's covers only the same tenant).
    pub fn covers_scope(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Group, _) => true,
            (Scope::Tenant(a), Scope::Tenant(b)) => a == b,
            (Scope::Tenant(_), Scope::Group) => false,
        }
    }

    pub(crate) fn tenant(&self) -> Option<&str> {
        match self {
            Scope::Group => None,
            Scope::Tenant(t) => Some(t.as_str()),
        }
    }
}

/// A rebuild that cleared its scope and has not finished its recompute: the group's row of
/// `attendance_rebuilds` (see `crate::rebuild`, "Interrupted").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedRebuild {
    /// The tenant group.
    pub group: GroupId,
    /// What it rebuilds.
    pub scope: Scope,
    /// When its last attempt cleared the scope.
    pub started_at: DateTime<Utc>,
    /// The Postgres user that ran it.
    pub started_by: String,
}

impl UnfinishedRebuild {
    /// The command that finishes it: `punchctl rebuild --group <g>` or `--tenant <t>`.
    pub fn command(&self) -> String {
        match &self.scope {
            Scope::Group => format!("punchctl rebuild --group {}", self.group),
            Scope::Tenant(tenant) => format!("punchctl rebuild --tenant {tenant}"),
        }
    }

    /// "the rebuild of tenant t (group g) started at ... by ...".
    pub fn describe(&self) -> String {
        let what = match &self.scope {
            Scope::Group => format!("group {}", self.group),
            Scope::Tenant(tenant) => format!("tenant {tenant} (group {})", self.group),
        };
        format!(
            "the rebuild of {what} started at {} by {}",
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.started_by
        )
    }
}

/// The row of `attendance_rebuilds` of `consumer_group`: `(tenant_id, started_at, started_by)`.
pub(crate) const SQL_UNFINISHED: &str = "SELECT tenant_id, started_at, started_by \
     FROM attendance_rebuilds WHERE consumer_group = $1";
pub(crate) const SQL_MARK_UNFINISHED: &str = "INSERT INTO attendance_rebuilds (consumer_group, tenant_id) \
     VALUES ($1, $2) ON CONFLICT (consumer_group) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, \
     started_at = now(), started_by = current_user";
pub(crate) const SQL_MARK_FINISHED: &str =
    "DELETE FROM attendance_rebuilds WHERE consumer_group = $1";

/// Reads a row of [`SQL_UNFINISHED`] (the batch transaction reads it too).
pub(crate) fn unfinished_of(group: &GroupId, row: &tokio_postgres::Row) -> UnfinishedRebuild {
    let tenant: Option<String> = row.get(0);
    UnfinishedRebuild {
        group: group.clone(),
        // A tenant id that no longer parses cannot be named on the command line; the whole
        // group's rebuild covers it, so that is the one to ask for.
        scope: tenant
            .and_then(|t| t.parse::<TenantId>().ok())
            .map_or(Scope::Group, Scope::Tenant),
        started_at: row.get(1),
        started_by: row.get(2),
    }
}

/// The unfinished rebuild of `group`, if any.
pub async fn unfinished(
    client: &impl GenericClient,
    group: &GroupId,
) -> Result<Option<UnfinishedRebuild>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            SQL_UNFINISHED,
            &[&ConsumerGroup::Attendance(group.clone()).name()],
        )
        .await?;
    Ok(row.map(|row| unfinished_of(group, &row)))
}
