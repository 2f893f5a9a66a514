//! End to end on the real stack: `admin-api` serving over TCP (the real `serve`), a test
//! database and the group's topics. A correction is exactly one record on
//! `punches.corrections.<group>` carrying the token's actor; a close is 200 then 409; the
//! history shows it; shutdown refuses new connections but answers the requests in flight.

mod support;

use std::time::Duration;

use dakoku_schemas::{
    ConsumerGroup, Correction, CorrectionAction, PunchKind, Topic, correction_key, decode,
};
use dakoku_testkit::eventually;
use dakoku_testkit::read::read_all;
use support::admin_token;

#[tokio::test]
async fn correction_reaches_kafka_with_the_tokens_actor_and_close_is_once() -> anyhow::Result<()> {
    let w = support::world(true).await?;
    w.db.client()
        .await?
        .execute(
            "INSERT INTO attendance_months (tenant_id, employee_id, month, group_id, \
             first_day, last_day, days_worked, anomaly_days, worked_seconds, break_seconds, \
             night_seconds, holiday_seconds, within_statutory_seconds, overtime_seconds, \
             overtime_over60_seconds, worked_minutes, overtime_minutes, overtime_over60_minutes, \
             night_minutes, holiday_minutes, rules_version, revision, computed_at, batch_seq) \
             VALUES ('acme', 'E1', '2026-11', $1, '2026-11-01', '2026-11-30', 20, 0, 576000, \
             72000, 0, 0, 0, 0, 0, 9600, 0, 0, 0, 0, 1, 2, now(), 4)",
            &[&w.group.as_str()],
        )
        .await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dakoku_admin_api::serve(
        w.state.clone(),
        listener,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(10),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let token = admin_token("acme", "alice");

    let response = http
        .post(format!("{base}/v1/tenants/acme/corrections"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "employee_id": "E1",
            "action": "add",
            "kind": "clock_out",
            "at": "2026-11-03T18:00:00+09:00",
            "reason": "forgot to clock out",
        }))
        .send()
        .await?;
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await?;
    assert_eq!(created["actor"], "api:alice");
    assert_eq!(created["at"], "2026-11-03T09:00:00Z");
    assert_eq!(created["action"], "add");

    // Answered after delivery: the record is there now, exactly once.
    let topic = Topic::Corrections(w.group.clone()).name();
    let records = read_all(&w.stack, &topic).await?;
    assert_eq!(records.len(), 1, "{records:?}");
    let stored: Correction = decode(&records[0].payload)?;
    assert_eq!(
        stored.actor, "api:alice",
        "the token's actor, not the body's"
    );
    assert_eq!(stored.correction_id.to_string(), created["correction_id"]);
    assert_eq!(stored.action, CorrectionAction::Add);
    assert_eq!(stored.kind, Some(PunchKind::ClockOut));
    assert_eq!(stored.reason, "forgot to clock out");
    assert_eq!(
        records[0].key,
        correction_key(&"acme".parse()?, &"E1".parse()?)
    );

    let close = format!("{base}/v1/tenants/acme/months/2026-11/close");
    let response = http.post(&close).bearer_auth(&token).send().await?;
    assert_eq!(response.status(), 200);
    let closed: serde_json::Value = response.json().await?;
    assert_eq!(closed["employees_frozen"], 1);
    assert_eq!(closed["actor"], "api:alice");
    let response = http.post(&close).bearer_auth(&token).send().await?;
    assert_eq!(response.status(), 409);
    let refused: serde_json::Value = response.json().await?;
    assert_eq!(refused["error"], "conflict");

    let history: serde_json::Value = http
        .get(format!("{base}/v1/tenants/acme/months/2026-11/closings"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(history["closed"], true);
    let events = history["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{history}");
    assert_eq!(events[0]["action"], "close");
    assert_eq!(events[0]["actor"], "api:alice");

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("admin_api_requests_total{route=\"/v1/tenants/{tenant}/months/{month}/close\",status=\"409\"}"),
        "{metrics}"
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(15), server).await???;
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "stopped serving"
    );
    w.end().await
}

#[tokio::test]
async fn shutdown_stops_accepting_but_lets_a_request_in_flight_finish() -> anyhow::Result<()> {
    let w = support::world(false).await?;
    // Hold the attendance consumer's lock of the group: a close waits for it (it takes the same
    // lock), so the close is in flight for as long as the test says.
    let mut holder = w.db.client().await?;
    let lock = holder.transaction().await?;
    lock.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&ConsumerGroup::Attendance(w.group.clone()).name()],
    )
    .await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dakoku_admin_api::serve(
        w.state.clone(),
        listener,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(30),
    ));
    let token = admin_token("acme", "alice");
    let close = reqwest::Client::new()
        .post(format!("{base}/v1/tenants/acme/months/2026-11/close"))
        .bearer_auth(&token)
        .send();
    let in_flight = tokio::spawn(close);
    let observer = w.db.client().await?;
    eventually("the close to wait for the lock", Duration::from_secs(20), || {
        let observer = &observer;
        async move {
            let waiting: i64 = observer
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    &[],
                )
                .await?
                .get(0);
            Ok((waiting > 0).then_some(()))
        }
    })
    .await?;

    let _ = stop.send(());
    eventually(
        "new connections to be refused",
        Duration::from_secs(10),
        || {
            let url = format!("{base}/healthz");
            async move {
                Ok(reqwest::Client::new()
                    .get(url)
                    .send()
                    .await
                    .is_err()
                    .then_some(()))
            }
        },
    )
    .await?;
    assert!(
        !server.is_finished(),
        "the server waits for the close in flight"
    );

    lock.rollback().await?;
    let response = in_flight.await??;
    assert_eq!(response.status(), 200, "the close in flight was answered");
    let closed: serde_json::Value = response.json().await?;
    assert_eq!(closed["month"], "2026-11");
    tokio::time::timeout(Duration::from_secs(15), server).await???;
    w.end().await
}
