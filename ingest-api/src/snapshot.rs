//! The master-data snapshot the acceptor decides with: tenant -> group routing, revoked
//! devices and intake pauses, held in memory and swapped atomically.
//!
//! It is refreshed in the background (LISTEN/NOTIFY on `dakoku_master_data`, plus a periodic
//! check of `master_data_version`); the request path only ever reads the current `Arc`. If
//! Postgres goes away the acceptor keeps serving from the last snapshot and says so in
//! `/readyz` and the metrics.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use dakoku_schemas::GroupId;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// The channel the master-data triggers notify on.
pub const CHANNEL: &str = "dakoku_master_data";

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
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
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
        tx.commit().await?;
        Ok(snapshot)
    }
}

/// Shared access to the current snapshot and its health.
#[derive(Debug, Default)]
pub struct SnapshotCell {
    current: ArcSwapOption<Snapshot>,
    refreshed_at: ArcSwapOption<Instant>,
    database_ok: AtomicBool,
}

impl SnapshotCell {
    /// The current snapshot, `None` until the first load.
    pub fn get(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// Installs a snapshot (also used by tests).
    pub fn set(&self, snapshot: Snapshot) {
        self.current.store(Some(Arc::new(snapshot)));
        self.refreshed_at.store(Some(Arc::new(Instant::now())));
    }

    /// Seconds since the snapshot was last confirmed current, `None` before the first load.
    pub fn age(&self) -> Option<Duration> {
        self.refreshed_at.load().as_ref().map(|at| at.elapsed())
    }

    /// Whether the last contact with Postgres worked.
    pub fn database_ok(&self) -> bool {
        self.database_ok.load(Ordering::Relaxed)
    }

    fn confirm(&self) {
        self.refreshed_at.store(Some(Arc::new(Instant::now())));
        self.database_ok.store(true, Ordering::Relaxed);
    }

    fn database_failed(&self) {
        self.database_ok.store(false, Ordering::Relaxed);
    }
}

/// Keeps `cell` current until `shutdown` resolves: reloads on every notification and checks
/// the version every `poll`; reconnects with backoff when Postgres is away.
pub async fn refresh(
    database_url: String,
    cell: Arc<SnapshotCell>,
    poll: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            result = follow(&database_url, &cell, poll) => {
                if let Err(error) = result {
                    cell.database_failed();
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64,
                        "master data unavailable; serving from the last snapshot");
                }
            }
        }
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One connection's life: LISTEN, load, then reload on notification or version change.
/// Returns only with an error (the caller reconnects).
async fn follow(
    database_url: &str,
    cell: &SnapshotCell,
    poll: Duration,
) -> Result<(), tokio_postgres::Error> {
    let (mut client, mut connection) = tokio_postgres::connect(database_url, NoTls).await?;
    let (notify_tx, mut notify_rx) = mpsc::channel::<()>(1);
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    // A full channel already means "reload"; coalesce bursts of changes.
                    let _ = notify_tx.try_send(());
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "master-data connection ended");
                    break;
                }
            }
        }
    });
    let _abort = AbortOnDrop(driver);
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    let mut loaded = load_into(&mut client, cell).await?;
    loop {
        tokio::select! {
            message = notify_rx.recv() => {
                if message.is_none() {
                    // The connection driver ended: surface it as an error by querying.
                    client.simple_query("SELECT 1").await?;
                }
                loaded = load_into(&mut client, cell).await?;
            }
            () = tokio::time::sleep(poll) => {
                let version: i64 = client
                    .query_one("SELECT version FROM master_data_version", &[])
                    .await?
                    .get(0);
                if version != loaded {
                    loaded = load_into(&mut client, cell).await?;
                } else {
                    cell.confirm();
                }
            }
        }
    }
}

async fn load_into(client: &mut Client, cell: &SnapshotCell) -> Result<i64, tokio_postgres::Error> {
    let snapshot = Snapshot::load(client).await?;
    let version = snapshot.version;
    tracing::info!(
        version,
        tenants = snapshot.tenant_count(),
        "master-data snapshot loaded"
    );
    cell.set(snapshot);
    cell.confirm();
    crate::metrics::snapshot_loaded(version);
    Ok(version)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
