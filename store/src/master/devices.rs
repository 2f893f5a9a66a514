//! Recorders (devices) of a tenant: register (idempotent; a revoked id stays revoked), revoke
//! and list. Tokens for them are signed elsewhere (the `token` keys are not Postgres's business).

use chrono::{DateTime, Utc};
use dakoku_schemas::{DeviceId, TenantId};
use tokio_postgres::{GenericClient, Row};

use super::outcome::Added;
use super::tenants::MasterError;

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The tenant that owns it.
    pub tenant: TenantId,
    /// The device id.
    pub device: DeviceId,
    /// Free text; `device revoke --reason` appends `[revoked: <reason>]`.
    pub description: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Device {
    const COLUMNS: &'static str = "tenant_id, device_id, description, created_at, revoked_at";

    fn from_row(row: &Row) -> Self {
        Self {
            tenant: TenantId::try_from(row.get::<_, String>(0))
                .expect("devices.tenant_id references a valid tenant id"),
            device: DeviceId::try_from(row.get::<_, String>(1))
                .expect("devices.device_id CHECK matches DeviceId"),
            description: row.get(2),
            created_at: row.get(3),
            revoked_at: row.get(4),
        }
    }
}

async fn device_row(
    client: &impl GenericClient,
    tenant: &TenantId,
    device: &DeviceId,
) -> Result<Option<Device>, MasterError> {
    let sql = format!(
        "SELECT {} FROM devices WHERE tenant_id = $1 AND device_id = $2",
        Device::COLUMNS
    );
    Ok(client
        .query_opt(&sql, &[&tenant.as_str(), &device.as_str()])
        .await?
        .map(|row| Device::from_row(&row)))
}

async fn require_tenant(client: &impl GenericClient, tenant: &TenantId) -> Result<(), MasterError> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM tenants WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(MasterError::TenantNotFound(tenant.clone()))
    }
}

fn live_or_revoked(device: Device, outcome: Added) -> Result<(Added, Device), MasterError> {
    match device.revoked_at {
        Some(revoked_at) => Err(MasterError::DeviceRevoked {
            tenant: device.tenant,
            device: device.device,
            revoked_at,
        }),
        None => Ok((outcome, device)),
    }
}

/// Registers `device` for `tenant`.
///
/// Idempotent for a live device ([`Added::Unchanged`], nothing written); a revoked device is
/// refused ([`MasterError::DeviceRevoked`]), an unknown tenant too ([`MasterError::TenantNotFound`]).
pub async fn add_device(
    client: &impl GenericClient,
    tenant: &TenantId,
    device: &DeviceId,
) -> Result<(Added, Device), MasterError> {
    if let Some(stored) = device_row(client, tenant, device).await? {
        return live_or_revoked(stored, Added::Unchanged);
    }
    require_tenant(client, tenant).await?;
    let sql = format!(
        "INSERT INTO devices (tenant_id, device_id) VALUES ($1, $2)
         ON CONFLICT (tenant_id, device_id) DO NOTHING
         RETURNING {}",
        Device::COLUMNS
    );
    let inserted = client
        .query_opt(&sql, &[&tenant.as_str(), &device.as_str()])
        .await
        .map_err(|e| {
            // The tenant vanished between the check and the insert (foreign key).
            if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                MasterError::TenantNotFound(tenant.clone())
            } else {
                MasterError::Db(e)
            }
        })?;
    match inserted {
        Some(row) => Ok((Added::Created, Device::from_row(&row))),
        // A concurrent add inserted it first; judge what it stored.
        None => {
            let stored = device_row(client, tenant, device).await?.ok_or_else(|| {
                MasterError::DeviceNotFound {
                    tenant: tenant.clone(),
                    device: device.clone(),
                }
            })?;
            live_or_revoked(stored, Added::Unchanged)
        }
    }
}

/// What [`revoke_device`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked now.
    Now(Device),
    /// It had been revoked before (left unchanged, its `revoked_at` kept).
    Already(Device),
}

impl Revoked {
    /// The device as stored after the call.
    pub fn device(&self) -> &Device {
        match self {
            Self::Now(device) | Self::Already(device) => device,
        }
    }
}

/// Revokes a device: its tokens are refused (`403`) once acceptors have reloaded master data.
///
/// Idempotent: a device revoked before stays as it was ([`Revoked::Already`]). The schema has no
/// reason column, so a non-empty `reason` is appended to the description as `[revoked: ...]`.
pub async fn revoke_device(
    client: &impl GenericClient,
    tenant: &TenantId,
    device: &DeviceId,
    reason: &str,
) -> Result<Revoked, MasterError> {
    let not_found = || MasterError::DeviceNotFound {
        tenant: tenant.clone(),
        device: device.clone(),
    };
    let stored = device_row(client, tenant, device)
        .await?
        .ok_or_else(not_found)?;
    if stored.revoked_at.is_some() {
        return Ok(Revoked::Already(stored));
    }
    let sql = format!(
        "UPDATE devices SET revoked_at = now(),
             description = CASE WHEN $3 = '' THEN description
                                ELSE ltrim(description || ' [revoked: ' || $3 || ']') END
         WHERE tenant_id = $1 AND device_id = $2 AND revoked_at IS NULL
         RETURNING {}",
        Device::COLUMNS
    );
    let reason = reason.trim();
    match client
        .query_opt(&sql, &[&tenant.as_str(), &device.as_str(), &reason])
        .await?
    {
        Some(row) => Ok(Revoked::Now(Device::from_row(&row))),
        // Revoked concurrently between our read and our update.
        None => Ok(Revoked::Already(
            device_row(client, tenant, device)
                .await?
                .ok_or_else(not_found)?,
        )),
    }
}

/// The devices of `tenant`, sorted by id; an unknown tenant is an error, not an empty list.
pub async fn list_devices(
    client: &impl GenericClient,
    tenant: &TenantId,
) -> Result<Vec<Device>, MasterError> {
    require_tenant(client, tenant).await?;
    let sql = format!(
        "SELECT {} FROM devices WHERE tenant_id = $1 ORDER BY device_id",
        Device::COLUMNS
    );
    Ok(client
        .query(&sql, &[&tenant.as_str()])
        .await?
        .iter()
        .map(Device::from_row)
        .collect())
}
