//! Admin operations against the running broker.

mod common;

use std::collections::BTreeMap;

use common::{TIMEOUT, admin, factory, spec, unique, write_txn};
use dakoku_kafka::Created;

#[tokio::test]
async fn topics_are_created_once_and_report_partitions_watermarks_and_config() {
    let factory = factory();
    let admin = admin(&factory);
    let name = unique("admin");
    let mut compacted = spec(&unique("admin-compact"), 2);
    compacted.configs = vec![("cleanup.policy".into(), "compact".into())];

    let first = admin
        .create_topics(&[spec(&name, 3), compacted.clone()])
        .await
        .expect("created");
    assert_eq!(
        first,
        vec![
            (name.clone(), Created::Created),
            (compacted.name.clone(), Created::Created)
        ]
    );
    let again = admin
        .create_topics(&[spec(&name, 5)])
        .await
        .expect("idempotent");
    assert_eq!(
        again,
        vec![(name.clone(), Created::Exists { partitions: 3 })]
    );

    assert_eq!(admin.partitions(&name).expect("partitions"), vec![0, 1, 2]);
    assert_eq!(admin.partition_count(&name).expect("count"), Some(3));
    assert!(admin.topics().expect("list").contains(&(name.clone(), 3)));

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let (factory2, name2) = (factory.clone(), name.clone());
    tokio::task::spawn_blocking(move || write_txn(&factory2, &name2, 1, &["a", "b"], true))
        .await
        .expect("written");
    let marks = admin.watermarks(&name).expect("watermarks");
    // Two records and the commit marker.
    assert_eq!(
        marks,
        BTreeMap::from([(0, (0, 0)), (1, (0, 3)), (2, (0, 0))])
    );
    let at = admin
        .offsets_for_time(&name, &marks, before - 60_000)
        .expect("by time");
    assert_eq!(at, BTreeMap::from([(0, 0), (1, 0), (2, 0)]));
    let later = admin
        .offsets_for_time(&name, &marks, before + 3_600_000)
        .expect("by time");
    assert_eq!(
        later,
        BTreeMap::from([(0, 0), (1, 3), (2, 0)]),
        "ends when none is that recent"
    );

    let config = admin.topic_config(&name).await.expect("config");
    assert_eq!(config.get("retention.ms").map(String::as_str), Some("-1"));
    let config = admin.topic_config(&compacted.name).await.expect("config");
    assert_eq!(
        config.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );

    admin
        .delete_topics(&[&name, &compacted.name])
        .await
        .expect("deleted");
    admin
        .delete_topics(&[&unique("never-created")])
        .await
        .expect("deleting a missing topic is fine");
}

#[tokio::test]
async fn an_unknown_topic_is_recognisable() {
    let admin = admin(&factory());
    let error = admin
        .partitions(&unique("missing"))
        .expect_err("no such topic");
    assert!(error.is_unknown_topic(), "{error}");
    assert_eq!(
        admin.partition_count(&unique("missing")).expect("asked"),
        None
    );
    let _ = TIMEOUT;
}
