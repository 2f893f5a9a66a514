//! The master data the check decides with: tenants (time zone, day change, licence) and their
//! employees by card, held in memory and swapped atomically.
//!
//! Refreshed in the background: LISTEN on `dakoku_master_data` (the master-data triggers
//! notify on every change) plus a periodic check of `master_data_version`. The check only ever
//! reads the current `Arc`, so each lookup is a hash probe. If Postgres goes away, refresh
//! pauses and checking continues on the last snapshot (its age is exported as a metric).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use dakoku_schemas::{EmployeeId, GroupId};
use dakoku_store::snapshot::MasterData;
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::metrics;

/// A tenant's licence: seats and the inclusive range of work dates it is valid on.
///
/// A tenant with no seats has no licence (`punchctl licence set` never ran): it is valid on
/// no date. `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Licence {
    /// `licence_seats`.
    pub seats: u32,
    /// First valid work date, inclusive.
    pub valid_from: Option<NaiveDate>,
    /// Last valid work date, inclusive.
    pub valid_until: Option<NaiveDate>,
}

impl Licence {
    /// Whether the licence covers `work_date`.
    pub fn valid_on(&self, work_date: NaiveDate) -> bool {
        self.seats > 0
            && self.valid_from.is_none_or(|from| from <= work_date)
            && self.valid_until.is_none_or(|until| work_date <= until)
    }

    /// Whether validity depends on the date at all (else the work date need not be computed).
    pub fn is_bounded(&self) -> bool {
        self.valid_from.is_some() || self.valid_until.is_some()
    }
}

/// A tenant as the check sees it.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Its group.
    pub group: GroupId,
    /// Time zone of its work dates.
    pub time_zone: Tz,
    /// Local time at which its work date starts.
    pub day_change: NaiveTime,
    /// Its licence.
    pub licence: Licence,
    employees_by_card: HashMap<String, Employee>,
}

impl Tenant {
    /// A tenant with no employees (for tests and tools).
    pub fn new(group: GroupId, time_zone: Tz, day_change: NaiveTime, licence: Licence) -> Self {
        Self {
            group,
            time_zone,
            day_change,
            licence,
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

/// An employee as the check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    /// The employee id.
    pub employee: EmployeeId,
    /// Active from this instant (ms since the epoch), inclusive; `None` = always was.
    pub active_from: Option<i64>,
    /// Active until this instant (ms since the epoch), exclusive; `None` = open.
    pub active_until: Option<i64>,
    /// Holds a licence seat.
    pub licensed: bool,
}

impl Employee {
    /// Whether the employee is active at `at` (ms since the epoch):
    /// `active_from <= at < active_until`.
    pub fn active_at(&self, at: i64) -> bool {
        self.active_from.is_none_or(|from| from <= at)
            && self.active_until.is_none_or(|until| at < until)
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
        // Infinite dates and timestamps are mapped to open bounds (or to bounds nothing can
        // reach) in SQL: chrono cannot represent them.
        let tenants = tx
            .query(
                "SELECT tenant_id, group_id, time_zone, day_change_time, licence_seats,
                        CASE WHEN licence_valid_from = '-infinity' THEN NULL
                             WHEN licence_valid_from = 'infinity' THEN DATE '9999-12-31'
                             ELSE licence_valid_from END,
                        CASE WHEN licence_valid_until = 'infinity' THEN NULL
                             WHEN licence_valid_until = '-infinity' THEN DATE '0001-01-01'
                             ELSE licence_valid_until END
                 FROM tenants",
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
            let seats: i32 = row.get(4);
            snapshot.tenants.insert(
                tenant,
                Tenant::new(
                    group,
                    time_zone,
                    row.get(3),
                    Licence {
                        seats: u32::try_from(seats).unwrap_or(0),
                        valid_from: row.get(5),
                        valid_until: row.get(6),
                    },
                ),
            );
        }
        let employees = tx
            .query(
                "SELECT tenant_id, employee_id, card_id,
                        CASE WHEN active_from = '-infinity' THEN NULL
                             WHEN active_from = 'infinity' THEN 9223372036854775807
                             ELSE floor(extract(epoch FROM active_from) * 1000)::bigint END,
                        CASE WHEN active_until IS NULL OR active_until = 'infinity' THEN NULL
                             WHEN active_until = '-infinity' THEN -9223372036854775808
                             ELSE floor(extract(epoch FROM active_until) * 1000)::bigint END,
                        licensed
                 FROM employees",
                &[],
            )
            .await?;
        for row in employees {
            let tenant: String = row.get(0);
            let employee: String = row.get(1);
            let Ok(employee) = employee.parse::<EmployeeId>() else {
                tracing::error!(tenant, employee, "skipping employee with an invalid id");
                continue;
            };
            let card: String = row.get(2);
            let entry = Employee {
                employee,
                active_from: row.get(3),
                active_until: row.get(4),
                licensed: row.get(5),
            };
            snapshot.insert_employee(&tenant, &card, entry);
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

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn a_licence_without_seats_is_valid_on_no_date() {
        let none = Licence {
            seats: 0,
            valid_from: None,
            valid_until: None,
        };
        assert!(!none.valid_on(date(2020, 12, 4)));
        let open = Licence { seats: 1, ..none };
        assert!(open.valid_on(date(2020, 12, 4)));
        assert!(!open.is_bounded());
    }

    #[test]
    fn licence_bounds_are_inclusive_work_dates() {
        let licence = Licence {
            seats: 5,
            valid_from: Some(date(2020, 12, 1)),
            valid_until: Some(date(2020, 12, 31)),
        };
        assert!(!licence.valid_on(date(2020, 11, 30)));
        assert!(licence.valid_on(date(2020, 12, 1)));
        assert!(licence.valid_on(date(2020, 12, 31)));
        assert!(!licence.valid_on(date(2021, 1, 1)));
    }

    #[test]
    fn activity_is_half_open() {
        let employee = Employee {
            employee: "E-1".parse().expect("employee"),
            active_from: Some(1_000),
            active_until: Some(2_000),
            licensed: true,
        };
        assert!(!employee.active_at(999));
        assert!(employee.active_at(1_000));
        assert!(employee.active_at(1_999));
        assert!(!employee.active_at(2_000));
        let open = Employee {
            active_from: None,
            active_until: None,
            ..employee
        };
        assert!(open.active_at(i64::MIN) && open.active_at(i64::MAX));
    }
}
