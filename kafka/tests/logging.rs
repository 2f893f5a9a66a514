//! librdkafka's events reach `tracing` at their true level: a reader reaching the end of its
//! partitions (`enable.partition.eof=true`) must not log an ERROR.
//!
//! A file of its own: it installs the process-wide subscriber.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TIMEOUT, admin, cleanup, factory, unique, write_txn};
use dakoku_kafka::Reader;
use dakoku_kafka::scan::{bounds_to_end, scan_range};
use rdkafka::consumer::Consumer;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Every event: level, target and its fields as text.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Level, String, String)>>>);

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        let meta = event.metadata();
        self.0.lock().expect("not poisoned").push((
            *meta.level(),
            meta.target().to_owned(),
            text.0,
        ));
    }
}

#[tokio::test]
async fn the_end_of_a_partition_is_logged_at_debug_not_error() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorder.clone()))
        .expect("the only subscriber of this test binary");
    let factory = factory();
    let admin = admin(&factory);
    let topic = unique("logging");
    common::topic(&admin, &topic, 2).await;
    let (f, t) = (factory.clone(), topic.clone());
    tokio::task::spawn_blocking(move || {
        write_txn(&f, &t, 0, &["a"], true);
        let reader: Reader = f.reader("dakoku-kafka-test").create().expect("reader");
        let bounds = bounds_to_end(reader.client(), &t, &BTreeMap::new(), TIMEOUT).expect("bounds");
        scan_range(
            &reader,
            &t,
            &bounds,
            Duration::from_secs(20),
            &mut |_, _, _| {},
            &mut |_| {},
        )
        .expect("scanned");
        // Past the end: nothing but end-of-partition events to poll.
        let mut all = rdkafka::TopicPartitionList::new();
        for p in [0, 1] {
            all.add_partition_offset(&t, p, rdkafka::Offset::End)
                .expect("valid");
        }
        reader.assign(&all).expect("assigned");
        for _ in 0..20 {
            let _ = reader.poll(Duration::from_millis(50));
        }
    })
    .await
    .expect("reader task");
    cleanup(&admin, &[&topic]).await;

    let events = recorder.0.lock().expect("not poisoned").clone();
    let eofs: Vec<_> = events
        .iter()
        .filter(|(_, target, text)| target == "librdkafka" && text.contains("PartitionEOF"))
        .collect();
    assert!(!eofs.is_empty(), "end-of-partition is reported: {events:?}");
    assert!(
        eofs.iter().all(|(level, _, _)| *level == Level::DEBUG),
        "{eofs:?}"
    );
    let errors: Vec<_> = events
        .iter()
        .filter(|(level, _, _)| *level == Level::ERROR)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}
