//! The bounded scan against the running broker: it ends at the end offsets of a
//! transactional topic whose last transaction was aborted, and reads committed records only.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TIMEOUT, admin, cleanup, factory, unique, write_txn};
use dakoku_kafka::scan::{Next, bounds_to_end, scan, scan_range, scan_to_end};
use dakoku_kafka::{Error, Reader};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

const STALL: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_scan_ends_at_the_end_offsets_past_an_aborted_transaction() {
    let factory = factory();
    let admin = admin(&factory);
    let topic = unique("scan");
    common::topic(&admin, &topic, 2).await;
    let (f, t) = (factory.clone(), topic.clone());
    let values = tokio::task::spawn_blocking(move || {
        write_txn(&f, &t, 0, &["c1", "c2"], true);
        write_txn(&f, &t, 1, &["c3"], true);
        // The last thing in partition 0 is an aborted transaction: a read_committed reader is
        // never handed it, and only its position says the end was reached.
        write_txn(&f, &t, 0, &["aborted"], false);

        let reader: Reader = f.reader("dakoku-kafka-test").create().expect("reader");
        let bounds = bounds_to_end(reader.client(), &t, &BTreeMap::new(), TIMEOUT).expect("bounds");
        assert_eq!(bounds.get(&0).map(|b| b.0), Some(0));
        assert!(bounds[&0].1 >= 5, "{bounds:?}");
        let mut values = Vec::new();
        let mut progressed = 0;
        let read = scan_range(
            &reader,
            &t,
            &bounds,
            STALL,
            &mut |partition, offset, value| {
                values.push((
                    partition,
                    offset,
                    String::from_utf8_lossy(value.unwrap_or_default()).into_owned(),
                ));
            },
            &mut |n| progressed += n,
        )
        .expect("scanned to the end");
        assert_eq!(read, 3);
        assert_eq!(progressed, 3);
        values
    })
    .await
    .expect("scan task");
    // Partitions interleave in any order; a stable sort by partition keeps each one's order.
    let mut values = values;
    values.sort_by_key(|(p, _, _)| *p);
    assert_eq!(
        values
            .iter()
            .map(|(p, _, v)| (*p, v.as_str()))
            .collect::<Vec<_>>(),
        vec![(0, "c1"), (0, "c2"), (1, "c3")]
    );
    cleanup(&admin, &[&topic]).await;
}

#[tokio::test]
async fn a_scan_starts_where_told_and_the_caller_may_end_it_early() {
    let factory = factory();
    let admin = admin(&factory);
    let topic = unique("scan-early");
    common::topic(&admin, &topic, 2).await;
    let (f, t) = (factory.clone(), topic.clone());
    tokio::task::spawn_blocking(move || {
        write_txn(&f, &t, 0, &["a", "b", "c"], true);
        write_txn(&f, &t, 1, &["x", "y"], true);

        // From offset 1 of partition 0: b, c; all of partition 1.
        let reader: Reader = f.reader("dakoku-kafka-test").create().expect("reader");
        let mut seen = Vec::new();
        scan_to_end(
            &reader,
            &t,
            &BTreeMap::from([(0, 1)]),
            TIMEOUT,
            STALL,
            &mut |p, _, v| seen.push((p, v.map(<[u8]>::to_vec))),
            &mut |_| {},
        )
        .expect("scanned");
        // Partitions interleave in any order; within one, offsets ascend.
        seen.sort_by_key(|(p, _)| *p);
        let want = |v: &str| Some(v.as_bytes().to_vec());
        assert_eq!(
            seen,
            vec![
                (0, want("b")),
                (0, want("c")),
                (1, want("x")),
                (1, want("y"))
            ]
        );

        // Only the first record of each partition, as `lag` wants the oldest waiting one.
        let reader: Reader = f.reader("dakoku-kafka-test").create().expect("reader");
        let bounds = bounds_to_end(reader.client(), &t, &BTreeMap::new(), TIMEOUT).expect("bounds");
        let mut firsts = BTreeMap::new();
        scan(
            &reader,
            &t,
            &bounds,
            STALL,
            &mut |m| {
                firsts.insert(m.partition(), m.offset());
                Next::DonePartition
            },
            &mut |_| {},
        )
        .expect("scanned");
        assert_eq!(firsts, BTreeMap::from([(0, 0), (1, 0)]));

        // Stop ends everything at once.
        let reader: Reader = f.reader("dakoku-kafka-test").create().expect("reader");
        let read = scan(
            &reader,
            &t,
            &bounds,
            STALL,
            &mut |_| Next::Stop,
            &mut |_| {},
        )
        .expect("scanned");
        assert_eq!(read, 1);
    })
    .await
    .expect("scan task");
    cleanup(&admin, &[&topic]).await;
}

/// An open transaction at the end. Bounds asked through a `read_committed` client end at the
/// last stable offset, below it, so the scan never waits for it. Bounds past it (asked
/// `read_uncommitted`): a reader reporting end-of-partition (the default of `reader`)
/// gets it at the stable offset and ends without the open records; one that does not waits
/// for the transaction and fails with `Stalled` after the stall time.
#[tokio::test]
async fn an_open_transaction_ends_the_scan_at_the_stable_offset_or_stalls_it() {
    let factory = factory();
    let admin = admin(&factory);
    let topic = unique("scan-stall");
    common::topic(&admin, &topic, 1).await;
    let (f, t) = (factory.clone(), topic.clone());
    let (at_eof, without_eof) = tokio::task::spawn_blocking(move || {
        use rdkafka::producer::{BaseRecord, Producer};
        write_txn(&f, &t, 0, &["committed"], true);
        let producer: dakoku_kafka::ThreadedProducer = f
            .transactional_producer("dakoku-kafka-test", unique("open"))
            .create()
            .expect("producer");
        producer.init_transactions(TIMEOUT).expect("init");
        producer.begin_transaction().expect("begin");
        producer
            .send(BaseRecord::<(), str>::to(&t).partition(0).payload("open"))
            .map_err(|(e, _)| e)
            .expect("enqueued");
        producer.flush(TIMEOUT).expect("flushed, not committed");
        let stall = Duration::from_secs(2);
        let reader: Reader = f.reader("dakoku-kafka-test").create().expect("reader");
        let stable = bounds_to_end(reader.client(), &t, &BTreeMap::new(), TIMEOUT).expect("bounds");
        assert_eq!(
            stable,
            BTreeMap::from([(0, (0, 2))]),
            "record, marker; not the open one"
        );
        // librdkafka's default isolation is read_committed too.
        let plain: Reader = f
            .client("dakoku-kafka-test")
            .set("isolation.level", "read_uncommitted")
            .create()
            .expect("client");
        let bounds = bounds_to_end(plain.client(), &t, &BTreeMap::new(), TIMEOUT).expect("bounds");
        assert_eq!(bounds, BTreeMap::from([(0, (0, 3))]));
        let at_eof = scan_range(&reader, &t, &bounds, stall, &mut |_, _, _| {}, &mut |_| {});
        let reader: Reader = f
            .reader("dakoku-kafka-test")
            .set("enable.partition.eof", "false")
            .create()
            .expect("reader");
        let without_eof = scan_range(&reader, &t, &bounds, stall, &mut |_, _, _| {}, &mut |_| {});
        producer.abort_transaction(TIMEOUT).expect("abort");
        (at_eof, without_eof)
    })
    .await
    .expect("scan task");
    assert_eq!(at_eof.expect("ends at the stable offset"), 1);
    let error = without_eof.expect_err("an open transaction holds the reader");
    assert!(matches!(error, Error::Stalled { .. }), "{error}");
    cleanup(&admin, &[&topic]).await;
}
