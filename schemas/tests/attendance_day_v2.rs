//! `AttendanceDay` gained the rules-v2 fields (exact seconds, `corrected`, `rules_version`):
//! a reader built on the v1 schema still decodes records written today, and today's reader
//! decodes records written with v1 (the new fields take their defaults).

mod common;

use std::sync::LazyLock;

use common::*;
use dakoku_schemas::{
    AttendanceDay, AvroRecord, CodecError, EmployeeId, ParsedSchema, SchemaRegistry, TenantId,
    catalog, encode,
};
use serde::{Deserialize, Serialize};

/// `AttendanceDay` as a v1 reader (a payroll consumer not yet upgraded) has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AttendanceDayV1 {
    tenant_id: TenantId,
    employee_id: EmployeeId,
    work_date: i32,
    first_in: Option<i64>,
    last_out: Option<i64>,
    worked_minutes: i32,
    break_minutes: i32,
    night_minutes: i32,
    overtime_minutes: i32,
    punch_count: i32,
    anomalies: Vec<String>,
    revision: i64,
    computed_at: i64,
}

impl AvroRecord for AttendanceDayV1 {
    fn schema() -> &'static ParsedSchema {
        static SCHEMA: LazyLock<ParsedSchema> = LazyLock::new(|| {
            let v1 = catalog::HISTORY
                .iter()
                .find(|f| f.path == "avro/history/AttendanceDay.v1.avsc")
                .expect("v1 is registered");
            ParsedSchema::parse(v1.text).expect("v1 parses")
        });
        &SCHEMA
    }
}

fn v1_of(day: &AttendanceDay) -> AttendanceDayV1 {
    AttendanceDayV1 {
        tenant_id: day.tenant_id.clone(),
        employee_id: day.employee_id.clone(),
        work_date: day.work_date,
        first_in: day.first_in,
        last_out: day.last_out,
        worked_minutes: day.worked_minutes,
        break_minutes: day.break_minutes,
        night_minutes: day.night_minutes,
        overtime_minutes: day.overtime_minutes,
        punch_count: day.punch_count,
        anomalies: day.anomalies.clone(),
        revision: day.revision,
        computed_at: day.computed_at,
    }
}

#[test]
fn an_old_reader_decodes_a_new_record_without_the_new_fields() -> Result<(), CodecError> {
    let day = AttendanceDay {
        worked_seconds: Some(28_770),
        corrected: true,
        rules_version: Some(3),
        ..attendance_example()
    };
    let bytes = encode(&day)?;
    // An old reader knows the current writer schema by fingerprint (the registry ships every
    // version), and resolves it to the v1 shape it was built with.
    let old: AttendanceDayV1 = SchemaRegistry::builtin().decode(&bytes)?;
    assert_eq!(old, v1_of(&day));
    Ok(())
}

#[test]
fn a_new_reader_decodes_an_old_record_with_the_defaults() -> Result<(), CodecError> {
    let day = attendance_example();
    let bytes = encode(&v1_of(&day))?;
    assert_eq!(
        &bytes[2..10],
        &AttendanceDayV1::schema().fingerprint().to_bytes()
    );
    let new: AttendanceDay = SchemaRegistry::builtin().decode(&bytes)?;
    assert_eq!(
        new,
        AttendanceDay {
            worked_seconds: None,
            break_seconds: None,
            night_seconds: None,
            holiday_seconds: None,
            overtime_daily_seconds: None,
            overtime_weekly_seconds: None,
            within_statutory_seconds: None,
            corrected: false,
            correction_ids: Vec::new(),
            rules_version: None,
            ..day
        }
    );
    Ok(())
}
