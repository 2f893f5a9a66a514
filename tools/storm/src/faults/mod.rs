//! Scripted fault injection: a contract-mode storm against the whole pipeline, one fault
//! injected in the middle of it, and the end state audited: every acked punch stored exactly
//! once, the consumers caught up, and `punchctl audit` of the group clean.
//!
//! Each run gets a **private stack** (`scripts/stack` with `DAKOKU_STACK_DIR` and free ports),
//! so killing its broker or restarting its Postgres disturbs nobody else, and runs every
//! service as a child process (`storm serve <service>`) so it can be killed with SIGKILL, as
//! a crash would. The recorders keep resending through every fault, as real ones do.
//!
//! # Layout
//! - `fault`: [`Fault`], [`FaultOptions`], [`FaultResult`].
//! - `stack`: [`PrivateStack`], a `scripts/stack` of the run's own.
//! - `services`: the services as child processes: spawn, readiness, SIGKILL, SIGTERM.
//! - `run`: one run ([`run_fault`]): set-up, storm, injection, the wait for consistency, audits.

mod fault;
mod run;
mod services;
mod stack;

pub use fault::{Fault, FaultOptions, FaultResult};
pub use run::run_fault;
pub use stack::PrivateStack;
