//! Bad input maps to the typed error it deserves, and no input makes `decode` panic.

mod common;

use common::*;
use dakoku_schemas::{
    AttendanceDay, AvroRecord, CheckedPunch, CodecError, Fingerprint, MARKER, MAX_DECODED_LEN,
    QuarantinedInput, RawPunch, decode, encode, fingerprint_of,
};
use proptest::prelude::*;

fn header_of<T: AvroRecord>() -> Vec<u8> {
    [&MARKER[..], &T::schema().fingerprint().to_bytes()].concat()
}

/// Decoding as every record type: only the error matters.
fn decode_all(bytes: &[u8]) -> [Option<CodecError>; 4] {
    [
        decode::<RawPunch>(bytes).err(),
        decode::<QuarantinedInput>(bytes).err(),
        decode::<CheckedPunch>(bytes).err(),
        decode::<AttendanceDay>(bytes).err(),
    ]
}

#[test]
fn shorter_than_the_header_is_too_short() {
    for len in 0..10 {
        let bytes = &header_of::<RawPunch>()[..len];
        match decode::<RawPunch>(bytes) {
            Err(CodecError::TooShort { len: l }) => assert_eq!(l, len),
            other => panic!("{len} bytes: expected TooShort, got {other:?}"),
        }
    }
}

#[test]
fn other_formats_are_a_bad_marker() {
    let json = br#"{"device_id": "PT-000123", "punches": []}"#;
    let confluent = [0u8, 0, 0, 0, 42, 2, 3, 4, 5, 6, 7];
    for bytes in [&json[..], &confluent[..]] {
        match decode::<RawPunch>(bytes) {
            Err(e @ CodecError::BadMarker { .. }) => {
                assert!(e.to_string().contains("C3 01"), "{e}");
            }
            other => panic!("expected BadMarker, got {other:?}"),
        }
    }
}

#[test]
fn an_unknown_fingerprint_says_to_upgrade() -> Result<(), CodecError> {
    let mut bytes = encode(&raw_example())?;
    bytes[2..10].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]);
    match decode::<RawPunch>(&bytes) {
        Err(e @ CodecError::UnknownFingerprint { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("deadbeef00010203"), "{msg}");
            assert!(msg.contains("newer") && msg.contains("upgrade"), "{msg}");
        }
        other => panic!("expected UnknownFingerprint, got {other:?}"),
    }
    assert_eq!(
        fingerprint_of(&bytes)?,
        Fingerprint::from_bytes([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3])
    );
    Ok(())
}

#[test]
fn another_records_fingerprint_is_a_wrong_record() -> Result<(), CodecError> {
    let bytes = encode(&raw_example())?;
    match decode::<AttendanceDay>(&bytes) {
        Err(CodecError::WrongRecord {
            expected, found, ..
        }) => {
            assert_eq!(expected, "dakoku.AttendanceDay");
            assert_eq!(found, "dakoku.RawPunch");
        }
        other => panic!("expected WrongRecord, got {other:?}"),
    }
    Ok(())
}

fn assert_every_prefix_is_malformed<T: AvroRecord + std::fmt::Debug>(record: &T) {
    let bytes = encode(record).expect("example encodes");
    for len in 10..bytes.len() {
        match decode::<T>(&bytes[..len]) {
            Err(CodecError::Malformed { .. }) => {}
            other => panic!(
                "{len}/{} bytes: expected Malformed, got {other:?}",
                bytes.len()
            ),
        }
    }
}

#[test]
fn a_truncated_datum_is_malformed() {
    raw_examples()
        .iter()
        .for_each(assert_every_prefix_is_malformed);
    checked_examples()
        .iter()
        .for_each(assert_every_prefix_is_malformed);
    quarantine_examples()
        .iter()
        .for_each(assert_every_prefix_is_malformed);
    attendance_examples()
        .iter()
        .for_each(assert_every_prefix_is_malformed);
}

#[test]
fn trailing_bytes_are_malformed() -> Result<(), CodecError> {
    let mut bytes = encode(&raw_example())?;
    bytes.push(0);
    match decode::<RawPunch>(&bytes) {
        Err(e @ CodecError::Malformed { .. }) => assert!(e.to_string().contains("left over")),
        other => panic!("expected Malformed, got {other:?}"),
    }
    Ok(())
}

/// A datum that is valid Avro but not a valid record: built through apache-avro's `Value`.
fn with_field<T: AvroRecord>(record: &T, field: &str, value: apache_avro::types::Value) -> Vec<u8> {
    let schema = T::schema();
    let mut v = apache_avro::to_value(record)
        .and_then(|v| v.resolve(schema.schema()))
        .expect("record converts");
    if let apache_avro::types::Value::Record(fields) = &mut v {
        for (name, slot) in fields.iter_mut() {
            if name == field {
                *slot = value.clone();
            }
        }
    }
    let datum = apache_avro::to_avro_datum(schema.schema(), v).expect("still valid Avro");
    [header_of::<T>(), datum].concat()
}

#[test]
fn values_the_types_refuse_are_malformed() {
    use apache_avro::types::Value;
    let cases = [
        ("tenant_id", Value::String("acme/tokyo".into()), "tenant id"),
        ("seq", Value::Long(-1), "seq"),
    ];
    for (field, value, needle) in cases {
        let bytes = with_field(&raw_example(), field, value);
        match decode::<RawPunch>(&bytes) {
            Err(e @ CodecError::Malformed { .. }) => {
                assert!(
                    e.to_string().contains(needle) || e.to_string().contains("invalid"),
                    "{e}"
                );
            }
            other => panic!("{field}: expected Malformed, got {other:?}"),
        }
    }
}

#[test]
fn absurd_lengths_are_malformed_not_an_allocation() -> Result<(), CodecError> {
    // An AttendanceDay ending in: anomalies = [] (0), revision = 0, computed_at = 0, then the
    // v2 fields all null or false (one byte each: 7 seconds, corrected, rules_version).
    let day = AttendanceDay {
        anomalies: vec![],
        revision: 0,
        computed_at: 0,
        worked_seconds: None,
        break_seconds: None,
        night_seconds: None,
        holiday_seconds: None,
        overtime_daily_seconds: None,
        overtime_weekly_seconds: None,
        within_statutory_seconds: None,
        corrected: false,
        rules_version: None,
        ..attendance_example()
    };
    let bytes = encode(&day)?;
    let prefix = &bytes[..bytes.len() - 12];
    let zigzag = |n: i64| -> Vec<u8> {
        let mut z = ((n << 1) ^ (n >> 63)) as u64;
        let mut out = vec![];
        loop {
            let b = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    };
    let limit = i64::try_from(MAX_DECODED_LEN).expect("small");
    for count in [limit - 1, limit + 1, i64::MAX, -i64::MAX, i64::MIN] {
        let crafted = [prefix, &zigzag(count)].concat();
        match decode::<AttendanceDay>(&crafted) {
            Err(CodecError::Malformed { .. }) => {}
            other => panic!("array count {count}: expected Malformed, got {other:?}"),
        }
    }
    // And a string claiming a huge length, at the first field.
    for len in [limit - 1, limit + 1, i64::MAX] {
        let crafted = [header_of::<AttendanceDay>(), zigzag(len), b"acme".to_vec()].concat();
        match decode::<AttendanceDay>(&crafted) {
            Err(CodecError::Malformed { .. }) => {}
            other => panic!("string length {len}: expected Malformed, got {other:?}"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_datums_never_panic(
        which in 0..4usize,
        datum in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let header = [
            header_of::<RawPunch>(),
            header_of::<QuarantinedInput>(),
            header_of::<CheckedPunch>(),
            header_of::<AttendanceDay>(),
        ];
        decode_all(&[header[which].clone(), datum].concat());
    }

    #[test]
    fn corrupted_records_never_panic(
        record in checked_punch(),
        day in attendance_day(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        for mut bytes in [encode(&record).expect("encodes"), encode(&day).expect("encodes")] {
            for (at, byte) in &flips {
                let i = 10 + at.index(bytes.len() - 10);
                bytes[i] = *byte;
            }
            decode_all(&bytes);
        }
    }
}
