//! Publishing: the producer of `attendance.daily.<group>`, `payroll.monthly.<group>` and
//! `punches.quarantine`, and the outbox of one group: a committed batch's days and months are
//! handed to Kafka and confirmed while the next batch is written; the publish mark moves in
//! batch order.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use dakoku_kafka::{ClientFactory, FutureProducer};
use dakoku_schemas::{AttendanceDay, GroupId, MonthlyAttendance, attendance_key, encode};
use rdkafka::producer::{DeliveryFuture, FutureRecord, Producer as _};

use super::backoff::Backoff;
use crate::config::Config;
use crate::metrics;

/// The producer for `attendance.daily.<group>` and `punches.quarantine`.
#[derive(Clone)]
pub(crate) struct Producer(FutureProducer);

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Producer")
    }
}

impl Producer {
    pub(crate) fn new(kafka: &ClientFactory, config: &Config) -> dakoku_kafka::Result<Self> {
        let producer = kafka
            .idempotent_producer(format!("{}-producer", config.client_id()))
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .set("compression.type", "lz4")
            .create()?;
        Ok(Self(producer))
    }

    /// Sends every record and waits until Kafka has them all.
    pub(super) async fn send_all(
        &self,
        topic: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<(), String> {
        let deliveries = self.enqueue(topic, records)?;
        Self::confirmed(deliveries).await
    }

    /// Hands every record to librdkafka (which copies them) without waiting for delivery.
    fn enqueue(
        &self,
        topic: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<Vec<DeliveryFuture>, String> {
        let mut deliveries = Vec::with_capacity(records.len());
        for (key, payload) in records {
            let record = FutureRecord::to(topic).key(key).payload(payload);
            match self.0.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((error, _)) => return Err(error.to_string()),
            }
        }
        Ok(deliveries)
    }

    /// Waits until Kafka has confirmed every delivery.
    async fn confirmed(deliveries: Vec<DeliveryFuture>) -> Result<(), String> {
        for delivery in futures::future::join_all(deliveries).await {
            match delivery {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(error.to_string()),
                Err(_) => return Err("delivery report dropped".into()),
            }
        }
        Ok(())
    }

    pub(crate) fn flush(&self, timeout: Duration) {
        if let Err(error) = self.0.flush(timeout) {
            tracing::warn!(%error, "producer flush incomplete at shutdown");
        }
    }
}

/// The records of one committed batch (or of the outbox at start-up).
#[derive(Debug, Default)]
pub(super) struct Records {
    pub(super) days: Vec<AttendanceDay>,
    pub(super) months: Vec<MonthlyAttendance>,
}

impl Records {
    fn is_empty(&self) -> bool {
        self.days.is_empty() && self.months.is_empty()
    }

    fn len(&self) -> usize {
        self.days.len() + self.months.len()
    }
}

/// Records of a committed batch handed to Kafka, not yet confirmed.
struct InFlight {
    batch_seq: i64,
    records: Records,
    deliveries: Vec<DeliveryFuture>,
}

/// One group's outbox.
pub(super) struct Publisher {
    producer: Producer,
    group: GroupId,
    daily_topic: String,
    monthly_topic: String,
    /// Every record changed by batches up to this one has been published.
    pub(super) published_through: Option<i64>,
    /// The last batch's days, handed to Kafka and awaiting confirmation while the next batch
    /// is written.
    publishing: Option<InFlight>,
}

impl Publisher {
    pub(super) fn new(
        producer: Producer,
        group: GroupId,
        daily_topic: String,
        monthly_topic: String,
    ) -> Self {
        Self {
            producer,
            group,
            daily_topic,
            monthly_topic,
            published_through: None,
            publishing: None,
        }
    }

    /// Whether a batch's days are handed over and not yet confirmed.
    pub(super) fn in_flight(&self) -> bool {
        self.publishing.is_some()
    }

    /// Sends `records` and waits until Kafka has them all.
    pub(super) async fn publish(&self, records: &Records) -> Result<(), String> {
        let deliveries = self.enqueue(records)?;
        Producer::confirmed(deliveries).await?;
        metrics::published(&self.group, records.len());
        Ok(())
    }

    /// Hands the records to the producer: days keyed `<tenant>/<employee>/<date>`, months
    /// `<tenant>/<employee>/<month>`.
    fn enqueue(&self, records: &Records) -> Result<Vec<DeliveryFuture>, String> {
        let mut days = Vec::with_capacity(records.days.len());
        for day in &records.days {
            let Some(date) = day.work_date() else {
                continue;
            };
            let key = attendance_key(&day.tenant_id, &day.employee_id, date);
            days.push((key, encode(day).map_err(|e| e.to_string())?));
        }
        let mut months = Vec::with_capacity(records.months.len());
        for month in &records.months {
            months.push((month.topic_key(), encode(month).map_err(|e| e.to_string())?));
        }
        let mut deliveries = self.producer.enqueue(&self.daily_topic, &days)?;
        deliveries.extend(self.producer.enqueue(&self.monthly_topic, &months)?);
        Ok(deliveries)
    }

    /// After the commit of batch `batch_seq`: confirms the previous batch's records first (the
    /// publish mark moves in batch order), then hands this batch's `records` over, to be
    /// confirmed while the next batch is written. False if `cancel` fired first (the records
    /// are committed; the next start publishes them).
    pub(super) async fn hand_over(
        &mut self,
        batch_seq: i64,
        records: Records,
        backoff: &mut Backoff,
        cancel: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        if !self.confirm(backoff, cancel).await {
            return false;
        }
        let handed = if records.is_empty() {
            Ok(Vec::new())
        } else {
            self.enqueue(&records)
        };
        match handed {
            Ok(deliveries) => {
                self.publishing = Some(InFlight {
                    batch_seq,
                    records,
                    deliveries,
                });
                true
            }
            Err(error) => {
                metrics::retry(&self.group, "publish");
                tracing::warn!(group = %self.group, %error,
                    "handing attendance records to Kafka failed; retrying");
                self.publishing = Some(InFlight {
                    batch_seq,
                    records,
                    deliveries: Vec::new(),
                });
                self.confirm_retrying(backoff, cancel, true).await
            }
        }
    }

    /// Waits for the in-flight publish to be confirmed (re-sending on failure, with backoff),
    /// then moves the publish mark to its batch. False if `cancel` fired first.
    pub(super) async fn confirm(
        &mut self,
        backoff: &mut Backoff,
        cancel: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        self.confirm_retrying(backoff, cancel, false).await
    }

    async fn confirm_retrying(
        &mut self,
        backoff: &mut Backoff,
        cancel: &mut Pin<&mut impl Future<Output = ()>>,
        mut resend: bool,
    ) -> bool {
        let Some(mut in_flight) = self.publishing.take() else {
            return true;
        };
        loop {
            let result = if resend {
                self.publish(&in_flight.records).await
            } else {
                let deliveries = std::mem::take(&mut in_flight.deliveries);
                let confirmed = Producer::confirmed(deliveries).await;
                if confirmed.is_ok() {
                    metrics::published(&self.group, in_flight.records.len());
                }
                confirmed
            };
            match result {
                Ok(()) => break,
                Err(error) => {
                    metrics::retry(&self.group, "publish");
                    tracing::warn!(group = %self.group, %error,
                        "publishing attendance records failed; retrying");
                    resend = true;
                    if !backoff.wait(cancel).await {
                        self.publishing = Some(in_flight);
                        return false;
                    }
                }
            }
        }
        backoff.reset();
        self.published_through = Some(in_flight.batch_seq);
        true
    }
}
