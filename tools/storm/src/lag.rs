//! The consumers' lag read from outside, as `punchctl lag` reads it: licence-check's offsets
//! committed in Kafka on the raw topic, attendance's offsets stored in Postgres (its real
//! positions) on the checked topic, each against its topic's end offsets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dakoku_kafka::scan::{self, Next};
use dakoku_kafka::{Admin, ClientFactory, Reader, Watermarks};
use dakoku_schemas::{ConsumerGroup, GroupId, Topic};

/// `client.id` of the lag reader's Kafka clients.
const CLIENT_ID: &str = "storm-lag";

/// One consumer's input: its topic's watermarks and the consumer's next offsets on it.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The topic read.
    pub topic: String,
    /// `(low, high)` per partition.
    pub marks: Watermarks,
    /// Next offset per partition; absent: nothing committed (the consumer starts at `low`).
    pub positions: BTreeMap<i32, i64>,
}

impl Input {
    /// Per partition with offsets left, `[position, end)`.
    fn unread(&self) -> BTreeMap<i32, (i64, i64)> {
        self.marks
            .iter()
            .map(|(&p, &(low, high))| {
                let from = self.positions.get(&p).copied().unwrap_or(low).max(low);
                (p, (from, high))
            })
            .filter(|(_, (from, high))| high > from)
            .collect()
    }

    /// Offsets between the positions and the ends, summed; transaction markers count.
    pub fn total(&self) -> i64 {
        self.unread().values().map(|(from, high)| high - from).sum()
    }
}

/// Both consumers' inputs at one moment.
#[derive(Debug, Clone, Default)]
pub struct Lag {
    /// licence-check on `punches.raw.<group>`.
    pub licence_check: Input,
    /// attendance on `punches.checked.<group>`.
    pub attendance: Input,
}

/// Reads the lag of one group's consumers; its Kafka clients are made once and reused.
#[derive(Debug)]
pub struct LagReader {
    factory: ClientFactory,
    admin: Admin,
    group: GroupId,
    timeout: Duration,
}

impl LagReader {
    /// A reader of `group`'s consumers on `brokers`; every Kafka call waits up to `timeout`.
    pub fn new(brokers: &str, group: &GroupId, timeout: Duration) -> dakoku_kafka::Result<Self> {
        let factory = ClientFactory::new(brokers);
        Ok(Self {
            admin: Admin::new(&factory, CLIENT_ID, timeout)?,
            factory,
            group: group.clone(),
            timeout,
        })
    }

    /// The inputs' ends and licence-check's committed offsets (blocking).
    fn kafka_side(&self) -> dakoku_kafka::Result<Lag> {
        let raw = Topic::Raw(self.group.clone()).name();
        let checked = Topic::Checked(self.group.clone()).name();
        let raw_marks = self.admin.watermarks(&raw)?;
        let partitions: Vec<i32> = raw_marks.keys().copied().collect();
        let committed = self.admin.committed_offsets(
            &ConsumerGroup::LicenceCheck(self.group.clone()).name(),
            &raw,
            &partitions,
        )?;
        Ok(Lag {
            licence_check: Input {
                topic: raw,
                marks: raw_marks,
                positions: committed,
            },
            attendance: Input {
                marks: self.admin.watermarks(&checked)?,
                topic: checked,
                positions: BTreeMap::new(),
            },
        })
    }

    /// Both consumers' inputs now.
    pub async fn read(self: &Arc<Self>, db: &tokio_postgres::Client) -> anyhow::Result<Lag> {
        let this = Arc::clone(self);
        let mut lag = tokio::task::spawn_blocking(move || this.kafka_side()).await??;
        lag.attendance.positions = attendance_positions(db, &self.group).await?;
        Ok(lag)
    }

    /// Whether `input` holds nothing but transaction markers past the positions: read
    /// `read_committed` from each position to the end, no record turns up. A scan that fails
    /// or stalls counts as not caught up.
    pub async fn caught_up(self: &Arc<Self>, input: &Input) -> bool {
        let bounds = input.unread();
        if bounds.is_empty() {
            return true;
        }
        let this = Arc::clone(self);
        let topic = input.topic.clone();
        let scanned = tokio::task::spawn_blocking(move || -> dakoku_kafka::Result<u64> {
            let reader: Reader = this.factory.reader(CLIENT_ID).create()?;
            scan::scan(
                &reader,
                &topic,
                &bounds,
                this.timeout,
                &mut |_| Next::Stop,
                &mut |_| {},
            )
        })
        .await;
        matches!(scanned, Ok(Ok(0)))
    }
}

/// The next offsets attendance stored in Postgres, per partition of the checked topic.
async fn attendance_positions(
    db: &tokio_postgres::Client,
    group: &GroupId,
) -> Result<BTreeMap<i32, i64>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT partition, next_offset FROM consumer_offsets \
             WHERE consumer_group = $1 AND topic = $2",
            &[
                &ConsumerGroup::Attendance(group.clone()).name(),
                &Topic::Checked(group.clone()).name(),
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_position_or_the_low_watermark_to_the_end() {
        let input = Input {
            topic: "t".into(),
            marks: [(0, (0, 10)), (1, (5, 8)), (2, (0, 4))].into(),
            positions: [(0, 7), (2, 4)].into(),
        };
        // 3 on partition 0, 3 from the low watermark on 1 (nothing committed), none on 2.
        assert_eq!(input.total(), 6);
        assert_eq!(input.unread(), [(0, (7, 10)), (1, (5, 8))].into());
    }
}
