//! What the admin tests share: a tenant `acme` (Asia/Tokyo, day change 05:00) with employees
//! E1 and E2 in a database of its own, and rows written directly where the attendance
//! consumer (not under test here) would write them.

#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_admin::Admin;
use dakoku_kafka::KafkaArgs;
use dakoku_schemas::{GroupId, TenantId};
use dakoku_testkit::{EmployeeSeed, Stack, TenantSeed, TestDatabase, TestGroup};
use uuid::Uuid;

/// One test's world.
pub struct World {
    pub stack: Stack,
    pub db: TestDatabase,
    pub client: tokio_postgres::Client,
    pub group: GroupId,
    pub topics: Option<TestGroup>,
    pub tenant: TenantId,
    pub admin: Admin,
}

/// A database with `acme`; with `topics`, a group of its own with its topics created.
pub async fn world(topics: bool) -> anyhow::Result<World> {
    let stack = Stack::from_env();
    let db = TestDatabase::create(&stack).await?;
    let (group, topics) = if topics {
        let g = TestGroup::create(&stack, 1).await?;
        (g.group.clone(), Some(g))
    } else {
        (
            format!("t-{}", dakoku_testkit::unique_suffix()).parse()?,
            None,
        )
    };
    TenantSeed::new("acme", &group)
        .licence(2)
        .employee(EmployeeSeed::licensed("E1", "C1"))
        .employee(EmployeeSeed::licensed("E2", "C2"))
        .seed(&db)
        .await?;
    let client = db.client().await?;
    let admin = Admin::connect(&db.url, &KafkaArgs::new(&stack.brokers)).await?;
    Ok(World {
        stack,
        db,
        client,
        group,
        topics,
        tenant: "acme".parse()?,
        admin,
    })
}

impl World {
    pub async fn end(self) -> anyhow::Result<()> {
        drop(self.admin);
        drop(self.client);
        if let Some(topics) = self.topics {
            topics.delete_topics().await?;
        }
        self.db.drop_db().await
    }

    /// A stored raw punch of `acme` (accepted, or withdrawn by a later rejection).
    #[allow(clippy::too_many_arguments)]
    pub async fn punch(
        &self,
        employee: &str,
        seq: i64,
        kind: &str,
        at: &str,
        work_date: &str,
        withdrawn: bool,
    ) -> anyhow::Result<Uuid> {
        let id = Uuid::new_v4();
        let at: DateTime<Utc> = at.parse()?;
        let work_date: NaiveDate = work_date.parse()?;
        self.client
            .execute(
                "INSERT INTO punches (punch_id, tenant_id, group_id, device_id, seq, card_id, \
                 employee_id, kind, at, at_offset_minutes, work_date, received_at, \
                 master_data_version, source_topic, source_partition, source_offset, withdrawn) \
                 VALUES ($1, 'acme', $2, 'PT-1', $3, 'C1', $4, $5, $6, 540, $7, $6, 1, 'test', \
                 0, $3, $8)",
                &[
                    &id,
                    &self.group.as_str(),
                    &seq,
                    &employee,
                    &kind,
                    &at,
                    &work_date,
                    &withdrawn,
                ],
            )
            .await?;
        Ok(id)
    }

    /// A stored add of `acme` as the consumer stores it.
    pub async fn stored_add(
        &self,
        employee: &str,
        kind: &str,
        at: &str,
        reason: &str,
        created_at: &str,
    ) -> anyhow::Result<Uuid> {
        let id = Uuid::new_v4();
        let at: DateTime<Utc> = at.parse()?;
        let created_at: DateTime<Utc> = created_at.parse()?;
        self.client
            .execute(
                "INSERT INTO corrections (tenant_id, correction_id, employee_id, group_id, \
                 action, kind, at, actor, reason, created_at, source_partition, source_offset) \
                 VALUES ('acme', $1, $2, $3, 'add', $4, $5, 'cli:hr', $6, $7, 0, 0)",
                &[
                    &id,
                    &employee,
                    &self.group.as_str(),
                    &kind,
                    &at,
                    &reason,
                    &created_at,
                ],
            )
            .await?;
        Ok(id)
    }

    /// A stored void of `acme` as the consumer stores it.
    pub async fn stored_void(
        &self,
        employee: &str,
        target: Uuid,
        reason: &str,
        created_at: &str,
    ) -> anyhow::Result<Uuid> {
        let id = Uuid::new_v4();
        let created_at: DateTime<Utc> = created_at.parse()?;
        self.client
            .execute(
                "INSERT INTO corrections (tenant_id, correction_id, employee_id, group_id, \
                 action, target_id, actor, reason, created_at, source_partition, source_offset) \
                 VALUES ('acme', $1, $2, $3, 'void', $4, 'cli:hr', $5, $6, 0, 1)",
                &[
                    &id,
                    &employee,
                    &self.group.as_str(),
                    &target,
                    &reason,
                    &created_at,
                ],
            )
            .await?;
        Ok(id)
    }

    /// A day record of `acme` with `worked` seconds and `anomalies`.
    pub async fn day(
        &self,
        employee: &str,
        work_date: &str,
        worked: i64,
        anomalies: &[&str],
        correction_ids: &[String],
    ) -> anyhow::Result<()> {
        let work_date: NaiveDate = work_date.parse()?;
        let anomalies: Vec<String> = anomalies.iter().map(|a| (*a).to_owned()).collect();
        self.client
            .execute(
                "INSERT INTO attendance_days (tenant_id, employee_id, work_date, group_id, \
                 first_in, last_out, worked_minutes, break_minutes, night_minutes, \
                 overtime_minutes, punch_count, anomalies, revision, computed_at, \
                 worked_seconds, break_seconds, corrected, correction_ids, rules_version) \
                 VALUES ('acme', $1, $2, $3, \
                 ($2::date + time '09:00') AT TIME ZONE 'Asia/Tokyo', NULL, \
                 ($4::bigint / 60)::int, 60, 0, 0, 2, $5, 3, '2026-11-04T00:00:00Z', $4::bigint, 3600, \
                 cardinality($6::text[]) > 0, $6, 1)",
                &[
                    &employee,
                    &work_date,
                    &self.group.as_str(),
                    &worked,
                    &anomalies,
                    &correction_ids,
                ],
            )
            .await?;
        Ok(())
    }

    /// A monthly record of `acme` with `worked` seconds and outbox position `batch_seq`.
    pub async fn month(
        &self,
        employee: &str,
        month: &str,
        worked: i64,
        batch_seq: i64,
    ) -> anyhow::Result<()> {
        self.client
            .execute(
                "INSERT INTO attendance_months (tenant_id, employee_id, month, group_id, \
                 first_day, last_day, days_worked, anomaly_days, worked_seconds, \
                 break_seconds, night_seconds, holiday_seconds, within_statutory_seconds, \
                 overtime_seconds, overtime_over60_seconds, worked_minutes, overtime_minutes, \
                 overtime_over60_minutes, night_minutes, holiday_minutes, rules_version, \
                 revision, computed_at, batch_seq) \
                 VALUES ('acme', $1, $2, $3, ($2 || '-01')::date, \
                 (($2 || '-01')::date + interval '1 month' - interval '1 day')::date, \
                 20, 1, $4::bigint, $4::bigint / 8, 0, 0, 0, $4::bigint / 10, 0, \
                 $4::bigint / 60, $4::bigint / 600, 0, 0, 0, 1, 2, now(), $5)",
                &[&employee, &month, &self.group.as_str(), &worked, &batch_seq],
            )
            .await?;
        Ok(())
    }
}

/// The ids of [`World::scenario`]'s rows.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// E1 clock_in 2026-11-03 09:00 JST.
    pub clock_in: Uuid,
    /// E1 break_start 12:00 JST, voided.
    pub break_start: Uuid,
    /// E1 clock_in 09:00:30 JST, withdrawn (rejected later: not_licensed).
    pub rejected: Uuid,
    /// E1 clock_out 2026-11-02 18:00 JST (the day before).
    pub day_before: Uuid,
    /// E1's added clock_out 2026-11-03 18:00 JST.
    pub add: Uuid,
    /// The void of `break_start`.
    pub void: Uuid,
}

impl World {
    /// E1's 2026-11-03 (Asia/Tokyo) with punches around it, an add, a void and a rejected
    /// punch; rows that must not show (another employee, days further away, another month);
    /// day records with anomalies on 2026-11-03 (E1) and 2026-11-10 (E2).
    pub async fn scenario(&self) -> anyhow::Result<Scenario> {
        let day_before = self
            .punch(
                "E1",
                1,
                "clock_out",
                "2026-11-02T09:00:00Z",
                "2026-11-02",
                false,
            )
            .await?;
        let clock_in = self
            .punch(
                "E1",
                2,
                "clock_in",
                "2026-11-03T00:00:00Z",
                "2026-11-03",
                false,
            )
            .await?;
        let rejected = self
            .punch(
                "E1",
                3,
                "clock_in",
                "2026-11-03T00:00:30Z",
                "2026-11-03",
                true,
            )
            .await?;
        self.client
            .execute(
                "INSERT INTO punch_verdicts (punch_id, tenant_id, verdict, reason, employee_id, \
                 master_data_version, checked_at) \
                 VALUES ($1, 'acme', 'rejected', 'not_licensed', 'E1', 2, 0)",
                &[&rejected],
            )
            .await?;
        let break_start = self
            .punch(
                "E1",
                4,
                "break_start",
                "2026-11-03T03:00:00Z",
                "2026-11-03",
                false,
            )
            .await?;
        // Two days later, and another employee: not shown.
        self.punch(
            "E1",
            5,
            "clock_in",
            "2026-11-05T00:00:00Z",
            "2026-11-05",
            false,
        )
        .await?;
        self.punch(
            "E2",
            6,
            "clock_in",
            "2026-11-03T00:00:00Z",
            "2026-11-03",
            false,
        )
        .await?;
        let add = self
            .stored_add(
                "E1",
                "clock_out",
                "2026-11-03T09:00:00Z",
                "forgot to clock out",
                "2026-11-04T01:00:00Z",
            )
            .await?;
        self.stored_add(
            "E1",
            "clock_out",
            "2026-11-20T09:00:00Z",
            "another day",
            "2026-11-21T01:00:00Z",
        )
        .await?;
        let void = self
            .stored_void("E1", break_start, "no break taken", "2026-11-04T02:00:00Z")
            .await?;
        let mut ids = vec![add.to_string(), void.to_string()];
        ids.sort();
        self.day("E1", "2026-11-03", 28_800, &["missing_clock_out"], &ids)
            .await?;
        self.day("E2", "2026-11-10", 30_000, &["break_short"], &[])
            .await?;
        self.day("E1", "2026-11-05", 0, &[], &[]).await?;
        self.day("E1", "2026-10-31", 0, &["missing_clock_in"], &[])
            .await?;
        Ok(Scenario {
            clock_in,
            break_start,
            rejected,
            day_before,
            add,
            void,
        })
    }
}
