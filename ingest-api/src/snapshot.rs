//! The master-data snapshot the acceptor decides with: tenant -> group routing, revoked
//! devices and intake pauses, held in memory and swapped atomically.
//!
//! It is refreshed in the background (LISTEN/NOTIFY on `dakoku_master_data`, plus a periodic
//! check of `master_data_version`); the request path only ever reads the current `Arc`. If
//! Postgres goes away the acceptor keeps serving from the last snapshot and says so in
//! `/readyz` and the metrics.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use dakoku_schemas::GroupId;
use dakoku_store::snapshot::MasterData;
use tokio_postgres::{Client, Transaction};

/// An operator's pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// Seconds the operator asked recorders to wait.
    pub retry_after_seconds: u32,
    /// Why, for the refusal message.
    pub reason: String,
}

/// What the snapshot says about a device's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission<'a> {
    /// Route the punches to this group's topic.
    Route(&'a GroupId),
    /// The tenant is unknown.
    UnknownTenant,
    /// The device is revoked.
    Revoked,
    /// Intake is paused for the device, its tenant or its group (the narrowest wins).
    Paused(&'static str, &'a Pause),
}

/// One consistent view of the master data.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `master_data_version` it was read at.
    pub version: i64,
    tenants: HashMap<String, GroupId>,
    revoked: HashSet<String>,
    paused_groups: HashMap<String, Pause>,
    paused_tenants: HashMap<String, Pause>,
    paused_devices: HashMap<String, Pause>,
}

impl Snapshot {
    /// Decides a request from `tenant` by `device_key` (`<tenant>/<device>`).
    pub fn admit(&self, tenant: &str, device_key: &str) -> Admission<'_> {
        let Some(group) = self.tenants.get(tenant) else {
            return Admission::UnknownTenant;
        };
        if self.revoked.contains(device_key) {
            return Admission::Revoked;
        }
        if let Some(pause) = self.paused_devices.get(device_key) {
            return Admission::Paused("device", pause);
        }
        if let Some(pause) = self.paused_tenants.get(tenant) {
            return Admission::Paused("tenant", pause);
        }
        if let Some(pause) = self.paused_groups.get(group.as_str()) {
            return Admission::Paused("group", pause);
        }
        Admission::Route(group)
    }

    /// This snapshot with `tenant` routed to `group` (for tests and tools that run without
    /// Postgres).
    pub fn with_tenant(mut self, tenant: &str, group: GroupId) -> Self {
        self.tenants.insert(tenant.to_owned(), group);
        self
    }

    /// Tenants known.
    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    /// Reads a whole snapshot in one repeatable-read transaction, so it is consistent.
    pub async fn load(client: &mut Client) -> Result<Self, tokio_postgres::Error> {
        dakoku_store::snapshot::load(client).await
    }

    async fn read_in(tx: &Transaction<'_>) -> Result<Self, tokio_postgres::Error> {
        let version: i64 = tx
            .query_one("SELECT version FROM master_data_version", &[])
            .await?
            .get(0);
        let mut snapshot = Snapshot {
            version,
            ..Snapshot::default()
        };
        for row in tx
            .query("SELECT tenant_id, group_id FROM tenants", &[])
            .await?
        {
            let group: String = row.get(1);
            // The schema's CHECK guarantees the format; a row that still fails is skipped
            // loudly rather than taking the whole snapshot down.
            match GroupId::from_str(&group) {
                Ok(group) => {
                    snapshot.tenants.insert(row.get(0), group);
                }
                Err(error) => tracing::error!(%error, "skipping tenant with an invalid group"),
            }
        }
        for row in tx
            .query(
                "SELECT tenant_id || '/' || device_id FROM devices WHERE revoked_at IS NOT NULL",
                &[],
            )
            .await?
        {
            snapshot.revoked.insert(row.get(0));
        }
        for row in tx
            .query(
                "SELECT scope, target, retry_after_seconds, reason FROM intake_pauses",
                &[],
            )
            .await?
        {
            let scope: String = row.get(0);
            let seconds: i32 = row.get(2);
            let pause = Pause {
                retry_after_seconds: u32::try_from(seconds).unwrap_or(1).max(1),
                reason: row.get(3),
            };
            let map = match scope.as_str() {
                "group" => &mut snapshot.paused_groups,
                "tenant" => &mut snapshot.paused_tenants,
                _ => &mut snapshot.paused_devices,
            };
            map.insert(row.get(1), pause);
        }
        Ok(snapshot)
    }
}

/// The acceptor's snapshot cell; kept current by [`refresh`].
pub type SnapshotCell = dakoku_store::snapshot::SnapshotCell<Snapshot>;

pub use dakoku_store::snapshot::refresh;

impl MasterData for Snapshot {
    async fn read(tx: &Transaction<'_>) -> Result<Self, tokio_postgres::Error> {
        Snapshot::read_in(tx).await
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn loaded(&self, took: Duration) {
        tracing::info!(
            version = self.version,
            tenants = self.tenant_count(),
            load_ms = took.as_millis() as u64,
            "master-data snapshot loaded"
        );
        crate::metrics::snapshot_loaded(self.version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut s = Snapshot::default();
        s.tenants
            .insert("acme".into(), "g1".parse().expect("group"));
        s.revoked.insert("acme/old".into());
        s
    }

    fn pause(seconds: u32) -> Pause {
        Pause {
            retry_after_seconds: seconds,
            reason: String::new(),
        }
    }

    #[test]
    fn routes_known_tenants_and_refuses_the_rest() {
        let s = snapshot();
        assert!(matches!(s.admit("acme", "acme/PT-1"), Admission::Route(g) if g.as_str() == "g1"));
        assert_eq!(s.admit("other", "other/PT-1"), Admission::UnknownTenant);
        assert_eq!(s.admit("acme", "acme/old"), Admission::Revoked);
    }

    #[test]
    fn the_narrowest_pause_wins() {
        let mut s = snapshot();
        s.paused_groups.insert("g1".into(), pause(300));
        assert_eq!(
            s.admit("acme", "acme/PT-1"),
            Admission::Paused("group", &pause(300))
        );
        s.paused_tenants.insert("acme".into(), pause(200));
        assert_eq!(
            s.admit("acme", "acme/PT-1"),
            Admission::Paused("tenant", &pause(200))
        );
        s.paused_devices.insert("acme/PT-1".into(), pause(100));
        assert_eq!(
            s.admit("acme", "acme/PT-1"),
            Admission::Paused("device", &pause(100))
        );
        assert_eq!(
            s.admit("acme", "acme/PT-2"),
            Admission::Paused("tenant", &pause(200))
        );
    }
}
