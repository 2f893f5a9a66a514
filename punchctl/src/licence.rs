//! `punchctl employee` and `punchctl licence`: the master data the licence check judges with
//! (CONTRACT §3) lives in [`dakoku_store::master`]; re-exported here at its old path.

pub use dakoku_store::master::employees::{
    Employee, EmployeeChange, Moment, NewEmployee, add_employee, list_employees, set_employee,
};
pub use dakoku_store::master::licences::{
    LicenceError, LicenceTerms, MAX_EMPLOYEE_NAME_CHARS as MAX_NAME_CHARS, TenantLicence,
    set_licence, show_licence,
};
pub use dakoku_store::master::outcome::Changed;
