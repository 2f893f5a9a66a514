//! The catalogue: hostile and broken requests, each with the answer CONTRACT §1 documents.

use std::fmt;

use chrono::Utc;
use dakoku_schemas::{DeviceId, TenantId};
use dakoku_token::{DeviceClaims, TokenKeys};
use serde_json::{Value, json};

use super::fixture::{ProbeEnv, ProbeFixture};

/// One HTTP probe: a request and the documented answer.
pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) token: Option<String>,
    pub(super) content_type: &'static str,
    pub(super) body: Vec<u8>,
    pub(super) expect: Expect,
}

#[derive(Clone, Copy)]
pub(super) enum Expect {
    /// A refusal: status and `error` code.
    Refused(u16, &'static str),
    /// `200` with nothing acked and exactly one item rejected.
    ItemRejected,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Refused(status, code) => write!(f, "{status} {code}"),
            Expect::ItemRejected => write!(f, "200, item rejected, none acked"),
        }
    }
}

const AT: &str = "2020-12-04T08:00:00+09:00";

pub(super) fn punch(seq: u64) -> Value {
    json!({"seq": seq, "card_id": "PROBE-CARD", "kind": "clock_in", "at": AT})
}

pub(super) fn body(device: &DeviceId, punches: Vec<Value>) -> Vec<u8> {
    json!({"device_id": device.as_str(), "punches": punches})
        .to_string()
        .into_bytes()
}

/// A body whose single punch has `field` replaced by `value`.
fn with_field(device: &DeviceId, seq: u64, field: &str, value: Value) -> Vec<u8> {
    let mut item = punch(seq);
    item[field] = value;
    body(device, vec![item])
}

pub(super) fn token(
    keys: &TokenKeys,
    tenant: &TenantId,
    device: &DeviceId,
    valid_secs: i64,
) -> String {
    keys.mint(&DeviceClaims {
        tenant: tenant.clone(),
        device: device.clone(),
        expires_at: Utc::now().timestamp() + valid_secs,
    })
}

/// Probes of who may post: tokens (missing, malformed, forged, expired), revoked devices,
/// another tenant's device, unknown tenants.
pub(super) fn auth_cases(
    env: &ProbeEnv,
    fixture: &ProbeFixture,
    token_a: &str,
) -> anyhow::Result<Vec<Case>> {
    let (a, b) = (&fixture.device_a, &fixture.device_b);
    let forger = TokenKeys::parse(&TokenKeys::generate_entry(env.keys.signing_key_id()))?;
    Ok(vec![
        Case {
            name: "no token",
            token: None,
            content_type: "application/json",
            body: body(a, vec![punch(100)]),
            expect: Expect::Refused(401, "missing_token"),
        },
        Case {
            name: "malformed token",
            token: Some("dk1.not-a-token".into()),
            content_type: "application/json",
            body: body(a, vec![punch(101)]),
            expect: Expect::Refused(401, "invalid_token"),
        },
        Case {
            name: "forged token (same key id, other secret)",
            token: Some(token(&forger, &fixture.tenant_a, a, 3600)),
            content_type: "application/json",
            body: body(a, vec![punch(102)]),
            expect: Expect::Refused(401, "invalid_token"),
        },
        Case {
            name: "expired token",
            token: Some(token(&env.keys, &fixture.tenant_a, a, -1)),
            content_type: "application/json",
            body: body(a, vec![punch(103)]),
            expect: Expect::Refused(401, "token_expired"),
        },
        Case {
            name: "revoked device",
            token: Some(token(&env.keys, &fixture.tenant_a, &fixture.revoked, 3600)),
            content_type: "application/json",
            body: body(&fixture.revoked, vec![punch(104)]),
            expect: Expect::Refused(403, "device_revoked"),
        },
        Case {
            name: "tenant A's token posting for B's device",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: body(b, vec![punch(105)]),
            expect: Expect::Refused(403, "device_mismatch"),
        },
        Case {
            name: "token of an unknown tenant",
            token: Some(token(&env.keys, &"probe-nobody".parse()?, a, 3600)),
            content_type: "application/json",
            body: body(a, vec![punch(106)]),
            expect: Expect::Refused(403, "unknown_tenant"),
        },
    ])
}

/// Probes of what may be posted: content type, sizes, malformed JSON and wrong shapes.
pub(super) fn input_cases(env: &ProbeEnv, a: &DeviceId, token_a: &str) -> Vec<Case> {
    vec![
        Case {
            name: "wrong content type",
            token: Some(token_a.to_owned()),
            content_type: "text/plain",
            body: body(a, vec![punch(107)]),
            expect: Expect::Refused(415, "unsupported_media_type"),
        },
        Case {
            name: "oversized body",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: {
                let mut big = body(a, vec![punch(108)]);
                big.truncate(big.len() - 1);
                big.extend_from_slice(b", \"pad\": \"");
                big.extend(std::iter::repeat_n(b'x', env.max_body_bytes + 1));
                big.extend_from_slice(b"\"}");
                big
            },
            expect: Expect::Refused(413, "body_too_large"),
        },
        Case {
            name: "too many punches",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: body(
                a,
                (0..=env.max_punches as u64)
                    .map(|i| punch(1_000 + i))
                    .collect(),
            ),
            expect: Expect::Refused(413, "too_many_punches"),
        },
        Case {
            name: "malformed JSON",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: b"{\"device_id\": \"PROBE-A\", \"punches\": [{\"seq\": 109,".to_vec(),
            expect: Expect::Refused(400, "bad_request"),
        },
        Case {
            name: "device_id: a number",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: json!({"device_id": 7, "punches": [punch(110)]})
                .to_string()
                .into_bytes(),
            expect: Expect::Refused(400, "bad_request"),
        },
        Case {
            name: "punches: a string",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: json!({"device_id": a.as_str(), "punches": "punch 111"})
                .to_string()
                .into_bytes(),
            expect: Expect::Refused(400, "bad_request"),
        },
        Case {
            name: "body: an array",
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: json!([punch(112)]).to_string().into_bytes(),
            expect: Expect::Refused(400, "bad_request"),
        },
    ]
}

/// Wrong types and values in every field of a punch: that item is rejected (and
/// quarantined), nothing acked.
pub(super) fn item_cases(a: &DeviceId, token_a: &str) -> Vec<Case> {
    let items: Vec<(&'static str, &'static str, Value)> = vec![
        ("seq: a string", "seq", json!("120")),
        ("seq: negative", "seq", json!(-1)),
        ("seq: a fraction", "seq", json!(121.5)),
        ("seq: above 2^63-1", "seq", json!(u64::MAX)),
        ("seq: null", "seq", Value::Null),
        ("card_id: a number", "card_id", json!(122)),
        (
            "card_id: forbidden characters",
            "card_id",
            json!("CARD 1;--"),
        ),
        ("card_id: empty", "card_id", json!("")),
        ("kind: a number", "kind", json!(1)),
        ("kind: unknown value", "kind", json!("clockin")),
        ("at: a number", "at", json!(1_607_036_400)),
        ("at: no offset", "at", json!("2020-12-04T08:00:00")),
        ("at: not a time", "at", json!("yesterday")),
    ];
    items
        .into_iter()
        .enumerate()
        .map(|(i, (name, field, value))| Case {
            name,
            token: Some(token_a.to_owned()),
            content_type: "application/json",
            body: with_field(a, 130 + i as u64, field, value),
            expect: Expect::ItemRejected,
        })
        .collect()
}
