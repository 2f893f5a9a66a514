//! Consumer-group operations against the running broker.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{admin, cleanup, factory, unique, write_txn};
use dakoku_kafka::Reader;
use rdkafka::consumer::Consumer;

#[tokio::test]
async fn a_running_member_is_listed_and_an_idle_group_takes_commits() {
    let factory = factory();
    let admin = admin(&factory);
    let topic = unique("groups");
    let group = unique("group");
    common::topic(&admin, &topic, 2).await;
    let (f, t, g) = (factory.clone(), topic.clone(), group.clone());
    tokio::task::spawn_blocking(move || {
        write_txn(&f, &t, 0, &["a", "b", "c"], true);
        let admin = common::admin(&f);
        assert!(
            admin.members(&g).expect("described").is_empty(),
            "unknown group: none"
        );

        let member: Reader = f
            .group_member("dakoku-kafka-test-member", g.as_str())
            .create()
            .expect("member");
        member.subscribe(&[&t]).expect("subscribed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while member.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
            assert!(Instant::now() < deadline, "never assigned");
            let _ = member.poll(Duration::from_millis(100));
        }
        let members = admin.members(&g).expect("described");
        assert_eq!(members.len(), 1, "{members:?}");
        assert_eq!(members[0].client_id, "dakoku-kafka-test-member");
        assert!(!members[0].id.is_empty() && !members[0].host.is_empty());
        // The broker refuses a commit from outside a group with a live member.
        assert!(
            admin
                .commit_offsets(&g, &t, &BTreeMap::from([(0, 1)]))
                .is_err()
        );
        drop(member);

        let deadline = Instant::now() + Duration::from_secs(30);
        while !admin.members(&g).expect("described").is_empty() {
            assert!(Instant::now() < deadline, "the member never left");
            std::thread::sleep(Duration::from_millis(200));
        }
        admin
            .commit_offsets(&g, &t, &BTreeMap::from([(0, 2)]))
            .expect("an idle group takes a commit");
        let committed = admin.committed_offsets(&g, &t, &[0, 1]).expect("read back");
        assert_eq!(
            committed,
            BTreeMap::from([(0, 2)]),
            "nothing committed on 1"
        );
        admin
            .commit_offsets(&g, &t, &BTreeMap::new())
            .expect("nothing to commit is fine");
    })
    .await
    .expect("group task");
    cleanup(&admin, &[&topic]).await;
}
