//! Tenants' work rules in Postgres: the version every tenant starts with (added or migrated),
//! recording, superseding and idempotence, the recompute request and its notification, and bad
//! input that changes nothing. Each test has a database of its own (testkit cannot be used
//! here: it depends on this crate).

use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use dakoku_rules::v2::RuleVersion;
use dakoku_rules::v2::rulebook::RuleChange;
use dakoku_schemas::TenantId;
use dakoku_store::ScratchDatabase;
use dakoku_store::master::rules::{
    RECOMPUTE_CHANNEL, RulesError, RulesSet, rulebooks, set_rules, show_rules,
};
use dakoku_store::master::{NewTenant, add_tenant};

fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| dakoku_store::DEFAULT_DATABASE_URL.into())
}

/// A database name no other test run uses at the same time.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("dakoku_test_{prefix}_{}_{nanos:08x}", std::process::id())
}

async fn database(prefix: &str) -> anyhow::Result<ScratchDatabase> {
    Ok(ScratchDatabase::create(&admin_url(), &unique(prefix)).await?)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn changes(list: &[&str]) -> Vec<RuleChange> {
    list.iter()
        .map(|c| c.parse().expect("valid change"))
        .collect()
}

/// Rows of tenant_rules and of attendance_recompute_requests.
async fn counts(client: &tokio_postgres::Client) -> anyhow::Result<(i64, i64)> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM tenant_rules), (SELECT count(*) FROM attendance_recompute_requests)",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Tenant `acme` on Berlin's wall clock with a 04:00 day change, added as `tenant add` adds it.
async fn berlin_tenant(db: &ScratchDatabase) -> anyhow::Result<TenantId> {
    let tenant: TenantId = "acme".parse()?;
    let mut new = NewTenant::with_defaults(tenant.clone(), "Acme", "rules-test".parse()?);
    new.time_zone = chrono_tz::Europe::Berlin;
    new.day_change = NaiveTime::from_hms_opt(4, 0, 0).expect("time");
    add_tenant(&mut dakoku_store::connect(db.url()).await?, &new).await?;
    Ok(tenant)
}

#[tokio::test]
async fn versions_are_recorded_superseded_and_not_repeated() -> anyhow::Result<()> {
    let db = database("rules").await?;
    let tenant = berlin_tenant(&db).await?;
    let mut client = dakoku_store::connect(db.url()).await?;

    // A new tenant starts with the defaults on its own calendar.
    let shown = show_rules(&client, &tenant).await?;
    let mut first = RuleVersion::defaults(date("2000-01-01"));
    first.time_zone = chrono_tz::Europe::Berlin;
    first.day_change = NaiveTime::from_hms_opt(4, 0, 0).expect("time");
    assert_eq!(shown.versions.len(), 1);
    assert_eq!(
        (shown.versions[0].version, &shown.versions[0].rules),
        (1, &first)
    );

    let listen = dakoku_store::connect_notified(db.url()).await?;
    listen
        .client
        .batch_execute(&format!("LISTEN {RECOMPUTE_CHANNEL}"))
        .await?;
    let mut notifications = listen.notifications;
    let set = set_rules(
        &mut client,
        &tenant,
        date("2026-06-01"),
        &changes(&["daily_limit_minutes=420", "legal_holiday=sunday"]),
        "shorter days",
    )
    .await?;
    let RulesSet::Recorded(recorded) = set else {
        panic!("expected a recorded version, got {set:?}");
    };
    assert_eq!(recorded.version, 2);
    assert_eq!(recorded.supersedes, None);
    assert_eq!(recorded.changes.len(), 2);
    // Midnight of June 1st is before the 04:00 day change: still May 31st's work date.
    assert_eq!(recorded.recompute_from, date("2026-05-31"));
    tokio::time::timeout(Duration::from_secs(10), notifications.recv())
        .await?
        .expect("a notification on the recompute channel");
    let request = client
        .query_one(
            "SELECT tenant_id, from_date, rules_version FROM attendance_recompute_requests WHERE request_id = $1",
            &[&recorded.request_id],
        )
        .await?;
    assert_eq!(
        (
            request.get::<_, String>(0),
            request.get::<_, NaiveDate>(1),
            request.get::<_, i64>(2)
        ),
        ("acme".to_owned(), date("2026-05-31"), 2)
    );

    // The same values again, on the date or later: nothing recorded.
    for from in ["2026-06-01", "2026-09-01"] {
        let again = set_rules(
            &mut client,
            &tenant,
            date(from),
            &changes(&["daily_limit_minutes=420"]),
            "",
        )
        .await?;
        assert_eq!(
            again,
            RulesSet::Unchanged {
                version: 2,
                effective_from: date("2026-06-01")
            }
        );
    }
    assert_eq!(counts(&client).await?, (2, 1));

    // Another change for the same date supersedes version 2 and keeps its rules.
    let RulesSet::Recorded(third) = set_rules(
        &mut client,
        &tenant,
        date("2026-06-01"),
        &changes(&["night_start=23:00", "night_end=06:00"]),
        "designated night",
    )
    .await?
    else {
        panic!("expected a recorded version");
    };
    assert_eq!((third.version, third.supersedes), (3, Some(2)));
    let shown = show_rules(&client, &tenant).await?;
    let states: Vec<_> = shown
        .versions
        .iter()
        .map(|v| (v.version, v.superseded_by))
        .collect();
    assert_eq!(states, vec![(1, None), (2, Some(3)), (3, None)]);
    assert_eq!(shown.versions[1].reason, "shorter days");

    let books = rulebooks(&client, &["acme", "nobody"]).await?;
    let acme = &books["acme"];
    assert_eq!(acme.numbers(), &[1, 3]);
    assert_eq!(acme.version_on(date("2026-05-31")), 1);
    assert_eq!(acme.version_on(date("2026-06-01")), 3);
    let june = acme.rulebook().on_date(date("2026-06-01"));
    assert_eq!(june.daily_limit_minutes, 420);
    assert_eq!(
        june.night_start,
        NaiveTime::from_hms_opt(23, 0, 0).expect("time")
    );
    assert_eq!(june.time_zone, chrono_tz::Europe::Berlin);
    assert_eq!(books["nobody"].version_on(date("2026-06-01")), 0);
    assert_eq!(acme, &shown.rulebook()?);

    // History is append-only.
    let update = client
        .execute(
            "UPDATE tenant_rules SET reason = 'x' WHERE version = 1",
            &[],
        )
        .await;
    assert!(update.is_err(), "an update of tenant_rules is refused");
    drop(client);
    Ok(db.drop(Duration::from_secs(30)).await?)
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() -> anyhow::Result<()> {
    let db = database("rules").await?;
    let tenant = berlin_tenant(&db).await?;
    let mut client = dakoku_store::connect(db.url()).await?;
    set_rules(
        &mut client,
        &tenant,
        date("2026-06-01"),
        &changes(&["daily_limit_minutes=420"]),
        "",
    )
    .await?;
    let before = counts(&client).await?;

    let refused = |result: Result<RulesSet, RulesError>| match result {
        Err(error) => error.to_string(),
        Ok(set) => panic!("expected a refusal, got {set:?}"),
    };
    let nobody: TenantId = "nobody".parse()?;
    let cases = [
        (
            &nobody,
            "2026-07-01",
            "week_start=monday",
            "unknown tenant nobody",
        ),
        // closing_day must be the same in every version: version 1 has null.
        (&tenant, "2026-07-01", "closing_day=20", "closing_day"),
        (&tenant, "2026-07-01", "night_end=22:00", "night_end"),
        (
            &tenant,
            "1999-12-31",
            "week_start=monday",
            "effective_from 1999-12-31",
        ),
    ];
    for (who, from, change, named) in cases {
        let message =
            refused(set_rules(&mut client, who, date(from), &changes(&[change]), "").await);
        assert!(message.contains(named), "{change}: {message}");
        assert!(
            message.contains("othing changed") || who == &nobody,
            "{message}"
        );
    }
    let repeated = refused(
        set_rules(
            &mut client,
            &tenant,
            date("2026-07-01"),
            &changes(&["week_start=monday", "week_start=friday"]),
            "",
        )
        .await,
    );
    assert!(repeated.contains("week_start"), "{repeated}");
    assert!(
        refused(
            show_rules(&client, &nobody)
                .await
                .map(|_| RulesSet::Unchanged {
                    version: 0,
                    effective_from: date("2000-01-01")
                })
        )
        .contains("unknown tenant nobody")
    );
    assert_eq!(counts(&client).await?, before, "nothing was written");
    drop(client);
    Ok(db.drop(Duration::from_secs(30)).await?)
}

/// The migration gives tenants that exist before it version 1 on their own calendar, and its
/// SQL defaults are the engine's.
#[tokio::test]
async fn the_migration_seeds_existing_tenants_with_the_engines_defaults() -> anyhow::Result<()> {
    let admin_url = admin_url();
    let name = unique("v7");
    let admin = dakoku_store::connect(&admin_url).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let url = dakoku_store::with_database(&admin_url, &name)?;
    let result = seed_check(&url).await;
    dakoku_store::drop_database(&admin_url, &name, Duration::from_secs(30)).await?;
    result
}

async fn seed_check(url: &str) -> anyhow::Result<()> {
    let client = dakoku_store::connect(url).await?;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            let n = name.strip_prefix('V')?.split("__").next()?.parse().ok()?;
            Some((n, p))
        })
        .collect();
    files.sort();
    let apply = |upto: std::ops::Range<u32>| {
        files
            .iter()
            .filter(move |(n, _)| upto.contains(n))
            .map(|(_, p)| std::fs::read_to_string(p))
            .collect::<Result<Vec<_>, _>>()
    };
    for sql in apply(1..7)? {
        client.batch_execute(&sql).await?;
    }
    client
        .batch_execute(
            "INSERT INTO tenant_groups (group_id) VALUES ('old');
             INSERT INTO tenants (tenant_id, name, group_id, time_zone, day_change_time)
             VALUES ('old-ny', 'Old', 'old', 'America/New_York', '04:30'),
                    ('old-tokyo', 'Old', 'old', 'Asia/Tokyo', '05:00');",
        )
        .await?;
    for sql in apply(7..8)? {
        client.batch_execute(&sql).await?;
    }
    let books = rulebooks(&client, &["old-ny", "old-tokyo"]).await?;
    let mut ny = RuleVersion::defaults(date("2000-01-01"));
    ny.time_zone = chrono_tz::America::New_York;
    ny.day_change = NaiveTime::from_hms_opt(4, 30, 0).expect("time");
    assert_eq!(books["old-ny"].rulebook().versions(), &[ny]);
    assert_eq!(books["old-ny"].numbers(), &[1]);
    assert_eq!(
        books["old-tokyo"].rulebook().versions(),
        &[RuleVersion::defaults(date("2000-01-01"))]
    );
    // Every key written out, as the engine writes it.
    let stored: serde_json::Value = client
        .query_one(
            "SELECT rules FROM tenant_rules WHERE tenant_id = 'old-tokyo'",
            &[],
        )
        .await?
        .get(0);
    let mut engine = RuleVersion::defaults(date("2000-01-01")).to_json();
    engine.remove("effective_from");
    assert_eq!(stored, serde_json::Value::Object(engine));
    Ok(())
}
