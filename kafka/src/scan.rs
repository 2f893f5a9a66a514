//! Reading a fixed range of a topic to its end, for the tools that scan the log (recheck,
//! audit, lag, replay, rebuild): every committed record below each partition's end offset,
//! exactly once.
//!
//! "The end" is subtle on a transactional topic. A `read_committed` reader is never handed
//! transaction markers or aborted records, so the last record it sees may sit well below the
//! end offset, and end-of-partition may never come while producers keep committing. Its
//! position, though, moves past markers: `position >= end` is the reliable test, checked
//! beside the records and end-of-partition events. Ends taken through a `read_committed`
//! client are last stable offsets (see [`crate::admin::Watermarks`]), so a transaction open
//! when the scan starts does not hold it up; one that is open past the ends given (bounds
//! asked `read_uncommitted`) makes a reader without end-of-partition fail with
//! [`Error::Stalled`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::client::Client;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::{Watermarks, partitions, watermarks};
use crate::error::{Doing, Error, Result};

/// The scan's error: the crate's one [`Error`] (`Kafka` or `Stalled`). The name is kept for
/// callers that name the error `ScanError`.
pub type ScanError = Error;

/// How often the (local, no round trip) position is checked: often enough to end small scans
/// promptly.
const POSITION_EVERY: Duration = Duration::from_millis(20);

/// Records between two progress reports.
const PROGRESS_EVERY: u64 = 1_000;

/// What [`scan_range`] calls with each record: partition, offset, value.
pub type OnRecord<'a> = dyn FnMut(i32, i64, Option<&[u8]>) + 'a;

/// What [`scan`]'s caller wants after a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Go on.
    Continue,
    /// Enough of this record's partition (e.g. only its first record was wanted).
    DonePartition,
    /// Stop the whole scan now (e.g. the receiver of the records has gone).
    Stop,
}

/// Per partition of `topic`, `[from, end)`: from the offset in `starts` (never below the low
/// watermark; the low watermark when absent) to the high watermark now. Records written after
/// this call are outside the range.
pub fn bounds_to_end<C: rdkafka::client::ClientContext>(
    client: &Client<C>,
    topic: &str,
    starts: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> Result<Watermarks> {
    let ids = partitions(client, topic, timeout)?;
    Ok(watermarks(client, topic, &ids, timeout)?
        .into_iter()
        .map(|(p, (low, high))| (p, (starts.get(&p).map_or(low, |&s| s.max(low)), high)))
        .collect())
}

/// Reads `topic` over `bounds` (partition -> `[from, end)`) with `consumer`, which must be
/// `read_committed` and assigned by hand (it is assigned here; see
/// [`crate::ClientFactory::reader`]). Calls `on` with each record's partition, offset and
/// value, and `progress` with the number of records read since its last call. Returns the
/// records read.
pub fn scan_range<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    bounds: &BTreeMap<i32, (i64, i64)>,
    stall: Duration,
    on: &mut OnRecord<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let mut each = |message: &BorrowedMessage<'_>| {
        on(message.partition(), message.offset(), message.payload());
        Next::Continue
    };
    scan(consumer, topic, bounds, stall, &mut each, progress)
}

/// As [`scan_range`], from `starts` (see [`bounds_to_end`]) to the end offsets as they are
/// when the scan starts.
pub fn scan_to_end<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    starts: &BTreeMap<i32, i64>,
    timeout: Duration,
    stall: Duration,
    on: &mut OnRecord<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let bounds = bounds_to_end(consumer.client(), topic, starts, timeout)?;
    scan_range(consumer, topic, &bounds, stall, on, progress)
}

/// The scan itself: as [`scan_range`], handing `on` the whole message (key, timestamp,
/// headers) and letting it end a partition or the scan early.
pub fn scan<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    bounds: &BTreeMap<i32, (i64, i64)>,
    stall: Duration,
    on: &mut dyn FnMut(&BorrowedMessage<'_>) -> Next,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let mut open = Open::assign(consumer, topic, bounds)?;
    if open.ends.is_empty() {
        return Ok(0);
    }
    let started = Instant::now();
    let (mut read, mut unreported) = (0u64, 0u64);
    let mut last_progress = Instant::now();
    let mut last_position_check = Instant::now();
    while !open.ends.is_empty() {
        if last_position_check.elapsed() >= POSITION_EVERY {
            last_position_check = Instant::now();
            open.close_reached(consumer)?;
            if open.ends.is_empty() {
                break;
            }
        }
        let message = match consumer.poll(POSITION_EVERY) {
            None => {
                if last_progress.elapsed() > stall {
                    return Err(Error::Stalled {
                        topic: topic.to_owned(),
                        waited: stall,
                    });
                }
                continue;
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.ends.remove(&partition);
                continue;
            }
            Some(Err(error)) => return Err(Error::kafka(format!("reading {topic}"), error)),
            Some(Ok(message)) => message,
        };
        last_progress = Instant::now();
        let (partition, offset) = (message.partition(), message.offset());
        let Some(&end) = open.ends.get(&partition) else {
            continue;
        };
        if offset >= end {
            open.ends.remove(&partition);
            continue;
        }
        let next = on(&message);
        read += 1;
        unreported += 1;
        if unreported >= PROGRESS_EVERY {
            progress(unreported);
            unreported = 0;
        }
        match next {
            Next::Stop => break,
            Next::DonePartition => open.done(consumer, partition),
            Next::Continue if offset + 1 >= end => {
                open.ends.remove(&partition);
            }
            Next::Continue => {}
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

/// The partitions still being read, with their end offsets.
struct Open<'a> {
    topic: &'a str,
    ends: BTreeMap<i32, i64>,
}

impl<'a> Open<'a> {
    /// Assigns the non-empty ranges of `bounds`.
    fn assign<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        topic: &'a str,
        bounds: &BTreeMap<i32, (i64, i64)>,
    ) -> Result<Self> {
        let mut ends = BTreeMap::new();
        let mut tpl = TopicPartitionList::new();
        for (&partition, &(from, end)) in bounds {
            if end > from {
                tpl.add_partition_offset(topic, partition, Offset::Offset(from))
                    .doing("building the assignment")?;
                ends.insert(partition, end);
            }
        }
        if !ends.is_empty() {
            consumer
                .assign(&tpl)
                .doing_with(|| format!("assigning {topic}"))?;
        }
        Ok(Self { topic, ends })
    }

    /// Closes every partition whose position has reached its end (past markers and aborted
    /// records the reader is never handed).
    fn close_reached<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        let positions = consumer
            .position()
            .doing_with(|| format!("reading the position in {}", self.topic))?;
        for element in positions.elements() {
            if let (Offset::Offset(position), Some(&end)) =
                (element.offset(), self.ends.get(&element.partition()))
                && position >= end
            {
                self.ends.remove(&element.partition());
            }
        }
        Ok(())
    }

    /// Closes `partition` at the caller's wish and stops fetching it.
    fn done<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, partition: i32) {
        self.ends.remove(&partition);
        let mut one = TopicPartitionList::new();
        one.add_partition(self.topic, partition);
        // Only saves fetching what nobody reads; records that still arrive are skipped.
        if let Err(error) = consumer.pause(&one) {
            tracing::debug!(%error, partition, "could not pause a finished partition");
        }
    }
}
