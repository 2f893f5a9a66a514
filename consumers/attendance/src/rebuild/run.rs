//! [`Rebuild`]: prepare (lock, plan), clear, replay, recompute, finish.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use dakoku_kafka::{ClientFactory, FutureProducer};
use dakoku_schemas::{ConsumerGroup, Topic};
use tokio::sync::mpsc;

use super::error::RebuildError;
use super::kafka;
use super::plan::{
    Finished, PartitionPlan, Plan, Progress, RebuildRequest, Recomputed, Replayed, ScopeRows,
};
use super::read;
use super::sql::{
    SQL_CLEAR_CONFLICTS, SQL_CLEAR_PUNCHES, SQL_CLEAR_REJECTIONS, SQL_SCOPE_DAY_ROWS,
    SQL_SCOPE_EMPLOYEES, SQL_SCOPE_ROWS, SQL_TRY_LOCK, SQL_UNLOCK,
};
use crate::decode::Incoming;
use crate::store::Store;
use crate::store::marker::{SQL_MARK_FINISHED, SQL_MARK_UNFINISHED, unfinished};

/// A rebuild in progress: the group's lock is held until [`Rebuild::finish`] (or drop).
#[derive(Debug)]
pub struct Rebuild {
    request: RebuildRequest,
    kafka: ClientFactory,
    store: Store,
    plan: Plan,
}

impl Rebuild {
    /// Connects, takes the group's lock and reads the plan. Changes nothing. Kafka clients
    /// have nothing but `request.brokers`; see [`Rebuild::prepare_with`].
    pub async fn prepare(request: RebuildRequest) -> Result<Self, RebuildError> {
        let kafka = ClientFactory::new(request.brokers.as_str());
        Self::prepare_with(kafka, request).await
    }

    /// As [`Rebuild::prepare`], with Kafka clients from `kafka` (an operator's properties).
    pub async fn prepare_with(
        kafka: ClientFactory,
        request: RebuildRequest,
    ) -> Result<Self, RebuildError> {
        let consumer_group = ConsumerGroup::Attendance(request.group.clone()).name();
        let topic = Topic::Checked(request.group.clone()).name();
        let mut store =
            Store::connect(&request.database_url, &request.group, request.timeout).await?;
        lock(&mut store, &consumer_group).await?;
        let watermarks = kafka::watermarks(&kafka, &topic, request.timeout).await?;
        let stored = store.stored_offsets().await?;
        let partitions = watermarks
            .into_iter()
            .map(|(partition, (low, end))| PartitionPlan {
                partition,
                low,
                end,
                stored: stored.get(&partition).copied(),
            })
            .collect();
        let tenant = request.scope.tenant();
        let row = store
            .client_mut()
            .query_one(SQL_SCOPE_ROWS, &[&request.group.as_str(), &tenant, &topic])
            .await?;
        let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        let rows = ScopeRows {
            punches: count(0),
            withdrawn: count(1),
            rejections: count(2),
            conflicts: count(3),
            days: count(4),
        };
        // Read under the lock, which every rebuild of the group holds from before its clear
        // until after its recompute: it cannot change until this rebuild's own clear.
        let unfinished = unfinished(&*store.client_mut(), &request.group).await?;
        let plan = Plan {
            group: request.group.clone(),
            scope: request.scope.clone(),
            topic,
            consumer_group,
            partitions,
            rows,
            unfinished,
        };
        Ok(Self {
            request,
            kafka,
            store,
            plan,
        })
    }

    /// What the rebuild will do.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Deletes the scope's punches, rejections and conflicts, sets the group's offsets to the
    /// log's first offsets and marks the rebuild unfinished (`attendance_rebuilds`, until
    /// [`Rebuild::recompute`] ends), in one transaction. Returns the rows deleted. Refused,
    /// changing nothing, while an unfinished rebuild this one does not cover exists.
    pub async fn clear(&mut self) -> Result<ScopeRows, RebuildError> {
        if let Some(unfinished) = self.plan.blocked_by() {
            return Err(RebuildError::Unfinished {
                unfinished: unfinished.clone(),
            });
        }
        let group = self.plan.group.as_str();
        let tenant = self.plan.scope.tenant();
        let (parts, lows): (Vec<i32>, Vec<i64>) = self
            .plan
            .partitions
            .iter()
            .map(|p| (p.partition, p.low))
            .unzip();
        let (consumer_group, topic) = (&self.plan.consumer_group, &self.plan.topic);
        let tx = self.store.client_mut().transaction().await?;
        let conflicts = tx.execute(SQL_CLEAR_CONFLICTS, &[&group, &tenant]).await?;
        let punches = tx.execute(SQL_CLEAR_PUNCHES, &[&group, &tenant]).await?;
        let rejections = tx.execute(SQL_CLEAR_REJECTIONS, &[topic, &tenant]).await?;
        dakoku_store::offsets::store(&tx, consumer_group, topic, &parts, &lows).await?;
        tx.execute(SQL_MARK_UNFINISHED, &[consumer_group, &tenant])
            .await?;
        tx.commit().await?;
        tracing::info!(
            group,
            tenant,
            punches,
            rejections,
            conflicts,
            "rebuild: punch rows cleared, offsets at the start of the log"
        );
        Ok(ScopeRows {
            punches,
            rejections,
            conflicts,
            ..ScopeRows::default()
        })
    }

    /// Replays the topic from the offsets [`Rebuild::clear`] set to the end offsets of the
    /// plan, in batches of at most `batch_records` records.
    pub async fn replay(
        &mut self,
        batch_records: usize,
        progress: &dyn Progress,
    ) -> Result<Replayed, RebuildError> {
        progress.stage("replaying the log", self.plan.records());
        let batch_records = batch_records.max(1);
        let (feed, mut incoming) = mpsc::channel::<read::Read>(batch_records * 2);
        let bounds: BTreeMap<i32, (i64, i64)> = self
            .plan
            .partitions
            .iter()
            .map(|p| (p.partition, (p.low, p.end)))
            .collect();
        let stall = self.request.timeout.max(Duration::from_secs(90));
        let reader = tokio::spawn(read::read(
            self.kafka.clone(),
            self.plan.group.clone(),
            self.plan.topic.clone(),
            bounds,
            feed,
            stall,
        ));

        self.store.defer_days(Some(self.plan.scope.clone()));
        let written = self.write(&mut incoming, batch_records, progress).await;
        self.store.defer_days(None);
        drop(incoming);
        if written.is_err() {
            // The reader may be waiting on Kafka rather than on the channel: stop it now.
            reader.abort();
        }
        let read = reader.await;
        match (written, read) {
            (Err(error), _) => Err(error),
            (Ok(replayed), Ok(Ok(()))) => Ok(replayed),
            (Ok(_), Ok(Err(error))) => Err(error),
            (Ok(_), Err(join)) => Err(RebuildError::Reader(join.to_string())),
        }
    }

    async fn write(
        &mut self,
        incoming: &mut mpsc::Receiver<read::Read>,
        batch_records: usize,
        progress: &dyn Progress,
    ) -> Result<Replayed, RebuildError> {
        let mut replayed = Replayed::default();
        let mut reads = Vec::with_capacity(batch_records);
        let mut producer: Option<FutureProducer> = None;
        loop {
            reads.clear();
            if incoming.recv_many(&mut reads, batch_records).await == 0 {
                break;
            }
            let mut batch = Vec::with_capacity(reads.len());
            let mut poison = Vec::new();
            for read in reads.drain(..) {
                if let Some(p) = read.poison
                    && self.never_seen(&read.record)
                {
                    poison.push(p);
                }
                batch.push(read.record);
            }
            // Quarantine first, as the service does: after the commit the record is only there.
            if !poison.is_empty() {
                let quarantiner = match &producer {
                    Some(existing) => FutureProducer::clone(existing),
                    None => {
                        let created = kafka::quarantine_producer(&self.kafka)?;
                        producer = Some(created.clone());
                        created
                    }
                };
                kafka::quarantine(&quarantiner, &self.plan.topic, &poison).await?;
                replayed.quarantined += poison.len() as u64;
            }
            let applied = self.store.apply(&batch, None, Utc::now()).await?;
            replayed.counts.add(&applied.counts);
            replayed.records += batch.len() as u64;
            replayed.batches += 1;
            progress.advance(batch.len() as u64);
        }
        Ok(replayed)
    }

    /// Whether `record` is at or past the offset the projection had reached before.
    fn never_seen(&self, record: &Incoming) -> bool {
        self.plan
            .partitions
            .iter()
            .find(|p| p.partition == record.partition)
            .and_then(|p| p.stored)
            .is_none_or(|stored| record.offset >= stored)
    }

    /// Recomputes every employee of the scope (every employee with a punch or a record) in
    /// full, `chunk` employees per transaction; once all of them have committed, the rebuild
    /// is no longer unfinished (its row of `attendance_rebuilds` is deleted: the attendance
    /// service may consume the group again). Interrupted before, the row stays and the
    /// rebuild must run again.
    pub async fn recompute(
        &mut self,
        chunk: usize,
        progress: &dyn Progress,
    ) -> Result<Recomputed, RebuildError> {
        let group = self.plan.group.as_str();
        let tenant = self.plan.scope.tenant();
        let employees: Vec<(String, String)> = self
            .store
            .client_mut()
            .query(SQL_SCOPE_EMPLOYEES, &[&group, &tenant])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        progress.stage("recomputing employees", employees.len() as u64);
        let mut done = Recomputed {
            employees: employees.len() as u64,
            ..Recomputed::default()
        };
        for part in employees.chunks(chunk.max(1)) {
            let recomputed = self.store.recompute(part, Utc::now()).await?;
            done.changed += recomputed.changed;
            done.unchanged += recomputed.unchanged;
            progress.advance(part.len() as u64);
        }
        // Only now: a crash between the last chunk and this delete leaves the row, and the
        // rebuild run again finds every day already right.
        self.store
            .client_mut()
            .execute(SQL_MARK_FINISHED, &[&self.plan.consumer_group])
            .await?;
        tracing::info!(
            group,
            tenant,
            employees = done.employees,
            changed = done.changed,
            "rebuild: every employee recomputed; the group may be consumed again"
        );
        let rows = self
            .store
            .client_mut()
            .query_one(SQL_SCOPE_DAY_ROWS, &[&group, &tenant])
            .await?;
        done.rows_after = u64::try_from(rows.get::<_, i64>(0)).unwrap_or(0);
        Ok(done)
    }

    /// Releases the group's lock and commits the stored offsets to the Kafka consumer group
    /// too (advisory, for lag monitoring, as the service does after each batch).
    pub async fn finish(mut self) -> Result<Finished, RebuildError> {
        let offsets: BTreeMap<i32, i64> = self.store.stored_offsets().await?.into_iter().collect();
        self.store
            .client_mut()
            .query_one(SQL_UNLOCK, &[&self.plan.consumer_group])
            .await?;
        let factory = self.kafka.clone();
        let (consumer_group, topic) = (self.plan.consumer_group.clone(), self.plan.topic.clone());
        let to_commit = offsets.clone();
        let timeout = self.request.timeout;
        let committed = tokio::task::spawn_blocking(move || {
            kafka::commit_group_offsets(&factory, &consumer_group, &topic, &to_commit, timeout)
        })
        .await
        .map_err(|e| RebuildError::Reader(e.to_string()))?;
        let kafka_commit_failed = committed.err().map(|error| {
            tracing::warn!(%error, "rebuild: the advisory Kafka commit failed");
            error.to_string()
        });
        Ok(Finished {
            offsets,
            kafka_commit_failed,
        })
    }
}

/// Takes the group's lock on the store's connection, waiting up to 5 s for a batch in flight.
async fn lock(store: &mut Store, consumer_group: &str) -> Result<(), RebuildError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let row = store
            .client_mut()
            .query_one(SQL_TRY_LOCK, &[&consumer_group])
            .await?;
        if row.get::<_, bool>(0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(RebuildError::Locked {
                consumer_group: consumer_group.to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
