//! Postgres going away under load (CONTRACT §4, issue 5): the attendance consumer retries with
//! backoff, never commits past what it has written, and once Postgres is back every punch is
//! stored exactly once and the days are exactly the expected ones.
//!
//! The stack's Postgres is shared by all tests, so instead of restarting it the consumer talks
//! to it through a test-local TCP proxy that is severed (every connection closed at once,
//! mid-transaction included, new ones refused) and restored: to the consumer that is exactly a
//! Postgres restart.

use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use dakoku_e2e::attendance::TestAttendance;
use dakoku_testkit::days::{punch_counts, stored_offsets_total, wait_for_days};
use dakoku_testkit::produce::produce_checked;
use dakoku_testkit::scenario::resent;
use dakoku_testkit::{
    PgProxy, Scenario, Stack, TestDatabase, TestGroup, eventually, unique_suffix,
};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_under_load_skips_nothing_and_doubles_nothing() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 3).await?;
    let db = TestDatabase::create(&stack).await?;
    let proxy = PgProxy::start(&db.url).await?;
    let start = NaiveDate::from_ymd_opt(2020, 11, 30).context("date")?;
    let scenario = Scenario::realistic_week(
        &format!("t{}", unique_suffix()),
        &group.group,
        12,
        start,
        31,
    )?;
    scenario.seed(&db).await?;
    let arrivals = resent(&scenario.punches, 1.0, 32);
    let total = arrivals.len() as i64;
    let consumer = TestAttendance::start(&stack, &proxy.url(&db.url)?, &group.group, |c| {
        c.batch_max_records = 25;
        c.statement_timeout_ms = 5_000;
        c.retry_initial_ms = 50;
        c.retry_max_ms = 400;
    });

    // Load: the log grows in chunks while Postgres comes and goes.
    let chunks: Vec<Vec<_>> = arrivals
        .chunks(arrivals.len() / 8 + 1)
        .map(<[_]>::to_vec)
        .collect();
    let producer = {
        let stack = stack.clone();
        let group = group.group.clone();
        tokio::spawn(async move {
            for chunk in chunks {
                produce_checked(&stack, &group, &chunk).await?;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            anyhow::Ok(())
        })
    };

    for outage in 0..2 {
        // Some progress first, then cut Postgres off mid-stream.
        let progress = stored_offsets_total(&db, &group.group).await?;
        eventually("progress before the outage", WAIT, || async {
            Ok((stored_offsets_total(&db, &group.group).await? > progress).then_some(()))
        })
        .await?;
        proxy.sever();
        let refused = proxy.connections_refused();
        eventually("the consumer retrying", WAIT, || async {
            Ok((proxy.connections_refused() >= refused + 2).then_some(()))
        })
        .await?;
        // A COMMIT already sent when the connection died may still land; after that, nothing
        // is committed while Postgres is away.
        let during = stored_offsets_total(&db, &group.group).await?;
        eventually("more retries while Postgres is away", WAIT, || async {
            Ok((proxy.connections_refused() >= refused + 4).then_some(()))
        })
        .await?;
        assert_eq!(
            stored_offsets_total(&db, &group.group).await?,
            during,
            "outage {outage}: nothing committed without Postgres"
        );
        assert!(during < total, "outage {outage}: the outage hit mid-stream");
        assert!(!consumer.is_finished(), "the consumer keeps retrying");
        proxy.restore();
    }
    producer.await??;

    let expected = scenario.expected();
    wait_for_days(&db, &expected, WAIT).await?;
    eventually("every record applied", WAIT, || async {
        Ok((stored_offsets_total(&db, &group.group).await? >= total).then_some(()))
    })
    .await?;
    assert_eq!(stored_offsets_total(&db, &group.group).await?, total);
    let (punches, withdrawn, conflicts, rejections) = punch_counts(&db).await?;
    assert_eq!(
        (punches, withdrawn, conflicts, rejections),
        (scenario.punches.len() as i64, 0, 0, 0),
        "every punch stored exactly once"
    );
    assert!(
        proxy.connections_accepted() >= 3,
        "the consumer reconnected"
    );

    consumer.stop().await?;
    drop(proxy);
    db.drop_db().await?;
    group.delete_topics().await
}
