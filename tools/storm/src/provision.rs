//! The storm's fleet in the master data: tenants with an open licence, their recorders with
//! device tokens, and the licensed employees whose cards the recorders punch, so the licence
//! check accepts every storm punch and attendance counts it.
//!
//! Tenants, licences and devices go through `dakoku_store::master`, the code behind `punchctl
//! tenant add`, `licence set` and `device add`, and tokens are minted with `dakoku_token` as
//! `device add` mints them, exactly as an operator would make them. Employees are inserted in
//! one statement per tenant: 50,000 `employee add` round trips would only slow the set-up.

use anyhow::Context as _;
use dakoku_schemas::{DeviceId, GroupId, TenantId};
use dakoku_store::master::{self, LicenceTerms, NewTenant};
use dakoku_token::{DeviceClaims, TokenKeys};

use crate::sim::Recorder;

/// Days the storm's device tokens are valid.
const TOKEN_VALID_DAYS: i64 = 7;

/// What to create.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// The tenant group (created with the first tenant).
    pub group: GroupId,
    /// A unique prefix for tenant ids and cards (e.g. the group id).
    pub prefix: String,
    /// Recorders, spread round-robin over the tenants.
    pub devices: usize,
    /// Tenants.
    pub tenants: usize,
    /// Employees (cards) per recorder.
    pub employees_per_device: usize,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The group.
    pub group: GroupId,
    /// The tenants.
    pub tenants: Vec<TenantId>,
    /// The recorders, with tokens and cards.
    pub recorders: Vec<Recorder>,
}

/// Creates the fleet described by `spec` and mints a token per recorder with `keys` (the
/// keys of the acceptor the storm will target). Idempotent for the same spec.
pub async fn provision(
    client: &mut tokio_postgres::Client,
    spec: &FleetSpec,
    keys: &TokenKeys,
) -> anyhow::Result<Fleet> {
    anyhow::ensure!(
        spec.devices > 0 && spec.tenants > 0 && spec.employees_per_device > 0,
        "a fleet needs at least one device, tenant and employee per device"
    );
    let tenant_count = spec.tenants.min(spec.devices);
    let tenants: Vec<TenantId> = (0..tenant_count)
        .map(|t| format!("{}-t{t:04}", spec.prefix).parse())
        .collect::<Result<_, _>>()
        .context("storm tenant id (prefix too long?)")?;
    let expires_at = chrono::Utc::now().timestamp() + TOKEN_VALID_DAYS * 86_400;
    let mut recorders = Vec::with_capacity(spec.devices);
    for (t, tenant) in tenants.iter().enumerate() {
        master::add_tenant(
            client,
            &NewTenant::with_defaults(tenant.clone(), "storm tenant", spec.group.clone()),
        )
        .await
        .with_context(|| format!("punchctl tenant add {tenant}"))?;
        let devices: Vec<usize> = (t..spec.devices).step_by(tenant_count).collect();
        let seats = u32::try_from(devices.len() * spec.employees_per_device)?;
        master::set_licence(
            client,
            tenant,
            LicenceTerms {
                seats,
                valid_from: None,
                valid_until: None,
            },
        )
        .await
        .with_context(|| format!("punchctl licence set {tenant}"))?;
        let mut employee_ids = Vec::with_capacity(seats as usize);
        let mut cards = Vec::with_capacity(seats as usize);
        for &d in &devices {
            let device: DeviceId = format!("PT-{d:06}").parse()?;
            master::add_device(&*client, tenant, &device)
                .await
                .with_context(|| format!("punchctl device add {tenant}/{device}"))?;
            let token = keys.mint(&DeviceClaims {
                tenant: tenant.clone(),
                device: device.clone(),
                expires_at,
            });
            let device_cards: Vec<String> = (0..spec.employees_per_device)
                .map(|e| format!("{}-D{d:06}E{e:03}", spec.prefix))
                .collect();
            for (e, card) in device_cards.iter().enumerate() {
                employee_ids.push(format!("E{d:06}-{e:03}"));
                cards.push(card.clone());
            }
            recorders.push((
                d,
                Recorder {
                    tenant: tenant.clone(),
                    device,
                    token,
                    cards: device_cards,
                },
            ));
        }
        client
            .execute(
                // One statement for thousands of employees: each active and licensed from
                // always (master data is history: a range row and a grant row each).
                "WITH new AS (INSERT INTO employees (tenant_id, employee_id, card_id, name) \
                 SELECT $1, e, c, 'storm employee' FROM unnest($2::text[], $3::text[]) AS x(e, c) \
                 ON CONFLICT DO NOTHING RETURNING tenant_id, employee_id), \
                 ranges AS (INSERT INTO employee_ranges (tenant_id, employee_id) \
                 SELECT tenant_id, employee_id FROM new) \
                 INSERT INTO licence_grants (tenant_id, employee_id, granted) \
                 SELECT tenant_id, employee_id, true FROM new",
                &[&tenant.as_str(), &employee_ids, &cards],
            )
            .await
            .with_context(|| format!("inserting the employees of {tenant}"))?;
    }
    recorders.sort_by_key(|(d, _)| *d);
    Ok(Fleet {
        group: spec.group.clone(),
        tenants,
        recorders: recorders.into_iter().map(|(_, r)| r).collect(),
    })
}

/// Removes the fleet's master data (employees, devices, tenants, and the group if it is then
/// empty). Only needed when the fleet lives in a shared database.
pub async fn remove(client: &mut tokio_postgres::Client, fleet: &Fleet) -> anyhow::Result<()> {
    let tenants: Vec<&str> = fleet.tenants.iter().map(TenantId::as_str).collect();
    let tx = client.transaction().await?;
    for table in ["employees", "devices", "tenants"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE tenant_id = ANY($1)"),
            &[&tenants],
        )
        .await
        .with_context(|| format!("deleting the storm's {table}"))?;
    }
    tx.execute(
        "DELETE FROM tenant_groups g WHERE group_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.group_id = g.group_id)",
        &[&fleet.group.as_str()],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
