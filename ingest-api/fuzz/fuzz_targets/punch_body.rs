//! Arbitrary bytes as a `POST /v1/punches` body: `parse_envelope`, then `validate_punch` on each
//! item, as the acceptor does. Besides "never panics", checks what the acceptor relies on:
//!
//! - a valid punch has `seq <= RawPunch::MAX_SEQ`, a `card_id` that re-parses to itself, the
//!   `seq` and `kind` that are in its JSON, and encodes as a `RawPunch` that decodes back
//!   (app.rs acks only what it could encode; "validation guarantees encodability");
//! - an invalid item keeps its index, its exact raw text (a slice of the body itself, which is
//!   what goes to quarantine), a usable `seq` exactly when the error is not about `seq` or the
//!   item's shape, and a bounded error message; its quarantine record encodes;
//! - validation is deterministic.

#![no_main]

// The parser is compiled in by path rather than through the `dakoku-ingest-api` crate, so the
// fuzz build does not compile librdkafka (minutes) for a module that never touches Kafka.
#[path = "../../src/request.rs"]
#[allow(dead_code)] // fields the acceptor reads but the fuzz target does not
mod request;

use request::{parse_envelope, validate_punch};
use dakoku_schemas::{
    CardId, DeviceId, GroupId, PunchId, QuarantinedInput, RawPunch, TenantId, decode, encode,
};
use libfuzzer_sys::fuzz_target;

/// The error messages echo at most 40 characters of a value; the fixed text is under 100 bytes.
const MAX_ERROR_LEN: usize = 512;

fuzz_target!(|data: &[u8]| {
    let envelope = match parse_envelope(data) {
        Ok(envelope) => envelope,
        Err(error) => {
            assert!(error.0.starts_with("body is not a punch batch"), "{error}");
            // The 400 path quarantines the body with this error: it must encode.
            let record = QuarantinedInput::new(0, "fuzz", "invalid_body", error.0, data, 1 << 20);
            encode(&record).expect("quarantine record of a bad body encodes");
            return;
        }
    };
    let data_range = data.as_ptr_range();
    for (index, raw) in envelope.punches.iter().enumerate() {
        let text = raw.get();
        // A borrowed RawValue is a slice of the body: exactly what was sent.
        let text_range = text.as_bytes().as_ptr_range();
        assert!(
            data_range.start <= text_range.start && text_range.end <= data_range.end,
            "raw item is not a slice of the body"
        );
        let result = validate_punch(index, raw);
        assert_eq!(result, validate_punch(index, raw), "deterministic");
        match result {
            Ok(punch) => {
                assert!(punch.seq <= RawPunch::MAX_SEQ);
                let card = punch.card_id.as_str();
                assert_eq!(card.parse::<CardId>().as_ref(), Ok(&punch.card_id));
                assert!(
                    (1..=CardId::MAX_LEN).contains(&card.len())
                        && card
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                    "card_id {card:?}"
                );
                let json: serde_json::Value = serde_json::from_str(text).expect("valid item");
                assert_eq!(json["seq"].as_u64(), Some(punch.seq));
                assert_eq!(json["kind"].as_str(), Some(punch.kind.as_str()));
                assert_eq!(json["card_id"].as_str(), Some(card));

                // What app.rs does with it.
                let tenant: TenantId = "t".parse().expect("tenant");
                let device: DeviceId = "d".parse().expect("device");
                let (at, at_offset_minutes) = RawPunch::at_fields(punch.at);
                assert!(at_offset_minutes.abs() < 24 * 60);
                let record = RawPunch {
                    punch_id: PunchId::derive(&tenant, &device, punch.seq),
                    tenant_id: tenant,
                    group: "g".parse::<GroupId>().expect("group"),
                    device_id: device,
                    seq: punch.seq,
                    card_id: punch.card_id.clone(),
                    kind: punch.kind,
                    at,
                    at_offset_minutes,
                    received_at: 0,
                    acceptor_id: "fuzz".to_owned(),
                };
                let bytes = encode(&record).expect("a valid punch encodes");
                let back: RawPunch = decode(&bytes).expect("and decodes");
                assert_eq!(back, record);
                let shown = back.at_recorder_time().expect("representable");
                assert_eq!(shown.timestamp_millis(), punch.at.timestamp_millis());
                assert_eq!(shown.offset(), punch.at.offset());
            }
            Err(invalid) => {
                assert_eq!(invalid.index, index);
                assert!(std::ptr::eq(invalid.raw, text), "raw is the item as sent");
                assert!(!invalid.error.is_empty());
                assert!(
                    invalid.error.len() <= MAX_ERROR_LEN,
                    "error echoes too much: {} bytes",
                    invalid.error.len()
                );
                let about_seq_or_shape =
                    invalid.error.starts_with("seq:") || invalid.error.starts_with("punch:");
                assert_eq!(
                    invalid.seq.is_none(),
                    about_seq_or_shape,
                    "seq {:?} with error {:?}",
                    invalid.seq,
                    invalid.error
                );
                if let Some(seq) = invalid.seq {
                    assert!(seq <= RawPunch::MAX_SEQ);
                }
                let record = QuarantinedInput::new(
                    0,
                    "fuzz",
                    "invalid_punch",
                    invalid.error.clone(),
                    invalid.raw.as_bytes(),
                    1 << 20,
                );
                encode(&record).expect("quarantine record of an invalid punch encodes");
            }
        }
    }
});
