//! The OpenAPI document (`ingest-api/openapi.json`, served at `/openapi.json`) against the code,
//! so neither can drift from the other: routes, the status policy of every refusal, headers,
//! limits and the examples. Needs no Kafka and no Postgres.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::IntoResponse as _;
use dakoku_ingest_api::app::OPENAPI;
use dakoku_ingest_api::error::ApiError;
use dakoku_ingest_api::request::{parse_envelope, validate_punch};
use dakoku_ingest_api::{AppState, Config, app};
use dakoku_schemas::{CardId, PunchKind, RawPunch};
use dakoku_token::{TokenError, TokenKeys};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// Every route the router serves, as (method, path). `routes_in_app_rs_are_these` keeps this
/// list equal to the `.route(...)` calls in `src/app.rs`.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/punches"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

fn doc() -> Value {
    serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
}

/// Follows local `$ref`s (`#/components/...`) until a non-reference object.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local references are used: {reference}"));
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling reference {reference}"));
    }
    panic!("reference cycle");
}

/// Every `enum` value anywhere in `schema`, references followed.
fn enum_values(doc: &Value, schema: &Value, out: &mut BTreeSet<String>) {
    match resolve(doc, schema) {
        Value::Object(map) => {
            if let Some(Value::Array(values)) = map.get("enum") {
                out.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            for (key, child) in map {
                if key != "enum" && key != "examples" && key != "example" {
                    enum_values(doc, child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| enum_values(doc, i, out)),
        _ => {}
    }
}

fn punches_operation(doc: &Value) -> &Value {
    doc.pointer("/paths/~1v1~1punches/post")
        .expect("POST /v1/punches is documented")
}

/// The documented response of `POST /v1/punches` for `status`, references followed.
fn punches_response(doc: &Value, status: u16) -> Option<&Value> {
    punches_operation(doc)
        .get("responses")?
        .get(status.to_string())
        .map(|r| resolve(doc, r))
}

/// One of each refusal, with every token error. `exhaustive` makes this list fail to compile
/// when a variant is added, instead of silently leaving it undocumented.
fn every_refusal() -> Vec<ApiError> {
    let all = vec![
        ApiError::UnsupportedMediaType,
        ApiError::MissingToken,
        ApiError::BadToken(TokenError::Malformed),
        ApiError::BadToken(TokenError::UnknownKey("k9".into())),
        ApiError::BadToken(TokenError::BadSignature),
        ApiError::BadToken(TokenError::Expired(1_735_689_600)),
        ApiError::DeviceMismatch {
            token: "PT-000123".into(),
            body: "PT-000124".into(),
        },
        ApiError::DeviceRevoked,
        ApiError::UnknownTenant,
        ApiError::BodyTooLarge { limit: 1 << 20 },
        ApiError::TooManyPunches {
            count: 1500,
            limit: 1000,
        },
        ApiError::BadRequest("body is not a punch batch".into()),
        ApiError::SlowBody { timeout_ms: 3000 },
        ApiError::RateLimited { retry_after: 2 },
        ApiError::Paused {
            scope: "tenant",
            reason: "migration".into(),
            retry_after: 600,
        },
        ApiError::Overloaded { retry_after: 7 },
        ApiError::LogUnavailable {
            detail: "Kafka unreachable".into(),
            retry_after: 8,
        },
        ApiError::NotReady { retry_after: 6 },
        ApiError::ShuttingDown { retry_after: 9 },
    ];
    for error in &all {
        exhaustive(error);
    }
    all
}

/// No wildcard arms: a new `ApiError` or `TokenError` variant must be added to
/// [`every_refusal`] (and to the document) before this compiles again.
fn exhaustive(error: &ApiError) {
    match error {
        ApiError::UnsupportedMediaType
        | ApiError::MissingToken
        | ApiError::DeviceMismatch { .. }
        | ApiError::DeviceRevoked
        | ApiError::UnknownTenant
        | ApiError::BodyTooLarge { .. }
        | ApiError::TooManyPunches { .. }
        | ApiError::BadRequest(_)
        | ApiError::SlowBody { .. }
        | ApiError::RateLimited { .. }
        | ApiError::Paused { .. }
        | ApiError::Overloaded { .. }
        | ApiError::LogUnavailable { .. }
        | ApiError::NotReady { .. }
        | ApiError::ShuttingDown { .. } => {}
        ApiError::BadToken(token) => match token {
            TokenError::Malformed
            | TokenError::UnknownKey(_)
            | TokenError::BadSignature
            | TokenError::Expired(_) => {}
        },
    }
}

fn header_documented(doc: &Value, response: &Value, name: &str) -> bool {
    response
        .get("headers")
        .and_then(Value::as_object)
        .and_then(|headers| {
            headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
        })
        .is_some_and(|(_, h)| !resolve(doc, h).is_null())
}

#[test]
fn the_document_is_openapi_3_1_with_the_basics() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let scheme = &doc["components"]["securitySchemes"]["deviceToken"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert!(
        scheme["bearerFormat"]
            .as_str()
            .is_some_and(|f| f.starts_with("dk1.")),
        "the token format is described"
    );
    assert_eq!(
        punches_operation(&doc)["security"],
        json!([{"deviceToken": []}])
    );
}

#[test]
fn routes_in_app_rs_are_these() {
    // The router cannot be enumerated, so read its source: a new `.route(...)` fails here until
    // it is added to `ROUTES` (and then to the document, checked below).
    let source = include_str!("../src/app.rs");
    let mut found = BTreeSet::new();
    for (at, _) in source.match_indices(".route(\"") {
        let rest = &source[at + ".route(\"".len()..];
        let (path, rest) = rest.split_once('"').expect("closing quote");
        let rest = rest
            .trim_start()
            .strip_prefix(',')
            .expect("comma")
            .trim_start();
        let method = rest
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .expect("method router");
        found.insert((method.to_owned(), path.to_owned()));
    }
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        found, listed,
        "ROUTES differs from the router in src/app.rs"
    );
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = doc();
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method.as_str())
            {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, served);
    for (method, path) in &served {
        let operation = &doc["paths"][path][method];
        assert!(
            operation["responses"]["200"].is_object(),
            "{method} {path} documents its 200"
        );
        assert!(
            operation["operationId"].is_string(),
            "{method} {path} has an operationId"
        );
    }
}

fn state() -> Arc<AppState> {
    // Nothing listens on port 1: building the state connects to nothing, and no request below
    // gets as far as Kafka or Postgres.
    let config = Config::new(
        "127.0.0.1:1",
        "postgres://dakoku@127.0.0.1:1/dakoku",
        &TokenKeys::generate_entry("test"),
    );
    Arc::new(AppState::new(config).expect("state"))
}

#[tokio::test]
async fn the_router_serves_the_documented_routes_and_the_document() {
    let router = app(state());
    for (method, path) in ROUTES {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let response = router
            .clone()
            .oneshot(
                Request::builder()
                    .method(method.clone())
                    .uri(*path)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let status = response.status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status}"
        );
        // The answer's status is documented for that operation.
        let doc = doc();
        let operation = &doc["paths"][path][method.as_str().to_lowercase()];
        assert!(
            operation["responses"][status.as_str()].is_object(),
            "{method} {path} answered {status}, which is not documented"
        );
    }
    let response = router
        .clone()
        .oneshot(
            Request::get("/openapi.json")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json",
        "served as JSON"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    assert_eq!(
        &body[..],
        OPENAPI.as_bytes(),
        "the document is served as is"
    );

    // Unknown paths and methods get the same JSON error body as every other refusal.
    for (request, status, code) in [
        (
            Request::get("/not-documented"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Request::get("/v1/punches"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ] {
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), status, "the check above can fail");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&body).expect("a JSON error body");
        assert_eq!(body["error"], code);
        assert!(body["message"].is_string());
    }
}

#[test]
fn every_refusal_status_code_and_header_is_documented() {
    let doc = doc();
    let mut statuses_used = BTreeSet::new();
    let mut codes_used = BTreeSet::new();
    for error in every_refusal() {
        let (status, code, retry_after) = error.policy();
        statuses_used.insert(status.as_u16());
        codes_used.insert(code);
        let response = punches_response(&doc, status.as_u16())
            .unwrap_or_else(|| panic!("{error:?}: status {status} not documented"));
        let description = response["description"].as_str().unwrap_or_default();
        let media = &response["content"]["application/json"];
        let mut codes = BTreeSet::new();
        enum_values(&doc, &media["schema"], &mut codes);
        assert!(
            codes.contains(code) || description.contains(&format!("`{code}`")),
            "{error:?}: code {code} not documented under {status}"
        );
        assert!(
            media["examples"][code]["value"]["error"] == code,
            "{error:?}: no example for {code} under {status}"
        );

        // The body is the documented Error shape, and the headers are those documented.
        let actual = error.clone().into_response();
        assert_eq!(actual.status(), status);
        let error_schema = resolve(&doc, &doc["components"]["schemas"]["Error"]);
        assert_eq!(error_schema["required"], json!(["error", "message"]));
        assert_eq!(
            retry_after.is_some(),
            actual.headers().contains_key(header::RETRY_AFTER)
        );
        assert_eq!(
            header_documented(&doc, response, "Retry-After"),
            retry_after.is_some(),
            "{error:?}: Retry-After documented iff sent"
        );
        assert_eq!(
            header_documented(&doc, response, "WWW-Authenticate"),
            actual.headers().contains_key(header::WWW_AUTHENTICATE),
            "{error:?}: WWW-Authenticate documented iff sent"
        );
    }

    // Conversely, nothing documented that the code cannot answer.
    let responses = punches_operation(&doc)["responses"]
        .as_object()
        .expect("responses");
    for (status, response) in responses {
        if status == "200" {
            continue;
        }
        let status: u16 = status.parse().expect("numeric status");
        assert!(
            statuses_used.contains(&status),
            "{status} is documented but never answered"
        );
        let mut codes = BTreeSet::new();
        enum_values(
            &doc,
            &resolve(&doc, response)["content"]["application/json"]["schema"],
            &mut codes,
        );
        for code in codes {
            assert!(
                codes_used.contains(code.as_str()),
                "code {code} under {status} is documented but never answered"
            );
        }
    }

    // A 200 may carry Retry-After when part of the batch was neither acked nor rejected.
    let ok = punches_response(&doc, 200).expect("200");
    assert!(header_documented(&doc, ok, "Retry-After"));
    assert_eq!(ok["headers"]["Retry-After"]["required"], false);
}

#[test]
fn schemas_match_the_code_and_the_default_limits() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    let kinds: Vec<&str> = PunchKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(schemas["PunchKind"]["enum"], json!(kinds));
    let punch = &schemas["Punch"]["properties"];
    assert_eq!(punch["seq"]["maximum"].as_u64(), Some(RawPunch::MAX_SEQ));
    assert_eq!(punch["seq"]["minimum"], 0);
    assert_eq!(
        punch["card_id"]["pattern"],
        format!("^[0-9A-Za-z_-]{{1,{}}}$", CardId::MAX_LEN)
    );
    assert_eq!(
        schemas["Rejected"]["properties"]["seq"]["type"],
        json!(["integer", "null"])
    );

    let config = Config::new("127.0.0.1:1", "postgres://x@127.0.0.1:1/x", "k:x");
    let batch = &schemas["PunchBatch"]["properties"];
    assert_eq!(
        batch["punches"]["maxItems"].as_u64(),
        Some(config.max_punches as u64)
    );
    assert_eq!(config.max_body_bytes, 1 << 20, "the document says 1 MiB");
    let description = punches_operation(&doc)["description"]
        .as_str()
        .expect("description");
    assert!(description.contains("1 MiB") && description.contains("1,000 punches"));
    assert!(
        description.contains("Recorder retry contract"),
        "the retry contract is in the operation's description"
    );

    let readiness = &schemas["Readiness"];
    for field in [
        "ready",
        "shutting_down",
        "kafka_reachable",
        "snapshot_loaded",
        "snapshot_version",
        "snapshot_age_seconds",
        "database_ok",
    ] {
        assert!(readiness["properties"][field].is_object(), "{field}");
    }
}

#[test]
fn request_examples_parse_and_validate_as_their_answers_say() {
    let doc = doc();
    let media = &punches_operation(&doc)["requestBody"]["content"]["application/json"];
    let examples = media["examples"].as_object().expect("request examples");
    assert!(examples.contains_key("contract"), "the contract's example");

    for (name, example) in examples {
        let body = serde_json::to_vec(&example["value"]).expect("serialize");
        let envelope = parse_envelope(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut acked = Vec::new();
        let mut rejected = Vec::new();
        for (index, raw) in envelope.punches.iter().enumerate() {
            match validate_punch(index, raw) {
                Ok(punch) => acked.push(json!(punch.seq)),
                Err(invalid) => rejected.push(json!({
                    "seq": invalid.seq, "index": invalid.index, "error": invalid.error,
                })),
            }
        }
        // The 200 example of the same name is exactly what validation gives.
        let answer = &resolve(&doc, &punches_operation(&doc)["responses"]["200"])["content"]["application/json"]
            ["examples"][name]["value"];
        assert_eq!(
            answer,
            &json!({"acked": acked, "rejected": rejected}),
            "{name}: the documented answer differs from validation"
        );
    }

    // The contract's example, field by field.
    let body = serde_json::to_vec(&examples["contract"]["value"]).expect("serialize");
    let envelope = parse_envelope(&body).expect("contract example parses");
    assert_eq!(envelope.device_id, "PT-000123");
    assert_eq!(envelope.punches.len(), 1);
    let punch = validate_punch(0, envelope.punches[0]).expect("contract example validates");
    assert_eq!(punch.seq, 18211);
    assert_eq!(punch.card_id.as_str(), "01010312A40B5C2D");
    assert_eq!(punch.kind, PunchKind::ClockIn);
    assert_eq!(punch.at.to_rfc3339(), "2020-12-04T08:44:59+09:00");

    // The schema-level example is valid too.
    for example in doc["components"]["schemas"]["PunchBatch"]["examples"]
        .as_array()
        .expect("examples")
    {
        let body = serde_json::to_vec(example).expect("serialize");
        let envelope = parse_envelope(&body).expect("parses");
        for (index, raw) in envelope.punches.iter().enumerate() {
            validate_punch(index, raw).expect("validates");
        }
    }
}
