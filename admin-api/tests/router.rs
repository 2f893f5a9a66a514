//! The router in process (`tower::ServiceExt::oneshot`): authentication (401 with
//! `WWW-Authenticate`, 403 for another tenant), validation (422 naming the field), the body
//! limit, 503 before Postgres answered, and answers of the operations on a real database.

mod support;

use axum::http::StatusCode;
use support::{admin_token, admin_token_until, call, device_token, state};

const CLOSINGS: &str = "/v1/tenants/acme/months/2026-11/closings";

#[tokio::test]
async fn requests_without_a_valid_admin_token_are_401_with_a_challenge() {
    let state = state();
    let good = admin_token("acme", "alice");
    let mut tampered = good.clone().into_bytes();
    let at = "dka1.adm1.".len() + 1;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let expired = admin_token_until("acme", "alice", chrono::Utc::now().timestamp() - 1);
    let device = device_token("acme");
    let cases: [(&str, Option<&str>); 5] = [
        ("no token", None),
        ("tampered", Some(&tampered)),
        ("expired", Some(&expired)),
        ("device token", Some(&device)),
        ("junk", Some("not-a-token")),
    ];
    for (what, token) in cases {
        let answer = call(&state, "GET", CLOSINGS, token, "").await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {answer:?}"
        );
        assert_eq!(
            answer.headers["www-authenticate"], "Bearer realm=\"dakoku-admin\"",
            "{what}"
        );
        assert_eq!(answer.json["error"], "unauthorized", "{what}");
        assert!(answer.json["field"].is_null(), "{what}");
    }
    // A write is refused the same way, before its body is read.
    let answer = call(&state, "POST", "/v1/tenants/acme/corrections", None, "{").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_for_another_tenant_is_403() {
    let state = state();
    let token = admin_token("other", "alice");
    for (method, uri) in [
        ("GET", CLOSINGS),
        ("POST", "/v1/tenants/acme/months/2026-11/close"),
        ("POST", "/v1/tenants/acme/corrections"),
        ("GET", "/v1/tenants/acme/employees/E1/days/2026-11-03"),
    ] {
        let answer = call(&state, method, uri, Some(&token), "{}").await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert_eq!(answer.json["error"], "forbidden");
        assert!(
            answer.json["message"]
                .as_str()
                .unwrap_or("")
                .contains("other"),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn bad_parameters_and_bodies_are_422_naming_the_field_before_any_data_is_read() {
    // No operations connected: a 422 here proves the check needs no database.
    let state = state();
    let token = admin_token("acme", "alice");
    let t = Some(token.as_str());
    let cases: &[(&str, &str, &str, &str)] = &[
        ("POST", "/v1/tenants/acme/months/2026-13/close", "", "month"),
        ("GET", "/v1/tenants/acme/months/26-11/closings", "", "month"),
        (
            "POST",
            "/v1/tenants/acme/months/2026-00/reopen",
            r#"{"reason":"x"}"#,
            "month",
        ),
        ("GET", "/v1/tenants/acme/anomalies", "", "month"),
        (
            "GET",
            "/v1/tenants/acme/anomalies?month=november",
            "",
            "month",
        ),
        (
            "GET",
            "/v1/tenants/acme/employees/E1/days/2026-02-30",
            "",
            "date",
        ),
        (
            "GET",
            "/v1/tenants/acme/employees/E%201/days/2026-02-03",
            "",
            "employee",
        ),
        (
            "POST",
            "/v1/tenants/acme/corrections",
            "{\"action\": ",
            "body",
        ),
        ("POST", "/v1/tenants/acme/corrections", "[]", "body"),
        (
            "POST",
            "/v1/tenants/acme/corrections",
            r#"{"action":"add","actor":"mallory"}"#,
            "actor",
        ),
        (
            "POST",
            "/v1/tenants/acme/corrections",
            r#"{"action":"redo"}"#,
            "action",
        ),
        (
            "POST",
            "/v1/tenants/acme/corrections",
            r#"{"action":"add","kind":"nap"}"#,
            "kind",
        ),
        (
            "POST",
            "/v1/tenants/acme/corrections",
            r#"{"action":"add","at":"2026-11-03 18:00"}"#,
            "at",
        ),
        (
            "POST",
            "/v1/tenants/acme/months/2026-11/reopen",
            r#"{"reason":1}"#,
            "reason",
        ),
    ];
    for (method, uri, body, field) in cases {
        let answer = call(&state, method, uri, t, body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {uri} {body}: {answer:?}"
        );
        assert_eq!(answer.json["error"], "invalid");
        assert_eq!(answer.field(), Some(*field), "{method} {uri} {body}");
        assert!(!answer.json["message"].as_str().unwrap_or("").is_empty());
    }
}

#[tokio::test]
async fn limits_unknown_routes_and_unconnected_operations_answer_json() {
    let state = state();
    let token = admin_token("acme", "alice");
    let t = Some(token.as_str());
    let big = format!(r#"{{"action":"add","reason":"{}"}}"#, "x".repeat(20_000));
    let answer = call(&state, "POST", "/v1/tenants/acme/corrections", t, &big).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{answer:?}");
    assert_eq!(answer.json["error"], "body_too_large");

    let answer = call(&state, "GET", "/v1/nothing", t, "").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json["error"], "not_found");
    let answer = call(&state, "DELETE", CLOSINGS, t, "").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);

    // Well-formed and authorized, but Postgres has not answered yet.
    let answer = call(&state, "GET", CLOSINGS, t, "").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert_eq!(answer.headers["retry-after"], "3");
    assert_eq!(answer.json["error"], "unavailable");

    let answer = call(&state, "GET", "/healthz", None, "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["connected"], false);
    let answer = call(&state, "GET", "/openapi.yaml", None, "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/yaml");
}

#[tokio::test]
async fn own_tenant_is_served_and_the_operations_refusals_keep_their_field() -> anyhow::Result<()> {
    let w = support::world(false).await?;
    let token = admin_token("acme", "alice");
    let t = Some(token.as_str());

    let answer = call(&w.state, "GET", CLOSINGS, t, "").await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(
        answer.json,
        serde_json::json!({"tenant_id": "acme", "month": "2026-11", "closed": false, "events": []})
    );

    let answer = call(
        &w.state,
        "GET",
        "/v1/tenants/acme/employees/E1/days/2026-11-03",
        t,
        "",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.json["employee_id"], "E1");
    assert!(answer.json["day"].is_null(), "no day computed: {answer:?}");
    assert_eq!(answer.json["punches"], serde_json::json!([]));

    let answer = call(
        &w.state,
        "GET",
        "/v1/tenants/acme/anomalies?month=2026-11",
        t,
        "",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.json["days"], serde_json::json!([]));

    // Checked by the operations: still 422 with the field.
    let corrections = "/v1/tenants/acme/corrections";
    let no_reason = r#"{"employee_id":"E1","action":"add","kind":"clock_out","at":"2026-11-03T18:00:00+09:00"}"#;
    let no_kind =
        r#"{"employee_id":"E1","action":"add","at":"2026-11-03T18:00:00+09:00","reason":"forgot"}"#;
    let long = format!(
        r#"{{"employee_id":"E1","action":"add","kind":"clock_out","at":"2026-11-03T18:00:00+09:00","reason":"{}"}}"#,
        "x".repeat(501)
    );
    for (body, field) in [(no_reason, "reason"), (no_kind, "kind"), (&long, "reason")] {
        let answer = call(&w.state, "POST", corrections, t, body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{answer:?}"
        );
        assert_eq!(answer.field(), Some(field), "{body}");
    }
    let answer = call(
        &w.state,
        "POST",
        "/v1/tenants/acme/months/2026-11/reopen",
        t,
        "",
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{answer:?}"
    );
    assert_eq!(answer.field(), Some("reason"));

    // Not found: an unknown employee, a void of an id nobody stored.
    let answer = call(
        &w.state,
        "GET",
        "/v1/tenants/acme/employees/E9/days/2026-11-03",
        t,
        "",
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{answer:?}");
    let void =
        r#"{"action":"void","target_id":"2a07d5f7-7137-57bc-ab96-f57b81e3e822","reason":"dup"}"#;
    let answer = call(&w.state, "POST", corrections, t, void).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{answer:?}");
    assert!(
        answer.json["message"]
            .as_str()
            .unwrap_or("")
            .contains("not be stored yet"),
        "{answer:?}"
    );

    // Reopening a month that is not closed conflicts.
    let answer = call(
        &w.state,
        "POST",
        "/v1/tenants/acme/months/2026-11/reopen",
        t,
        r#"{"reason":"late timesheet"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{answer:?}");
    assert_eq!(answer.json["error"], "conflict");

    let answer = call(&w.state, "GET", "/healthz", None, "").await;
    assert_eq!(answer.json["connected"], true);
    w.end().await
}
