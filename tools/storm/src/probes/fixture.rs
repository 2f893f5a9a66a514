//! Where the acceptor under probe is, the two throw-away probe tenants, and the report.

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use dakoku_schemas::{DeviceId, GroupId, TenantId};
use dakoku_store::master::{self, NewTenant};
use dakoku_token::TokenKeys;

/// Where the acceptor under probe is, and what it trusts.
#[derive(Debug, Clone)]
pub struct ProbeEnv {
    /// `http://host:port` of ingest-api.
    pub base_url: String,
    /// Kafka bootstrap servers (to read the raw topic).
    pub brokers: String,
    /// Postgres of the acceptor's master data (to create the probe tenants).
    pub database_url: String,
    /// The group the probe tenants are created in (its topics must exist).
    pub group: GroupId,
    /// The acceptor's signing keys (`DAKOKU_TOKEN_KEYS`): valid and expired tokens are minted
    /// with them; forged ones with a key of our own.
    pub keys: TokenKeys,
    /// The acceptor's largest body (`max_body_bytes`) and batch (`max_punches`).
    pub max_body_bytes: usize,
    /// See [`ProbeEnv::max_body_bytes`].
    pub max_punches: usize,
    /// Longest the acceptor may take to drop a slow client (its header or body read timeout
    /// plus a margin).
    pub slow_client_deadline: Duration,
}

/// The probe tenants and devices, made by [`provision`].
#[derive(Debug, Clone)]
pub struct ProbeFixture {
    /// Tenant A (the probes' own tenant).
    pub tenant_a: TenantId,
    /// Tenant B (the one A must not reach).
    pub tenant_b: TenantId,
    /// A's live device.
    pub device_a: DeviceId,
    /// B's live device.
    pub device_b: DeviceId,
    /// A's revoked device.
    pub revoked: DeviceId,
}

/// One probe's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeOutcome {
    /// What was sent.
    pub name: String,
    /// The documented answer.
    pub expected: String,
    /// The answer.
    pub got: String,
    /// How long the answer took, milliseconds.
    pub millis: u64,
    /// `got` matches `expected`.
    pub ok: bool,
}

/// All probes and the leak check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeReport {
    /// Each probe.
    pub probes: Vec<ProbeOutcome>,
    /// Raw records of the probe tenants found in the log.
    pub raw_records_of_probe_tenants: usize,
    /// Those that are not control punches: must be empty.
    pub leaked: Vec<String>,
    /// Control punches (acked) not found: must be empty, else the leak check read nothing.
    pub missing_controls: Vec<String>,
}

impl ProbeReport {
    /// Every probe answered as documented and nothing leaked.
    pub fn passed(&self) -> bool {
        self.probes.iter().all(|p| p.ok)
            && self.leaked.is_empty()
            && self.missing_controls.is_empty()
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.probes {
            writeln!(
                f,
                "{} {:<44} expected {:<34} got {} ({} ms)",
                if p.ok { "ok  " } else { "FAIL" },
                p.name,
                p.expected,
                p.got,
                p.millis
            )?;
        }
        writeln!(
            f,
            "raw topic: {} records of the probe tenants, all control punches: {}",
            self.raw_records_of_probe_tenants,
            if self.leaked.is_empty() {
                "yes".to_owned()
            } else {
                format!("NO, leaked {:?}", self.leaked)
            }
        )?;
        if !self.missing_controls.is_empty() {
            writeln!(
                f,
                "control punches missing from the log: {:?}",
                self.missing_controls
            )?;
        }
        Ok(())
    }
}

/// Creates tenants `probe-a-<suffix>` and `probe-b-<suffix>` in `env.group`, a live device
/// each and a revoked device of A.
pub async fn provision(env: &ProbeEnv, suffix: &str) -> anyhow::Result<ProbeFixture> {
    let client = dakoku_store::connect(&env.database_url)
        .await
        .context("connecting to Postgres to create the probe tenants")?;
    let fixture = ProbeFixture {
        tenant_a: format!("probe-a-{suffix}").parse()?,
        tenant_b: format!("probe-b-{suffix}").parse()?,
        device_a: "PROBE-A".parse()?,
        device_b: "PROBE-B".parse()?,
        revoked: "PROBE-REVOKED".parse()?,
    };
    let mut client = client;
    for tenant in [&fixture.tenant_a, &fixture.tenant_b] {
        master::add_tenant(
            &mut client,
            &NewTenant::with_defaults(tenant.clone(), "security probe", env.group.clone()),
        )
        .await?;
    }
    master::add_device(&client, &fixture.tenant_a, &fixture.device_a).await?;
    master::add_device(&client, &fixture.tenant_b, &fixture.device_b).await?;
    master::add_device(&client, &fixture.tenant_a, &fixture.revoked).await?;
    master::revoke_device(
        &client,
        &fixture.tenant_a,
        &fixture.revoked,
        "security probe",
    )
    .await?;
    Ok(fixture)
}

/// Removes the probe tenants' devices and tenants from the master data (their control punches
/// stay in the log, as everything does).
pub async fn remove(env: &ProbeEnv, fixture: &ProbeFixture) -> anyhow::Result<()> {
    let mut client = dakoku_store::connect(&env.database_url).await?;
    let tenants = [fixture.tenant_a.as_str(), fixture.tenant_b.as_str()];
    let tx = client.transaction().await?;
    for table in ["devices", "tenants"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE tenant_id = ANY($1)"),
            &[&&tenants[..]],
        )
        .await
        .with_context(|| format!("removing the probe tenants from {table}"))?;
    }
    tx.commit().await?;
    Ok(())
}
