//! Submitting corrections on a real database and broker: every refusal names its field or
//! says what is missing, and an accepted correction is exactly one record on the group's
//! corrections topic that decodes to what was asked.

mod support;

use std::time::Duration;

use dakoku_admin::{AdminError, CorrectionAction, CorrectionRequest, MAX_REASON_CHARS, PunchKind};
use dakoku_schemas::{Correction, Topic, correction_key, decode};
use dakoku_testkit::read::read_all;

fn add(employee: &str) -> CorrectionRequest {
    CorrectionRequest {
        employee_id: Some(employee.into()),
        action: CorrectionAction::Add,
        kind: Some(PunchKind::ClockOut),
        at: Some("2026-11-03T09:00:00.750Z".parse().unwrap()),
        target_id: None,
        actor: "cli:ops".into(),
        reason: "forgot to clock out".into(),
    }
}

fn void(target: &str) -> CorrectionRequest {
    CorrectionRequest {
        employee_id: None,
        action: CorrectionAction::Void,
        kind: None,
        at: None,
        target_id: Some(target.into()),
        actor: "cli:ops".into(),
        reason: "double punch".into(),
    }
}

fn invalid_field(result: Result<Correction, AdminError>) -> &'static str {
    match result {
        Err(AdminError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn refusals_name_what_is_wrong_and_append_nothing() -> anyhow::Result<()> {
    let w = support::world(true).await?;
    let t = &w.tenant;
    let punch = w
        .punch(
            "E1",
            1,
            "clock_in",
            "2026-11-03T00:00:00Z",
            "2026-11-03",
            false,
        )
        .await?;
    let voided = w
        .punch(
            "E1",
            2,
            "clock_in",
            "2026-11-03T00:01:00Z",
            "2026-11-03",
            false,
        )
        .await?;
    let void_id = w
        .stored_void("E1", voided, "double tap", "2026-11-04T00:00:00Z")
        .await?;

    match w.admin.submit_correction(t, add("E9")).await {
        Err(AdminError::NotFound {
            what: "employee",
            id,
        }) => assert_eq!(id, "acme/E9"),
        other => panic!("unknown employee: {other:?}"),
    }
    match w
        .admin
        .submit_correction(&"nobody".parse()?, add("E1"))
        .await
    {
        Err(AdminError::NotFound { what: "tenant", .. }) => {}
        other => panic!("unknown tenant: {other:?}"),
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    match w.admin.submit_correction(t, void(&unknown)).await {
        Err(e @ AdminError::NotFound { what: "target", .. }) => {
            assert!(e.to_string().contains("may not be stored yet"), "{e}");
        }
        other => panic!("unknown target: {other:?}"),
    }
    match w
        .admin
        .submit_correction(t, void(&voided.to_string()))
        .await
    {
        Err(AdminError::Conflict(message)) => {
            assert!(message.contains(&void_id.to_string()), "{message}");
        }
        other => panic!("already voided: {other:?}"),
    }
    assert_eq!(
        invalid_field(
            w.admin
                .submit_correction(t, void(&void_id.to_string()))
                .await
        ),
        "target_id",
        "a void cannot be voided"
    );
    let mut wrong_owner = void(&punch.to_string());
    wrong_owner.employee_id = Some("E2".into());
    assert_eq!(
        invalid_field(w.admin.submit_correction(t, wrong_owner).await),
        "employee_id"
    );
    let mut r = add("E1");
    r.reason = String::new();
    assert_eq!(
        invalid_field(w.admin.submit_correction(t, r).await),
        "reason"
    );
    let mut r = add("E1");
    r.reason = "x".repeat(MAX_REASON_CHARS + 1);
    assert_eq!(
        invalid_field(w.admin.submit_correction(t, r).await),
        "reason"
    );
    let mut r = add("E1");
    r.kind = None;
    assert_eq!(invalid_field(w.admin.submit_correction(t, r).await), "kind");

    let topic = Topic::Corrections(w.group.clone()).name();
    assert!(
        read_all(&w.stack, &topic).await?.is_empty(),
        "a refused correction was appended"
    );
    w.end().await
}

#[tokio::test]
async fn an_add_and_a_void_are_each_one_record_as_asked() -> anyhow::Result<()> {
    let w = support::world(true).await?;
    let t = &w.tenant;
    let punch = w
        .punch(
            "E2",
            7,
            "clock_in",
            "2026-11-03T00:00:00Z",
            "2026-11-03",
            true,
        )
        .await?;
    let stored_add = w
        .stored_add(
            "E1",
            "break_end",
            "2026-11-03T04:00:00Z",
            "lunch",
            "2026-11-04T00:00:00Z",
        )
        .await?;

    let added = w.admin.submit_correction(t, add("E1")).await?;
    assert_eq!(added.action, CorrectionAction::Add);
    assert_eq!(added.employee_id.as_str(), "E1");
    assert_eq!(added.kind, Some(PunchKind::ClockOut));
    assert_eq!(
        added.at,
        Some(1_793_696_400_000),
        "2026-11-03T09:00:00Z, the fraction dropped"
    );
    assert_eq!(added.actor, "cli:ops");
    assert_eq!(added.reason, "forgot to clock out");

    let topic = Topic::Corrections(w.group.clone()).name();
    let records = read_all(&w.stack, &topic).await?;
    assert_eq!(records.len(), 1, "exactly one record per correction");
    assert_eq!(records[0].key, correction_key(t, &added.employee_id));
    assert_eq!(decode::<Correction>(&records[0].payload)?, added);

    // A void of a withdrawn raw punch of E2 (either verdict counts): the employee is the
    // punch's, though none was given.
    let voided = w
        .admin
        .submit_correction(t, void(&punch.to_string()))
        .await?;
    assert_eq!(voided.employee_id.as_str(), "E2");
    assert_eq!(voided.target_id.map(|id| *id.as_uuid()), Some(punch));
    // A void of a stored add of E1.
    let voided_add = w
        .admin
        .submit_correction(t, void(&stored_add.to_string()))
        .await?;
    assert_eq!(voided_add.employee_id.as_str(), "E1");

    let records = read_all(&w.stack, &topic).await?;
    assert_eq!(records.len(), 3, "{records:?}");
    let decoded: Vec<Correction> = records
        .iter()
        .map(|r| decode::<Correction>(&r.payload))
        .collect::<Result<_, _>>()?;
    assert_eq!(decoded, vec![added, voided.clone(), voided_add]);
    assert_eq!(records[1].key, "acme/E2");
    w.end().await
}

#[tokio::test]
async fn kafka_unreachable_is_unavailable() -> anyhow::Result<()> {
    let w = support::world(false).await?;
    // A port nothing listens on; librdkafka gives up after the message timeout, kept short.
    let kafka =
        dakoku_kafka::KafkaArgs::new("127.0.0.1:1").with_property("message.timeout.ms", "2000");
    let admin = dakoku_admin::Admin::connect(&w.db.url, &kafka).await?;
    let started = std::time::Instant::now();
    match admin.submit_correction(&w.tenant, add("E1")).await {
        Err(e @ AdminError::Unavailable(_)) => assert!(!e.is_client_error()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    w.end().await
}

#[tokio::test]
async fn a_closed_month_still_takes_corrections() -> anyhow::Result<()> {
    let w = support::world(true).await?;
    w.month("E1", "2026-11", 576_000, 1).await?;
    w.admin
        .close_month(&w.tenant, "2026-11", "cli:payroll")
        .await?;
    // The consumer turns it into an adjustment of the paid month; here it is only appended.
    let added = w.admin.submit_correction(&w.tenant, add("E1")).await?;
    let topic = Topic::Corrections(w.group.clone()).name();
    let records = read_all(&w.stack, &topic).await?;
    assert_eq!(records.len(), 1);
    assert_eq!(decode::<Correction>(&records[0].payload)?, added);
    w.end().await
}
