//! `punchctl`, Dakoku's operator CLI, as a library so end-to-end tests drive the same code.
//!
//! Every verb is a subcommand with its own `--help`; connection settings come from flags or
//! the environment (`KAFKA_BROKERS`, `DATABASE_URL`), with the local stack's as defaults.
//!
//! # Layout
//! - [`cli`]: the clap tree and the dispatcher [`run`] / [`run_with_output`].
//! - [`commands`]: one module per verb (`topics`, `db`, `tenant`, `device`, `intake`,
//!   `employee`, `licence`, `recheck`, `payroll`, `audit`, `lag`, `replay`, `rebuild`): its
//!   flags and its `run`, with no SQL and no Kafka code.
//! - [`ops`]: the operations the verbs call and tests and tools call directly: `topics`,
//!   `db`, `token` (device tokens), `payroll`, `lag`, `replay`, `rebuild`, and `audit/`
//!   (`collect` -> `compare` -> `report`). Master data is `dakoku_store::master`.
//! - [`output`]: tables, JSON, timestamps and durations; [`progress`]: the progress bar and
//!   end-of-work summary of the long verbs.
//! - [`master`], [`licence`], [`intake`] and the module re-exports below: the paths tests and
//!   tools used before the split (compatibility, to be removed once they move).

pub mod cli;
pub mod commands;
pub mod ops;
pub mod output;
pub mod progress;

pub use cli::{Cli, run, run_with_output};
// Compatibility: the old module paths of the operations.
pub use ops::{audit, lag, payroll, rebuild, replay, topics};

pub mod master {
    //! Compatibility: tenants and devices, at their path before `dakoku_store::master`; device tokens.
    pub use crate::ops::token::{IssuedToken, MAX_VALID_DAYS, TokenError, issue_token};
    pub use dakoku_store::master::devices::{
        Device, Revoked, add_device, list_devices, revoke_device,
    };
    pub use dakoku_store::master::outcome::{Added, Difference};
    pub use dakoku_store::master::tenants::{
        DEFAULT_DAY_CHANGE, DEFAULT_TIME_ZONE, MAX_NAME_CHARS, MasterError, NewTenant, Tenant,
        TenantAdded, add_tenant, list_tenants, master_data_version, parse_day_change,
        parse_time_zone,
    };
}

pub mod licence {
    //! Compatibility: employees and licences, at their path before `dakoku_store::master`.
    pub use dakoku_store::master::employees::{
        Employee, EmployeeChange, Moment, NewEmployee, add_employee, list_employees, set_employee,
    };
    pub use dakoku_store::master::licences::{
        LicenceError, LicenceTerms, TenantLicence, set_licence, show_licence,
    };
    pub use dakoku_store::master::outcome::{Added, Changed};
}

pub mod intake {
    //! Compatibility: intake pauses, at their path before `dakoku_store::master`.
    pub use crate::output::human_duration;
    pub use dakoku_store::master::pauses::{
        DEFAULT_RETRY_AFTER_SECONDS, IntakeError, MAX_RETRY_AFTER_SECONDS, MIN_RETRY_AFTER_SECONDS,
        Pause, PauseTarget, Paused, Scope, pause, resume, status,
    };
}

/// Logs go to stderr (stdout is the command's output), filtered by `RUST_LOG`, default `warn`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
