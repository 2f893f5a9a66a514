//! Following the master data: a service holds one consistent snapshot in memory, swaps it
//! atomically, and keeps it current with LISTEN on `dakoku_master_data` plus a periodic check
//! of `master_data_version`. The acceptor and licence-check each say what their snapshot holds
//! ([`MasterData`]); how it is loaded, followed and kept through a Postgres outage is here.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio_postgres::{Client, Transaction};

use crate::{Notified, StoreError, connect_notified};

/// The channel the master-data triggers notify on (migration V1).
pub const CHANNEL: &str = "dakoku_master_data";

/// What a service's snapshot holds and how it is read.
pub trait MasterData: Sized + Send + Sync + 'static {
    /// Reads a whole snapshot inside the repeatable-read, read-only transaction that [`load`]
    /// opens, so everything read is consistent with one `master_data_version`.
    fn read(
        tx: &Transaction<'_>,
    ) -> impl Future<Output = Result<Self, tokio_postgres::Error>> + Send;

    /// The `master_data_version` it was read at.
    fn version(&self) -> i64;

    /// Called once a snapshot loaded by [`refresh`] is in use, with how long the load took:
    /// the place to log it and update metrics.
    fn loaded(&self, took: Duration);

    /// Called when contact with Postgres fails (`false`) or is confirmed again (`true`).
    fn database_health(_ok: bool) {}
}

/// Reads a snapshot in one repeatable-read, read-only transaction.
pub async fn load<T: MasterData>(client: &mut Client) -> Result<T, tokio_postgres::Error> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let snapshot = T::read(&tx).await?;
    tx.commit().await?;
    Ok(snapshot)
}

/// Shared access to the current snapshot and its health. Readers only ever load an `Arc`.
#[derive(Debug)]
pub struct SnapshotCell<T> {
    current: ArcSwapOption<T>,
    confirmed_at: ArcSwapOption<Instant>,
    database_ok: AtomicBool,
}

impl<T> Default for SnapshotCell<T> {
    fn default() -> Self {
        Self {
            current: ArcSwapOption::empty(),
            confirmed_at: ArcSwapOption::empty(),
            database_ok: AtomicBool::new(false),
        }
    }
}

impl<T> SnapshotCell<T> {
    /// The current snapshot, `None` until the first load.
    pub fn get(&self) -> Option<Arc<T>> {
        self.current.load_full()
    }

    /// Installs a snapshot (also used by tests and tools that run without Postgres).
    pub fn set(&self, snapshot: T) {
        self.current.store(Some(Arc::new(snapshot)));
        self.confirm();
    }

    /// Time since the snapshot was last confirmed current, `None` before the first load.
    pub fn age(&self) -> Option<Duration> {
        self.confirmed_at.load().as_ref().map(|at| at.elapsed())
    }

    /// Whether the last contact with Postgres worked.
    pub fn database_ok(&self) -> bool {
        self.database_ok.load(Ordering::Relaxed)
    }

    fn confirm(&self) {
        self.confirmed_at.store(Some(Arc::new(Instant::now())));
        self.database_ok.store(true, Ordering::Relaxed);
    }

    fn database_failed(&self) {
        self.database_ok.store(false, Ordering::Relaxed);
    }
}

/// Keeps `cell` current until `shutdown` resolves: reloads on every notification and checks
/// the version every `poll`. While Postgres is away the last snapshot stays in use (that is
/// the point of holding it) and this reconnects with backoff.
pub async fn refresh<T: MasterData>(
    database_url: String,
    cell: Arc<SnapshotCell<T>>,
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
                    T::database_health(false);
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64,
                        "master data unavailable; continuing on the last snapshot");
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

/// Why following stopped (the caller reconnects).
#[derive(Debug, thiserror::Error)]
enum FollowError {
    /// No connection.
    #[error(transparent)]
    Connect(#[from] StoreError),
    /// A query failed or the connection broke.
    #[error(transparent)]
    Query(#[from] tokio_postgres::Error),
}

/// One connection's life: LISTEN, load, then reload on notification or version change.
/// Returns only with an error (the caller reconnects).
async fn follow<T: MasterData>(
    database_url: &str,
    cell: &SnapshotCell<T>,
    poll: Duration,
) -> Result<(), FollowError> {
    let mut notified: Notified = connect_notified(database_url).await?;
    let client = &mut notified.client;
    let notify_rx = &mut notified.notifications;
    // LISTEN before the first load, so no change between the two goes unnoticed.
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    let mut loaded = load_into(client, cell).await?;
    loop {
        tokio::select! {
            message = notify_rx.recv() => {
                if message.is_none() {
                    // The connection driver ended: surface that as an error by querying.
                    client.simple_query("SELECT 1").await?;
                }
                loaded = load_into(client, cell).await?;
            }
            () = tokio::time::sleep(poll) => {
                let version: i64 = client
                    .query_one("SELECT version FROM master_data_version", &[])
                    .await?
                    .get(0);
                if version == loaded {
                    cell.confirm();
                    T::database_health(true);
                } else {
                    loaded = load_into(client, cell).await?;
                }
            }
        }
    }
}

async fn load_into<T: MasterData>(
    client: &mut Client,
    cell: &SnapshotCell<T>,
) -> Result<i64, tokio_postgres::Error> {
    let started = Instant::now();
    let snapshot: T = load(client).await?;
    let version = snapshot.version();
    snapshot.loaded(started.elapsed());
    cell.set(snapshot);
    T::database_health(true);
    Ok(version)
}
