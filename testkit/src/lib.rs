//! The harness for Dakoku's tests on the real local stack (`scripts/stack up`), with no service
//! crate in it: services, tools and the end-to-end suite (`dakoku-e2e`) all dev-depend on it
//! without a crate cycle.
//!
//! Each test gets its own tenant group (so its own topics) and its own database, so tests run
//! in parallel and leave each other alone. Waiting is always on a condition with a deadline.
//!
//! # Layout
//! - [`stack`]: [`Stack`], where the broker and Postgres are (env or the local stack's
//!   defaults), and its Kafka [`ClientFactory`](dakoku_kafka::ClientFactory).
//! - [`wait`]: [`eventually`] (poll a condition until it holds or a deadline passes) and
//!   [`unique_suffix`] for names that must not collide.
//! - [`database`]: [`TestDatabase`], a fresh, migrated database per test.
//! - [`group`]: [`TestGroup`], a unique tenant group with its topics created through
//!   `dakoku_kafka`'s admin, deleted by [`TestGroup::delete_topics`].
//! - [`master`]: master-data builders ([`TenantSeed`]: tenant, licence, devices, employees)
//!   written through `dakoku_store::master`, and device tokens ([`mint_token`]).
//! - [`punches`]: raw punches as the acceptor writes them ([`raw_punch`]).
//! - [`produce`]: producers for raw, checked and arbitrary records.
//! - [`read`]: topic readers (from the beginning, to the current end) and committed offsets.
//! - [`scenario`]: [`Scenario`], realistic checked-punch weeks, resends, and the oracle
//!   ([`expected_days`]) from the pure rules.
//! - [`days`]: what the attendance consumer wrote: `attendance_days` rows, punch counts,
//!   stored offsets, the compacted `attendance.daily` topic.
//! - [`proxy`]: [`PgProxy`], a TCP proxy to Postgres that a test can sever and restore.

pub mod database;
pub mod days;
pub mod group;
pub mod master;
pub mod produce;
pub mod proxy;
pub mod punches;
pub mod read;
pub mod scenario;
pub mod stack;
pub mod wait;

pub use database::TestDatabase;
pub use group::TestGroup;
pub use master::{EmployeeSeed, TenantSeed, mint_token};
pub use proxy::PgProxy;
pub use punches::raw_punch;
pub use scenario::{DayKey, Scenario};
pub use stack::Stack;
pub use wait::{eventually, unique_suffix};
