//! The attendance rules of CONTRACT §4 as pure functions: no I/O, no clock, no randomness
//! (clippy's `disallowed-methods` in `rules/clippy.toml` bans reading the clock here).
//! Everything payroll is paid from is decided here, so it is tested here, exhaustively.
//!
//! The entry point is [`compute_day`]: the accepted punches of one employee and one work date
//! (in any order, with any number of duplicates) and the tenant's time zone give the day's
//! [`DayFigures`]. The work date of a punch is [`work_date`] (shared with licence-check), or
//! [`Calendar::work_date`] with a tenant's calendar.
//!
//! The state machine, exactly as the contract writes it:
//! - punches are de-duplicated by `punch_id`, then ordered by `at`, `seq`, `punch_id` (and the
//!   kind, so that even conflicting duplicates cannot make the order depend on arrival);
//! - a punch of the same kind as the previous *kept* punch, at most 60 s after it, is a double
//!   tap: ignored, counted in [`DayFigures::double_taps`], not in `punch_count`;
//! - pairing over the kept punches opens and closes spans and breaks; a bad or discarded span
//!   adds no minutes ("never guess");
//! - durations are summed exactly (in milliseconds, i.e. the contract's "seconds first") and
//!   only the day's totals are rounded down to whole minutes;
//! - night minutes are worked time whose local wall-clock time is in 22:00-05:00, instant by
//!   instant, so daylight-saving days count the real time worked (a repeated hour counts twice,
//!   a skipped hour not at all).
//!
//! # Layout
//! - [`calendar`]: a tenant's [`Calendar`] (time zone, day change) and the work date of a punch.
//! - [`figures`]: [`DayFigures`], [`Anomaly`] and [`fields`], the one list of a day's figures
//!   that the store's columns, the audit's diff and payroll follow.
//! - [`pairing`]: [`compute_day`], the state machine from punches to a day's figures.
//! - [`night`]: [`night_ms`], night work on the local wall clock across offset changes.
//! - `units`: milliseconds per minute, hour and day.
//! - [`v2`]: attendance rules v2 (payroll-grade, seconds, effective-dated rules, corrections,
//!   months, incremental windows), which `punchctl attendance compute` runs; the consumer
//!   moves onto it next.

pub mod calendar;
pub mod figures;
pub mod night;
pub mod pairing;
mod units;
pub mod v2;

#[cfg(test)]
mod tests;

pub use calendar::{Calendar, DEFAULT_DAY_CHANGE, DEFAULT_TIME_ZONE, work_date};
pub use figures::{Anomaly, DayFigures, FIELDS, Field, fields};
pub use night::{NIGHT_END_MS, NIGHT_START_MS, night_ms};
pub use pairing::{DOUBLE_TAP_WINDOW_MS, Punch, REGULAR_MINUTES, compute_day};
