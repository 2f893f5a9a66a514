//! [`Store`]: one Postgres connection of one tenant group's consumer, with its prepared
//! statements, and the entry points that run a batch, a recompute or an outbox read.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dakoku_schemas::{AttendanceDay, ConsumerGroup, GroupId, MonthlyAttendance, Topic};
use dakoku_store::offsets;
use tokio_postgres::Client;

use super::StoreError;
use super::batch::BatchContext;
use super::closing::{self, Causes};
use super::columns::RecordWrites;
use super::corrections;
use super::keys::EmployeeKey;
use super::marker::{self, Scope, UnfinishedRebuild};
use super::outcome::{Applied, Recomputed};
use super::pipeline::pipelined;
use super::recompute;
use super::requests::{self, RecomputeRequest};
use super::rows;
use super::rulebooks;
use super::sql::{self, Statements};
use crate::decode::{Incoming, IncomingCorrection};

/// The stored next offsets of `consumer_group` on `topic`, on a connection of its own (the
/// rebalance callback's lookup).
pub async fn load_offsets(
    database_url: &str,
    consumer_group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<HashMap<i32, i64>, StoreError> {
    let work = async {
        let client = dakoku_store::connect(database_url).await?;
        Ok(offsets::load(&client, consumer_group, topic).await?)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| StoreError::Timeout(timeout))?
}

/// One Postgres connection of one tenant group's consumer.
#[derive(Debug)]
pub struct Store {
    client: Client,
    statements: Statements,
    group: GroupId,
    consumer_group: String,
    topic: String,
    statement_timeout: Duration,
    debug_commit_delay: Duration,
    /// Days whose recomputation a rebuild leaves to its end (see [`crate::rebuild`]).
    deferred: Option<Scope>,
}

impl Store {
    /// Connects and prepares the statements. `statement_timeout` bounds every batch: a
    /// Postgres that stops answering (rather than closing the connection) is treated as lost.
    pub async fn connect(
        database_url: &str,
        group: &GroupId,
        statement_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = dakoku_store::connect(database_url).await?;
        let prepare = sql::prepare(&client);
        let statements = tokio::time::timeout(statement_timeout, prepare)
            .await
            .map_err(|_| StoreError::Timeout(statement_timeout))??;
        Ok(Self {
            client,
            statements,
            group: group.clone(),
            consumer_group: ConsumerGroup::Attendance(group.clone()).name(),
            topic: Topic::Checked(group.clone()).name(),
            statement_timeout,
            debug_commit_delay: Duration::ZERO,
            deferred: None,
        })
    }

    /// Test hook: sleep this long inside every batch transaction, just before `COMMIT`, so a
    /// kill lands mid-batch.
    pub fn set_debug_commit_delay(&mut self, delay: Duration) {
        self.debug_commit_delay = delay;
    }

    /// Rebuild hook: batches stop recomputing the days of `scope` (they store punches and
    /// offsets only); [`Store::recompute`] computes those days once, at the end of the replay.
    /// Days outside the scope are recomputed as usual.
    pub fn defer_days(&mut self, scope: Option<Scope>) {
        self.deferred = scope;
    }

    /// The connection, for the rebuild's own statements (which run under this connection's
    /// lock of the group).
    pub(crate) fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The group's unfinished rebuild, if any: the service must not consume the group until
    /// it has been run again (see [`crate::rebuild`]).
    pub async fn unfinished_rebuild(&self) -> Result<Option<UnfinishedRebuild>, StoreError> {
        let row = self
            .client
            .query_opt(&self.statements.unfinished, &[&self.consumer_group])
            .await?;
        Ok(row.map(|row| marker::unfinished_of(&self.group, &row)))
    }

    /// The stored next offset of each partition of the checked topic.
    pub async fn stored_offsets(&self) -> Result<HashMap<i32, i64>, StoreError> {
        let rows = self
            .client
            .query(
                &self.statements.offsets,
                &[&self.consumer_group, &self.topic],
            )
            .await?;
        Ok(offsets::from_rows(&rows))
    }

    /// Days and months changed by batches that were committed but may not have been
    /// published (after the publish mark), with the highest batch sequence among them.
    pub async fn unpublished(
        &self,
    ) -> Result<(Vec<AttendanceDay>, Vec<MonthlyAttendance>, i64), StoreError> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&self.group.as_str(), &self.consumer_group];
        let day_rows = self.client.query(&sql::unpublished_days(), &params).await?;
        let month_rows = self
            .client
            .query(&sql::unpublished_months(), &params)
            .await?;
        let mut max_seq = 0;
        let mut days = Vec::with_capacity(day_rows.len());
        for row in &day_rows {
            let (day, seq) = rows::unpublished_day(row);
            max_seq = max_seq.max(seq);
            days.push(day);
        }
        let adjustment_rows = self
            .client
            .query(&sql::unpublished_adjustments(), &params)
            .await?;
        let mut months = Vec::with_capacity(month_rows.len() + adjustment_rows.len());
        let records = month_rows.iter().filter_map(rows::unpublished_month).chain(
            adjustment_rows
                .iter()
                .filter_map(closing::unpublished_adjustment),
        );
        for (month, seq) in records {
            max_seq = max_seq.max(seq);
            months.push(month);
        }
        Ok((days, months, max_seq))
    }

    /// Records that every day changed by batches up to `batch_seq` is published.
    pub async fn mark_published(&self, batch_seq: i64) -> Result<(), StoreError> {
        self.client
            .execute(&self.statements.mark, &[&self.consumer_group, &batch_seq])
            .await?;
        Ok(())
    }

    /// Applies one batch in one transaction (see the module docs). `published_through`, when
    /// set, is recorded as the publish mark in the same transaction. On error nothing was
    /// written.
    pub async fn apply(
        &mut self,
        batch: &[Incoming],
        published_through: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let budget = self.statement_timeout + self.debug_commit_delay;
        match tokio::time::timeout(budget, self.apply_inner(batch, published_through, now)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(budget)),
        }
    }

    async fn apply_inner(
        &mut self,
        batch: &[Incoming],
        published_through: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let debug_delay = self.debug_commit_delay;
        let tx = self.client.transaction().await?;
        let st = &self.statements;
        let ctx = BatchContext {
            st,
            group: &self.group,
            consumer_group: &self.consumer_group,
            topic: &self.topic,
            deferred: self.deferred.as_ref(),
        };
        let applied = ctx.run(&tx, batch, published_through, now).await?;
        if !debug_delay.is_zero() {
            tracing::info!(
                delay_ms = debug_delay.as_millis() as u64,
                "debug: holding the batch transaction open before commit"
            );
            tokio::time::sleep(debug_delay).await;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Applies records of `punches.corrections.<group>` in one transaction (see
    /// `store::corrections`): stored once, their employees recomputed, offsets stored. On
    /// error nothing was written.
    pub async fn apply_corrections(
        &mut self,
        records: &[IncomingCorrection],
        published_through: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let budget = self.statement_timeout + self.debug_commit_delay;
        let topic = Topic::Corrections(self.group.clone()).name();
        let work = async {
            let tx = self.client.transaction().await?;
            let applied = corrections::apply(
                &tx,
                &self.statements,
                &self.group,
                &self.consumer_group,
                &topic,
                records,
                published_through,
                now,
            )
            .await?;
            if !self.debug_commit_delay.is_zero() {
                tokio::time::sleep(self.debug_commit_delay).await;
            }
            tx.commit().await?;
            Ok(applied)
        };
        match tokio::time::timeout(budget, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(budget)),
        }
    }

    /// Serves the group's unserved closes and reopens (`month_closings`) in one transaction
    /// under the group's lock: each month's records go into a new batch, published as paid
    /// while the month is closed and as they are after a reopen. Returns the batch and its
    /// records, or `None` when there was nothing to serve.
    pub async fn serve_closings(
        &mut self,
    ) -> Result<Option<(i64, Vec<MonthlyAttendance>)>, StoreError> {
        let budget = self.statement_timeout;
        let group = self.group.as_str();
        // Polled every second: look before taking the group's lock.
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&group];
        let pending = self.client.query(closing::SQL_UNSERVED, &params);
        if tokio::time::timeout(budget, pending)
            .await
            .map_err(|_| StoreError::Timeout(budget))??
            .is_empty()
        {
            return Ok(None);
        }
        let work = async {
            let tx = self.client.transaction().await?;
            let cg = self.consumer_group.as_str();
            let lock = tx.query(&self.statements.lock, &[&cg]).await?;
            let seq: i64 = lock.first().map(|r| r.get(1)).unwrap_or_default();
            let events = tx.query(closing::SQL_UNSERVED, &[&group]).await?;
            if events.is_empty() {
                return Ok(None);
            }
            let mut ids: Vec<i64> = Vec::with_capacity(events.len());
            for event in &events {
                ids.push(event.get(0));
                let (tenant, month): (String, String) = (event.get(1), event.get(2));
                tx.execute(closing::SQL_REPUBLISH, &[&tenant, &month, &seq])
                    .await?;
            }
            tx.execute(closing::SQL_SERVED, &[&ids]).await?;
            let rows = tx.query(&sql::months_of_batch(), &[&group, &seq]).await?;
            tx.commit().await?;
            let months = rows
                .iter()
                .filter_map(rows::unpublished_month)
                .map(|(m, _)| m)
                .collect();
            Ok(Some((seq, months)))
        };
        match tokio::time::timeout(budget, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(budget)),
        }
    }

    /// The stored next offset of each partition of the corrections topic.
    pub async fn stored_correction_offsets(&self) -> Result<HashMap<i32, i64>, StoreError> {
        let topic = Topic::Corrections(self.group.clone()).name();
        let rows = self
            .client
            .query(&self.statements.offsets, &[&self.consumer_group, &topic])
            .await?;
        Ok(offsets::from_rows(&rows))
    }

    /// Recomputes `employees` (tenant, employee) from all their stored, counting punches in
    /// one transaction under the group's lock, by the same rules and revision policy as a
    /// batch: a day or month whose figures changed is upserted with `revision + 1`,
    /// `computed_at = now` and this transaction's batch sequence (so the consumer's outbox
    /// publishes it); an unchanged one is not written. The rebuild's final pass (see
    /// [`Store::defer_days`]).
    pub async fn recompute(
        &mut self,
        employees: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Recomputed, StoreError> {
        let applied = self.recompute_records(employees, None, now).await?;
        Ok(Recomputed {
            batch_seq: applied.batch_seq,
            changed: applied.counts.days_changed + applied.counts.months_changed,
            unchanged: applied.counts.days_unchanged,
        })
    }

    /// The group's pending recompute requests (rules changes), oldest first.
    pub async fn recompute_requests(&self) -> Result<Vec<RecomputeRequest>, StoreError> {
        let rows = self
            .client
            .query(requests::SQL_PENDING, &[&self.group.as_str()])
            .await?;
        Ok(rows
            .iter()
            .map(|r| RecomputeRequest {
                id: r.get(0),
                tenant: r.get(1),
                from: r.get(2),
                rules_version: r.get(3),
            })
            .collect())
    }

    /// Every employee of `tenant` with a punch or a record.
    pub async fn tenant_employees(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client
            .query(requests::SQL_TENANT_EMPLOYEES, &[&tenant])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// As [`Store::recompute`], returning what changed (to publish); with `served`, the
    /// request is deleted in the same transaction.
    pub async fn recompute_records(
        &mut self,
        employees: &[(String, String)],
        served: Option<&RecomputeRequest>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let budget = self.statement_timeout;
        match tokio::time::timeout(budget, self.recompute_inner(employees, served, now)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(budget)),
        }
    }

    async fn recompute_inner(
        &mut self,
        employees: &[(String, String)],
        served: Option<&RecomputeRequest>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let keys: Vec<EmployeeKey> = employees
            .iter()
            .map(|(tenant, employee)| EmployeeKey {
                tenant: tenant.clone(),
                employee: employee.clone(),
            })
            .collect();
        let mut tenant_ids: Vec<&str> = keys.iter().map(|k| k.tenant.as_str()).collect();
        tenant_ids.sort_unstable();
        tenant_ids.dedup();
        let transaction = self.client.transaction().await?;
        let tx = &transaction;
        let st = &self.statements;
        let cg = self.consumer_group.as_str();
        let lock = tx.query(&st.lock, &[&cg]).await?;
        let batch_seq: i64 = lock.first().map(|r| r.get(1)).unwrap_or_default();
        let rules = rulebooks::load(tx, &tenant_ids).await?;
        let changes = recompute::full(tx, st, &rules, &keys).await?;
        let cause = match served {
            Some(request) => format!("rules:{}", request.rules_version),
            None => "rebuild".to_owned(),
        };
        let settled = closing::settle(
            tx,
            self.group.as_str(),
            &changes.months,
            || Causes::every(cause),
            now,
            batch_seq,
        )
        .await?;
        let records = RecordWrites::of(&changes);
        let (now_ref, seq_ref) = (&now, &batch_seq);
        let mut writes = records.upserts(tx, st, self.group.as_str(), now_ref, seq_ref);
        if let Some(request) = served {
            let (tenant, id) = (&request.tenant, &request.id);
            writes.push(Box::pin(async move {
                tx.query(requests::SQL_SERVED, &[tenant, id]).await
            }));
        }
        pipelined(writes).await?;
        transaction.commit().await?;
        let mut applied = Applied {
            batch_seq,
            settled,
            ..Applied::default()
        };
        applied.counts.days_changed = changes.days.len() as u64;
        applied.counts.months_changed = changes.months.len() as u64;
        applied.counts.days_unchanged = changes.unchanged;
        applied.changes = changes;
        Ok(applied)
    }
}
