//! Kafka going away *after* it worked, on librdkafka's mock cluster (a failure path the real
//! single-node broker cannot show without disturbing every other test): requests are answered
//! `503` with `Retry-After` within the deadline, nothing unconfirmed is acked, and intake
//! resumes by itself when the broker is back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use dakoku_ingest_api::snapshot::Snapshot;
use dakoku_ingest_api::{AppState, Config, app};
use dakoku_schemas::{GroupId, Topic};
use dakoku_token::{DeviceClaims, TokenKeys};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use tower::ServiceExt as _;

async fn post(router: &axum::Router, token: &str, seq: u64) -> (StatusCode, Option<u32>, Value) {
    let body = json!({"device_id": "PT-1", "punches": [
        {"seq": seq, "card_id": "C1", "kind": "clock_in", "at": "2020-12-04T08:00:00+09:00"}
    ]});
    let response = router
        .clone()
        .oneshot(
            Request::post("/v1/punches")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await
        .expect("infallible");
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        retry_after,
        serde_json::from_slice(&bytes).expect("JSON"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_503_within_the_deadline_and_intake_resumes_when_it_is_back() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let group: GroupId = "g1".parse().expect("group");
    for topic in [Topic::Raw(group.clone()), Topic::Quarantine] {
        cluster.create_topic(&topic.name(), 1, 1).expect("topic");
    }
    let key = TokenKeys::generate_entry("k");
    let mut config = Config::new(
        &cluster.bootstrap_servers(),
        "postgres://unused@127.0.0.1:1/x",
        &key,
    );
    config.message_timeout_ms = 1_500;
    config.body_read_timeout_ms = 1_000;
    config.request_deadline_ms = 4_000;
    let state = Arc::new(AppState::new(config).expect("state"));
    state
        .snapshot()
        .set(Snapshot::default().with_tenant("acme", group));
    let router = app(Arc::clone(&state));
    let token = TokenKeys::parse(&key).expect("keys").mint(&DeviceClaims {
        tenant: "acme".parse().expect("tenant"),
        device: "PT-1".parse().expect("device"),
        expires_at: chrono::Utc::now().timestamp() + 600,
    });

    let (status, _, body) = post(&router, &token, 1).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"acked": [1], "rejected": []}))
    );

    cluster.broker_down(1).expect("broker down");
    let started = Instant::now();
    let (status, retry_after, body) = post(&router, &token, 2).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "log_unavailable");
    assert!(
        body.get("acked").is_none(),
        "nothing unconfirmed is acked: {body}"
    );
    assert!(
        retry_after.is_some_and(|s| (5..=10).contains(&s)),
        "{retry_after:?}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "answered within the deadline: {elapsed:?}"
    );

    // Back up: the same acceptor, with no restart, acks again.
    cluster.broker_up(1).expect("broker up");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = post(&router, &token, 3).await;
        if status == StatusCode::OK {
            assert_eq!(body, json!({"acked": [3], "rejected": []}));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "intake did not resume: {status} {body}"
        );
    }
}
