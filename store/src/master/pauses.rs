//! Operator pauses of punch intake for a group, a tenant or a device (`intake_pauses`).
//!
//! The acceptor sees a pause through its master-data snapshot (reloaded on `NOTIFY
//! dakoku_master_data`, which the table's trigger sends) and answers the paused recorders `503`
//! with the pause's `Retry-After` (CONTRACT §1). Writes happen only when something changes, so a
//! repeated command does not bump `master_data_version` (the triggers fire per statement).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dakoku_schemas::{DeviceId, GroupId, IdError, TenantId};
use tokio_postgres::{GenericClient, Row};

/// Shortest `Retry-After` a pause may ask for, in seconds.
pub const MIN_RETRY_AFTER_SECONDS: u32 = 1;
/// Longest `Retry-After` a pause may ask for, in seconds (one day).
pub const MAX_RETRY_AFTER_SECONDS: u32 = 86_400;
/// The default `Retry-After` of a pause, in seconds (the column's default too).
pub const DEFAULT_RETRY_AFTER_SECONDS: u32 = 300;

/// Errors of the intake verbs; each says what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// A device target is not `<tenant>/<device>` with valid ids. Write e.g. `acme/PT-000123`.
    #[error("device target {value:?} is not <tenant>/<device>, e.g. acme/PT-000123{}", detail.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    BadDeviceTarget {
        /// What was given.
        value: String,
        /// The id that did not validate, if the shape was right.
        detail: Option<IdError>,
    },
    /// The pause target is not in master data (a typo would otherwise pause nothing). Check the
    /// ids with `punchctl tenant list` / `punchctl device list`.
    #[error("cannot pause unknown {0}: check the id with {hint}", hint = .0.list_hint())]
    UnknownTarget(PauseTarget),
    /// `Retry-After` outside 1 to 86400 seconds.
    #[error(
        "retry-after must be {MIN_RETRY_AFTER_SECONDS} to {MAX_RETRY_AFTER_SECONDS} seconds, got {0}"
    )]
    InvalidRetryAfter(u32),
    /// Postgres refused or failed a query. Check that the server is up (`scripts/stack status`)
    /// and the schema migrated (`punchctl db migrate`).
    #[error(
        "Postgres query failed: {0}; is the server up (`scripts/stack status`) and the schema migrated (`punchctl db migrate`)?"
    )]
    Db(#[from] tokio_postgres::Error),
}

/// The scope of a pause: the `scope` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every tenant of a tenant group.
    Group,
    /// One tenant, all its devices.
    Tenant,
    /// One device of one tenant.
    Device,
}

impl Scope {
    /// The value in the `scope` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Tenant => "tenant",
            Self::Device => "device",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "group" => Ok(Self::Group),
            "tenant" => Ok(Self::Tenant),
            "device" => Ok(Self::Device),
            other => Err(format!("unknown pause scope {other:?}")),
        }
    }
}

/// What a pause applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PauseTarget {
    /// Every tenant of the group.
    Group(GroupId),
    /// One tenant.
    Tenant(TenantId),
    /// One device.
    Device(TenantId, DeviceId),
}

impl PauseTarget {
    /// Parses `<tenant>/<device>` (the `target` of a device pause, the `--device` flag).
    pub fn parse_device(value: &str) -> Result<Self, IntakeError> {
        let bad = |detail| IntakeError::BadDeviceTarget {
            value: value.to_owned(),
            detail,
        };
        let (tenant, device) = value.split_once('/').ok_or_else(|| bad(None))?;
        let tenant = tenant.parse().map_err(|e| bad(Some(e)))?;
        let device = device.parse().map_err(|e| bad(Some(e)))?;
        Ok(Self::Device(tenant, device))
    }

    /// The `scope` column.
    pub fn scope(&self) -> Scope {
        match self {
            Self::Group(_) => Scope::Group,
            Self::Tenant(_) => Scope::Tenant,
            Self::Device(..) => Scope::Device,
        }
    }

    /// The `target` column: the group id, the tenant id, or `<tenant>/<device>`.
    pub fn target(&self) -> String {
        match self {
            Self::Group(group) => group.to_string(),
            Self::Tenant(tenant) => tenant.to_string(),
            Self::Device(tenant, device) => format!("{tenant}/{device}"),
        }
    }

    fn list_hint(&self) -> String {
        match self {
            Self::Group(_) | Self::Tenant(_) => "`punchctl tenant list`".to_owned(),
            Self::Device(tenant, _) => format!("`punchctl device list --tenant {tenant}`"),
        }
    }

    async fn exists(&self, client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
        let row = match self {
            Self::Group(group) => {
                client
                    .query_opt(
                        "SELECT 1 FROM tenant_groups WHERE group_id = $1",
                        &[&group.as_str()],
                    )
                    .await?
            }
            Self::Tenant(tenant) => {
                client
                    .query_opt(
                        "SELECT 1 FROM tenants WHERE tenant_id = $1",
                        &[&tenant.as_str()],
                    )
                    .await?
            }
            Self::Device(tenant, device) => {
                client
                    .query_opt(
                        "SELECT 1 FROM devices WHERE tenant_id = $1 AND device_id = $2",
                        &[&tenant.as_str(), &device.as_str()],
                    )
                    .await?
            }
        };
        Ok(row.is_some())
    }
}

impl fmt::Display for PauseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.scope(), self.target())
    }
}

/// A pause as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// Group, tenant or device.
    pub scope: Scope,
    /// The group id, tenant id or `<tenant>/<device>`, as stored.
    pub target: String,
    /// The `Retry-After` the acceptor answers paused recorders with (before jitter).
    pub retry_after_seconds: u32,
    /// Why, for the other operators.
    pub reason: String,
    /// Who paused (the operator's `$USER`).
    pub paused_by: String,
    /// Since when (kept when the pause is changed).
    pub paused_at: DateTime<Utc>,
    /// How long it has been paused, by the database's clock at the time of the query.
    pub paused_for: Duration,
}

impl Pause {
    const COLUMNS: &'static str =
        "scope, target, retry_after_seconds, reason, paused_by, paused_at,
         greatest(extract(epoch FROM now() - paused_at), 0)::float8";

    fn from_row(row: &Row) -> Self {
        Self {
            scope: row
                .get::<_, String>(0)
                .parse()
                .expect("intake_pauses.scope CHECK matches Scope"),
            target: row.get(1),
            retry_after_seconds: u32::try_from(row.get::<_, i32>(2))
                .expect("intake_pauses.retry_after_seconds CHECK (> 0)"),
            reason: row.get(3),
            paused_by: row.get(4),
            paused_at: row.get(5),
            paused_for: Duration::from_secs_f64(row.get::<_, f64>(6)),
        }
    }
}

/// What [`pause`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paused {
    /// The target was not paused; it is now.
    New(Pause),
    /// It was paused already; retry-after and reason were updated (the previous pause given).
    Updated {
        /// The pause before the call.
        before: Pause,
        /// The pause now.
        after: Pause,
    },
    /// It was paused already with the same retry-after and reason; nothing was written.
    Unchanged(Pause),
}

impl Paused {
    /// The pause as stored after the call.
    pub fn pause(&self) -> &Pause {
        match self {
            Self::New(pause) | Self::Unchanged(pause) | Self::Updated { after: pause, .. } => pause,
        }
    }
}

async fn pause_row(
    client: &impl GenericClient,
    target: &PauseTarget,
) -> Result<Option<Pause>, IntakeError> {
    let sql = format!(
        "SELECT {} FROM intake_pauses WHERE scope = $1 AND target = $2",
        Pause::COLUMNS
    );
    Ok(client
        .query_opt(&sql, &[&target.scope().as_str(), &target.target()])
        .await?
        .map(|row| Pause::from_row(&row)))
}

/// Pauses intake for `target`, by `paused_by`.
///
/// A new pause gets `retry_after_seconds` (default [`DEFAULT_RETRY_AFTER_SECONDS`]) and `reason`
/// (default empty). A target that is already paused keeps its `paused_at` and `paused_by`; the
/// values given replace its retry-after and reason, and those not given (`None`) are kept. The
/// target must exist in master data ([`IntakeError::UnknownTarget`]).
pub async fn pause(
    client: &mut impl GenericClient,
    target: &PauseTarget,
    retry_after_seconds: Option<u32>,
    reason: Option<&str>,
    paused_by: &str,
) -> Result<Paused, IntakeError> {
    if let Some(seconds) = retry_after_seconds
        && !(MIN_RETRY_AFTER_SECONDS..=MAX_RETRY_AFTER_SECONDS).contains(&seconds)
    {
        return Err(IntakeError::InvalidRetryAfter(seconds));
    }
    let reason = reason.map(str::trim);
    let tx = client.transaction().await?;
    let before = pause_row(&tx, target).await?;
    let (retry, reason) = match &before {
        Some(before) => {
            let retry = retry_after_seconds.unwrap_or(before.retry_after_seconds);
            let reason = reason.unwrap_or(&before.reason);
            if retry == before.retry_after_seconds && reason == before.reason {
                // Dropping the transaction rolls it back; nothing was written.
                return Ok(Paused::Unchanged(before.clone()));
            }
            (retry, reason)
        }
        None => {
            if !target.exists(&tx).await? {
                return Err(IntakeError::UnknownTarget(target.clone()));
            }
            (
                retry_after_seconds.unwrap_or(DEFAULT_RETRY_AFTER_SECONDS),
                reason.unwrap_or_default(),
            )
        }
    };
    let retry_i32 = i32::try_from(retry).map_err(|_| IntakeError::InvalidRetryAfter(retry))?;
    let sql = format!(
        "INSERT INTO intake_pauses (scope, target, retry_after_seconds, reason, paused_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (scope, target) DO UPDATE
             SET retry_after_seconds = EXCLUDED.retry_after_seconds, reason = EXCLUDED.reason
         RETURNING {}",
        Pause::COLUMNS
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &target.scope().as_str(),
                &target.target(),
                &retry_i32,
                &reason,
                &paused_by,
            ],
        )
        .await?;
    tx.commit().await?;
    let after = Pause::from_row(&row);
    Ok(match before {
        Some(before) => Paused::Updated { before, after },
        None => Paused::New(after),
    })
}

/// Ends the pause of `target`; `None` when it was not paused (nothing written).
pub async fn resume(
    client: &mut impl GenericClient,
    target: &PauseTarget,
) -> Result<Option<Pause>, IntakeError> {
    let tx = client.transaction().await?;
    let sql = format!(
        "SELECT {} FROM intake_pauses WHERE scope = $1 AND target = $2 FOR UPDATE",
        Pause::COLUMNS
    );
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&target.scope().as_str(), &target.target()];
    let Some(row) = tx.query_opt(&sql, &params).await? else {
        return Ok(None);
    };
    let pause = Pause::from_row(&row);
    tx.execute(
        "DELETE FROM intake_pauses WHERE scope = $1 AND target = $2",
        &params,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(pause))
}

/// Every pause, oldest first.
pub async fn status(client: &impl GenericClient) -> Result<Vec<Pause>, IntakeError> {
    let sql = format!(
        "SELECT {} FROM intake_pauses ORDER BY paused_at, scope, target",
        Pause::COLUMNS
    );
    Ok(client
        .query(&sql, &[])
        .await?
        .iter()
        .map(Pause::from_row)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_targets_are_tenant_slash_device() {
        let target = PauseTarget::parse_device("acme/PT-000123").expect("valid");
        assert_eq!(target.scope(), Scope::Device);
        assert_eq!(target.target(), "acme/PT-000123");
        for bad in ["acme", "acme/", "/PT-1", "ac me/PT-1", "acme/PT 1", "a/b/c"] {
            let error = PauseTarget::parse_device(bad).expect_err(bad);
            assert!(error.to_string().contains("<tenant>/<device>"), "{error}");
        }
    }

    #[test]
    fn scopes_round_trip() {
        for scope in [Scope::Group, Scope::Tenant, Scope::Device] {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
    }
}
