//! Every record decodes to what was encoded, and the streaming encoder writes exactly the
//! bytes apache-avro's own `Value` path writes (guarding field and enum order).

mod common;

use std::fmt::Debug;

use common::*;
use dakoku_schemas::{
    AttendanceDay, AvroRecord, CheckedPunch, CodecError, MARKER, RawPunch, decode, encode,
    encode_into,
};
use proptest::prelude::*;

fn round_trip<T: AvroRecord + PartialEq + Debug>(record: &T) -> Result<(), TestCaseError> {
    let bytes = encode(record).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&bytes[..2], &MARKER[..]);
    prop_assert_eq!(&bytes[2..10], &T::schema().fingerprint().to_bytes()[..]);
    let back: T = decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, record);
    prop_assert_eq!(bytes, value_path_encoding(record));
    Ok(())
}

/// The record encoded through apache-avro's `Value` tree, which matches fields by name and
/// enum symbols by name rather than by position.
fn value_path_encoding<T: AvroRecord>(record: &T) -> Vec<u8> {
    let schema = T::schema();
    let value = apache_avro::to_value(record)
        .and_then(|v| v.resolve(schema.schema()))
        .expect("record converts to a Value of its schema");
    let datum = apache_avro::to_avro_datum(schema.schema(), value).expect("Value encodes");
    let mut bytes = MARKER.to_vec();
    bytes.extend_from_slice(&schema.fingerprint().to_bytes());
    bytes.extend_from_slice(&datum);
    bytes
}

#[test]
fn examples_round_trip() -> Result<(), TestCaseError> {
    raw_examples().iter().try_for_each(round_trip)?;
    checked_examples().iter().try_for_each(round_trip)?;
    quarantine_examples().iter().try_for_each(round_trip)?;
    attendance_examples().iter().try_for_each(round_trip)?;
    round_trip(&monthly_example())?;
    round_trip(&adjustment_example())?;
    correction_examples().iter().try_for_each(round_trip)
}

#[test]
fn extreme_timestamps_round_trip() -> Result<(), TestCaseError> {
    // Beyond what chrono or Python can show, but valid Avro longs: must survive untouched.
    let raw = RawPunch {
        at: i64::MIN,
        received_at: i64::MAX,
        at_offset_minutes: i32::MIN,
        ..raw_example()
    };
    round_trip(&raw)?;
    prop_assert_eq!(raw.at_utc(), None);
    prop_assert_eq!(raw.at_recorder_time(), None);
    let day = AttendanceDay {
        work_date: i32::MIN,
        first_in: Some(i64::MIN),
        ..attendance_example()
    };
    round_trip(&day)?;
    prop_assert_eq!(day.work_date(), None);
    Ok(())
}

#[test]
fn seq_above_i64_max_is_an_encode_error() {
    let raw = RawPunch {
        seq: RawPunch::MAX_SEQ + 1,
        ..raw_example()
    };
    match encode(&raw) {
        Err(e @ CodecError::Encode { record, .. }) => {
            assert_eq!(record, "dakoku.RawPunch");
            assert!(e.to_string().contains("9223372036854775808"), "{e}");
        }
        other => panic!("expected CodecError::Encode, got {other:?}"),
    }
}

#[test]
fn encode_into_appends_and_restores_on_error() -> Result<(), CodecError> {
    let mut buf = b"prefix".to_vec();
    encode_into(&raw_example(), &mut buf)?;
    assert_eq!(&buf[..6], b"prefix");
    assert_eq!(buf[6..], encode(&raw_example())?);
    let len = buf.len();
    let bad = RawPunch {
        seq: u64::MAX,
        ..raw_example()
    };
    assert!(encode_into(&bad, &mut buf).is_err());
    assert_eq!(buf.len(), len);
    Ok(())
}

#[test]
fn chrono_views_of_a_decoded_punch() -> Result<(), CodecError> {
    let raw: RawPunch = decode(&encode(&raw_example())?)?;
    let local = raw.at_recorder_time().expect("in range");
    assert_eq!(local.to_rfc3339(), "2020-12-04T08:44:59+09:00");
    let day: AttendanceDay = decode(&encode(&attendance_example())?)?;
    assert_eq!(
        day.work_date().map(|d| d.to_string()).as_deref(),
        Some("2020-12-04")
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn raw_punches_round_trip(record in raw_punch()) {
        round_trip(&record)?;
    }

    #[test]
    fn checked_punches_round_trip(record in checked_punch()) {
        round_trip(&record)?;
        prop_assert_eq!(CheckedPunch::from_raw(
            record.raw(),
            record.verdict,
            record.reason,
            record.employee_id.clone(),
            record.master_data_version,
            record.checked_at,
        ), record);
    }

    #[test]
    fn quarantined_inputs_round_trip(record in quarantined_input()) {
        round_trip(&record)?;
    }

    #[test]
    fn attendance_days_round_trip(record in attendance_day()) {
        round_trip(&record)?;
    }
}
