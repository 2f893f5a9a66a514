//! The day view and the anomaly queue read back rows written where the attendance consumer
//! writes them, exactly: which punches and corrections belong, verdicts and reasons, voided
//! marks, tenant-local times, the month's days oldest first.

mod support;

use dakoku_admin::{AdminError, AnomalyDay, CorrectionView, DayFigures, DayView, PunchView};
use uuid::Uuid;

fn punch(id: Uuid, kind: &str, at: &str, local: &str, work_date: &str, seq: i64) -> PunchView {
    PunchView {
        punch_id: id.to_string(),
        kind: kind.into(),
        at: at.parse().unwrap(),
        at_local: local.into(),
        work_date: work_date.parse().unwrap(),
        device_id: "PT-1".into(),
        seq,
        verdict: "accepted".into(),
        reason: None,
        withdrawn: false,
        voided: false,
    }
}

fn around(s: &support::Scenario) -> Vec<PunchView> {
    vec![
        punch(
            s.day_before,
            "clock_out",
            "2026-11-02T09:00:00Z",
            "2026-11-02T18:00:00+09:00",
            "2026-11-02",
            1,
        ),
        punch(
            s.clock_in,
            "clock_in",
            "2026-11-03T00:00:00Z",
            "2026-11-03T09:00:00+09:00",
            "2026-11-03",
            2,
        ),
        PunchView {
            verdict: "rejected".into(),
            reason: Some("not_licensed".into()),
            withdrawn: true,
            ..punch(
                s.rejected,
                "clock_in",
                "2026-11-03T00:00:30Z",
                "2026-11-03T09:00:30+09:00",
                "2026-11-03",
                3,
            )
        },
        PunchView {
            voided: true,
            ..punch(
                s.break_start,
                "break_start",
                "2026-11-03T03:00:00Z",
                "2026-11-03T12:00:00+09:00",
                "2026-11-03",
                4,
            )
        },
    ]
}

#[tokio::test]
async fn the_day_view_shows_the_record_its_punches_and_corrections() -> anyhow::Result<()> {
    let w = support::world(false).await?;
    let s = w.scenario().await?;
    let view = w
        .admin
        .day(&w.tenant, &"E1".parse()?, "2026-11-03".parse()?)
        .await?;
    let mut ids = vec![s.add.to_string(), s.void.to_string()];
    ids.sort();
    let expected = DayView {
        tenant_id: "acme".into(),
        employee_id: "E1".into(),
        work_date: "2026-11-03".parse()?,
        time_zone: "Asia/Tokyo".into(),
        day: Some(DayFigures {
            worked_seconds: 28_800,
            break_seconds: 3_600,
            night_seconds: 0,
            holiday_seconds: 0,
            overtime_daily_seconds: 0,
            overtime_weekly_seconds: 0,
            within_statutory_seconds: 0,
            worked_minutes: 480,
            break_minutes: 60,
            night_minutes: 0,
            overtime_minutes: 0,
            first_in: Some("2026-11-03T00:00:00Z".parse()?),
            last_out: None,
            punch_count: 2,
            double_taps: 0,
            anomalies: vec!["missing_clock_out".into()],
            corrected: true,
            correction_ids: ids,
            rules_version: 1,
            revision: 3,
            computed_at: "2026-11-04T00:00:00Z".parse()?,
        }),
        punches: around(&s),
        corrections: vec![
            CorrectionView {
                correction_id: s.add.to_string(),
                action: "add".into(),
                kind: Some("clock_out".into()),
                at: Some("2026-11-03T09:00:00Z".parse()?),
                at_local: Some("2026-11-03T18:00:00+09:00".into()),
                target_id: None,
                actor: "cli:hr".into(),
                reason: "forgot to clock out".into(),
                created_at: "2026-11-04T01:00:00Z".parse()?,
                voided: false,
            },
            CorrectionView {
                correction_id: s.void.to_string(),
                action: "void".into(),
                kind: None,
                at: None,
                at_local: None,
                target_id: Some(s.break_start.to_string()),
                actor: "cli:hr".into(),
                reason: "no break taken".into(),
                created_at: "2026-11-04T02:00:00Z".parse()?,
                voided: false,
            },
        ],
    };
    assert_eq!(view, expected);

    // JSON as the API returns it: snake_case, RFC 3339 UTC, integer seconds.
    let json = serde_json::to_value(&view)?;
    assert_eq!(json["day"]["worked_seconds"], 28_800);
    assert_eq!(json["day"]["first_in"], "2026-11-03T00:00:00Z");
    assert_eq!(json["punches"][2]["reason"], "not_licensed");

    // A date without a record still shows the punches around it.
    let empty = w
        .admin
        .day(&w.tenant, &"E1".parse()?, "2026-11-04".parse()?)
        .await?;
    assert_eq!(empty.day, None);
    assert_eq!(empty.punches.len(), 4, "{:?}", empty.punches);
    assert!(matches!(
        w.admin
            .day(&w.tenant, &"E9".parse()?, "2026-11-03".parse()?)
            .await,
        Err(AdminError::NotFound {
            what: "employee",
            ..
        })
    ));
    w.end().await
}

#[tokio::test]
async fn the_anomaly_queue_lists_the_months_days_oldest_first() -> anyhow::Result<()> {
    let w = support::world(false).await?;
    let s = w.scenario().await?;
    let queue = w.admin.anomalies(&w.tenant, "2026-11").await?;
    let e2 = punch(
        Uuid::nil(),
        "clock_in",
        "2026-11-03T00:00:00Z",
        "2026-11-03T09:00:00+09:00",
        "2026-11-03",
        6,
    );
    assert_eq!(queue.len(), 2, "{queue:#?}");
    assert_eq!(
        queue[0],
        AnomalyDay {
            work_date: "2026-11-03".parse()?,
            employee_id: "E1".into(),
            anomalies: vec!["missing_clock_out".into()],
            corrected: true,
            punches: around(&s),
        }
    );
    assert_eq!(
        queue[1],
        AnomalyDay {
            work_date: "2026-11-10".parse()?,
            employee_id: "E2".into(),
            anomalies: vec!["break_short".into()],
            corrected: false,
            punches: Vec::new(),
        },
        "E2's punch of the 3rd is not around the 10th ({e2:?})"
    );
    assert_eq!(w.admin.anomalies(&w.tenant, "2026-12").await?, Vec::new());
    assert!(matches!(
        w.admin.anomalies(&w.tenant, "11/2026").await,
        Err(AdminError::Invalid { field: "month", .. })
    ));
    w.end().await
}
