//! `compute-bench`: `punchctl attendance compute` on generated months of shifts, to show that
//! it is linear in punches and small in memory.
//!
//! - [`data`]: the rules file and the punch lines (realistic shifts, noise, a reference
//!   employee with known figures).
//! - [`measure`]: one run of the release binary under `/usr/bin/time`, and the output checked.

pub mod data;
pub mod measure;
