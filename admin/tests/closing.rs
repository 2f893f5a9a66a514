//! Closing and reopening payroll months on a real database: the paid figures are a copy of
//! the monthly records, the outbox is told to publish them again, a second close or a reopen
//! of an open month is a conflict, and every close and reopen is history.

mod support;

use dakoku_admin::AdminError;

/// (employee, worked_seconds, batch_seq) of `attendance_months` for `month`, by employee.
async fn months(w: &support::World, month: &str) -> anyhow::Result<Vec<(String, i64, i64)>> {
    Ok(w.client
        .query(
            "SELECT employee_id, worked_seconds, batch_seq FROM attendance_months \
             WHERE tenant_id = 'acme' AND month = $1 ORDER BY employee_id",
            &[&month],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

async fn count(w: &support::World, sql: &str) -> anyhow::Result<i64> {
    Ok(w.client.query_one(sql, &[]).await?.get(0))
}

#[tokio::test]
async fn close_freezes_the_month_and_a_second_close_conflicts() -> anyhow::Result<()> {
    let w = support::world(false).await?;
    let t = &w.tenant;
    w.month("E1", "2026-11", 576_000, 4).await?;
    w.month("E2", "2026-11", 288_030, 5).await?;
    w.month("E1", "2026-10", 100_000, 3).await?;
    // Where the consumer's batches are: the close takes the next number.
    w.client
        .execute("SELECT setval('attendance_batch_seq', 100)", &[])
        .await?;

    let closed = w.admin.close_month(t, "2026-11", "cli:payroll").await?;
    assert_eq!(closed.month, "2026-11");
    assert_eq!(closed.employees_frozen, 2);
    assert_eq!(closed.actor, "cli:payroll");

    // Every figure column of the month's records is in paid_months, with the closing's id.
    let same: i64 = w
        .client
        .query_one(
            "SELECT count(*) FROM attendance_months a JOIN paid_months p \
             USING (tenant_id, employee_id, month, group_id, first_day, last_day, days_worked, \
               anomaly_days, worked_seconds, break_seconds, night_seconds, holiday_seconds, \
               within_statutory_seconds, overtime_seconds, overtime_over60_seconds, \
               worked_minutes, overtime_minutes, overtime_over60_minutes, night_minutes, \
               holiday_minutes, rules_version, revision) \
             WHERE p.closing_id = $1",
            &[&closed.closing_id],
        )
        .await?
        .get(0);
    assert_eq!(same, 2);
    assert_eq!(count(&w, "SELECT count(*) FROM paid_months").await?, 2);
    let after = months(&w, "2026-11").await?;
    assert_eq!(
        after,
        vec![("E1".into(), 576_000, 101), ("E2".into(), 288_030, 101)],
        "batch_seq is the sequence's next number"
    );
    assert_eq!(
        months(&w, "2026-10").await?,
        vec![("E1".into(), 100_000, 3)],
        "other months untouched"
    );
    let (closed_id,): (i64,) = {
        let r = w
            .client
            .query_one(
                "SELECT closing_id FROM closed_months WHERE tenant_id = 'acme' AND month = '2026-11'",
                &[],
            )
            .await?;
        (r.get(0),)
    };
    assert_eq!(closed_id, closed.closing_id);

    match w.admin.close_month(t, "2026-11", "cli:other").await {
        Err(AdminError::Conflict(message)) => {
            assert!(message.contains("already closed"), "{message}");
            assert!(message.contains("cli:payroll"), "{message}");
        }
        other => panic!("second close: {other:?}"),
    }
    assert_eq!(
        count(&w, "SELECT count(*) FROM month_closings").await?,
        1,
        "the refused close left no history"
    );
    assert!(matches!(
        w.admin.close_month(t, "2026-13", "cli:payroll").await,
        Err(AdminError::Invalid { field: "month", .. })
    ));
    assert!(matches!(
        w.admin.close_month(t, "2026-11", " ").await,
        Err(AdminError::Invalid { field: "actor", .. })
    ));
    assert!(matches!(
        w.admin
            .close_month(&"nobody".parse()?, "2026-11", "cli:x")
            .await,
        Err(AdminError::NotFound { what: "tenant", .. })
    ));
    w.end().await
}

#[tokio::test]
async fn reopen_needs_a_reason_drops_the_freeze_and_supersedes_adjustments() -> anyhow::Result<()> {
    let w = support::world(false).await?;
    let t = &w.tenant;
    w.month("E1", "2026-11", 576_000, 4).await?;

    match w
        .admin
        .reopen_month(t, "2026-11", "cli:payroll", "late punch")
        .await
    {
        Err(AdminError::Conflict(message)) => assert!(message.contains("not closed")),
        other => panic!("reopen of an open month: {other:?}"),
    }
    let closed = w.admin.close_month(t, "2026-11", "cli:payroll").await?;
    // An adjustment made after the closing (the consumer writes these), and an older one
    // already superseded by an earlier reopen.
    w.client
        .batch_execute(&format!(
            "INSERT INTO attendance_adjustments (tenant_id, employee_id, month, seq, group_id, \
               export_month, causes, first_day, last_day, days_worked, anomaly_days, \
               worked_seconds, break_seconds, night_seconds, holiday_seconds, \
               within_statutory_seconds, overtime_seconds, overtime_over60_seconds, \
               worked_minutes, overtime_minutes, overtime_over60_minutes, night_minutes, \
               holiday_minutes, rules_version, computed_at, batch_seq, superseded_at) VALUES \
             ('acme', 'E1', '2026-11', 1, '{g}', '2026-12', '{{correction:x}}', '2026-11-01', \
               '2026-11-30', 0, 0, 3600, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 0, 1, now(), 9, \
               '2026-11-02T00:00:00Z'), \
             ('acme', 'E1', '2026-11', 2, '{g}', '2026-12', '{{correction:y}}', '2026-11-01', \
               '2026-11-30', 0, 0, 1800, 0, 0, 0, 0, 0, 0, 30, 0, 0, 0, 0, 1, now(), 10, NULL)",
            g = w.group
        ))
        .await?;

    for reason in ["", "   "] {
        assert!(matches!(
            w.admin
                .reopen_month(t, "2026-11", "cli:payroll", reason)
                .await,
            Err(AdminError::Invalid {
                field: "reason",
                ..
            })
        ));
    }
    assert_eq!(count(&w, "SELECT count(*) FROM closed_months").await?, 1);

    let before = months(&w, "2026-11").await?[0].2;
    let reopened = w
        .admin
        .reopen_month(t, "2026-11", "cli:lead", "wrong rules version")
        .await?;
    assert_eq!(reopened.employees_unfrozen, 1);
    assert_eq!(reopened.adjustments_superseded, 1);
    assert_eq!(reopened.reason, "wrong rules version");
    assert_eq!(count(&w, "SELECT count(*) FROM closed_months").await?, 0);
    assert_eq!(count(&w, "SELECT count(*) FROM paid_months").await?, 0);
    assert_eq!(
        count(
            &w,
            "SELECT count(*) FROM attendance_adjustments WHERE superseded_at IS NULL"
        )
        .await?,
        0
    );
    // The earlier supersession keeps its own time.
    assert_eq!(
        count(
            &w,
            "SELECT count(*) FROM attendance_adjustments \
             WHERE superseded_at = '2026-11-02T00:00:00Z'"
        )
        .await?,
        1
    );
    assert!(months(&w, "2026-11").await?[0].2 > before, "republished");

    let history = w.admin.closings(t).await?;
    let seen: Vec<(i64, &str, &str, &str, &str)> = history
        .iter()
        .map(|e| {
            (
                e.closing_id,
                e.month.as_str(),
                e.action.as_str(),
                e.actor.as_str(),
                e.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (closed.closing_id, "2026-11", "close", "cli:payroll", ""),
            (
                reopened.closing_id,
                "2026-11",
                "reopen",
                "cli:lead",
                "wrong rules version"
            ),
        ]
    );
    // Closed again after the reopen: a new freeze.
    let again = w.admin.close_month(t, "2026-11", "cli:payroll").await?;
    assert_eq!(again.employees_frozen, 1);
    assert_eq!(w.admin.closings(t).await?.len(), 3);
    w.end().await
}
