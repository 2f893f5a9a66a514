//! Adding an optional field (`["null", T]`, default null) keeps data readable both ways,
//! through the fingerprint registry: old data under a new reader gets the default, new data
//! under an old reader drops the field.

mod common;

use std::sync::LazyLock;

use apache_avro::schema_compatibility::SchemaCompatibility;
use common::*;
use dakoku_schemas::{
    AvroRecord, CardId, CodecError, DeviceId, GroupId, ParsedSchema, PunchId, PunchKind, RawPunch,
    SchemaRegistry, TenantId, decode, encode,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// `RawPunch` as a future version would have it: `tests/fixtures/RawPunch.v2.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RawPunchV2 {
    punch_id: PunchId,
    tenant_id: TenantId,
    group: GroupId,
    device_id: DeviceId,
    seq: u64,
    card_id: CardId,
    kind: PunchKind,
    at: i64,
    at_offset_minutes: i32,
    received_at: i64,
    acceptor_id: String,
    firmware_version: Option<String>,
}

impl AvroRecord for RawPunchV2 {
    fn schema() -> &'static ParsedSchema {
        static SCHEMA: LazyLock<ParsedSchema> = LazyLock::new(|| {
            ParsedSchema::parse(include_str!("fixtures/RawPunch.v2.avsc")).expect("fixture parses")
        });
        &SCHEMA
    }
}

impl RawPunchV2 {
    fn from_v1(raw: RawPunch, firmware_version: Option<String>) -> Self {
        Self {
            punch_id: raw.punch_id,
            tenant_id: raw.tenant_id,
            group: raw.group,
            device_id: raw.device_id,
            seq: raw.seq,
            card_id: raw.card_id,
            kind: raw.kind,
            at: raw.at,
            at_offset_minutes: raw.at_offset_minutes,
            received_at: raw.received_at,
            acceptor_id: raw.acceptor_id,
            firmware_version,
        }
    }
}

/// What a reader that knows v2 has: the builtin versions plus v2.
fn registry_with_v2() -> SchemaRegistry {
    let mut registry = SchemaRegistry::builtin().clone();
    registry.register(RawPunchV2::schema().clone());
    registry
}

#[test]
fn v2_is_a_compatible_evolution() {
    let current = RawPunch::schema();
    let v2 = RawPunchV2::schema();
    assert_ne!(current.fingerprint(), v2.fingerprint());
    assert_eq!(current.name(), v2.name());
    SchemaCompatibility::mutual_read(current.schema(), v2.schema()).expect("mutually readable");
}

#[test]
fn current_data_reads_as_v2_with_the_default() -> Result<(), CodecError> {
    let bytes = encode(&raw_example())?;
    // The builtin registry is enough: the writer schema is a known (current) version.
    let v2: RawPunchV2 = SchemaRegistry::builtin().decode(&bytes)?;
    assert_eq!(v2, RawPunchV2::from_v1(raw_example(), None));
    Ok(())
}

#[test]
fn v2_data_reads_as_current_dropping_the_field() -> Result<(), CodecError> {
    let bytes = encode(&RawPunchV2::from_v1(raw_example(), Some("4.2.0".into())))?;
    let raw: RawPunch = registry_with_v2().decode(&bytes)?;
    assert_eq!(raw, raw_example());
    Ok(())
}

#[test]
fn a_reader_that_does_not_know_v2_says_to_upgrade() -> Result<(), CodecError> {
    let bytes = encode(&RawPunchV2::from_v1(raw_example(), None))?;
    match decode::<RawPunch>(&bytes) {
        Err(CodecError::UnknownFingerprint { fingerprint, .. }) => {
            assert_eq!(fingerprint, RawPunchV2::schema().fingerprint());
        }
        other => panic!("expected UnknownFingerprint, got {other:?}"),
    }
    Ok(())
}

/// A reader demanding a field old data lacks, with no default: an incompatible change.
#[derive(Debug, Deserialize, Serialize)]
struct IncompatibleRawPunch {
    punch_id: PunchId,
    shift_code: String,
}

impl AvroRecord for IncompatibleRawPunch {
    fn schema() -> &'static ParsedSchema {
        static SCHEMA: LazyLock<ParsedSchema> = LazyLock::new(|| {
            ParsedSchema::parse(
                r#"{"type":"record","name":"RawPunch","namespace":"dakoku","fields":[
                    {"name":"punch_id","type":{"type":"string","logicalType":"uuid"}},
                    {"name":"shift_code","type":"string"}]}"#,
            )
            .expect("valid schema")
        });
        &SCHEMA
    }
}

#[test]
fn an_incompatible_reader_gets_a_resolution_error() -> Result<(), CodecError> {
    let bytes = encode(&raw_example())?;
    match decode::<IncompatibleRawPunch>(&bytes) {
        Err(e @ CodecError::Resolution { .. }) => {
            assert!(
                e.to_string()
                    .contains(&RawPunch::schema().fingerprint().to_string())
            );
        }
        other => panic!("expected Resolution, got {other:?}"),
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_punch_reads_across_versions(raw in raw_punch(), firmware in proptest::option::of(".{0,20}")) {
        let registry = registry_with_v2();
        let old = encode(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let as_v2: RawPunchV2 = registry.decode(&old).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&as_v2, &RawPunchV2::from_v1(raw.clone(), None));

        let new = encode(&RawPunchV2::from_v1(raw.clone(), firmware.clone()))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let as_v1: RawPunch = registry.decode(&new).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&as_v1, &raw);
        let as_v2: RawPunchV2 = registry.decode(&new).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(as_v2.firmware_version, firmware);
    }
}
