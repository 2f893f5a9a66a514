//! Guards the published contract: every `.avsc` under `avro/` is embedded, self-contained and
//! documented, its fingerprint never changes, and every registered version resolves to the
//! current one and back. How to evolve a schema: `src/catalog.rs`.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use apache_avro::{Schema, schema_compatibility::SchemaCompatibility, types::Value};
use common::*;
use dakoku_schemas::{
    AttendanceDay, AvroRecord, CheckedPunch, CodecError, MonthlyAttendance, ParsedSchema,
    PunchKind, QuarantinedInput, RawPunch, RejectReason, SchemaRegistry, Verdict, catalog, decode,
    encode,
};
use serde_json::Value as Json;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn avsc_files(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("avro/ is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            avsc_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "avsc") {
            let rel = path.strip_prefix(crate_dir()).expect("under the crate");
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn all_files() -> Vec<catalog::SchemaFile> {
    catalog::CURRENT
        .iter()
        .chain(catalog::HISTORY)
        .copied()
        .collect()
}

fn json(text: &str) -> Json {
    serde_json::from_str(text).expect("schema file is JSON")
}

#[test]
fn every_avsc_file_is_embedded() {
    let mut on_disk = BTreeSet::new();
    avsc_files(&crate_dir().join("avro"), &mut on_disk);
    let embedded: BTreeSet<String> = all_files().iter().map(|f| f.path.to_owned()).collect();
    assert_eq!(
        on_disk, embedded,
        "the .avsc files under schemas/avro/ must be exactly those in catalog::CURRENT and \
         catalog::HISTORY (src/catalog.rs): register a new history file there"
    );
}

#[test]
fn every_schema_is_self_contained_namespaced_and_documented() {
    for file in all_files() {
        // Parsing one file alone proves it has no reference to another file's types.
        let parsed = ParsedSchema::parse(file.text)
            .unwrap_or_else(|e| panic!("{} does not parse on its own: {e}", file.path));
        assert!(
            parsed.name().starts_with("dakoku."),
            "{}: namespace must be dakoku",
            file.path
        );
        let schema = json(file.text);
        assert!(
            schema["doc"].as_str().is_some_and(|d| !d.is_empty()),
            "{}: record doc",
            file.path
        );
        for field in schema["fields"].as_array().expect("a record has fields") {
            assert!(
                field["doc"].as_str().is_some_and(|d| !d.is_empty()),
                "{}: field {} needs a doc",
                file.path,
                field["name"]
            );
        }
    }
}

fn pinned() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(crate_dir().join("tests/fixtures/fingerprints.txt"))
        .expect("tests/fixtures/fingerprints.txt is readable");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (path, hex) = l.split_once(' ').expect("line is `<path> <hex>`");
            (path.to_owned(), hex.trim().to_owned())
        })
        .collect()
}

#[test]
fn fingerprints_are_pinned() {
    let pinned = pinned();
    for file in all_files() {
        let actual = ParsedSchema::parse(file.text)
            .expect("parses")
            .fingerprint()
            .to_string();
        match pinned.get(file.path) {
            Some(expected) => assert_eq!(
                &actual, expected,
                "\n{} changed: its fingerprint is now {actual}, pinned {expected}.\n\
                 Data already on the topics was written with the pinned version, so a published \
                 schema must never be edited in place (doc-only edits keep the fingerprint). \
                 To evolve it: restore this file, copy it to avro/history/<Record>.v<N>.avsc, \
                 register that in src/catalog.rs HISTORY, make the compatible change (new fields \
                 [\"null\", T] with default null), and pin the new fingerprint here. \
                 See \"Evolving a schema\" in src/catalog.rs.\n",
                file.path
            ),
            None => panic!(
                "{} (fingerprint {actual}) is not pinned: add `{} {actual}` to \
                 tests/fixtures/fingerprints.txt",
                file.path, file.path
            ),
        }
    }
    for path in pinned.keys() {
        assert!(
            all_files().iter().any(|f| f.path == path),
            "{path} is pinned but gone: published versions must stay readable (move it to \
             avro/history/ instead)"
        );
    }
}

/// Decodes a payload as the current version of one record type.
type DecodeAsCurrent = dyn Fn(&SchemaRegistry, &[u8]) -> Result<(), CodecError>;

/// Data written with `old` resolves to `current` and back, as values and through the codec.
fn assert_versions_interoperate(
    old: &ParsedSchema,
    current: &ParsedSchema,
    example_datum: &[u8],
    decode_current: &DecodeAsCurrent,
) {
    let context = format!(
        "{} {} vs current {}",
        old.name(),
        old.fingerprint(),
        current.fingerprint()
    );
    SchemaCompatibility::mutual_read(old.schema(), current.schema())
        .unwrap_or_else(|e| panic!("{context}: not mutually readable: {e}"));
    // current -> old
    let as_old = apache_avro::from_avro_datum(
        current.schema(),
        &mut &example_datum[..],
        Some(old.schema()),
    )
    .unwrap_or_else(|e| panic!("{context}: current data does not resolve to old: {e}"));
    // old -> current, through the codec and a registry that knows `old`
    let old_datum = apache_avro::to_avro_datum(old.schema(), as_old)
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    let bytes = [
        &dakoku_schemas::MARKER[..],
        &old.fingerprint().to_bytes(),
        &old_datum,
    ]
    .concat();
    let mut registry = SchemaRegistry::builtin().clone();
    registry.register(old.clone());
    decode_current(&registry, &bytes)
        .unwrap_or_else(|e| panic!("{context}: old data does not decode as current: {e}"));
}

fn example_datum_and_decoder(name: &str) -> (Vec<u8>, Box<DecodeAsCurrent>) {
    fn with<T: AvroRecord + 'static>(example: T) -> (Vec<u8>, Box<DecodeAsCurrent>) {
        let bytes = encode(&example).expect("example encodes");
        (
            bytes[10..].to_vec(),
            Box::new(|r: &SchemaRegistry, b: &[u8]| r.decode::<T>(b).map(drop)),
        )
    }
    match name {
        "dakoku.RawPunch" => with(raw_example()),
        "dakoku.QuarantinedInput" => with(quarantine_example()),
        "dakoku.CheckedPunch" => with(checked_example()),
        "dakoku.AttendanceDay" => with(attendance_example()),
        "dakoku.MonthlyAttendance" => with(monthly_example()),
        other => panic!("no example for {other}: add one to tests/compat_guard.rs"),
    }
}

fn current_schema_of(name: &str) -> &'static ParsedSchema {
    [
        RawPunch::schema(),
        QuarantinedInput::schema(),
        CheckedPunch::schema(),
        AttendanceDay::schema(),
        MonthlyAttendance::schema(),
    ]
    .into_iter()
    .find(|s| s.name() == name)
    .unwrap_or_else(|| panic!("{name} has no current schema"))
}

#[test]
fn every_registered_version_resolves_both_ways() {
    for file in catalog::HISTORY {
        let old = ParsedSchema::parse(file.text).expect("parses");
        let (datum, decoder) = example_datum_and_decoder(old.name());
        assert_versions_interoperate(&old, current_schema_of(old.name()), &datum, &*decoder);
    }
    // The same check on the v2 test fixture, so it is known to work before HISTORY has entries.
    let v2 = ParsedSchema::parse(include_str!("fixtures/RawPunch.v2.avsc")).expect("parses");
    let (datum, decoder) = example_datum_and_decoder(v2.name());
    assert_versions_interoperate(&v2, RawPunch::schema(), &datum, &*decoder);
}

#[test]
fn the_builtin_registry_holds_every_file() {
    let registry = SchemaRegistry::builtin();
    for file in all_files() {
        let fp = ParsedSchema::parse(file.text)
            .expect("parses")
            .fingerprint();
        assert!(
            registry.get(fp).is_some(),
            "{} not in SchemaRegistry::builtin()",
            file.path
        );
    }
    assert_eq!(
        registry.iter().count(),
        all_files().len(),
        "two files share a fingerprint"
    );
}

fn field<'a>(schema: &'a Json, name: &str) -> &'a Json {
    schema["fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == name))
        .unwrap_or_else(|| panic!("no field {name}"))
}

#[test]
fn checked_punch_starts_with_the_raw_punch_fields() {
    let raw = json(catalog::RAW_PUNCH.text);
    let checked = json(catalog::CHECKED_PUNCH.text);
    let raw_fields = raw["fields"].as_array().expect("fields");
    let checked_fields = checked["fields"].as_array().expect("fields");
    assert_eq!(
        &checked_fields[..raw_fields.len()],
        raw_fields.as_slice(),
        "CheckedPunch must repeat RawPunch's fields first, identically (incl. enum PunchKind)"
    );
}

fn symbols(schema: &Json, field_name: &str) -> Vec<String> {
    let mut ty = &field(schema, field_name)["type"];
    if let Some(union) = ty.as_array() {
        ty = union
            .iter()
            .find(|t| *t != "null")
            .expect("non-null branch");
    }
    serde_json::from_value(ty["symbols"].clone()).expect("enum symbols")
}

/// The encoder writes fields in declaration order and enums by variant index, so both must
/// follow the schema exactly.
#[test]
fn rust_records_follow_schema_order() {
    fn field_names<T: AvroRecord>(example: &T) -> (Vec<String>, Vec<String>) {
        let rust = match apache_avro::to_value(example).expect("to_value") {
            Value::Record(fields) => fields.into_iter().map(|(n, _)| n).collect(),
            other => panic!("not a record: {other:?}"),
        };
        let avro = match T::schema().schema() {
            Schema::Record(r) => r.fields.iter().map(|f| f.name.clone()).collect(),
            _ => unreachable!("ParsedSchema is a record"),
        };
        (rust, avro)
    }
    let pairs = [
        field_names(&raw_example()),
        field_names(&quarantine_example()),
        field_names(&checked_example()),
        field_names(&attendance_example()),
    ];
    for (rust, avro) in pairs {
        assert_eq!(
            rust, avro,
            "Rust struct fields must match the schema's, in order"
        );
    }
    let checked = json(catalog::CHECKED_PUNCH.text);
    let names = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let kinds: Vec<&str> = PunchKind::ALL.iter().map(|k| k.as_str()).collect();
    let verdicts: Vec<&str> = Verdict::ALL.iter().map(|k| k.as_str()).collect();
    let reasons: Vec<&str> = RejectReason::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names(&kinds), symbols(&checked, "kind"));
    assert_eq!(names(&verdicts), symbols(&checked, "verdict"));
    assert_eq!(names(&reasons), symbols(&checked, "reason"));
    for kind in PunchKind::ALL {
        let raw = RawPunch {
            kind: *kind,
            ..raw_example()
        };
        assert_eq!(
            decode::<RawPunch>(&encode(&raw).expect("encodes"))
                .expect("decodes")
                .kind,
            *kind
        );
    }
}

#[test]
fn history_folder_is_where_old_versions_go() {
    // The catalog's documented layout: keep the path convention checkable.
    for file in catalog::HISTORY {
        assert!(file.path.starts_with("avro/history/"), "{}", file.path);
    }
    for file in catalog::CURRENT {
        assert_eq!(
            PathBuf::from(file.path).parent(),
            Some(Path::new("avro")),
            "{}",
            file.path
        );
    }
}
