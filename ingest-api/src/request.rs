//! Parsing and validation of a `POST /v1/punches` body: pure code, no I/O, fuzzed.
//!
//! The envelope must be JSON of the contract's shape or the whole request is a `400`. Each
//! punch is then validated on its own so that one bad item never costs the recorder the rest
//! of its batch: bad items become per-item rejections, kept with their raw JSON for quarantine.

use chrono::{DateTime, FixedOffset};
use dakoku_schemas::{CardId, PunchKind, RawPunch};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The batch envelope, borrowing from the request body.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// The device the recorder says it is; must match the token's device.
    #[serde(borrow)]
    pub device_id: std::borrow::Cow<'a, str>,
    /// The punches, kept raw so each is validated (and quarantined) on its own.
    #[serde(borrow)]
    pub punches: Vec<&'a RawValue>,
}

/// A punch that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPunch {
    /// The recorder's sequence number (at most [`RawPunch::MAX_SEQ`]).
    pub seq: u64,
    /// The card presented.
    pub card_id: CardId,
    /// What was punched.
    pub kind: PunchKind,
    /// The recorder's clock, with its offset.
    pub at: DateTime<FixedOffset>,
}

/// A punch that can never succeed, with what is wrong in the contract's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid<'a> {
    /// Position in the batch, so items without a usable `seq` can still be told apart.
    pub index: usize,
    /// The item's `seq` if it had a usable one.
    pub seq: Option<u64>,
    /// What is wrong, e.g. `kind: unknown value "clockin"`.
    pub error: String,
    /// The item exactly as sent, for quarantine.
    pub raw: &'a str,
}

/// Why a whole body was refused with `400`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EnvelopeError(pub String);

/// Parses the envelope; anything not of the contract's shape is an [`EnvelopeError`].
pub fn parse_envelope(body: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    serde_json::from_slice(body).map_err(|e| {
        EnvelopeError(format!(
            "body is not a punch batch ({e}); expected {{\"device_id\": \"...\", \"punches\": [...]}}"
        ))
    })
}

/// The known punch kinds, for error messages.
const KINDS: &str = "clock_in, clock_out, break_start, break_end";

/// The shape of a valid item, borrowed: the common case parses in one pass without building a
/// map or allocating per field (escaped strings aside).
#[derive(Deserialize)]
struct ItemFast<'a> {
    seq: u64,
    #[serde(borrow)]
    card_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    at: std::borrow::Cow<'a, str>,
}

/// Validates one item of the batch.
///
/// Valid items take a typed fast path; anything that fails it is re-examined field by field by
/// [`explain`], so the error a recorder sees never depends on which path ran.
pub fn validate_punch(index: usize, raw: &RawValue) -> Result<ValidPunch, Invalid<'_>> {
    if let Ok(item) = serde_json::from_str::<ItemFast<'_>>(raw.get()) {
        let kind = PunchKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == item.kind);
        let at = DateTime::parse_from_rfc3339(&item.at).ok();
        if let (true, Ok(card_id), Some(kind), Some(at)) = (
            item.seq <= RawPunch::MAX_SEQ,
            item.card_id.parse::<CardId>(),
            kind,
            at,
        ) && at.timestamp().checked_mul(1000).is_some()
        {
            return Ok(ValidPunch {
                seq: item.seq,
                card_id,
                kind,
                at,
            });
        }
    }
    explain(index, raw)
}

/// The slow path: examines each field in turn and says exactly what is wrong.
fn explain(index: usize, raw: &RawValue) -> Result<ValidPunch, Invalid<'_>> {
    let invalid = |seq: Option<u64>, error: String| Invalid {
        index,
        seq,
        error,
        raw: raw.get(),
    };
    let item: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw.get())
        .map_err(|_| invalid(None, "punch: expected a JSON object".to_owned()))?;
    let seq = explain_seq(item.get("seq")).map_err(|error| invalid(None, error))?;
    let field_error = |error| invalid(Some(seq), error);
    let card_id = explain_card_id(item.get("card_id")).map_err(field_error)?;
    let kind = explain_kind(item.get("kind")).map_err(field_error)?;
    let at = explain_at(item.get("at")).map_err(field_error)?;
    Ok(ValidPunch {
        seq,
        card_id,
        kind,
        at,
    })
}

fn explain_seq(value: Option<&serde_json::Value>) -> Result<u64, String> {
    let value = value.ok_or_else(|| "seq: missing".to_owned())?;
    match value.as_u64() {
        Some(seq) if seq <= RawPunch::MAX_SEQ => Ok(seq),
        Some(_) => Err(format!("seq: must be at most {}", RawPunch::MAX_SEQ)),
        None => Err(format!(
            "seq: expected an unsigned integer, got {}",
            short(value)
        )),
    }
}

fn explain_card_id(value: Option<&serde_json::Value>) -> Result<CardId, String> {
    match value {
        None => Err("card_id: missing".to_owned()),
        Some(serde_json::Value::String(s)) => s.parse::<CardId>().map_err(|_| {
            format!(
                "card_id: expected 1 to 64 characters [0-9A-Za-z_-], got {}",
                short(&serde_json::Value::String(s.clone()))
            )
        }),
        Some(other) => Err(format!("card_id: expected a string, got {}", short(other))),
    }
}

fn explain_kind(value: Option<&serde_json::Value>) -> Result<PunchKind, String> {
    match value {
        None => Err("kind: missing".to_owned()),
        Some(serde_json::Value::String(s)) => PunchKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "kind: unknown value {} (expected one of {KINDS})",
                    short(&serde_json::Value::String(s.clone()))
                )
            }),
        Some(other) => Err(format!("kind: expected a string, got {}", short(other))),
    }
}

fn explain_at(value: Option<&serde_json::Value>) -> Result<DateTime<FixedOffset>, String> {
    let at = match value {
        None => return Err("at: missing".to_owned()),
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(s).map_err(|_| {
            format!(
                "at: expected an RFC 3339 time with an offset, e.g. 2020-12-04T08:44:59+09:00, got {}",
                short(&serde_json::Value::String(s.clone()))
            )
        })?,
        Some(other) => return Err(format!("at: expected a string, got {}", short(other))),
    };
    // timestamp-millis must fit an i64 of milliseconds; chrono's range is wider.
    if at.timestamp().checked_mul(1000).is_none() {
        return Err("at: out of range".to_owned());
    }
    Ok(at)
}

/// A JSON value shortened for an error message: recorders' payloads are echoed, never whole.
fn short(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 40 {
        text
    } else {
        let mut cut: String = text.chars().take(37).collect();
        cut.push_str("...");
        cut
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).expect("valid JSON")
    }

    fn error_of(json: &str) -> String {
        let raw = raw(json);
        validate_punch(0, &raw)
            .expect_err("should be invalid")
            .error
    }

    #[test]
    fn the_contract_example_is_valid() {
        let body = br#"{"device_id": "PT-000123",
            "punches": [{"seq": 18211, "card_id": "01010312A40B5C2D", "kind": "clock_in",
                         "at": "2020-12-04T08:44:59+09:00"}]}"#;
        let envelope = parse_envelope(body).expect("valid envelope");
        assert_eq!(envelope.device_id, "PT-000123");
        let punch = validate_punch(0, envelope.punches[0]).expect("valid punch");
        assert_eq!(punch.seq, 18211);
        assert_eq!(punch.kind, PunchKind::ClockIn);
        assert_eq!(punch.at.offset().local_minus_utc(), 9 * 3600);
    }

    #[test]
    fn each_field_error_names_the_field_and_what_is_allowed() {
        let ok = r#""card_id": "C1", "kind": "clock_in", "at": "2020-12-04T08:44:59+09:00""#;
        assert_eq!(
            error_of(
                r#"{"seq": 1, "card_id": "C1", "kind": "clockin", "at": "2020-12-04T08:44:59+09:00"}"#
            ),
            r#"kind: unknown value "clockin" (expected one of clock_in, clock_out, break_start, break_end)"#
        );
        assert_eq!(error_of(&format!("{{{ok}}}")), "seq: missing");
        assert!(
            error_of(&format!(r#"{{"seq": -1, {ok}}}"#))
                .starts_with("seq: expected an unsigned integer")
        );
        assert!(
            error_of(&format!(r#"{{"seq": 1.5, {ok}}}"#))
                .starts_with("seq: expected an unsigned integer")
        );
        assert!(
            error_of(&format!(r#"{{"seq": "7", {ok}}}"#))
                .starts_with("seq: expected an unsigned integer")
        );
        assert_eq!(
            error_of(&format!(r#"{{"seq": 18446744073709551615, {ok}}}"#)),
            "seq: must be at most 9223372036854775807"
        );
        assert!(error_of(r#"{"seq": 1, "card_id": "a b", "kind": "clock_in", "at": "2020-12-04T08:44:59+09:00"}"#).starts_with("card_id: expected 1 to 64"));
        assert!(
            error_of(
                r#"{"seq": 1, "card_id": 5, "kind": "clock_in", "at": "2020-12-04T08:44:59+09:00"}"#
            )
            .starts_with("card_id: expected a string")
        );
        assert!(
            error_of(
                r#"{"seq": 1, "card_id": "C1", "kind": "clock_in", "at": "2020-12-04T08:44:59"}"#
            )
            .starts_with("at: expected an RFC 3339 time with an offset")
        );
        assert_eq!(error_of("[1, 2]"), "punch: expected a JSON object");
        assert_eq!(
            error_of(r#"{"seq": 1, "kind": "clock_in", "at": "x"}"#),
            "card_id: missing"
        );
    }

    #[test]
    fn invalid_items_keep_their_seq_when_it_was_usable_and_their_raw_text() {
        let text =
            r#"{"seq": 9, "card_id": "C1", "kind": "nap", "at": "2020-12-04T08:44:59+09:00"}"#;
        let raw = raw(text);
        let invalid = validate_punch(4, &raw).expect_err("invalid");
        assert_eq!(
            (invalid.index, invalid.seq, invalid.raw),
            (4, Some(9), text)
        );
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(500);
        let message = error_of(&format!(
            r#"{{"seq": 1, "card_id": "C1", "kind": "{long}", "at": "2020-12-04T08:44:59+09:00"}}"#
        ));
        assert!(message.len() < 150, "{message}");
    }

    #[test]
    fn envelopes_of_the_wrong_shape_are_refused() {
        for body in [
            &b""[..],
            b"not json",
            b"[]",
            b"{}",
            br#"{"device_id": "PT-1"}"#,
            br#"{"punches": []}"#,
            br#"{"device_id": 5, "punches": []}"#,
            br#"{"device_id": "PT-1", "punches": {}}"#,
            br#"{"device_id": "PT-1", "punches": []} trailing"#,
        ] {
            assert!(
                parse_envelope(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        // Unknown fields are tolerated so recorder vendors can add their own.
        let envelope =
            parse_envelope(br#"{"device_id": "PT\u002d1", "firmware": "2.1", "punches": []}"#)
                .expect("valid");
        assert_eq!(envelope.device_id, "PT-1", "escaped strings are decoded");
    }

    proptest! {
        #[test]
        fn the_fast_path_and_the_explanation_agree(
            seq in prop_oneof![Just("1".to_owned()), Just("-1".to_owned()), Just("\"7\"".to_owned()),
                               Just("9223372036854775808".to_owned()), (0u64..100).prop_map(|n| n.to_string())],
            card in prop_oneof![Just("\"C1\"".to_owned()), Just("\"bad card\"".to_owned()), Just("5".to_owned())],
            kind in prop_oneof![Just("\"clock_in\"".to_owned()), Just("\"nap\"".to_owned()), Just("null".to_owned())],
            at in prop_oneof![Just("\"2020-12-04T08:44:59+09:00\"".to_owned()), Just("\"2020-12-04\"".to_owned())],
            extra in prop_oneof![Just(String::new()), Just(", \"x\": 1".to_owned())],
        ) {
            let text = format!(r#"{{"seq": {seq}, "card_id": {card}, "kind": {kind}, "at": {at}{extra}}}"#);
            let raw = raw(&text);
            prop_assert_eq!(validate_punch(0, &raw), explain(0, &raw));
        }

        #[test]
        fn parsing_and_validation_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(envelope) = parse_envelope(&body) {
                for (i, raw) in envelope.punches.iter().enumerate() {
                    let _ = validate_punch(i, raw);
                }
            }
        }

        #[test]
        fn valid_punches_validate(seq in 0..=RawPunch::MAX_SEQ, card in "[0-9A-Za-z_-]{1,64}",
                                  kind in 0usize..4, offset_min in -720i32..=840) {
            let at = DateTime::from_timestamp(1_600_000_000, 0).expect("time")
                .with_timezone(&FixedOffset::east_opt(offset_min * 60).expect("offset"));
            let kind = PunchKind::ALL[kind];
            let text = format!(r#"{{"seq": {seq}, "card_id": "{card}", "kind": "{}", "at": "{}"}}"#,
                               kind.as_str(), at.to_rfc3339());
            let raw = raw(&text);
            let punch = validate_punch(0, &raw).expect("valid");
            prop_assert_eq!(punch.seq, seq);
            prop_assert_eq!(punch.kind, kind);
            prop_assert_eq!(punch.at, at);
        }
    }
}
