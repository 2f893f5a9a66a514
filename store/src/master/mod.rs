//! Master data in Postgres: tenants, devices, employees, licences, intake pauses and work rules
//! (effective-dated, [`rules`]), as typed functions over a client or transaction, so the CLI,
//! tests and tools share one implementation.
//!
//! Employees' active ranges, licence grants and tenants' licences are effective-dated history
//! (migration `V8`): rows appended, never updated, read through [`recorded`] into the pure
//! types of [`history`] that licence-check judges with.
//!
//! Every change bumps `master_data_version` and notifies `dakoku_master_data` through the
//! triggers of the `V1` migration; acceptors and licence-check reload their snapshots from that.
//! Writes are idempotent and never silent: what exists unchanged is reported, conflicts are
//! refused with the differing fields named.

pub mod devices;
pub mod employees;
pub mod grants;
pub mod history;
pub mod licences;
pub mod outcome;
pub mod pauses;
pub mod recorded;
pub mod rules;
pub mod tenants;

pub use devices::{Device, Revoked, add_device, list_devices, revoke_device};
pub use employees::{
    Employee, EmployeeChange, Moment, NewEmployee, add_employee, list_employees, set_employee,
};
pub use grants::{GrantChange, GrantRecord, grant_history, set_grant};
pub use history::{ActiveRange, Grant, Grants, LicenceRow, Licences};
pub use licences::{
    LicenceError, LicenceRecord, LicenceTerms, TenantLicence, set_licence, show_licence,
};
pub use outcome::{Added, Changed, Difference};
pub use pauses::{
    DEFAULT_RETRY_AFTER_SECONDS, IntakeError, MAX_RETRY_AFTER_SECONDS, MIN_RETRY_AFTER_SECONDS,
    Pause, PauseTarget, Paused, Scope, pause, resume, status,
};
pub use tenants::{
    DEFAULT_DAY_CHANGE, DEFAULT_TIME_ZONE, MasterError, NewTenant, Tenant, TenantAdded, add_tenant,
    list_tenants, master_data_version, parse_day_change, parse_time_zone,
};
