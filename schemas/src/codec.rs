//! Avro single-object encoding (`C3 01`, 8-byte little-endian CRC-64-AVRO fingerprint of the
//! writer schema's Parsing Canonical Form, Avro binary datum), read by fingerprint so readers
//! and writers can be upgraded independently.

use std::{collections::HashMap, fmt, sync::LazyLock};

use apache_avro::{Schema, error::Details, types::Value};
use serde::{Serialize, de::DeserializeOwned};

use crate::catalog;

/// The two bytes every single-object encoded value starts with.
pub const MARKER: [u8; 2] = [0xC3, 0x01];

/// Marker plus fingerprint.
pub const HEADER_LEN: usize = 10;

/// Longest string or bytes value, and most array items, that a decoded datum may hold.
///
/// apache-avro allocates whatever length a datum claims before reading it (512 MiB by
/// default); a corrupt length must not cost gigabytes. The limit is process-wide (apache-avro
/// keeps it in a global set once) and is set by the first [`decode`].
pub const MAX_DECODED_LEN: usize = 16 * 1024 * 1024;

/// A record type with an Avro schema: its field order and enum variant order must match the
/// schema's, because the encoder streams serde output straight into Avro binary.
pub trait AvroRecord: Serialize + DeserializeOwned {
    /// The schema this type writes and reads: the current version, parsed once.
    fn schema() -> &'static ParsedSchema;
}

/// CRC-64-AVRO (Rabin) fingerprint of a schema's Parsing Canonical Form.
///
/// Shown as hex of the bytes in wire order (little-endian), the same form as
/// `fastavro.schema.fingerprint(..., "CRC-64-AVRO")` and as a hex dump of a message.
///
/// Computed here rather than with apache-avro's `Schema::fingerprint`, whose canonical form
/// (0.21) keeps `{"type":"long"}` where a logical type was stripped instead of `"long"`, so its
/// fingerprints differ from every other implementation's for schemas with logical types.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 8]);

impl Fingerprint {
    /// The fingerprint as its 8 wire bytes.
    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// The 8 wire bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    /// The fingerprint of `schema`.
    pub fn of(schema: &Schema) -> Self {
        Self::of_canonical_form(&canonical_form(schema))
    }

    /// The CRC-64-AVRO fingerprint of a Parsing Canonical Form text.
    pub fn of_canonical_form(canonical: &str) -> Self {
        static TABLE: [u64; 256] = crc64_avro_table();
        let fp = canonical.bytes().fold(CRC64_AVRO_EMPTY, |fp, b| {
            (fp >> 8) ^ TABLE[usize::from((fp as u8) ^ b)]
        });
        Self(fp.to_le_bytes())
    }
}

/// CRC-64-AVRO of the empty string, as in the Avro specification.
const CRC64_AVRO_EMPTY: u64 = 0xc15d_213a_a4d7_a795;

const fn crc64_avro_table() -> [u64; 256] {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut j = 0;
        while j < 8 {
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & (fp & 1).wrapping_neg());
            j += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
}

/// The specification's Parsing Canonical Form of `schema`: apache-avro's, with primitive types
/// in their simple form (see [`Fingerprint`]). The textual fix is exact because canonical form
/// has no whitespace, docs or defaults, and names cannot contain quotes or braces.
fn canonical_form(schema: &Schema) -> String {
    const PRIMITIVES: [&str; 8] = [
        "null", "boolean", "int", "long", "float", "double", "bytes", "string",
    ];
    let mut form = schema.canonical_form();
    for primitive in PRIMITIVES {
        let wrapped = format!(r#"{{"type":"{primitive}"}}"#);
        if form.contains(&wrapped) {
            form = form.replace(&wrapped, &format!(r#""{primitive}""#));
        }
    }
    form
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A parsed record schema with its fingerprint, computed once.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    schema: Schema,
    fingerprint: Fingerprint,
    name: String,
}

impl ParsedSchema {
    /// Parses an `.avsc` text, which must define a record.
    pub fn parse(text: &str) -> Result<Self, CodecError> {
        let schema = Schema::parse_str(text).map_err(|e| CodecError::InvalidSchema {
            detail: e.to_string(),
        })?;
        let name = match &schema {
            Schema::Record(record) => record.name.fullname(None),
            other => {
                return Err(CodecError::InvalidSchema {
                    detail: format!("expected a record schema, found {:?}", other.name()),
                });
            }
        };
        Ok(Self {
            fingerprint: Fingerprint::of(&schema),
            schema,
            name,
        })
    }

    /// An embedded `.avsc` file: its parsing is a build-time invariant that
    /// `tests/compat_guard.rs` checks, so failure is a bug, not an input error.
    pub(crate) fn embedded(file: catalog::SchemaFile) -> Self {
        Self::parse(file.text).unwrap_or_else(|e| panic!("embedded {} must parse: {e}", file.path))
    }

    /// The apache-avro schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Its fingerprint, as written in every value's header.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The record's full name, e.g. `dakoku.RawPunch`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Parsing Canonical Form the fingerprint is computed from.
    pub fn canonical_form(&self) -> String {
        canonical_form(&self.schema)
    }
}

/// Encoding or decoding failed. Decoding never panics: every input maps to one of these.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The payload is shorter than the 10-byte header (an empty or cut-off Kafka value).
    #[error(
        "payload of {len} bytes is too short for an Avro single-object header ({HEADER_LEN} bytes)"
    )]
    TooShort {
        /// Payload length.
        len: usize,
    },

    /// The payload does not start with `C3 01`: it is not Avro single-object encoded (JSON,
    /// Confluent wire format, garbage).
    #[error("payload does not start with the Avro single-object marker C3 01 (found {:02X} {:02X})", found[0], found[1])]
    BadMarker {
        /// The first two bytes.
        found: [u8; 2],
    },

    /// No known schema has the payload's fingerprint.
    #[error(
        "unknown writer schema fingerprint {fingerprint} for {expected}: the data may have been \
         written with a newer schema version than this program knows; upgrade it"
    )]
    UnknownFingerprint {
        /// The payload's fingerprint.
        fingerprint: Fingerprint,
        /// The record type the caller expected.
        expected: &'static str,
    },

    /// The fingerprint is known but belongs to another record type (a value read from the
    /// wrong topic).
    #[error("payload holds a {found} (schema {fingerprint}), not a {expected}")]
    WrongRecord {
        /// The record type the caller expected.
        expected: &'static str,
        /// The record type the fingerprint belongs to.
        found: String,
        /// The payload's fingerprint.
        fingerprint: Fingerprint,
    },

    /// The datum does not decode with its writer schema (truncated, corrupt, bytes left over)
    /// or holds a value the record type refuses (e.g. an invalid id).
    #[error("malformed {record} datum (schema {fingerprint}): {detail}")]
    Malformed {
        /// The record type.
        record: &'static str,
        /// The payload's fingerprint.
        fingerprint: Fingerprint,
        /// What was wrong.
        detail: String,
    },

    /// The writer's schema version cannot be resolved to the reader's: the two versions are
    /// not compatible, which `tests/compat_guard.rs` exists to prevent.
    #[error(
        "cannot resolve {record} written with schema {writer} to this reader's schema {reader}: {detail}"
    )]
    Resolution {
        /// The record type.
        record: &'static str,
        /// The writer schema's fingerprint.
        writer: Fingerprint,
        /// The reader schema's fingerprint.
        reader: Fingerprint,
        /// What did not resolve.
        detail: String,
    },

    /// A record does not fit its schema (e.g. a `seq` above `i64::MAX`).
    #[error("cannot encode {record}: {detail}")]
    Encode {
        /// The record type.
        record: &'static str,
        /// What did not fit.
        detail: String,
    },

    /// A schema text is not a valid Avro record schema.
    #[error("invalid Avro record schema: {detail}")]
    InvalidSchema {
        /// What the parser said.
        detail: String,
    },
}

/// Encodes `record` as an Avro single-object value with its current schema.
pub fn encode<T: AvroRecord>(record: &T) -> Result<Vec<u8>, CodecError> {
    let mut buf = Vec::with_capacity(256);
    encode_into(record, &mut buf)?;
    Ok(buf)
}

/// Appends the encoding of `record` to `buf`, so a producer can reuse one buffer. On error
/// `buf` is left as it was.
pub fn encode_into<T: AvroRecord>(record: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    let schema = T::schema();
    let start = buf.len();
    buf.extend_from_slice(&MARKER);
    buf.extend_from_slice(&schema.fingerprint.0);
    // Serde straight to bytes: no intermediate `Value` tree on the acceptor's hot path.
    apache_avro::write_avro_datum_ref(&schema.schema, record, buf).map_err(|e| {
        buf.truncate(start);
        CodecError::Encode {
            record: schema.name(),
            detail: encode_detail(&e),
        }
    })?;
    Ok(())
}

/// apache-avro's message for a bad field embeds the whole record schema; name the field path
/// instead.
fn encode_detail(error: &apache_avro::Error) -> String {
    match error.details() {
        Details::SerializeRecordFieldWithSchema {
            field_name, error, ..
        } => format!("field {field_name}: {}", encode_detail(error)),
        other => other.to_string(),
    }
}

/// Decodes a single-object value into `T`, resolving from whichever known schema version it
/// was written with ([`SchemaRegistry::builtin`]).
pub fn decode<T: AvroRecord>(payload: &[u8]) -> Result<T, CodecError> {
    SchemaRegistry::builtin().decode(payload)
}

/// The writer schema fingerprint in a payload's header, e.g. to log or quarantine a value
/// that did not decode.
pub fn fingerprint_of(payload: &[u8]) -> Result<Fingerprint, CodecError> {
    split_header(payload).map(|(fingerprint, _)| fingerprint)
}

fn split_header(payload: &[u8]) -> Result<(Fingerprint, &[u8]), CodecError> {
    let Some((header, datum)) = payload.split_first_chunk::<HEADER_LEN>() else {
        return Err(CodecError::TooShort { len: payload.len() });
    };
    let [m0, m1, fp @ ..] = *header;
    if [m0, m1] != MARKER {
        return Err(CodecError::BadMarker { found: [m0, m1] });
    }
    Ok((Fingerprint(fp), datum))
}

/// Writer schemas by fingerprint: every version a reader can meet on a topic.
#[derive(Debug, Clone, Default)]
pub struct SchemaRegistry {
    by_fingerprint: HashMap<Fingerprint, ParsedSchema>,
}

impl SchemaRegistry {
    /// An empty registry; readers still know their own current schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every schema shipped in `avro/`: current versions and [`catalog::HISTORY`].
    pub fn builtin() -> &'static SchemaRegistry {
        static BUILTIN: LazyLock<SchemaRegistry> = LazyLock::new(|| {
            let mut registry = SchemaRegistry::new();
            for file in catalog::CURRENT.iter().chain(catalog::HISTORY) {
                registry.register(ParsedSchema::embedded(*file));
            }
            registry
        });
        &BUILTIN
    }

    /// Adds a writer schema version, returning its fingerprint.
    pub fn register(&mut self, schema: ParsedSchema) -> Fingerprint {
        let fingerprint = schema.fingerprint;
        self.by_fingerprint.insert(fingerprint, schema);
        fingerprint
    }

    /// The writer schema with this fingerprint.
    pub fn get(&self, fingerprint: Fingerprint) -> Option<&ParsedSchema> {
        self.by_fingerprint.get(&fingerprint)
    }

    /// Every registered schema, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &ParsedSchema> {
        self.by_fingerprint.values()
    }

    /// Decodes a single-object value into `T`: looks up the writer schema by fingerprint and
    /// resolves it to `T`'s schema (Avro schema resolution), so values written by an older or
    /// newer known version read as `T`.
    pub fn decode<T: AvroRecord>(&self, payload: &[u8]) -> Result<T, CodecError> {
        apache_avro::util::max_allocation_bytes(MAX_DECODED_LEN);
        let reader = T::schema();
        let record = reader.name();
        let (fingerprint, datum) = split_header(payload)?;
        let writer = if fingerprint == reader.fingerprint {
            reader
        } else {
            let writer = self
                .get(fingerprint)
                .ok_or(CodecError::UnknownFingerprint {
                    fingerprint,
                    expected: record,
                })?;
            if writer.name != reader.name {
                return Err(CodecError::WrongRecord {
                    expected: record,
                    found: writer.name.clone(),
                    fingerprint,
                });
            }
            writer
        };
        let malformed = |detail: String| CodecError::Malformed {
            record,
            fingerprint,
            detail,
        };
        let mut input = EofGuard::new(datum);
        let value = apache_avro::from_avro_datum(&writer.schema, &mut input, None)
            .map_err(|e| malformed(e.to_string()))?;
        if input.hit_eof {
            return Err(malformed("the datum ends inside the record".to_owned()));
        }
        let datum = input.rest;
        if !datum.is_empty() {
            return Err(malformed(format!(
                "{} bytes left over after the datum",
                datum.len()
            )));
        }
        let value: Value = if std::ptr::eq(writer, reader) {
            value
        } else {
            value
                .resolve(&reader.schema)
                .map_err(|e| CodecError::Resolution {
                    record,
                    writer: fingerprint,
                    reader: reader.fingerprint,
                    detail: e.to_string(),
                })?
        };
        apache_avro::from_value(&value).map_err(|e| malformed(e.to_string()))
    }
}

/// A reader of the datum that remembers a read past its end. apache-avro decodes a union
/// field at end of input as null rather than failing, so a datum cut just before trailing
/// optional fields would otherwise decode "successfully" with those fields lost.
struct EofGuard<'a> {
    rest: &'a [u8],
    hit_eof: bool,
}

impl<'a> EofGuard<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Self {
            rest,
            hit_eof: false,
        }
    }
}

impl std::io::Read for EofGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.rest.is_empty() && !buf.is_empty() {
            self.hit_eof = true;
        }
        self.rest.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(schema: &str) -> Fingerprint {
        Fingerprint::of(&Schema::parse_str(schema).expect("valid schema"))
    }

    #[test]
    fn crc64_avro_matches_the_specification_vectors() {
        // From the Avro repository's share/test/data/schema-tests.txt.
        assert_eq!(
            fp(r#""null""#).to_bytes(),
            7195948357588979594_i64.to_le_bytes()
        );
        assert_eq!(
            fp(r#""boolean""#).to_bytes(),
            (-6970731678124411036_i64).to_le_bytes()
        );
        assert_eq!(
            fp(r#"{"name":"foo","type":"fixed","size":15}"#).to_bytes(),
            1756455273707447556_i64.to_le_bytes()
        );
    }

    #[test]
    fn logical_types_reduce_to_their_primitive() {
        assert_eq!(
            fp(r#"{"type":"long","logicalType":"timestamp-millis"}"#),
            fp(r#""long""#)
        );
        assert_eq!(
            fp(r#"{"type":"string","logicalType":"uuid"}"#),
            fp(r#""string""#)
        );
        let record = r#"{"type":"record","name":"r","namespace":"n","fields":[
            {"name":"a","type":["null",{"type":"int","logicalType":"date"}],"doc":"x"},
            {"name":"b","type":{"type":"array","items":{"type":"long","logicalType":"timestamp-millis"}}}]}"#;
        let parsed = ParsedSchema::parse(record).expect("valid");
        assert_eq!(
            parsed.canonical_form(),
            r#"{"name":"n.r","type":"record","fields":[{"name":"a","type":["null","int"]},{"name":"b","type":{"type":"array","items":"long"}}]}"#
        );
    }

    #[test]
    fn fingerprints_show_as_wire_order_hex() {
        let fp = Fingerprint::from_bytes([0x8a, 0x8f, 0x25, 0xcc, 0xe7, 0x24, 0xdd, 0x63]);
        assert_eq!(fp.to_string(), "8a8f25cce724dd63");
        assert_eq!(format!("{fp:?}"), "Fingerprint(8a8f25cce724dd63)");
    }

    #[test]
    fn only_record_schemas_are_accepted() {
        assert!(matches!(
            ParsedSchema::parse(r#""long""#),
            Err(CodecError::InvalidSchema { .. })
        ));
        assert!(matches!(
            ParsedSchema::parse("{"),
            Err(CodecError::InvalidSchema { .. })
        ));
    }
}
