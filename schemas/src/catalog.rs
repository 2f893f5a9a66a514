//! The `.avsc` files compiled into the crate: the current schema of each record, and every
//! older version that data on the topics may still be written with.
//!
//! # Evolving a schema
//!
//! Published data is written with the schema it was encoded with, identified by fingerprint,
//! so a published `.avsc` is never edited in place. To change a record:
//!
//! 1. Copy the published version (from git) to `avro/history/<Record>.v<N>.avsc`, N counting
//!    from 1, and add it to [`HISTORY`] here.
//! 2. Edit `avro/<Record>.avsc`. Keep it backward and forward compatible: add fields only as
//!    `["null", T]` with `"default": null`, never remove a field without a default, never
//!    rename, never reorder enum symbols.
//! 3. Add the new fingerprint to `tests/fixtures/fingerprints.txt`.
//!
//! `tests/compat_guard.rs` checks each step: every file is listed here, fingerprints are pinned,
//! and every version resolves to the current one and back.

/// One embedded schema file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaFile {
    /// Path relative to the crate root, e.g. `avro/RawPunch.avsc`.
    pub path: &'static str,
    /// The file's text.
    pub text: &'static str,
}

macro_rules! schema_file {
    ($path:literal) => {
        SchemaFile {
            path: $path,
            text: include_str!(concat!("../", $path)),
        }
    };
}

/// Current `RawPunch` schema.
pub const RAW_PUNCH: SchemaFile = schema_file!("avro/RawPunch.avsc");
/// Current `QuarantinedInput` schema.
pub const QUARANTINED_INPUT: SchemaFile = schema_file!("avro/QuarantinedInput.avsc");
/// Current `CheckedPunch` schema.
pub const CHECKED_PUNCH: SchemaFile = schema_file!("avro/CheckedPunch.avsc");
/// Current `AttendanceDay` schema.
pub const ATTENDANCE_DAY: SchemaFile = schema_file!("avro/AttendanceDay.avsc");
/// Current `MonthlyAttendance` schema.
pub const MONTHLY_ATTENDANCE: SchemaFile = schema_file!("avro/MonthlyAttendance.avsc");

/// Current `Correction` schema.
pub const CORRECTION: SchemaFile = schema_file!("avro/Correction.avsc");

/// The schema every writer uses today, one per record.
pub const CURRENT: [SchemaFile; 6] = [
    RAW_PUNCH,
    QUARANTINED_INPUT,
    CHECKED_PUNCH,
    ATTENDANCE_DAY,
    MONTHLY_ATTENDANCE,
    CORRECTION,
];

/// Older versions still readable (`avro/history/`).
pub const HISTORY: &[SchemaFile] = &[
    // v1 (before rules v2): no *_seconds, corrected or rules_version.
    schema_file!("avro/history/AttendanceDay.v1.avsc"),
];
