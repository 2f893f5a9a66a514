//! A reduced storm in the test suite: a few recorders with a few hundred pooled punches each,
//! in both resend modes at once, through the whole pipeline (acceptor, licence check,
//! attendance) run in-process on the real local stack. Regressions that lose or double a
//! punch, or answer anything but the documented statuses, fail here; the full-size scenario is
//! `storm run` (`STORM.md`).
//!
//! It lives in the end-to-end suite, not in `tools/storm/tests`, because it runs the services
//! in-process (`dakoku-e2e`'s fixtures), which `dakoku-storm` must not dev-depend on.

use std::time::Duration;

use dakoku_e2e::acceptor::TestAcceptor;
use dakoku_e2e::attendance::TestAttendance;
use dakoku_e2e::licence::{TestLicenceCheck, test_config};
use dakoku_storm::audit::{self, StoredIn};
use dakoku_storm::provision::{self, Fleet, FleetSpec};
use dakoku_storm::sim::{self, Behaviour, StopReason, StormConfig};
use dakoku_testkit::{Stack, TestDatabase, TestGroup, eventually, unique_suffix};
use dakoku_token::TokenKeys;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

async fn fleet(
    db: &TestDatabase,
    group: &TestGroup,
    prefix: &str,
    keys: &TokenKeys,
) -> anyhow::Result<Fleet> {
    let mut client = db.client().await?;
    provision::provision(
        &mut client,
        &FleetSpec {
            group: group.group.clone(),
            prefix: prefix.to_owned(),
            devices: 4,
            tenants: 2,
            employees_per_device: 5,
        },
        keys,
    )
    .await
}

/// Rows in `punches` for the fleet's tenants.
async fn stored(db: &TestDatabase, fleet: &Fleet) -> anyhow::Result<i64> {
    let tenants: Vec<&str> = fleet.tenants.iter().map(|t| t.as_str()).collect();
    Ok(db
        .client()
        .await?
        .query_one(
            "SELECT count(*) FROM punches WHERE tenant_id = ANY($1)",
            &[&tenants],
        )
        .await?
        .get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_storm_in_both_modes_stores_every_acked_punch_exactly_once() -> anyhow::Result<()> {
    init_tracing();
    let stack = Stack::from_env();
    let db = TestDatabase::create(&stack).await?;
    let group = TestGroup::create(&stack, 2).await?;
    let key = TokenKeys::generate_entry("storm");
    let keys = TokenKeys::parse(&key)?;
    let suffix = unique_suffix();
    let legacy_fleet = fleet(&db, &group, &format!("sl{suffix}"), &keys).await?;
    let contract_fleet = fleet(&db, &group, &format!("sc{suffix}"), &keys).await?;

    // A per-device limit low enough that legacy recorders, which send as fast as they are
    // answered, run into 429 and its fixed 1 s resend.
    let acceptor = TestAcceptor::start(&stack, &db, |c| {
        c.token_keys = key.clone();
        c.device_rate_per_sec = 40;
        c.device_burst = 10;
    })
    .await?;
    let licence =
        TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&group.group)))
            .await?;
    let attendance = TestAttendance::start(&stack, &db.url, &group.group, |_| {});
    let target = acceptor.base_url.trim_start_matches("http://").parse()?;

    let storm = |fleet: &Fleet, behaviour, pool| {
        let mut config = StormConfig::new(target, fleet.recorders.clone(), behaviour);
        config.pool = pool;
        config.batch = 40;
        config.trickle_every = Some(Duration::from_millis(500));
        config.backoff_base = Duration::from_millis(200);
        config.backoff_cap = Duration::from_secs(2);
        config.max_duration = Some(Duration::from_secs(90));
        config.stop_when_drained = true;
        config
    };
    let (legacy, contract) = tokio::join!(
        sim::run(
            storm(&legacy_fleet, Behaviour::Legacy, 150),
            std::future::pending()
        ),
        sim::run(
            storm(&contract_fleet, Behaviour::Contract, 400),
            std::future::pending()
        ),
    );
    let (legacy, contract) = (legacy?, contract?);

    for (outcome, fleet, pool) in [
        (&legacy, &legacy_fleet, 150),
        (&contract, &contract_fleet, 400),
    ] {
        let mode = outcome.behaviour.as_str();
        assert_eq!(
            outcome.stopped_because,
            StopReason::Drained,
            "{mode}: pools not drained within the cap: {:?}",
            outcome.totals
        );
        assert!(
            outcome.acked_distinct() >= pool * 4,
            "{mode}: {} acked",
            outcome.acked_distinct()
        );
        // Only the documented answers: 200, or 429/503 each with a Retry-After.
        assert_eq!(
            outcome.totals.undocumented(),
            0,
            "{mode}: undocumented answers {:?}",
            outcome.totals.statuses
        );
        assert_eq!(outcome.missing_retry_after, 0, "{mode}");
        assert_eq!(outcome.totals.rejected, 0, "{mode}");

        let acked = i64::try_from(outcome.acked_distinct())?;
        let db = &db;
        eventually(
            &format!("{mode}: {acked} acked punches stored"),
            Duration::from_secs(90),
            || async move { Ok((stored(db, fleet).await? >= acked).then_some(())) },
        )
        .await?;
        let audit = audit::audit(&db.client().await?, StoredIn::Punches, outcome).await?;
        assert!(audit.is_clean(), "{mode}: {audit:?}");
        assert_eq!(audit.acked, outcome.acked_distinct(), "{mode}");
        assert_eq!(
            audit.unacked_stored, 0,
            "{mode}: every request was answered, so nothing is stored unseen: {audit:?}"
        );
    }
    // Legacy sends one punch per request; contract batches.
    assert!(legacy.totals.requests >= legacy.acked_distinct());
    assert!(contract.totals.status("200") < contract.acked_distinct() / 10);

    attendance.stop().await?;
    licence.stop().await?;
    acceptor.stop().await?;
    group.delete_topics().await?;
    db.drop_db().await?;
    Ok(())
}
