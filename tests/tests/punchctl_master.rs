//! `punchctl tenant`, `device` and `intake` on a real Postgres: idempotent master data, device
//! tokens the acceptor's keys verify, and intake pauses per group, tenant and device. Each test
//! has its own database; the library functions and the CLI dispatcher are both exercised.

use std::process::ExitCode;

use chrono::{NaiveTime, Utc};
use clap::Parser as _;
use clap::error::ErrorKind;
use dakoku_schemas::{DeviceId, GroupId, TenantId};
use dakoku_testkit::{Stack, TestDatabase};
use dakoku_token::TokenKeys;
use punchctl::Cli;
use punchctl::intake::{self, IntakeError, PauseTarget, Paused, Scope};
use punchctl::master::{self, Added, MasterError, NewTenant, Revoked};

fn tenant(s: &str) -> TenantId {
    s.parse().expect("valid tenant id")
}

fn group(s: &str) -> GroupId {
    s.parse().expect("valid group id")
}

fn device(s: &str) -> DeviceId {
    s.parse().expect("valid device id")
}

async fn version(client: &tokio_postgres::Client) -> anyhow::Result<i64> {
    Ok(master::master_data_version(client).await?)
}

/// Runs `punchctl <args>` against `db` through the real dispatcher, capturing its output.
async fn punchctl(db: &TestDatabase, args: &[&str]) -> anyhow::Result<(String, String)> {
    let mut argv = vec!["punchctl", "--database-url", db.url.as_str()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = punchctl::run_with_output(cli, &mut out, &mut err).await?;
    assert_eq!(code, ExitCode::SUCCESS);
    Ok((String::from_utf8(out)?, String::from_utf8(err)?))
}

/// The error clap gives for `args`, which must not parse.
fn parse_error(args: &[&str]) -> clap::Error {
    let mut argv = vec!["punchctl"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect_err("must be refused by the parser")
}

#[tokio::test]
async fn tenant_add_is_idempotent_and_refuses_silent_changes() -> anyhow::Result<()> {
    let db = TestDatabase::create(&Stack::from_env()).await?;
    let mut client = db.client().await?;

    let acme = NewTenant::with_defaults(tenant("acme"), "ACME Corp", group("g1"));
    let v0 = version(&client).await?;
    let added = master::add_tenant(&mut client, &acme).await?;
    assert_eq!(added.outcome, Added::Created);
    assert!(added.group_created, "g1 was new");
    let v1 = version(&client).await?;
    assert!(v1 > v0, "adding a tenant bumps the master-data version");

    // The contract's defaults are what is stored.
    let row = client
        .query_one(
            "SELECT group_id, name, time_zone, day_change_time::text FROM tenants WHERE tenant_id = 'acme'",
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "g1");
    assert_eq!(row.get::<_, String>(1), "ACME Corp");
    assert_eq!(row.get::<_, String>(2), "Asia/Tokyo");
    assert_eq!(row.get::<_, String>(3), "05:00:00");

    // The same tenant again: unchanged, nothing written, version untouched.
    let again = master::add_tenant(&mut client, &acme).await?;
    assert_eq!(again.outcome, Added::Unchanged);
    assert!(!again.group_created);
    assert_eq!(version(&client).await?, v1, "a no-op add must not bump");

    // Different values: refused, naming each differing field, and nothing changes.
    let moved = NewTenant {
        group: group("g2"),
        time_zone: master::parse_time_zone("Europe/Berlin")?,
        ..acme.clone()
    };
    let error = master::add_tenant(&mut client, &moved)
        .await
        .expect_err("conflicting re-add must fail");
    match &error {
        MasterError::TenantConflict { differences, .. } => {
            let fields: Vec<&str> = differences.iter().map(|d| d.field).collect();
            assert_eq!(fields, ["group", "time-zone"]);
        }
        other => panic!("expected TenantConflict, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(r#"group is "g1" (given "g2")"#),
        "{message}"
    );
    assert!(message.contains("nothing changed"), "{message}");
    assert_eq!(version(&client).await?, v1, "a refused add writes nothing");
    let groups: i64 = client
        .query_one("SELECT count(*) FROM tenant_groups", &[])
        .await?
        .get(0);
    assert_eq!(groups, 1, "the refused add's group g2 was rolled back");

    // A second tenant in the same group; a blank name is refused.
    let beta = NewTenant {
        day_change: NaiveTime::from_hms_opt(4, 30, 0).expect("time"),
        ..NewTenant::with_defaults(tenant("beta"), "Beta", group("g1"))
    };
    let added = master::add_tenant(&mut client, &beta).await?;
    assert!(!added.group_created, "g1 existed already");
    let blank = NewTenant::with_defaults(tenant("gamma"), "  ", group("g1"));
    assert!(matches!(
        master::add_tenant(&mut client, &blank).await,
        Err(MasterError::InvalidName)
    ));

    let listed = master::list_tenants(&client, Some(&group("g1"))).await?;
    let ids: Vec<&str> = listed.iter().map(|t| t.tenant.as_str()).collect();
    assert_eq!(ids, ["acme", "beta"]);
    assert_eq!(listed[1].day_change.format("%H:%M").to_string(), "04:30");
    assert!(
        master::list_tenants(&client, Some(&group("g2")))
            .await?
            .is_empty()
    );

    drop(client);
    db.drop_db().await
}

#[tokio::test]
async fn cli_tenant_and_device_add_print_what_scripts_need() -> anyhow::Result<()> {
    let db = TestDatabase::create(&Stack::from_env()).await?;
    let client = db.client().await?;

    // Bad input is refused by the parser, with the rule in the message.
    let zone = parse_error(&[
        "tenant",
        "add",
        "--tenant",
        "acme",
        "--name",
        "A",
        "--group",
        "g1",
        "--time-zone",
        "Tokyo",
    ]);
    assert!(
        zone.to_string().contains("Asia/Tokyo, Europe/Berlin"),
        "{zone}"
    );
    let bad_group = parse_error(&[
        "tenant",
        "add",
        "--tenant",
        "acme",
        "--name",
        "A",
        "--group",
        "Bad_Group",
    ]);
    assert!(
        bad_group
            .to_string()
            .contains("1 to 32 characters [a-z0-9-]"),
        "{bad_group}"
    );
    let day_change = parse_error(&[
        "tenant",
        "add",
        "--tenant",
        "acme",
        "--name",
        "A",
        "--group",
        "g1",
        "--day-change",
        "5am",
    ]);
    assert!(day_change.to_string().contains("HH:MM"), "{day_change}");
    let case_slip = parse_error(&[
        "tenant",
        "add",
        "--tenant",
        "acme",
        "--name",
        "A",
        "--group",
        "g1",
        "--time-zone",
        "asia/tokyo",
    ]);
    assert!(
        case_slip.to_string().contains("did you mean Asia/Tokyo?"),
        "{case_slip}"
    );

    // `punchctl::run` as main() calls it: defaults come from the CLI.
    let code = punchctl::run(Cli::parse_from([
        "punchctl",
        "--database-url",
        &db.url,
        "tenant",
        "add",
        "--tenant",
        "acme",
        "--name",
        "ACME",
        "--group",
        "g1",
    ]))
    .await?;
    assert_eq!(code, ExitCode::SUCCESS);
    let row = client
        .query_one(
            "SELECT time_zone, day_change_time::text FROM tenants WHERE tenant_id = 'acme'",
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "Asia/Tokyo");
    assert_eq!(row.get::<_, String>(1), "05:00:00");

    let (out, _) = punchctl(
        &db,
        &[
            "tenant", "add", "--tenant", "acme", "--name", "ACME", "--group", "g1",
        ],
    )
    .await?;
    assert!(out.contains("tenant acme: unchanged"), "{out}");
    let conflict = punchctl(
        &db,
        &[
            "tenant",
            "add",
            "--tenant",
            "acme",
            "--name",
            "ACME",
            "--group",
            "g1",
            "--day-change",
            "04:00",
        ],
    )
    .await
    .expect_err("conflicting re-add must fail");
    assert!(
        format!("{conflict:#}").contains(r#"day-change is "05:00" (given "04:00")"#),
        "{conflict:#}"
    );
    let (out, _) = punchctl(&db, &["tenant", "list"]).await?;
    assert!(out.starts_with("TENANT"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("acme ") && l.contains("Asia/Tokyo")),
        "{out}"
    );

    // device add prints exactly the token on stdout; it verifies with the same keys.
    let spec = TokenKeys::generate_entry("test");
    let keys = TokenKeys::parse(&spec)?;
    let device_add = [
        "device",
        "add",
        "--tenant",
        "acme",
        "--device",
        "PT-000123",
        "--valid-days",
        "30",
        "--token-keys",
        &spec,
    ];
    let before = Utc::now().timestamp();
    let (out, err) = punchctl(&db, &device_add).await?;
    let after = Utc::now().timestamp();
    assert_eq!(out.lines().count(), 1, "stdout is the token alone: {out:?}");
    let token = out.trim_end();
    assert!(token.starts_with("dk1.test."), "{token}");
    let claims = keys.verify(token, after)?;
    assert_eq!(claims.tenant, tenant("acme"));
    assert_eq!(claims.device, device("PT-000123"));
    assert!(
        (before + 30 * 86_400..=after + 30 * 86_400).contains(&claims.expires_at),
        "expiry {} is not 30 days from now",
        claims.expires_at
    );
    assert!(err.contains("registered"), "{err}");
    assert!(!err.contains(&spec), "secrets never printed");

    // Again for a live device: a fresh token, still one line.
    let (out, err) = punchctl(&db, &device_add).await?;
    assert_eq!(out.lines().count(), 1);
    keys.verify(out.trim_end(), Utc::now().timestamp())?;
    assert!(err.contains("already registered"), "{err}");

    // No keys: refused before anything is written, pointing at the configuration.
    let no_keys = punchctl(
        &db,
        &[
            "device",
            "add",
            "--tenant",
            "acme",
            "--device",
            "PT-2",
            "--token-keys",
            "",
        ],
    )
    .await
    .expect_err("no keys");
    assert!(
        format!("{no_keys:#}").contains("DAKOKU_TOKEN_KEYS"),
        "{no_keys:#}"
    );
    assert!(
        master::list_devices(&client, &tenant("acme"))
            .await?
            .iter()
            .all(|d| d.device.as_str() != "PT-2"),
        "a device without a token must not be registered"
    );

    let (out, _) = punchctl(
        &db,
        &[
            "device",
            "revoke",
            "--tenant",
            "acme",
            "--device",
            "PT-000123",
            "--reason",
            "stolen",
        ],
    )
    .await?;
    assert!(out.contains("revoked at"), "{out}");
    let refused = punchctl(&db, &device_add)
        .await
        .expect_err("revoked device");
    assert!(
        format!("{refused:#}").contains("new device id"),
        "{refused:#}"
    );
    let (out, _) = punchctl(&db, &["device", "list", "--tenant", "acme"]).await?;
    let line = out
        .lines()
        .find(|l| l.starts_with("PT-000123"))
        .unwrap_or_default();
    assert!(line.contains("[revoked: stolen]"), "{out}");

    drop(client);
    db.drop_db().await
}

#[tokio::test]
async fn device_add_and_revoke_follow_the_lifecycle() -> anyhow::Result<()> {
    let db = TestDatabase::create(&Stack::from_env()).await?;
    let mut client = db.client().await?;
    let acme = tenant("acme");
    let pt1 = device("PT-1");

    // Unknown tenant: refused, naming the verb that fixes it.
    let error = master::add_device(&client, &acme, &pt1)
        .await
        .expect_err("unknown tenant");
    assert!(matches!(error, MasterError::TenantNotFound(_)), "{error:?}");
    assert!(error.to_string().contains("punchctl tenant add"), "{error}");

    master::add_tenant(
        &mut client,
        &NewTenant::with_defaults(acme.clone(), "ACME", group("g1")),
    )
    .await?;
    let v0 = version(&client).await?;
    let (added, created) = master::add_device(&client, &acme, &pt1).await?;
    assert_eq!(added, Added::Created);
    assert_eq!(created.revoked_at, None);
    let v1 = version(&client).await?;
    assert!(v1 > v0);

    // A live device again: fine, nothing written.
    let (added, again) = master::add_device(&client, &acme, &pt1).await?;
    assert_eq!(added, Added::Unchanged);
    assert_eq!(again, created);
    assert_eq!(version(&client).await?, v1);

    // The token `device add` prints for it verifies with the same keys.
    let keys = TokenKeys::parse(&TokenKeys::generate_entry("k1"))?;
    let now = Utc::now();
    let issued = master::issue_token(&keys, &acme, &pt1, 365, now)?;
    assert_eq!(keys.verify(&issued.token, now.timestamp())?, issued.claims);
    assert_eq!(issued.claims.expires_at, now.timestamp() + 365 * 86_400);

    // Revoke sets revoked_at once; revoking again changes nothing.
    let revoked = master::revoke_device(&client, &acme, &pt1, "lost in the flood").await?;
    let Revoked::Now(revoked) = revoked else {
        panic!("expected a fresh revocation, got {revoked:?}");
    };
    let revoked_at = revoked.revoked_at.expect("revoked_at set");
    let stored: Option<chrono::DateTime<Utc>> = client
        .query_one(
            "SELECT revoked_at FROM devices WHERE tenant_id = 'acme' AND device_id = 'PT-1'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(stored, Some(revoked_at));
    assert_eq!(revoked.description, "[revoked: lost in the flood]");
    let v2 = version(&client).await?;
    assert!(v2 > v1);
    let again = master::revoke_device(&client, &acme, &pt1, "other reason").await?;
    assert!(matches!(&again, Revoked::Already(d) if d.revoked_at == Some(revoked_at)));
    assert_eq!(again.device().description, "[revoked: lost in the flood]");
    assert_eq!(version(&client).await?, v2, "re-revoking writes nothing");

    // A revoked id is never reactivated.
    let error = master::add_device(&client, &acme, &pt1)
        .await
        .expect_err("revoked device");
    assert!(
        matches!(error, MasterError::DeviceRevoked { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("new device id"), "{error}");

    // Unknown device: an error, not a silent no-op.
    let error = master::revoke_device(&client, &acme, &device("PT-404"), "")
        .await
        .expect_err("unknown device");
    assert!(
        matches!(error, MasterError::DeviceNotFound { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("punchctl device list --tenant acme"),
        "{error}"
    );

    master::add_device(&client, &acme, &device("PT-2")).await?;
    let listed = master::list_devices(&client, &acme).await?;
    let summary: Vec<(&str, bool)> = listed
        .iter()
        .map(|d| (d.device.as_str(), d.revoked_at.is_some()))
        .collect();
    assert_eq!(summary, [("PT-1", true), ("PT-2", false)]);
    assert!(matches!(
        master::list_devices(&client, &tenant("nobody")).await,
        Err(MasterError::TenantNotFound(_))
    ));

    drop(client);
    db.drop_db().await
}

#[tokio::test]
async fn intake_pauses_per_scope_keep_their_start_and_bump_the_version() -> anyhow::Result<()> {
    let db = TestDatabase::create(&Stack::from_env()).await?;
    let mut client = db.client().await?;
    master::add_tenant(
        &mut client,
        &NewTenant::with_defaults(tenant("acme"), "ACME", group("g1")),
    )
    .await?;
    master::add_device(&client, &tenant("acme"), &device("PT-1")).await?;

    assert!(intake::status(&client).await?.is_empty());
    let targets = [
        PauseTarget::Group(group("g1")),
        PauseTarget::Tenant(tenant("acme")),
        PauseTarget::parse_device("acme/PT-1")?,
    ];
    for target in &targets {
        let v0 = version(&client).await?;
        let paused = intake::pause(
            &mut client,
            target,
            None,
            Some("Kafka maintenance"),
            "alice",
        )
        .await?;
        let Paused::New(first) = paused else {
            panic!("expected a new pause of {target}, got {paused:?}");
        };
        assert_eq!(first.scope, target.scope());
        assert_eq!(first.target, target.target());
        assert_eq!(first.paused_by, "alice");
        let v1 = version(&client).await?;
        assert!(v1 > v0, "pausing {target} bumps the version");

        // Re-pausing by someone else changes retry-after and reason, not when or by whom.
        let paused = intake::pause(&mut client, target, Some(60), Some("storm"), "bob").await?;
        let Paused::Updated { before, after } = paused else {
            panic!("expected an updated pause of {target}, got {paused:?}");
        };
        assert_eq!(before.retry_after_seconds, 300, "the default");
        assert_eq!(after.retry_after_seconds, 60);
        assert_eq!(after.reason, "storm");
        assert_eq!(after.paused_at, first.paused_at, "paused_at is kept");
        assert_eq!(after.paused_by, "alice");
        let v2 = version(&client).await?;
        assert!(v2 > v1);

        // The same settings again, or none at all: nothing written.
        let paused = intake::pause(&mut client, target, Some(60), Some("storm"), "bob").await?;
        assert!(matches!(paused, Paused::Unchanged(_)), "{paused:?}");
        let paused = intake::pause(&mut client, target, None, None, "bob").await?;
        assert!(matches!(paused, Paused::Unchanged(_)), "{paused:?}");
        assert_eq!(version(&client).await?, v2);

        // What is not given is kept: only the retry-after changes here.
        let paused = intake::pause(&mut client, target, Some(90), None, "bob").await?;
        assert_eq!(paused.pause().reason, "storm");
        assert_eq!(paused.pause().retry_after_seconds, 90);
        let paused = intake::pause(&mut client, target, Some(60), None, "bob").await?;
        assert_eq!(paused.pause().paused_at, first.paused_at);
    }

    let status = intake::status(&client).await?;
    let listed: Vec<(Scope, &str, u32)> = status
        .iter()
        .map(|p| (p.scope, p.target.as_str(), p.retry_after_seconds))
        .collect();
    assert_eq!(
        listed,
        [
            (Scope::Group, "g1", 60),
            (Scope::Tenant, "acme", 60),
            (Scope::Device, "acme/PT-1", 60),
        ]
    );

    for target in &targets {
        let v0 = version(&client).await?;
        let resumed = intake::resume(&mut client, target).await?;
        assert_eq!(resumed.map(|p| p.target), Some(target.target()));
        let v1 = version(&client).await?;
        assert!(v1 > v0, "resuming {target} bumps the version");
        assert_eq!(intake::resume(&mut client, target).await?, None);
        assert_eq!(
            version(&client).await?,
            v1,
            "resuming nothing writes nothing"
        );
    }
    assert!(intake::status(&client).await?.is_empty());

    // Typos do not pause nothing silently; nonsense retry-after is refused.
    for unknown in [
        PauseTarget::Group(group("g9")),
        PauseTarget::Tenant(tenant("acne")),
        PauseTarget::parse_device("acme/PT-9")?,
    ] {
        let error = intake::pause(&mut client, &unknown, None, None, "alice")
            .await
            .expect_err("unknown target");
        assert!(matches!(error, IntakeError::UnknownTarget(_)), "{error:?}");
        assert!(error.to_string().contains("punchctl"), "{error}");
    }
    for bad in [0, 86_401] {
        assert!(matches!(
            intake::pause(&mut client, &targets[0], Some(bad), None, "alice").await,
            Err(IntakeError::InvalidRetryAfter(_))
        ));
    }
    assert!(intake::status(&client).await?.is_empty());

    drop(client);
    db.drop_db().await
}

#[tokio::test]
async fn cli_intake_takes_exactly_one_target_and_reports_plainly() -> anyhow::Result<()> {
    let db = TestDatabase::create(&Stack::from_env()).await?;
    let mut client = db.client().await?;
    master::add_tenant(
        &mut client,
        &NewTenant::with_defaults(tenant("acme"), "ACME", group("g1")),
    )
    .await?;
    master::add_device(&client, &tenant("acme"), &device("PT-1")).await?;

    // Exactly one of --group, --tenant, --device; retry-after within 1..=86400.
    let both = parse_error(&["intake", "pause", "--group", "g1", "--tenant", "acme"]);
    assert_eq!(both.kind(), ErrorKind::ArgumentConflict, "{both}");
    let none = parse_error(&["intake", "pause", "--retry-after", "60"]);
    assert_eq!(none.kind(), ErrorKind::MissingRequiredArgument, "{none}");
    let resume_both = parse_error(&[
        "intake",
        "resume",
        "--tenant",
        "acme",
        "--device",
        "acme/PT-1",
    ]);
    assert_eq!(
        resume_both.kind(),
        ErrorKind::ArgumentConflict,
        "{resume_both}"
    );
    for bad in ["0", "86401", "-5", "5m"] {
        let error = parse_error(&["intake", "pause", "--group", "g1", "--retry-after", bad]);
        assert!(
            matches!(
                error.kind(),
                ErrorKind::ValueValidation | ErrorKind::UnknownArgument
            ),
            "{bad}: {error}"
        );
    }
    let bad_device = parse_error(&["intake", "pause", "--device", "PT-1"]);
    assert!(
        bad_device.to_string().contains("<tenant>/<device>"),
        "{bad_device}"
    );

    let (out, _) = punchctl(&db, &["intake", "status"]).await?;
    assert_eq!(out.trim(), "no pauses");
    let (out, _) = punchctl(
        &db,
        &[
            "intake",
            "pause",
            "--device",
            "acme/PT-1",
            "--retry-after",
            "120",
            "--reason",
            "firmware bug",
        ],
    )
    .await?;
    assert!(out.contains("paused device acme/PT-1"), "{out}");
    assert!(out.contains("Retry-After 120s"), "{out}");
    let (out, _) = punchctl(&db, &["intake", "pause", "--tenant", "acme"]).await?;
    assert!(
        out.contains("Retry-After 300s"),
        "default retry-after: {out}"
    );
    // Re-pausing with only --retry-after keeps the reason.
    let (out, _) = punchctl(
        &db,
        &[
            "intake",
            "pause",
            "--device",
            "acme/PT-1",
            "--retry-after",
            "30",
        ],
    )
    .await?;
    assert!(out.contains("updated pause of device acme/PT-1"), "{out}");
    let (out, _) = punchctl(
        &db,
        &[
            "intake",
            "pause",
            "--device",
            "acme/PT-1",
            "--retry-after",
            "120",
        ],
    )
    .await?;
    assert!(out.contains("Retry-After 30s -> 120s"), "{out}");

    let (out, _) = punchctl(&db, &["intake", "status"]).await?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("SCOPE"), "{out}");
    let device_line = lines
        .iter()
        .find(|l| l.starts_with("device"))
        .unwrap_or_else(|| panic!("no device pause in {out}"));
    for part in ["acme/PT-1", "120s", " ago)", "firmware bug"] {
        assert!(
            device_line.contains(part),
            "{part:?} missing: {device_line}"
        );
    }
    let stored = intake::status(&client).await?;
    let by = &stored
        .iter()
        .find(|p| p.scope == Scope::Device)
        .expect("device")
        .paused_by;
    let expected_by = std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "punchctl".into());
    assert_eq!(by, &expected_by);

    let (out, _) = punchctl(&db, &["intake", "resume", "--device", "acme/PT-1"]).await?;
    assert!(out.contains("resumed device acme/PT-1"), "{out}");
    let (out, _) = punchctl(&db, &["intake", "resume", "--device", "acme/PT-1"]).await?;
    assert!(out.contains("was not paused"), "{out}");
    let (out, _) = punchctl(&db, &["intake", "resume", "--group", "g1"]).await?;
    assert!(out.contains("group g1 was not paused"), "{out}");
    let (out, _) = punchctl(&db, &["intake", "resume", "--tenant", "acme"]).await?;
    assert!(out.contains("resumed tenant acme"), "{out}");
    let (out, _) = punchctl(&db, &["intake", "status"]).await?;
    assert_eq!(out.trim(), "no pauses");

    drop(client);
    db.drop_db().await
}
