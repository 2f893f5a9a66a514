//! The operations behind the verbs, callable by tests and tools without the command line:
//! Kafka (topics, lag, replay), Postgres beyond master data (migrations, payroll, rebuild),
//! the audit, and device tokens. Nothing here writes for an operator except the audit report.

pub mod audit;
pub mod compute;
pub mod db;
pub mod lag;
pub mod payroll;
pub mod rebuild;
pub mod replay;
pub mod rules;
pub mod token;
pub mod topics;
