//! The master data the check decides with: tenants (time zone, day change, licence rows) and
//! their employees by card with their history (active range, licence grants), held in memory
//! and swapped atomically. The history is whole, so a punch is judged as of its `at`.
//!
//! Refreshed in the background: LISTEN on `dakoku_master_data` (the master-data triggers
//! notify on every change) plus a periodic check of `master_data_version`. The check only ever
//! reads the current `Arc`, so each lookup is a hash probe. If Postgres goes away, refresh
//! pauses and checking continues on the last snapshot (its age is exported as a metric).

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use dakoku_schemas::{EmployeeId, GroupId};
use dakoku_store::master::history::{ActiveRange, Grants, Licences};
use dakoku_store::master::recorded;
use dakoku_store::snapshot::MasterData;
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::metrics;

/// A tenant as the check sees it.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Its group.
    pub group: GroupId,
    /// Time zone of its work dates.
    pub time_zone: Tz,
    /// Local time at which its work date starts.
    pub day_change: NaiveTime,
    /// Its licence rows (seats on work dates), in recorded order.
    pub licences: Licences,
    employees_by_card: HashMap<String, Employee>,
}

impl Tenant {
    /// A tenant with no employees (for tests and tools).
    pub fn new(group: GroupId, time_zone: Tz, day_change: NaiveTime, licences: Licences) -> Self {
        Self {
            group,
            time_zone,
            day_change,
            licences,
            employees_by_card: HashMap::new(),
        }
    }

    /// The employee holding `card`, if any.
    pub fn employee_by_card(&self, card: &str) -> Option<&Employee> {
        self.employees_by_card.get(card)
    }

    /// Employees known.
    pub fn employee_count(&self) -> usize {
        self.employees_by_card.len()
    }
}

/// An employee as the check sees it: its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    /// The employee id.
    pub employee: EmployeeId,
    /// The active range recorded last.
    pub active: ActiveRange,
    /// Licence grants in recorded order.
    pub grants: Grants,
}

impl Employee {
    /// Whether the employee is active at `at` (ms since the epoch):
    /// `active_from <= at < active_until`.
    pub fn active_at(&self, at: i64) -> bool {
        self.active.contains(at)
    }

    /// Whether the employee holds a licence at `at` (ms since the epoch).
    pub fn licensed_at(&self, at: i64) -> bool {
        self.grants.licensed_at(at)
    }
}

/// One consistent view of the master data.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `master_data_version` it was read at; recorded in every verdict.
    pub version: i64,
    tenants: HashMap<String, Tenant>,
}

impl Snapshot {
    /// An empty snapshot at `version` (for tests and tools that run without Postgres).
    pub fn empty(version: i64) -> Self {
        Self {
            version,
            tenants: HashMap::new(),
        }
    }

    /// Adds or replaces a tenant.
    pub fn insert_tenant(&mut self, tenant: &str, entry: Tenant) {
        self.tenants.insert(tenant.to_owned(), entry);
    }

    /// Adds an employee with `card` to `tenant` (which must exist); returns false otherwise.
    pub fn insert_employee(&mut self, tenant: &str, card: &str, employee: Employee) -> bool {
        match self.tenants.get_mut(tenant) {
            Some(entry) => {
                entry.employees_by_card.insert(card.to_owned(), employee);
                true
            }
            None => false,
        }
    }

    /// The tenant, if known.
    pub fn tenant(&self, tenant: &str) -> Option<&Tenant> {
        self.tenants.get(tenant)
    }

    /// Tenants known.
    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    /// Employees known, over all tenants.
    pub fn employee_count(&self) -> usize {
        self.tenants.values().map(Tenant::employee_count).sum()
    }

    /// Reads a whole snapshot in one repeatable-read, read-only transaction, so it is
    /// consistent with its version.
    pub async fn load(client: &mut Client) -> Result<Self, tokio_postgres::Error> {
        dakoku_store::snapshot::load(client).await
    }

    async fn load_in(tx: &impl GenericClient) -> Result<Self, tokio_postgres::Error> {
        let version: i64 = tx
            .query_one("SELECT version FROM master_data_version", &[])
            .await?
            .get(0);
        let mut snapshot = Self::empty(version);
        let mut licences = recorded::licences(tx, None).await?;
        let tenants = tx
            .query(
                "SELECT tenant_id, group_id, time_zone, day_change_time FROM tenants",
                &[],
            )
            .await?;
        for row in tenants {
            let tenant: String = row.get(0);
            let group: String = row.get(1);
            let zone: String = row.get(2);
            // The CLI validates both; a row that still fails is skipped loudly (its punches
            // get `unknown_tenant`, which a recheck revisits) rather than failing the snapshot.
            let (Ok(group), Ok(time_zone)) = (group.parse::<GroupId>(), zone.parse::<Tz>()) else {
                tracing::error!(
                    tenant,
                    group,
                    time_zone = zone,
                    "skipping tenant with an invalid group or time zone; fix it in master data"
                );
                continue;
            };
            let rows = licences.remove(&tenant).unwrap_or_default();
            let entry = Tenant::new(group, time_zone, row.get(3), rows);
            snapshot.tenants.insert(tenant, entry);
        }
        let ranges = recorded::ranges(tx, None).await?;
        let mut grants = recorded::grants(tx, None).await?;
        let employees = tx
            .query("SELECT tenant_id, employee_id, card_id FROM employees", &[])
            .await?;
        for row in employees {
            let key: (String, String) = (row.get(0), row.get(1));
            let Ok(employee) = key.1.parse::<EmployeeId>() else {
                tracing::error!(
                    tenant = key.0,
                    employee = key.1,
                    "skipping employee with an invalid id"
                );
                continue;
            };
            let card: String = row.get(2);
            let entry = Employee {
                employee,
                active: ranges.get(&key).copied().unwrap_or_default(),
                grants: grants.remove(&key).unwrap_or_default(),
            };
            snapshot.insert_employee(&key.0, &card, entry);
        }
        Ok(snapshot)
    }
}

/// The check's snapshot cell; kept current by [`refresh`].
pub type SnapshotCell = dakoku_store::snapshot::SnapshotCell<Snapshot>;

pub use dakoku_store::snapshot::refresh;

impl MasterData for Snapshot {
    async fn read(tx: &Transaction<'_>) -> Result<Self, tokio_postgres::Error> {
        Snapshot::load_in(tx).await
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn loaded(&self, took: Duration) {
        tracing::info!(
            version = self.version,
            tenants = self.tenant_count(),
            employees = self.employee_count(),
            load_ms = took.as_millis() as u64,
            "master-data snapshot loaded"
        );
        metrics::snapshot_loaded(self.version);
    }

    fn database_health(ok: bool) {
        metrics::snapshot_database_ok(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dakoku_store::master::history::Grant;

    #[test]
    fn activity_is_half_open_and_licence_follows_the_grants() {
        let employee = Employee {
            employee: "E-1".parse().expect("employee"),
            active: ActiveRange {
                from: Some(1_000),
                until: Some(2_000),
            },
            grants: Grants(vec![Grant {
                granted: true,
                range: ActiveRange {
                    from: Some(1_500),
                    until: None,
                },
            }]),
        };
        assert!(!employee.active_at(999));
        assert!(employee.active_at(1_000));
        assert!(employee.active_at(1_999));
        assert!(!employee.active_at(2_000));
        assert!(!employee.licensed_at(1_499) && employee.licensed_at(1_500));
        let open = ActiveRange::default();
        assert!(open.contains(i64::MIN) && open.contains(i64::MAX));
    }
}
