//! The replay's reader task: every partition from its first offset up to the end offset
//! taken at the start, decoded as the service decodes, fed to the writer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dakoku_schemas::GroupId;
use rdkafka::Offset;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use tokio::sync::mpsc;

use super::error::{RebuildError, kafka};
use crate::decode::{Incoming, Poison, decode_record};

/// A record as the reader hands it over.
pub(super) struct Read {
    pub(super) record: Incoming,
    pub(super) poison: Option<Poison>,
}

/// Reads every partition from its first offset up to its end offset and feeds the writer.
/// A partition is done once a record at or past its end arrives or its position reaches the
/// end (a `read_committed` position moves past transaction markers, which are never handed
/// over).
pub(super) async fn read(
    consumer: StreamConsumer,
    group: GroupId,
    topic: String,
    ends: HashMap<i32, (i64, i64)>,
    feed: mpsc::Sender<Read>,
    stall: Duration,
) -> Result<(), RebuildError> {
    let mut open: HashMap<i32, i64> = ends
        .into_iter()
        .filter(|(_, (low, end))| low < end)
        .map(|(partition, (_, end))| (partition, end))
        .collect();
    let mut last_record = Instant::now();
    let mut last_position_check = Instant::now();
    while !open.is_empty() {
        if last_position_check.elapsed() >= Duration::from_millis(200) {
            last_position_check = Instant::now();
            let positions = consumer
                .position()
                .map_err(kafka(format!("reading the position in {topic}")))?;
            for element in positions.elements() {
                if let (Offset::Offset(position), Some(end)) =
                    (element.offset(), open.get(&element.partition()))
                    && position >= *end
                {
                    open.remove(&element.partition());
                }
            }
            if open.is_empty() {
                break;
            }
        }
        let message = match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await
        {
            Err(_) => {
                // An open transaction holds a read_committed reader back until it ends.
                if last_record.elapsed() > stall {
                    return Err(RebuildError::Stalled {
                        topic,
                        waited: stall,
                    });
                }
                continue;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, topic, "rebuild: Kafka consumer error; retrying");
                continue;
            }
            Ok(Ok(message)) => message,
        };
        last_record = Instant::now();
        let (partition, offset) = (message.partition(), message.offset());
        let Some(&end) = open.get(&partition) else {
            continue;
        };
        if offset >= end {
            open.remove(&partition);
            continue;
        }
        if offset + 1 >= end {
            open.remove(&partition);
        }
        let (record, poison) = decode_record(&group, &message);
        if feed.send(Read { record, poison }).await.is_err() {
            // The writer stopped; it reports why.
            return Ok(());
        }
    }
    Ok(())
}
