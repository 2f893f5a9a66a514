//! Reading a fixed range of a topic to its end, for the tools that scan the log (recheck,
//! audit): every committed record below each partition's end offset, exactly once.
//!
//! "The end" is subtle on a transactional topic. A `read_committed` reader is never handed
//! transaction markers or aborted records, so the last record it sees may sit well below the
//! end offset, and end-of-partition may never come while producers keep committing. Its
//! position, though, moves past markers: `position >= end` is the reliable test, checked
//! beside the records and end-of-partition events.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// How often the (local, no round trip) position is checked: often enough to end small scans
/// promptly.
const POSITION_EVERY: Duration = Duration::from_millis(20);

/// Records between two progress reports.
const PROGRESS_EVERY: u64 = 1_000;

/// What [`scan_range`] calls with each record: partition, offset, value.
pub type OnRecord<'a> = dyn FnMut(i32, i64, Option<&[u8]>) + 'a;

/// Why a scan stopped short.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Kafka refused an operation; the broker may be down.
    #[error("Kafka, {doing}: {source}")]
    Kafka {
        /// What was being done.
        doing: String,
        /// What Kafka said.
        #[source]
        source: KafkaError,
    },
    /// No record and no progress for `waited`: a transaction held open that long (a
    /// `read_committed` reader waits for it), or a broker problem. Run again.
    #[error("the scan of {topic} made no progress for {waited:?}; is a transaction stuck open?")]
    Stalled {
        /// The topic.
        topic: String,
        /// How long it waited.
        waited: Duration,
    },
}

/// Reads `topic` over `bounds` (partition -> `[from, end)`) with `consumer`, which must be
/// `read_committed`, assigned by hand (it is assigned here) and report end-of-partition.
/// Calls `on` with each record's partition, offset and value, and `progress` with the number
/// of records read since its last call. Returns the records read.
pub fn scan_range<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    bounds: &BTreeMap<i32, (i64, i64)>,
    stall: Duration,
    on: &mut OnRecord<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ScanError> {
    let kafka = |doing: String| move |source| ScanError::Kafka { doing, source };
    let mut open: BTreeMap<i32, i64> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for (&partition, &(from, end)) in bounds {
        if end > from {
            tpl.add_partition_offset(topic, partition, Offset::Offset(from))
                .map_err(kafka("building the assignment".into()))?;
            open.insert(partition, end);
        }
    }
    if open.is_empty() {
        return Ok(0);
    }
    let started = Instant::now();
    consumer
        .assign(&tpl)
        .map_err(kafka(format!("assigning {topic}")))?;
    let mut read = 0u64;
    let mut unreported = 0u64;
    let mut last_progress = Instant::now();
    let mut last_position_check = Instant::now();
    while !open.is_empty() {
        if last_position_check.elapsed() >= POSITION_EVERY {
            last_position_check = Instant::now();
            let positions = consumer
                .position()
                .map_err(kafka(format!("reading the position in {topic}")))?;
            for element in positions.elements() {
                if let (Offset::Offset(position), Some(&end)) =
                    (element.offset(), open.get(&element.partition()))
                    && position >= end
                {
                    open.remove(&element.partition());
                }
            }
            if open.is_empty() {
                break;
            }
        }
        match consumer.poll(POSITION_EVERY) {
            None => {
                if last_progress.elapsed() > stall {
                    return Err(ScanError::Stalled {
                        topic: topic.to_owned(),
                        waited: stall,
                    });
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(error)) => return Err(kafka(format!("reading {topic}"))(error)),
            Some(Ok(message)) => {
                last_progress = Instant::now();
                let (partition, offset) = (message.partition(), message.offset());
                let Some(&end) = open.get(&partition) else {
                    continue;
                };
                if offset >= end {
                    open.remove(&partition);
                    continue;
                }
                on(partition, offset, message.payload());
                read += 1;
                unreported += 1;
                if unreported >= PROGRESS_EVERY {
                    progress(unreported);
                    unreported = 0;
                }
                if offset + 1 >= end {
                    open.remove(&partition);
                }
            }
        }
    }
    progress(unreported);
    tracing::info!(
        topic,
        records = read,
        took_ms = started.elapsed().as_millis() as u64,
        "topic read"
    );
    Ok(read)
}
