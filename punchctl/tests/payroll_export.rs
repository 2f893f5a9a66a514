//! `punchctl payroll export` on a database of its own: the CSV comes from the monthly records
//! (`attendance_months`) as stored, byte for byte: payable minutes as the engine rounded them,
//! exact seconds, names quoted where CSV needs it, employees in byte order, nothing from other
//! months or tenants. v1 summed the days' whole minutes here; that lost up to 59 s a day and
//! knew nothing of weekly overtime, over-60 h or holidays.

use std::process::ExitCode;

use clap::Parser as _;
use dakoku_testkit::{EmployeeSeed, Stack, TenantSeed, TestDatabase};
use punchctl::Cli;

async fn punchctl(db: &TestDatabase, args: &[&str]) -> anyhow::Result<(String, String)> {
    let mut argv = vec!["punchctl", "--database-url", db.url.as_str()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = punchctl::run_with_output(cli, &mut out, &mut err).await?;
    assert_eq!(code, ExitCode::SUCCESS);
    Ok((String::from_utf8(out)?, String::from_utf8(err)?))
}

/// One monthly record: (tenant, employee, month, days worked, anomaly days, worked seconds,
/// overtime seconds, over-60 seconds, night seconds, holiday seconds, payable minutes of
/// overtime, over-60, night, holiday, revision). Break and within-statutory seconds follow
/// from the worked seconds so each row differs.
type Record<'a> = (&'a str, &'a str, &'a str, i32, i32, [i64; 5], [i64; 4], i64);

async fn insert(db: &TestDatabase, r: Record<'_>) -> anyhow::Result<()> {
    let (tenant, employee, month, days, anomalies, s, m, revision) = r;
    let (first, last) = match month {
        "2026-11" => ("2026-10-21", "2026-11-20"),
        _ => ("2026-11-21", "2026-12-20"),
    };
    db.client()
        .await?
        .execute(
            "INSERT INTO attendance_months (tenant_id, employee_id, month, group_id, first_day, \
                 last_day, days_worked, anomaly_days, worked_seconds, break_seconds, \
                 night_seconds, holiday_seconds, within_statutory_seconds, overtime_seconds, \
                 overtime_over60_seconds, worked_minutes, overtime_minutes, \
                 overtime_over60_minutes, night_minutes, holiday_minutes, rules_version, \
                 revision, computed_at) \
             VALUES ($1, $2, $3, 'g1', $4::text::date, $5::text::date, $6, $7, $8, $9, $10, \
                 $11, $12, $13, $14, $15, $16, $17, $18, $19, 2, $20, now())",
            &[
                &tenant,
                &employee,
                &month,
                &first,
                &last,
                &days,
                &anomalies,
                &s[0],
                &(s[0] / 8),
                &s[3],
                &s[4],
                &(s[0] / 20),
                &s[1],
                &s[2],
                &(s[0] / 60),
                &m[0],
                &m[1],
                &m[2],
                &m[3],
                &revision,
            ],
        )
        .await?;
    Ok(())
}

async fn acme(stack: &Stack) -> anyhow::Result<TestDatabase> {
    let db = TestDatabase::create(stack).await?;
    TenantSeed::new("acme", &"g1".parse()?)
        .licence(2)
        .employee(EmployeeSeed::licensed("E1", "C1"))
        .employee(EmployeeSeed::licensed("E2", "C2"))
        .seed(&db)
        .await?;
    let client = db.client().await?;
    for (employee, name) in [("E1", "Suzuki Ichiro"), ("E2", "Sato, \"Hana\" Hanako")] {
        client
            .execute(
                "UPDATE employees SET name = $3 WHERE tenant_id = $1 AND employee_id = $2",
                &[&"acme", &employee, &name],
            )
            .await?;
    }
    Ok(db)
}

const HEADER: &str = "tenant_id,month,kind,employee_id,employee_name,first_day,last_day,\
days_worked,anomaly_days,worked_minutes,overtime_minutes,overtime_over60_minutes,\
within_statutory_minutes,night_minutes,holiday_minutes,break_minutes,worked_seconds,\
overtime_seconds,overtime_over60_seconds,within_statutory_seconds,night_seconds,\
holiday_seconds,break_seconds,rules_version,revision,adjusted_month,adjustment_seq,causes\n";

#[tokio::test]
async fn the_csv_is_the_months_records_as_stored() -> anyhow::Result<()> {
    let db = acme(&Stack::from_env()).await?;
    // E2: 70 h 0 min 59 s of overtime, 10 h over 60 h, night and holiday work; minutes as the
    // engine stored them (rounded half_hour_to_hour: 4200 -> 4200, 600 -> 600, 430 -> 420).
    insert(
        &db,
        (
            "acme",
            "E2",
            "2026-12",
            21,
            2,
            [720_059, 252_059, 36_000, 25_830, 28_800],
            [4_200, 600, 420, 480],
            3,
        ),
    )
    .await?;
    insert(
        &db,
        (
            "acme",
            "E1",
            "2026-12",
            1,
            0,
            [28_770, 0, 0, 0, 0],
            [0, 0, 0, 0],
            1,
        ),
    )
    .await?;
    // An employee with a record but no master-data row: exported, with an empty name.
    insert(&db, ("acme", "E10", "2026-12", 0, 1, [0; 5], [0; 4], 1)).await?;
    // Other months and tenants stay out.
    insert(
        &db,
        (
            "acme",
            "E1",
            "2026-11",
            20,
            0,
            [576_000, 0, 0, 0, 0],
            [0; 4],
            5,
        ),
    )
    .await?;
    insert(
        &db,
        (
            "beta",
            "E1",
            "2026-12",
            20,
            0,
            [576_000, 0, 0, 0, 0],
            [0; 4],
            5,
        ),
    )
    .await?;

    let (csv, summary) = punchctl(
        &db,
        &[
            "payroll", "export", "--tenant", "acme", "--month", "2026-12",
        ],
    )
    .await?;
    assert_eq!(
        csv,
        format!(
            "{HEADER}\
             acme,2026-12,month,E1,Suzuki Ichiro,2026-11-21,2026-12-20,1,0,479,0,0,23,0,0,59,28770,0,0,1438,0,0,3596,2,1,,,\n\
             acme,2026-12,month,E10,,2026-11-21,2026-12-20,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,1,,,\n\
             acme,2026-12,month,E2,\"Sato, \"\"Hana\"\" Hanako\",2026-11-21,2026-12-20,21,2,12000,4200,600,600,420,480,1500,720059,252059,36000,36002,25830,28800,90007,2,3,,,\n"
        )
    );
    assert_eq!(
        summary,
        "payroll acme 2026-12: 3 employees, 3 days with anomalies\n"
    );

    // --output writes the same bytes to a file.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("acme-2026-12.csv");
    let path_arg = path.to_str().expect("a UTF-8 temp path");
    let (stdout, _) = punchctl(
        &db,
        &[
            "payroll", "export", "--tenant", "acme", "--month", "2026-12", "--output", path_arg,
        ],
    )
    .await?;
    assert_eq!(
        (stdout.as_str(), std::fs::read_to_string(&path)?),
        ("", csv)
    );

    // A month without records: the header alone.
    let (empty, _) = punchctl(
        &db,
        &[
            "payroll", "export", "--tenant", "acme", "--month", "2027-01",
        ],
    )
    .await?;
    assert_eq!(empty, HEADER);
    db.drop_db().await
}

#[tokio::test]
async fn an_unknown_tenant_and_the_v1_rounding_flags_are_refused_by_name() -> anyhow::Result<()> {
    let db = acme(&Stack::from_env()).await?;
    for (args, want) in [
        (
            vec!["--tenant", "nobody", "--month", "2026-12"],
            "--tenant nobody: unknown tenant",
        ),
        (
            vec![
                "--tenant",
                "acme",
                "--month",
                "2026-12",
                "--round-minutes",
                "30",
            ],
            "--round-minutes is gone: monthly rounding is the tenant's `monthly_rounding` rule",
        ),
    ] {
        let mut argv = vec![
            "punchctl",
            "--database-url",
            db.url.as_str(),
            "payroll",
            "export",
        ];
        argv.extend(args);
        let cli = Cli::try_parse_from(argv)?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let error = punchctl::run_with_output(cli, &mut out, &mut err)
            .await
            .expect_err("refused");
        assert!(error.to_string().starts_with(want), "{error}");
        assert!(out.is_empty(), "nothing written");
    }
    let bad_month = Cli::try_parse_from([
        "punchctl", "payroll", "export", "--tenant", "acme", "--month", "2026-13",
    ])
    .expect_err("refused");
    assert!(
        bad_month
            .to_string()
            .contains("--month \"2026-13\" is not YYYY-MM"),
        "{bad_month}"
    );
    db.drop_db().await
}

#[tokio::test]
async fn a_closed_month_exports_as_paid_and_its_adjustments_go_with_the_next_month()
-> anyhow::Result<()> {
    let db = acme(&Stack::from_env()).await?;
    // November as paid: 20 days, 160 h; closed.
    let paid = (
        "acme",
        "E1",
        "2026-11",
        20,
        0,
        [576_000, 0, 0, 0, 0],
        [0; 4],
        5,
    );
    insert(&db, paid).await?;
    let (closed, _) = punchctl(&db, &["close", "--tenant", "acme", "--month", "2026-11"]).await?;
    assert!(closed.starts_with("closed acme 2026-11"), "{closed}");
    let client = db.client().await?;
    // Then a late day: the live month grows by 1 h 30 min and 30 s; the consumer records the
    // difference as adjustment 1, paid with December. A superseded one stays out.
    client
        .execute(
            "UPDATE attendance_months SET days_worked = 21, worked_seconds = 581430, \
             within_statutory_seconds = 28800 + 30, worked_minutes = 9690, revision = 6 \
             WHERE month = '2026-11'",
            &[],
        )
        .await?;
    for (seq, superseded) in [(1i64, false), (2, true)] {
        client
            .execute(
                "INSERT INTO attendance_adjustments (tenant_id, employee_id, month, seq, \
                 group_id, export_month, causes, first_day, last_day, days_worked, \
                 anomaly_days, worked_seconds, break_seconds, night_seconds, holiday_seconds, \
                 within_statutory_seconds, overtime_seconds, overtime_over60_seconds, \
                 worked_minutes, overtime_minutes, overtime_over60_minutes, night_minutes, \
                 holiday_minutes, rules_version, computed_at, batch_seq, superseded_at) \
                 VALUES ('acme', 'E1', '2026-11', $1, 'g1', '2026-12', \
                 ARRAY['punch:p1', 'correction:c1'], '2026-10-21', '2026-11-20', 1, 0, 5430, \
                 0, 0, 0, 30, 0, 0, 90, 0, 0, 0, 0, 2, now(), 7, \
                 CASE WHEN $2 THEN now() END)",
                &[&seq, &superseded],
            )
            .await?;
    }

    let (november, _) = punchctl(
        &db,
        &[
            "payroll", "export", "--tenant", "acme", "--month", "2026-11",
        ],
    )
    .await?;
    assert_eq!(
        november,
        format!(
            "{HEADER}\
             acme,2026-11,month,E1,Suzuki Ichiro,2026-10-21,2026-11-20,20,0,9600,0,0,480,0,0,1200,576000,0,0,28800,0,0,72000,2,5,,,\n"
        ),
        "the closed month as paid, not as it is now"
    );
    let (december, summary) = punchctl(
        &db,
        &[
            "payroll", "export", "--tenant", "acme", "--month", "2026-12",
        ],
    )
    .await?;
    assert_eq!(
        december,
        format!(
            "{HEADER}\
             acme,2026-12,adjustment,E1,Suzuki Ichiro,2026-10-21,2026-11-20,1,0,90,0,0,0,0,0,0,5430,0,0,30,0,0,0,2,1,2026-11,1,punch:p1;correction:c1\n"
        )
    );
    assert_eq!(
        summary,
        "payroll acme 2026-12: 0 employees, 0 days with anomalies, 1 adjustments of closed months\n"
    );
    db.drop_db().await
}
