//! The workspace's shape as a fact the tests check, not a convention a review has to catch:
//! no import cycle between the modules of any crate, none between the crates (dev-dependencies
//! included), one Kafka client factory, one Postgres connector, and files and functions small
//! enough to read in one sitting.
//!
//! # Layout
//! - [`source`]: a crate's module tree from its root file: `mod` declarations, test-only
//!   modules left out, and each module's parsed items.
//! - [`modules`]: the module graph of one crate (`use` trees and paths through `crate::`,
//!   `super::`, `self::` and child modules) and the cycles between sibling modules.
//! - [`crates`]: the crate graph of the workspace from `cargo metadata`, and its cycles.
//! - [`sizes`]: files and functions past their limits.
//! - [`text`]: the textual rules (`ClientConfig::new()` only in the `kafka` crate, `NoTls` only
//!   in `store::connect`).
//! - [`report`]: [`check_workspace`] and the [`Report`] it returns.

pub mod crates;
pub mod modules;
pub mod report;
pub mod sizes;
pub mod source;
pub mod text;

pub use report::{Limits, Report, check_workspace};
