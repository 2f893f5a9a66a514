//! licence-check end to end on the real broker and Postgres (CONTRACT §2-3): one verdict per
//! raw record with every reason, master-data changes picked up without restart, resends
//! published with their first verdict, recheck after a fix, poison quarantined with its
//! origin and the circuit breaker, verdicts waiting for their store, and tenant groups
//! isolated from each other.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::Parser as _;
use dakoku_e2e::licence::{
    TestLicenceCheck, quarantined_from, test_config, verdicts, wait_for_verdicts,
};
use dakoku_licence_check::{Config, GroupState, RunError};
use dakoku_schemas::{CheckedPunch, PunchId, RejectReason, Topic, Verdict};
use dakoku_testkit::master::master_data_version;
use dakoku_testkit::produce::{produce_bytes, produce_raw};
use dakoku_testkit::read::committed_offsets;
use dakoku_testkit::{
    EmployeeSeed, Stack, TenantSeed, TestDatabase, TestGroup, eventually, raw_punch, unique_suffix,
};

/// How long a batch failing against the verdict store may take to abort (session retries).
const WAIT_ABORT: Duration = Duration::from_secs(30);

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Verdicts by punch id (every verdict of each punch, in log order per partition).
fn by_punch(verdicts: &[(String, CheckedPunch)]) -> HashMap<PunchId, Vec<&CheckedPunch>> {
    let mut map: HashMap<PunchId, Vec<&CheckedPunch>> = HashMap::new();
    for (_, verdict) in verdicts {
        map.entry(verdict.punch_id).or_default().push(verdict);
    }
    map
}

/// Runs `punchctl <args>` through the real dispatcher against `db` and the stack's broker.
async fn punchctl(stack: &Stack, db: &TestDatabase, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec![
        "punchctl",
        "--database-url",
        db.url.as_str(),
        "--brokers",
        stack.brokers.as_str(),
    ];
    argv.extend_from_slice(args);
    let cli = punchctl::Cli::try_parse_from(argv)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = punchctl::run_with_output(cli, &mut out, &mut err).await?;
    assert_eq!(code, ExitCode::SUCCESS);
    Ok(String::from_utf8(out)?)
}

#[tokio::test]
async fn every_verdict_reason_with_its_key_employee_and_snapshot_version() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let g = group.group.clone();
    let db = TestDatabase::create(&stack).await?;
    // acme: licensed up to work date 2020-12-03. expired: licence ended in November.
    TenantSeed::new("acme", &g)
        .licence_valid(10, date(2020, 1, 1), date(2020, 12, 3))
        .licensed("E-ok", "CARD-OK")
        .employee(EmployeeSeed::licensed("E-gone", "CARD-GONE").active_until("2020-12-01"))
        .employee(EmployeeSeed::unlicensed("E-nolic", "CARD-NOLIC"))
        .seed(&db)
        .await?;
    TenantSeed::new("expired", &g)
        .licence_valid(10, None, date(2020, 11, 30))
        .licensed("E-x", "CARD-X")
        .seed(&db)
        .await?;
    let version = master_data_version(&db).await?;

    let at = "2020-12-02T09:00:00+09:00";
    // (tenant, card, at, expected reason, expected employee)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<RejectReason>,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        ("acme", "CARD-OK", at, None, Some("E-ok")),
        // 02:00 on the 4th is work date the 3rd (day change 05:00): still licensed.
        (
            "acme",
            "CARD-OK",
            "2020-12-04T02:00:00+09:00",
            None,
            Some("E-ok"),
        ),
        (
            "acme",
            "CARD-OK",
            "2020-12-04T05:00:00+09:00",
            Some(RejectReason::LicenceExpired),
            Some("E-ok"),
        ),
        (
            "nobody",
            "CARD-OK",
            at,
            Some(RejectReason::UnknownTenant),
            None,
        ),
        (
            "acme",
            "CARD-NEW",
            at,
            Some(RejectReason::UnknownCard),
            None,
        ),
        (
            "acme",
            "CARD-GONE",
            at,
            Some(RejectReason::EmployeeInactive),
            Some("E-gone"),
        ),
        (
            "acme",
            "CARD-GONE",
            "2020-11-30T09:00:00+09:00",
            None,
            Some("E-gone"),
        ),
        (
            "acme",
            "CARD-NOLIC",
            at,
            Some(RejectReason::NotLicensed),
            Some("E-nolic"),
        ),
        (
            "expired",
            "CARD-X",
            at,
            Some(RejectReason::LicenceExpired),
            Some("E-x"),
        ),
    ];
    let mut raw = Vec::new();
    for (seq, (tenant, card, at, _, _)) in cases.iter().enumerate() {
        raw.push(raw_punch(&g, tenant, "PT-1", seq as u64, card, at)?);
    }
    produce_raw(&stack, &g, &raw).await?;

    let lc = TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&g))).await?;
    let found = wait_for_verdicts(&stack, &g, cases.len()).await?;
    assert_eq!(
        found.len(),
        cases.len(),
        "exactly one verdict per raw record"
    );
    let found = by_punch(&found);
    let keys: HashMap<PunchId, String> = verdicts(&stack, &g)
        .await?
        .into_iter()
        .map(|(k, v)| (v.punch_id, k))
        .collect();
    for ((tenant, card, at, reason, employee), punch) in cases.iter().zip(&raw) {
        let verdict = found[&punch.punch_id][0];
        let what = format!("{tenant}/{card} at {at}");
        assert_eq!(verdict.reason, *reason, "{what}");
        let expected = if reason.is_some() {
            Verdict::Rejected
        } else {
            Verdict::Accepted
        };
        assert_eq!(verdict.verdict, expected, "{what}");
        assert_eq!(
            verdict.employee_id.as_ref().map(|e| e.as_str()),
            *employee,
            "{what}"
        );
        assert_eq!(verdict.master_data_version, version, "{what}");
        assert_eq!(
            verdict.raw(),
            *punch,
            "the raw punch is carried unchanged: {what}"
        );
        assert!(verdict.checked_at >= verdict.received_at, "{what}");
        let key = format!("{tenant}/{}", employee.unwrap_or(card));
        assert_eq!(
            keys[&punch.punch_id], key,
            "key <tenant>/<employee or card>: {what}"
        );
    }

    // The metrics say what was decided.
    let (status, metrics) = lc.get("/metrics").await?;
    assert_eq!(status, 200);
    for line in [
        format!(
            r#"licence_check_verdicts_total{{group="{g}",verdict="accepted",reason="none"}} 3"#
        ),
        format!(
            r#"licence_check_verdicts_total{{group="{g}",verdict="rejected",reason="licence_expired"}} 2"#
        ),
        format!(
            r#"licence_check_verdicts_total{{group="{g}",verdict="rejected",reason="unknown_tenant"}} 1"#
        ),
    ] {
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
    assert!(
        metrics.contains("licence_check_batch_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("licence_check_snapshot_age_seconds"),
        "{metrics}"
    );
    // Lag per partition comes from librdkafka's statistics (every 5 s): nothing left.
    for partition in 0..2 {
        let line = format!(r#"licence_check_lag_records{{group="{g}",partition="{partition}"}} 0"#);
        eventually(&line, Duration::from_secs(20), || {
            let line = line.clone();
            let lc = &lc;
            async move { Ok(lc.get("/metrics").await?.1.contains(&line).then_some(())) }
        })
        .await?;
    }
    assert_eq!(lc.get("/readyz").await?.0, 200);
    lc.stop().await?;
    db.drop_db().await?;
    group.delete_topics().await
}

#[tokio::test]
async fn a_master_data_change_is_picked_up_without_restart() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 1).await?;
    let g = group.group.clone();
    let db = TestDatabase::create(&stack).await?;
    TenantSeed::new("acme", &g).licence(5).seed(&db).await?;
    let lc = TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&g))).await?;

    let at = "2020-12-02T09:00:00+09:00";
    produce_raw(
        &stack,
        &g,
        &[raw_punch(&g, "acme", "PT-1", 1, "CARD-LATE", at)?],
    )
    .await?;
    let first = wait_for_verdicts(&stack, &g, 1).await?;
    assert_eq!(first[0].1.reason, Some(RejectReason::UnknownCard));

    // Register the card while the service runs: LISTEN/NOTIFY delivers the change.
    EmployeeSeed::licensed("E-late", "CARD-LATE")
        .seed(&db, "acme")
        .await?;
    let changed = master_data_version(&db).await?;
    eventually(
        "the new master data in the service",
        Duration::from_secs(10),
        || {
            let version = lc.service.snapshot_version();
            async move { Ok(version.filter(|v| *v >= changed)) }
        },
    )
    .await?;
    produce_raw(
        &stack,
        &g,
        &[raw_punch(&g, "acme", "PT-1", 2, "CARD-LATE", at)?],
    )
    .await?;
    let both = wait_for_verdicts(&stack, &g, 2).await?;
    let second = &both.iter().find(|(_, v)| v.seq == 2).context("seq 2")?.1;
    assert_eq!(second.verdict, Verdict::Accepted);
    assert_eq!(
        second.employee_id.as_ref().map(|e| e.as_str()),
        Some("E-late")
    );
    assert!(
        second.master_data_version >= changed,
        "the verdict names the snapshot it used"
    );
    // The earlier verdict stands until a recheck: verdicts are a log, not a table.
    let first = &both.iter().find(|(_, v)| v.seq == 1).context("seq 1")?.1;
    assert_eq!(first.reason, Some(RejectReason::UnknownCard));
    assert!(first.master_data_version < changed);
    lc.stop().await?;
    db.drop_db().await?;
    group.delete_topics().await
}

#[tokio::test]
async fn resends_of_a_punch_each_get_the_same_verdict() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let g = group.group.clone();
    let db = TestDatabase::create(&stack).await?;
    TenantSeed::new("acme", &g)
        .licence(5)
        .licensed("E-ok", "CARD-OK")
        .seed(&db)
        .await?;
    let lc = TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&g))).await?;

    let at = "2020-12-02T09:00:00+09:00";
    let known = raw_punch(&g, "acme", "PT-1", 1, "CARD-OK", at)?;
    let unknown = raw_punch(&g, "acme", "PT-1", 2, "CARD-UNKNOWN", at)?;
    // A recorder resending its pool: the same punches three times, each round judged in its
    // own transactions.
    for round in 1..=3 {
        produce_raw(&stack, &g, &[known.clone(), unknown.clone()]).await?;
        wait_for_verdicts(&stack, &g, 2 * round).await?;
    }
    let found = verdicts(&stack, &g).await?;
    assert_eq!(
        found.len(),
        6,
        "one verdict per raw record, resends included"
    );
    let mut keys: BTreeMap<PunchId, BTreeSet<String>> = BTreeMap::new();
    for (key, verdict) in &found {
        keys.entry(verdict.punch_id)
            .or_default()
            .insert(key.clone());
    }
    for (punch, expected) in [
        (&known, (Verdict::Accepted, None, "acme/E-ok")),
        (
            &unknown,
            (
                Verdict::Rejected,
                Some(RejectReason::UnknownCard),
                "acme/CARD-UNKNOWN",
            ),
        ),
    ] {
        let all = &by_punch(&found)[&punch.punch_id];
        assert_eq!(all.len(), 3);
        for verdict in all {
            assert_eq!((verdict.verdict, verdict.reason), (expected.0, expected.1));
            assert_eq!(verdict.raw(), *punch);
        }
        assert_eq!(
            keys[&punch.punch_id],
            BTreeSet::from([expected.2.to_owned()]),
            "resends land on the same key, so on the same partition, in order"
        );
    }
    lc.stop().await?;
    db.drop_db().await?;
    group.delete_topics().await
}

#[tokio::test]
async fn recheck_after_registering_a_card_accepts_exactly_those_punches() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let g = group.group.clone();
    let db = TestDatabase::create(&stack).await?;
    TenantSeed::new("acme", &g)
        .licence(5)
        .licensed("E-a", "CARD-A")
        .seed(&db)
        .await?;
    let at = "2020-12-02T09:00:00+09:00";
    let raw = vec![
        raw_punch(&g, "acme", "PT-1", 1, "CARD-A", at)?,
        raw_punch(&g, "acme", "PT-1", 2, "CARD-B", at)?,
        raw_punch(&g, "acme", "PT-1", 3, "CARD-B", at)?,
        raw_punch(&g, "acme", "PT-1", 3, "CARD-B", at)?, // a resend
        raw_punch(&g, "acme", "PT-2", 4, "CARD-B", at)?,
        raw_punch(&g, "acme", "PT-1", 5, "CARD-C", at)?, // stays unknown
    ];
    produce_raw(&stack, &g, &raw).await?;
    let lc = TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&g))).await?;
    wait_for_verdicts(&stack, &g, raw.len()).await?;
    lc.stop().await?;
    let card_b: BTreeSet<PunchId> = raw
        .iter()
        .filter(|p| p.card_id.as_str() == "CARD-B")
        .map(|p| p.punch_id)
        .collect();
    assert_eq!(card_b.len(), 3);

    // Before the fix there is nothing to accept.
    let out = punchctl(&stack, &db, &["recheck", "--tenant", "acme"]).await?;
    assert!(out.contains("now accepted: 0; published 0"), "{out}");
    assert!(out.contains("still rejected: unknown_card 4"), "{out}");

    punchctl(
        &stack,
        &db,
        &[
            "employee",
            "add",
            "--tenant",
            "acme",
            "--employee",
            "E-b",
            "--card",
            "CARD-B",
            "--licensed",
        ],
    )
    .await?;
    let version = master_data_version(&db).await?;
    let out = punchctl(&stack, &db, &["recheck", "--tenant", "acme", "--dry-run"]).await?;
    assert!(
        out.contains("now accepted: 3 (dry run: nothing published)"),
        "{out}"
    );
    assert_eq!(
        verdicts(&stack, &g).await?.len(),
        raw.len(),
        "a dry run publishes nothing"
    );

    let out = punchctl(&stack, &db, &["recheck", "--tenant", "acme"]).await?;
    assert!(out.contains("now accepted: 3; published 3"), "{out}");
    assert!(out.contains("still rejected: unknown_card 1"), "{out}");
    let after = verdicts(&stack, &g).await?;
    assert_eq!(after.len(), raw.len() + 3);
    let fresh: Vec<&(String, CheckedPunch)> = after
        .iter()
        .filter(|(_, v)| v.master_data_version >= version)
        .collect();
    assert_eq!(
        fresh
            .iter()
            .map(|(_, v)| v.punch_id)
            .collect::<BTreeSet<_>>(),
        card_b,
        "exactly the card's punches get a new verdict, once each"
    );
    for (key, verdict) in fresh {
        assert_eq!(verdict.verdict, Verdict::Accepted);
        assert_eq!(
            verdict.employee_id.as_ref().map(|e| e.as_str()),
            Some("E-b")
        );
        assert_eq!(key, "acme/E-b");
    }

    // Idempotent: the second run finds them accepted and publishes nothing.
    let out = punchctl(&stack, &db, &["recheck", "--group", g.as_str()]).await?;
    assert!(out.contains("already accepted: 4"), "{out}");
    assert!(out.contains("now accepted: 0; published 0"), "{out}");
    assert_eq!(verdicts(&stack, &g).await?.len(), raw.len() + 3);
    db.drop_db().await?;
    group.delete_topics().await
}

/// A resend during a bad master-data change (the seat freed by mistake) is published with the
/// punch's first verdict, identical: the first verdict stands. (Before master data was
/// history, the resend was judged on the bad data and rejected, and a recheck had to
/// reinstate it.) After the fix a recheck finds nothing to do.
#[tokio::test]
async fn a_resend_during_a_bad_master_data_change_keeps_the_first_verdict() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let g = group.group.clone();
    let db = TestDatabase::create(&stack).await?;
    TenantSeed::new("acme", &g)
        .licence(5)
        .licensed("E-a", "CARD-A")
        .seed(&db)
        .await?;
    let at = "2020-12-02T09:00:00+09:00";
    let punch = raw_punch(&g, "acme", "PT-1", 1, "CARD-A", at)?;
    let lc = TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&g))).await?;
    produce_raw(&stack, &g, std::slice::from_ref(&punch)).await?;
    let first = wait_for_verdicts(&stack, &g, 1).await?;
    assert_eq!(first[0].1.verdict, Verdict::Accepted);

    // The bad change: the employee's seat is freed by mistake; the recorder resends.
    let set = |licensed: &'static str| {
        [
            "employee",
            "set",
            "--tenant",
            "acme",
            "--employee",
            "E-a",
            "--licensed",
            licensed,
        ]
    };
    punchctl(&stack, &db, &set("false")).await?;
    let bad = master_data_version(&db).await?;
    eventually(
        "the bad master data in the service",
        Duration::from_secs(10),
        || {
            let version = lc.service.snapshot_version();
            async move { Ok(version.filter(|v| *v >= bad)) }
        },
    )
    .await?;
    produce_raw(&stack, &g, std::slice::from_ref(&punch)).await?;
    let both = wait_for_verdicts(&stack, &g, 2).await?;
    assert_eq!(
        both[0].1, both[1].1,
        "the resend is the first verdict, identical"
    );
    lc.stop().await?;

    punchctl(&stack, &db, &set("true")).await?;
    let out = punchctl(&stack, &db, &["recheck", "--group", g.as_str()]).await?;
    assert!(out.contains("already accepted: 1"), "{out}");
    assert!(out.contains("now accepted: 0; published 0"), "{out}");
    assert_eq!(verdicts(&stack, &g).await?.len(), 2);
    db.drop_db().await?;
    group.delete_topics().await
}

#[tokio::test]
async fn poison_is_quarantined_with_its_origin_and_the_breaker_trips_at_the_limit()
-> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 1).await?;
    let g = group.group.clone();
    let raw_topic = Topic::Raw(g.clone()).name();
    let db = TestDatabase::create(&stack).await?;
    TenantSeed::new("acme", &g)
        .licence(5)
        .licensed("E-ok", "CARD-OK")
        .seed(&db)
        .await?;
    let mut config = test_config(&stack, &db, std::slice::from_ref(&g));
    config.breaker_window_records = 10;
    config.breaker_min_records = 10;
    config.breaker_max_invalid_ratio = 0.5;
    let lc = TestLicenceCheck::start(config).await?;
    let at = "2020-12-02T09:00:00+09:00";
    let good = |seqs: std::ops::Range<u64>| -> anyhow::Result<Vec<_>> {
        seqs.map(|seq| raw_punch(&g, "acme", "PT-1", seq, "CARD-OK", at))
            .collect()
    };

    // A little poison among good records: quarantined, offsets committed, the group goes on.
    produce_raw(&stack, &g, &good(0..8)?).await?;
    let garbage =
        produce_bytes(&stack, &raw_topic, "acme/PT-1", Some(b"{\"not\":\"avro\"}")).await?;
    let empty = produce_bytes(&stack, &raw_topic, "acme/PT-1", None).await?;
    produce_raw(&stack, &g, &good(8..18)?).await?;
    wait_for_verdicts(&stack, &g, 18).await?;
    let quarantined = quarantined_from(&stack, &raw_topic).await?;
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    let by_offset: HashMap<i64, _> = quarantined
        .iter()
        .map(|q| (q.origin_offset.unwrap_or(-1), q))
        .collect();
    let q = by_offset[&garbage.1];
    assert_eq!(q.origin_partition, Some(garbage.0));
    assert_eq!(
        (q.source.as_str(), q.error_code.as_str()),
        ("licence-check", "undecodable_record")
    );
    assert_eq!(q.payload, b"{\"not\":\"avro\"}");
    assert_eq!(q.tenant_id.as_deref(), Some("acme"));
    assert!(q.error.contains("C3 01"), "{}", q.error);
    assert_eq!(by_offset[&empty.1].error_code, "empty_record");
    let consumer_group = Config::consumer_group(&g);
    let committed = committed_offsets(&stack, &consumer_group, &raw_topic, 1).await?;
    assert_eq!(
        committed.get(&0),
        Some(&20),
        "poison offsets are committed too"
    );
    assert_eq!(lc.service.group_state(&g), Some(GroupState::Running));

    // A bad deploy: nothing but poison. The window holds 10 records; the 6th poison record
    // makes 6 of 10 invalid, above 50%: the group stops without committing it.
    let mut last = (0, 0);
    for _ in 0..6 {
        last = produce_bytes(&stack, &raw_topic, "acme/PT-1", Some(b"\xC3\x01garbage")).await?;
    }
    let state = lc
        .wait_for(&g, "failed", |s| matches!(s, GroupState::Failed(_)))
        .await?;
    let GroupState::Failed(error) = state else {
        unreachable!()
    };
    assert!(error.contains("circuit breaker tripped"), "{error}");
    assert!(error.contains("6 of the last 10 records"), "{error}");
    assert!(error.contains(&consumer_group), "{error}");
    let committed = committed_offsets(&stack, &consumer_group, &raw_topic, 1).await?;
    assert!(
        committed.get(&0).copied().unwrap_or(0) <= last.1,
        "the record that tripped the breaker is not committed: {committed:?}, its offset {}",
        last.1
    );
    let quarantined = quarantined_from(&stack, &raw_topic).await?.len();
    assert!(
        (2..=7).contains(&quarantined),
        "at most the 5 below the limit: {quarantined}"
    );
    let (status, body) = lc.get("/readyz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("circuit breaker"), "{body}");
    let stopped = lc.stop().await;
    assert!(
        matches!(&stopped, Err(RunError::GroupsFailed { failed }) if failed.len() == 1),
        "{stopped:?}"
    );
    db.drop_db().await?;
    group.delete_topics().await
}

#[tokio::test]
async fn a_stopped_group_does_not_hold_up_another() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let (stalled, flowing) = (
        TestGroup::create(&stack, 1).await?,
        TestGroup::create(&stack, 2).await?,
    );
    let (a, b) = (stalled.group.clone(), flowing.group.clone());
    let db = TestDatabase::create(&stack).await?;
    let (ta, tb) = (
        format!("ta-{}", unique_suffix()),
        format!("tb-{}", unique_suffix()),
    );
    TenantSeed::new(&ta, &a)
        .licence(5)
        .licensed("E-a", "CARD-A")
        .seed(&db)
        .await?;
    TenantSeed::new(&tb, &b)
        .licence(5)
        .licensed("E-b", "CARD-B")
        .seed(&db)
        .await?;
    let mut config = test_config(&stack, &db, &[a.clone(), b.clone()]);
    config.breaker_window_records = 10;
    config.breaker_min_records = 10;
    let lc = TestLicenceCheck::start(config).await?;
    let at = "2020-12-02T09:00:00+09:00";

    // Group a is flooded with poison until its breaker stops it.
    let raw_a = Topic::Raw(a.clone()).name();
    for _ in 0..12 {
        produce_bytes(&stack, &raw_a, &format!("{ta}/PT-1"), Some(b"poison")).await?;
    }
    lc.wait_for(&a, "failed", |s| matches!(s, GroupState::Failed(_)))
        .await?;
    // Group a now lags: its punches wait in the log.
    produce_raw(&stack, &a, &[raw_punch(&a, &ta, "PT-1", 1, "CARD-A", at)?]).await?;

    // Group b keeps flowing.
    let punches: Vec<_> = (0..20)
        .map(|seq| raw_punch(&b, &tb, "PT-1", seq, "CARD-B", at))
        .collect::<anyhow::Result<_>>()?;
    produce_raw(&stack, &b, &punches).await?;
    let found = wait_for_verdicts(&stack, &b, 20).await?;
    assert_eq!(found.len(), 20);
    assert!(found.iter().all(|(_, v)| v.verdict == Verdict::Accepted));
    assert_eq!(lc.service.group_state(&b), Some(GroupState::Running));
    assert!(
        verdicts(&stack, &a).await?.is_empty(),
        "group a checks nothing while stopped"
    );

    let stopped = lc.stop().await;
    match &stopped {
        Err(RunError::GroupsFailed { failed }) => {
            assert_eq!(failed.iter().map(|(g, _)| g).collect::<Vec<_>>(), vec![&a]);
        }
        other => panic!("expected group {a} to have failed alone: {other:?}"),
    }
    db.drop_db().await?;
    stalled.delete_topics().await?;
    flowing.delete_topics().await
}

#[tokio::test]
async fn shutdown_commits_the_open_transaction_within_its_budget() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 1).await?;
    let g = group.group.clone();
    let db = TestDatabase::create(&stack).await?;
    TenantSeed::new("acme", &g)
        .licence(5)
        .licensed("E-ok", "CARD-OK")
        .seed(&db)
        .await?;
    let mut config = test_config(&stack, &db, std::slice::from_ref(&g));
    // Each transaction stays open 1.5 s before its commit: long enough to stop inside it.
    config.debug_batch_delay_ms = 1_500;
    config.batch_max_records = 10_000;
    config.batch_max_ms = 2_000;
    let budget = Duration::from_millis(config.shutdown_timeout_ms);
    let lc = TestLicenceCheck::start(config).await?;
    let at = "2020-12-02T09:00:00+09:00";
    let punches: Vec<_> = (0..50)
        .map(|seq| raw_punch(&g, "acme", "PT-1", seq, "CARD-OK", at))
        .collect::<anyhow::Result<_>>()?;
    produce_raw(&stack, &g, &punches).await?;
    eventually(
        "a transaction open with records in it",
        Duration::from_secs(30),
        || {
            let stats = &lc.service.group(&g).expect("served").stats;
            let open = stats.first_record_at.get().is_some()
                && stats.records_committed.load(Ordering::Relaxed) == 0;
            async move { Ok(open.then_some(())) }
        },
    )
    .await?;
    assert!(
        verdicts(&stack, &g).await?.is_empty(),
        "nothing committed yet"
    );
    let started = std::time::Instant::now();
    lc.stop().await?;
    let took = started.elapsed();
    assert!(
        took < budget + Duration::from_secs(2),
        "shutdown took {took:?}"
    );
    // Committed by the shutdown itself, with the input offsets: nothing to redo on restart.
    assert_eq!(verdicts(&stack, &g).await?.len(), 50);
    let raw_topic = Topic::Raw(g.clone()).name();
    let committed = committed_offsets(&stack, &Config::consumer_group(&g), &raw_topic, 1).await?;
    assert_eq!(committed.get(&0), Some(&50));
    db.drop_db().await?;
    group.delete_topics().await
}

/// The first verdicts are stored in Postgres before their Kafka transaction commits, so while
/// the verdict store is unusable nothing is published (a verdict that is not stored could not
/// stand): transactions abort and sessions retry with backoff. Once it is back, every punch
/// gets exactly one verdict. (Before verdicts were stored, checking went on from the last
/// snapshot while Postgres was away; attendance cannot project without Postgres either, so
/// nothing downstream is delayed by waiting.)
#[tokio::test]
async fn verdicts_wait_for_the_verdict_store_and_none_is_lost_or_doubled() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 1).await?;
    let g = group.group.clone();
    let db = TestDatabase::create(&stack).await?;
    TenantSeed::new("acme", &g)
        .licence(5)
        .licensed("E-ok", "CARD-OK")
        .seed(&db)
        .await?;
    let lc = TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&g))).await?;
    let at = "2020-12-02T09:00:00+09:00";
    produce_raw(
        &stack,
        &g,
        &[raw_punch(&g, "acme", "PT-1", 1, "CARD-OK", at)?],
    )
    .await?;
    wait_for_verdicts(&stack, &g, 1).await?;
    let client = db.client().await?;
    client
        .batch_execute("ALTER TABLE punch_verdicts RENAME TO punch_verdicts_away")
        .await?;
    let away: Vec<_> = (2..=4)
        .map(|seq| raw_punch(&g, "acme", "PT-1", seq, "CARD-OK", at))
        .collect::<Result<_, _>>()?;
    produce_raw(&stack, &g, &away).await?;
    eventually("a failed batch to abort", WAIT_ABORT, || {
        let aborted = lc
            .service
            .group(&g)
            .map(|s| s.stats.transactions_aborted.load(Ordering::Relaxed));
        async move { Ok(aborted.filter(|n| *n > 0)) }
    })
    .await?;
    assert_eq!(
        verdicts(&stack, &g).await?.len(),
        1,
        "nothing published meanwhile"
    );
    client
        .batch_execute("ALTER TABLE punch_verdicts_away RENAME TO punch_verdicts")
        .await?;
    let found = wait_for_verdicts(&stack, &g, 4).await?;
    let ids: BTreeSet<PunchId> = found.iter().map(|(_, v)| v.punch_id).collect();
    assert_eq!((found.len(), ids.len()), (4, 4), "one verdict each");
    assert!(found.iter().all(|(_, v)| v.verdict == Verdict::Accepted));
    lc.stop().await?;
    db.drop_db().await?;
    group.delete_topics().await
}
