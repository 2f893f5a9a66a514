//! The end-to-end suite of Dakoku on the real local stack (`scripts/stack up`): the fixtures
//! that run a service in-process or drive `punchctl`, so they need the service crates. The
//! generic harness (stack, databases, topics, builders, readers, scenarios) is
//! `dakoku-testkit`, which the services themselves dev-depend on; this crate depends on
//! everything and nothing depends on it.
//!
//! # Layout
//! - [`acceptor`]: [`TestAcceptor`](acceptor::TestAcceptor), an in-process `ingest-api` with
//!   its own token keys.
//! - [`licence`]: licence-check in-process ([`TestLicenceCheck`](licence::TestLicenceCheck),
//!   [`test_config`](licence::test_config)) and readers of its transactional output.
//! - [`attendance`]: [`TestAttendance`](attendance::TestAttendance), the attendance consumer
//!   in-process.
//! - [`employee`]: [`OneEmployee`](employee::OneEmployee), one employee's world: verdicts,
//!   corrections, the latest `payroll.monthly` records.
//! - [`recovery`]: punchctl verbs through the dispatcher, consumer-group membership, the
//!   checked topic with positions, exact `attendance_days` rows (replay, rebuild, recheck).
//! - [`audit`]: a settled pipeline of one group for `punchctl audit` and `lag`, to tamper with.
//! - `bin/rebuild-bench`: how long `punchctl rebuild` takes against the service's own pace.

pub mod acceptor;
pub mod attendance;
pub mod audit;
pub mod employee;
pub mod licence;
pub mod recovery;
