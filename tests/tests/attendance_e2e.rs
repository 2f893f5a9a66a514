//! The whole path of a punch (README "The path of a punch"): recorders `POST /v1/punches` a
//! realistic week of several employees, resending every batch; the acceptor appends them to
//! `punches.raw.<group>`; licence-check judges them into `punches.checked.<group>`; attendance
//! turns the accepted ones into `attendance_days`. The rows are exactly what the pure rules
//! give for the week, every punch is stored once, and a card nobody holds counts for nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, NaiveDate};
use dakoku_e2e::acceptor::TestAcceptor;
use dakoku_e2e::attendance::TestAttendance;
use dakoku_e2e::licence::{TestLicenceCheck, test_config};
use dakoku_testkit::days::{punch_counts, wait_for_days};
use dakoku_testkit::{Scenario, Stack, TenantSeed, TestDatabase, TestGroup, unique_suffix};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_posted_by_recorders_becomes_attendance_days() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 3).await?;
    let db = TestDatabase::create(&stack).await?;
    let tenant = format!("t{}", unique_suffix());
    let start = NaiveDate::from_ymd_opt(2020, 11, 30).context("date")?;
    let scenario = Scenario::realistic_week(&tenant, &group.group, 6, start, 41)?;

    let mut seed = TenantSeed::new(&tenant, &group.group).licence(50);
    for (employee, card) in &scenario.employees {
        seed = seed.licensed(employee.as_str(), card.as_str());
    }
    let mut per_device: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let tokyo = FixedOffset::east_opt(9 * 3600).context("offset")?;
    for p in &scenario.punches {
        let at = DateTime::from_timestamp_millis(p.at)
            .context("instant")?
            .with_timezone(&tokyo);
        per_device
            .entry(p.device_id.to_string())
            .or_default()
            .push(json!({
                "seq": p.seq, "card_id": p.card_id.as_str(), "kind": p.kind.as_str(),
                "at": at.to_rfc3339(),
            }));
    }
    seed.devices(per_device.keys())
        .device("PT-000003")
        .seed(&db)
        .await?;
    // A card nobody holds: accepted by the acceptor, rejected by licence-check, never counted.
    let stranger = json!({"seq": 1, "card_id": "NOBODY", "kind": "clock_in",
                          "at": "2020-12-01T09:00:00+09:00"});

    let acceptor = TestAcceptor::start(&stack, &db, |c| {
        c.device_burst = 1_000;
        c.device_rate_per_sec = 1_000;
    })
    .await?;
    let licence =
        TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&group.group)))
            .await?;
    let attendance = TestAttendance::start(&stack, &db.url, &group.group, |_| {});

    // Each recorder uploads its pool in batches of 25, in seq order, and then does it all again
    // (a resend storm in miniature: every punch arrives at least twice).
    let client = reqwest::Client::new();
    for round in 0..2 {
        for (device, punches) in &per_device {
            let token = acceptor.token(&tenant, device)?;
            for chunk in punches.chunks(25) {
                let response = client
                    .post(format!("{}/v1/punches", acceptor.base_url))
                    .bearer_auth(&token)
                    .json(&json!({"device_id": device, "punches": chunk}))
                    .send()
                    .await?;
                let status = response.status();
                let body: Value = response.json().await?;
                assert_eq!(status, 200, "round {round}: {body}");
                assert_eq!(
                    body["acked"].as_array().map(Vec::len),
                    Some(chunk.len()),
                    "{body}"
                );
            }
        }
    }
    let response = client
        .post(format!("{}/v1/punches", acceptor.base_url))
        .bearer_auth(acceptor.token(&tenant, "PT-000003")?)
        .json(&json!({"device_id": "PT-000003", "punches": [stranger]}))
        .send()
        .await?;
    assert_eq!(
        response.status(),
        200,
        "the stranger's punch reaches the log"
    );

    let expected = scenario.expected();
    assert!(expected.len() >= 30, "{} days", expected.len());
    wait_for_days(&db, &expected, Duration::from_secs(120)).await?;
    dakoku_testkit::eventually(
        "the stranger's rejection applied",
        Duration::from_secs(60),
        || async { Ok((punch_counts(&db).await?.3 == 1).then_some(())) },
    )
    .await?;
    let (punches, withdrawn, conflicts, rejections) = punch_counts(&db).await?;
    assert_eq!(
        (punches, withdrawn, conflicts, rejections),
        (scenario.punches.len() as i64, 0, 0, 1),
        "every punch stored once; the unknown card only remembered as rejected"
    );

    attendance.stop().await?;
    licence.stop().await?;
    acceptor.stop().await?;
    db.drop_db().await?;
    group.delete_topics().await
}
