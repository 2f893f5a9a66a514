//! `punchctl employee` and `punchctl licence` on a real Postgres: idempotent employees, cards
//! unique per tenant, seats never exceeded, writes only when something changes.

use std::process::ExitCode;

use clap::Parser as _;
use dakoku_schemas::TenantId;
use dakoku_testkit::{Stack, TestDatabase};
use punchctl::Cli;
use punchctl::licence::{self, Changed, LicenceError, LicenceTerms, Moment, NewEmployee};
use punchctl::master::{self, Added, NewTenant};

async fn punchctl(db: &TestDatabase, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["punchctl", "--database-url", db.url.as_str()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = punchctl::run_with_output(cli, &mut out, &mut err).await?;
    assert_eq!(code, ExitCode::SUCCESS);
    Ok(String::from_utf8(out)?)
}

async fn version(db: &TestDatabase) -> anyhow::Result<i64> {
    Ok(master::master_data_version(&db.client().await?).await?)
}

async fn tenant_db(stack: &Stack) -> anyhow::Result<(TestDatabase, TenantId)> {
    let db = TestDatabase::create(stack).await?;
    let tenant: TenantId = "acme".parse()?;
    master::add_tenant(
        &mut db.client().await?,
        &NewTenant::with_defaults(tenant.clone(), "ACME", "g1".parse()?),
    )
    .await?;
    Ok((db, tenant))
}

fn employee(
    tenant: &TenantId,
    id: &str,
    card: &str,
    licensed: bool,
) -> anyhow::Result<NewEmployee> {
    Ok(NewEmployee {
        tenant: tenant.clone(),
        employee: id.parse()?,
        card: card.parse()?,
        name: String::new(),
        active_from: None,
        active_until: None,
        licensed,
    })
}

#[tokio::test]
async fn employee_add_is_idempotent_and_refuses_conflicts_and_taken_cards() -> anyhow::Result<()> {
    let (db, acme) = tenant_db(&Stack::from_env()).await?;
    let mut client = db.client().await?;

    let out = punchctl(
        &db,
        &[
            "employee",
            "add",
            "--tenant",
            "acme",
            "--employee",
            "E-1",
            "--card",
            "CARD-1",
            "--name",
            "Sato",
            "--active-from",
            "2020-04-01",
            "--active-until",
            "2021-04-01",
        ],
    )
    .await?;
    assert!(out.contains("employee acme/E-1: created (card CARD-1, active 2020-03-31T15:00:00Z to 2021-03-31T15:00:00Z, not licensed)"), "{out}");
    let v1 = version(&db).await?;
    let again = punchctl(
        &db,
        &[
            "employee",
            "add",
            "--tenant",
            "acme",
            "--employee",
            "E-1",
            "--card",
            "CARD-1",
            "--name",
            "Sato",
            "--active-from",
            "2020-04-01",
            "--active-until",
            "2021-04-01",
        ],
    )
    .await?;
    assert!(again.contains("employee acme/E-1: unchanged"), "{again}");
    assert_eq!(
        version(&db).await?,
        v1,
        "a no-op add must not bump the version"
    );

    let conflict = licence::add_employee(&mut client, &employee(&acme, "E-1", "CARD-9", false)?)
        .await
        .expect_err("different card");
    assert!(
        matches!(conflict, LicenceError::EmployeeConflict { .. }),
        "{conflict}"
    );
    let text = conflict.to_string();
    assert!(
        text.contains(r#"card is "CARD-1" (given "CARD-9")"#),
        "{text}"
    );
    assert!(text.contains("active-until"), "{text}");

    let taken = licence::add_employee(&mut client, &employee(&acme, "E-2", "CARD-1", false)?)
        .await
        .expect_err("card held by E-1");
    assert!(
        taken
            .to_string()
            .contains("already belongs to employee E-1"),
        "{taken}"
    );
    let unknown = licence::add_employee(
        &mut client,
        &employee(&"nobody".parse()?, "E-1", "CARD-1", false)?,
    )
    .await
    .expect_err("no such tenant");
    assert!(
        matches!(unknown, LicenceError::TenantNotFound(_)),
        "{unknown}"
    );
    let backwards = licence::add_employee(
        &mut client,
        &NewEmployee {
            active_from: Some(Moment::parse("2021-01-01")?),
            active_until: Some(Moment::parse("2020-01-01")?),
            ..employee(&acme, "E-3", "CARD-3", false)?
        },
    )
    .await
    .expect_err("range ends before it starts");
    assert!(
        matches!(backwards, LicenceError::InvalidRange { .. }),
        "{backwards}"
    );
    assert_eq!(version(&db).await?, v1, "refusals write nothing");

    let list = punchctl(&db, &["employee", "list", "--tenant", "acme"]).await?;
    assert!(list.starts_with("EMPLOYEE"), "{list}");
    assert!(list.contains("E-1       CARD-1"), "{list}");
    db.drop_db().await
}

#[tokio::test]
async fn seats_are_never_exceeded_by_licence_set_or_employee_changes() -> anyhow::Result<()> {
    let (db, acme) = tenant_db(&Stack::from_env()).await?;
    let mut client = db.client().await?;

    // No licence yet: no seat for anyone.
    let refused = licence::add_employee(&mut client, &employee(&acme, "E-1", "C1", true)?)
        .await
        .expect_err("0 seats");
    assert!(
        matches!(refused, LicenceError::NoFreeSeat { seats: 0, .. }),
        "{refused}"
    );

    let out = punchctl(
        &db,
        &[
            "licence",
            "set",
            "--tenant",
            "acme",
            "--seats",
            "2",
            "--valid-from",
            "2020-01-01",
            "--valid-until",
            "2020-12-31",
        ],
    )
    .await?;
    assert!(
        out.contains(
            "0 seats, valid always to open -> 2 seats, valid 2020-01-01 to 2020-12-31 (0 in use)"
        ),
        "{out}"
    );
    let v = version(&db).await?;
    let same = punchctl(
        &db,
        &[
            "licence",
            "set",
            "--tenant",
            "acme",
            "--seats",
            "2",
            "--valid-from",
            "2020-01-01",
            "--valid-until",
            "2020-12-31",
        ],
    )
    .await?;
    assert!(same.contains("unchanged"), "{same}");
    assert_eq!(version(&db).await?, v);

    for (id, card) in [("E-1", "C1"), ("E-2", "C2")] {
        let (added, stored) =
            licence::add_employee(&mut client, &employee(&acme, id, card, true)?).await?;
        assert_eq!((added, stored.licensed), (Added::Created, true));
    }
    let third = licence::add_employee(&mut client, &employee(&acme, "E-3", "C3", true)?)
        .await
        .expect_err("both seats taken");
    assert!(
        matches!(
            third,
            LicenceError::NoFreeSeat {
                seats: 2,
                licensed: 2,
                ..
            }
        ),
        "{third}"
    );
    licence::add_employee(&mut client, &employee(&acme, "E-3", "C3", false)?).await?;
    let set = licence::set_employee(
        &mut client,
        &acme,
        &"E-3".parse()?,
        &licence::EmployeeChange {
            licensed: Some(true),
            ..Default::default()
        },
    )
    .await
    .expect_err("still no free seat");
    assert!(matches!(set, LicenceError::NoFreeSeat { .. }), "{set}");

    let fewer = licence::set_licence(
        &mut client,
        &acme,
        LicenceTerms {
            seats: 1,
            valid_from: None,
            valid_until: None,
        },
    )
    .await
    .expect_err("two are licensed");
    assert!(
        matches!(
            fewer,
            LicenceError::SeatsBelowLicensed {
                seats: 1,
                licensed: 2,
                ..
            }
        ),
        "{fewer}"
    );

    // Free a seat, then the third employee can have it.
    let out = punchctl(
        &db,
        &[
            "employee",
            "set",
            "--tenant",
            "acme",
            "--employee",
            "E-1",
            "--licensed",
            "false",
        ],
    )
    .await?;
    assert!(out.contains("licensed true -> false"), "{out}");
    let out = punchctl(
        &db,
        &[
            "employee",
            "set",
            "--tenant",
            "acme",
            "--employee",
            "E-3",
            "--licensed",
            "true",
            "--active-until",
            "2021-01-01",
        ],
    )
    .await?;
    assert!(out.contains("licensed false -> true"), "{out}");
    let out = punchctl(
        &db,
        &[
            "employee",
            "set",
            "--tenant",
            "acme",
            "--employee",
            "E-3",
            "--licensed",
            "true",
        ],
    )
    .await?;
    assert!(out.contains("unchanged"), "{out}");
    let shown = licence::show_licence(&mut client, &acme).await?;
    assert_eq!(shown.licensed, 2);
    let out = punchctl(&db, &["licence", "show", "--tenant", "acme"]).await?;
    assert!(
        out.contains(
            "2 seats, valid 2020-01-01 to 2020-12-31 (2 in use; work dates in Asia/Tokyo)"
        ),
        "{out}"
    );
    let raised = licence::set_licence(
        &mut client,
        &acme,
        LicenceTerms {
            seats: 5,
            valid_from: None,
            valid_until: None,
        },
    )
    .await?;
    assert!(matches!(raised, Changed::Updated { .. }));
    db.drop_db().await
}
