//! The contract of every Dakoku topic: the Avro schemas (`avro/*.avsc`, the files consumers
//! in any language decode with), the topic names and message keys, typed Rust records for
//! each value, and the Avro single-object codec that reads every known schema version by
//! fingerprint. Every other crate names topics and encodes values through this one, so the
//! contract lives in exactly one place.
//!
//! # Layout
//!
//! - `ids`: validated identifiers ([`TenantId`], [`DeviceId`], [`GroupId`], [`CardId`],
//!   [`EmployeeId`], [`PunchId`]) that serialize as plain strings.
//! - `topic`: the [`Topic`] enum (names, compaction) and the Kafka key of each topic.
//! - `group`: [`ConsumerGroup`], the typed consumer-group name of each stage.
//! - `records`: [`RawPunch`], [`QuarantinedInput`], [`CheckedPunch`], [`AttendanceDay`] and
//!   their enums, mirroring the `.avsc` files field for field.
//! - `monthly`: [`MonthlyAttendance`], the payroll month record (and a closed month's
//!   adjustments).
//! - `correction`: [`Correction`], an administrator's add or void of a punch.
//! - `codec`: [`encode`] / [`decode`] in single-object encoding, the fingerprint
//!   [`SchemaRegistry`] and [`CodecError`].
//! - `catalog`: the embedded `.avsc` files, current and historical, and how to evolve them.
//! - `workdate`: [`work_date`], the tenant-local work date of a punch (CONTRACT §4), shared by
//!   licence-check and attendance.

// First: its `avro_record!` and `symbols!` macros serve the modules after it.
#[macro_use]
mod records;

pub mod catalog;
mod codec;
mod correction;
mod group;
mod ids;
mod monthly;
mod topic;
mod workdate;

pub use codec::{
    AvroRecord, CodecError, Fingerprint, HEADER_LEN, MARKER, MAX_DECODED_LEN, ParsedSchema,
    SchemaRegistry, decode, encode, encode_into, fingerprint_of,
};
pub use correction::{Correction, CorrectionAction, CorrectionError, MAX_REASON_CHARS};
pub use group::{ConsumerGroup, ConsumerGroupError};
pub use ids::{CardId, DeviceId, EmployeeId, GroupId, IdError, PunchId, TenantId};
pub use monthly::{MonthlyAttendance, MonthlyRecordKind};
pub use records::{
    AttendanceDay, CheckedPunch, PunchKind, QuarantinedInput, RawPunch, RejectReason, Verdict,
    VerdictKey, from_epoch_days, from_millis, to_epoch_days, to_millis,
};
pub use topic::{
    Topic, adjustment_key, attendance_key, checked_key, correction_key, monthly_key, raw_key,
};
pub use workdate::{DEFAULT_DAY_CHANGE, DEFAULT_TIME_ZONE, work_date, work_date_default};
