//! Migration V8 moves existing master data forward into history (never a reset): each
//! employee's active range and `licensed` flag and each tenant's licence become the first
//! history rows, and the punches they judged are judged alike afterwards.

use std::time::Duration;

use dakoku_store::{connect, drop_database, with_database};
use dakoku_testkit::{Stack, unique_suffix};

const BEFORE_V8: [&str; 5] = [
    include_str!("../../store/migrations/V1__master_data.sql"),
    include_str!("../../store/migrations/V2__projections.sql"),
    include_str!("../../store/migrations/V4__attendance.sql"),
    include_str!("../../store/migrations/V5__consumer_replays.sql"),
    include_str!("../../store/migrations/V6__attendance_rebuilds.sql"),
];
const V8: &str = include_str!("../../store/migrations/V8__master_history.sql");

#[tokio::test]
async fn existing_master_data_becomes_the_first_history_rows() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let name = format!("v8_{}", unique_suffix()).to_lowercase();
    let admin = connect(&stack.database_url).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let client = connect(&with_database(&stack.database_url, &name)?).await?;
    for sql in BEFORE_V8 {
        client.batch_execute(sql).await?;
    }
    client
        .batch_execute(
            "INSERT INTO tenant_groups (group_id) VALUES ('g1');
             INSERT INTO tenants (tenant_id, name, group_id, licence_seats, licence_valid_from,
                                  licence_valid_until)
                 VALUES ('acme', 'Acme', 'g1', 3, '2020-01-01', '2020-12-31'),
                        ('none', 'None', 'g1', 0, NULL, NULL);
             INSERT INTO employees (tenant_id, employee_id, card_id, active_from, active_until,
                                    licensed)
                 VALUES ('acme', 'E-1', 'C1', '2020-04-01T00:00:00+09:00', NULL, true),
                        ('acme', 'E-2', 'C2', '-infinity', '2020-06-01T00:00:00+09:00', true),
                        ('acme', 'E-3', 'C3', '-infinity', NULL, false);",
        )
        .await?;
    let before: i64 = client
        .query_one("SELECT version FROM master_data_version", &[])
        .await?
        .get(0);
    client.batch_execute(V8).await?;

    let ranges: Vec<(String, bool, Option<String>)> = client
        .query(
            "SELECT employee_id, active_from = '-infinity',
                    to_char(active_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
             FROM employee_ranges ORDER BY employee_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        ranges,
        vec![
            ("E-1".into(), false, None),
            ("E-2".into(), true, Some("2020-05-31 15:00".into())),
            ("E-3".into(), true, None),
        ]
    );
    let grants: Vec<(String, bool, bool)> = client
        .query(
            "SELECT g.employee_id, g.granted, g.valid_from = r.active_from
             FROM licence_grants g JOIN employee_ranges r USING (tenant_id, employee_id)
             WHERE g.valid_until IS NULL ORDER BY g.employee_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        grants,
        vec![("E-1".into(), true, true), ("E-2".into(), true, true)],
        "licensed employees hold a grant from their active_from; the unlicensed none"
    );
    let licences: Vec<(String, i32, Option<String>, Option<String>)> = client
        .query(
            "SELECT tenant_id, seats, valid_from::text, valid_until::text FROM tenant_licences",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        licences,
        vec![(
            "acme".into(),
            3,
            Some("2020-01-01".into()),
            Some("2020-12-31".into())
        )],
        "a tenant without a licence gets no row"
    );
    let dropped = client
        .query_opt(
            "SELECT 1 FROM information_schema.columns
             WHERE table_name = 'employees' AND column_name = 'licensed'",
            &[],
        )
        .await?;
    assert!(dropped.is_none(), "the overwritten columns are gone");
    client
        .execute(
            "INSERT INTO licence_grants (tenant_id, employee_id, granted, valid_from)
             VALUES ('acme', 'E-3', true, now())",
            &[],
        )
        .await?;
    let after: i64 = client
        .query_one("SELECT version FROM master_data_version", &[])
        .await?
        .get(0);
    assert!(after > before, "history changes bump master_data_version");
    drop(client);
    drop_database(&stack.database_url, &name, Duration::from_secs(30)).await?;
    Ok(())
}
