//! The security probes against an in-process acceptor on the real stack: every hostile or
//! broken request gets its documented answer, and nothing but the control punches reaches the
//! raw topic.
//!
//! It lives in the end-to-end suite, not in `tools/storm/tests`, because it runs the acceptor
//! in-process (`dakoku-e2e`'s fixture), which `dakoku-storm` must not dev-depend on.

use std::time::Duration;

use dakoku_e2e::acceptor::TestAcceptor;
use dakoku_storm::probes::{self, ProbeEnv};
use dakoku_testkit::{Stack, TestDatabase, TestGroup, unique_suffix};

#[tokio::test]
async fn every_probe_gets_its_documented_answer_and_nothing_leaks() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 2).await?;
    let db = TestDatabase::create(&stack).await?;
    let acceptor = TestAcceptor::start(&stack, &db, |c| {
        c.header_read_timeout_ms = 1_000;
        c.body_read_timeout_ms = 1_000;
        c.max_body_bytes = 64 * 1024;
        c.max_punches = 50;
        c.snapshot_poll_ms = 200;
    })
    .await?;
    let env = ProbeEnv {
        base_url: acceptor.base_url.clone(),
        brokers: stack.brokers.clone(),
        database_url: db.url.clone(),
        group: group.group.clone(),
        keys: acceptor.keys.clone(),
        max_body_bytes: 64 * 1024,
        max_punches: 50,
        slow_client_deadline: Duration::from_secs(5),
    };
    let fixture = probes::provision(&env, &unique_suffix()).await?;
    let report = probes::run(&env, &fixture).await?;
    eprint!("{report}");
    assert!(report.passed(), "{report}");
    // 2 controls of A, 1 of B: the leak check really read the log.
    assert_eq!(report.raw_records_of_probe_tenants, 3, "{report}");
    assert!(report.probes.len() >= 29, "{report}");
    acceptor.stop().await?;
    db.drop_db().await?;
    group.delete_topics().await
}
