//! One employee's world for end-to-end attendance tests: a group of its own topics, a database,
//! a realistic scenario's tenant and employee; their verdicts, corrections and the latest
//! records of `payroll.monthly`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use dakoku_schemas::{
    CheckedPunch, Correction, EmployeeId, MonthlyAttendance, PunchId, PunchKind, Topic,
    correction_key, decode, encode,
};
use dakoku_testkit::produce::produce_bytes;
use dakoku_testkit::read::read_topic;
use dakoku_testkit::{Scenario, Stack, TestDatabase, TestGroup, unique_suffix};

use crate::attendance::TestAttendance;

/// One employee (the first of a one-employee realistic week) on a group and database of its
/// own.
#[derive(Debug)]
pub struct OneEmployee {
    /// The local stack.
    pub stack: Stack,
    /// The group's topics (3 partitions).
    pub group: TestGroup,
    /// The database, master data seeded.
    pub db: TestDatabase,
    /// The scenario whose first verdict is the template of [`OneEmployee::punch`].
    pub scenario: Scenario,
}

fn tokyo_millis(local: &str) -> anyhow::Result<i64> {
    Ok(
        chrono::DateTime::parse_from_rfc3339(&format!("{local}+09:00"))
            .with_context(|| format!("{local}: not YYYY-MM-DDTHH:MM:SS"))?
            .timestamp_millis(),
    )
}

impl OneEmployee {
    /// A new world whose scenario starts on `start`.
    pub async fn new(start: NaiveDate) -> anyhow::Result<Self> {
        let stack = Stack::from_env();
        let group = TestGroup::create(&stack, 3).await?;
        let db = TestDatabase::create(&stack).await?;
        let scenario =
            Scenario::realistic_week(&format!("t{}", unique_suffix()), &group.group, 1, start, 1)?;
        scenario.seed(&db).await?;
        Ok(Self {
            stack,
            group,
            db,
            scenario,
        })
    }

    /// An accepted verdict of the employee: punch `seq`, `kind` at `local`
    /// (`YYYY-MM-DDTHH:MM:SS`, Tokyo).
    pub fn punch(&self, seq: u64, kind: PunchKind, local: &str) -> anyhow::Result<CheckedPunch> {
        let mut v = self.scenario.punches[0].clone();
        v.seq = seq;
        v.punch_id = PunchId::derive(&v.tenant_id, &v.device_id, seq);
        v.kind = kind;
        v.at = tokyo_millis(local)?;
        v.at_offset_minutes = 540;
        v.checked_at = v.at + 1_000;
        Ok(v)
    }

    /// The employee.
    pub fn employee(&self) -> anyhow::Result<EmployeeId> {
        self.scenario.punches[0]
            .employee_id
            .clone()
            .context("accepted verdicts name their employee")
    }

    /// An added `kind` punch at `local` (Tokyo), by `cli:hanako`.
    pub fn add(&self, kind: PunchKind, local: &str) -> anyhow::Result<Correction> {
        Ok(Correction::add(
            PunchId::random(),
            self.scenario.punches[0].tenant_id.clone(),
            self.employee()?,
            kind,
            tokyo_millis(local)?,
            "cli:hanako".into(),
            "forgot to clock out; confirmed with the shift leader".into(),
            chrono::Utc::now().timestamp_millis(),
        ))
    }

    /// Appends `correction` to the group's corrections topic, as `punchctl correct` does.
    pub async fn submit(&self, correction: &Correction) -> anyhow::Result<()> {
        let topic = Topic::Corrections(self.group.group.clone()).name();
        let key = correction_key(&correction.tenant_id, &correction.employee_id);
        produce_bytes(&self.stack, &topic, &key, Some(&encode(correction)?)).await?;
        Ok(())
    }

    /// The attendance consumer of the group, in-process.
    pub fn consumer(&self) -> TestAttendance {
        TestAttendance::start(&self.stack, &self.db.url, &self.group.group, |_| {})
    }

    /// The latest record per key of the group's `payroll.monthly` topic, read until `until`
    /// (or `wait` runs out).
    pub async fn latest_months(
        &self,
        wait: Duration,
        mut until: impl FnMut(&BTreeMap<String, MonthlyAttendance>) -> bool,
    ) -> anyhow::Result<BTreeMap<String, MonthlyAttendance>> {
        let topic = Topic::PayrollMonthly(self.group.group.clone()).name();
        let mut latest: BTreeMap<String, MonthlyAttendance> = BTreeMap::new();
        read_topic(&self.stack, &topic, wait, |record| {
            if let Ok(month) = decode::<MonthlyAttendance>(&record.payload)
                && latest
                    .get(&record.key)
                    .is_none_or(|old| month.revision >= old.revision)
            {
                latest.insert(record.key.clone(), month);
            }
            until(&latest)
        })
        .await?;
        Ok(latest)
    }

    /// Drops the database and the group's topics.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.db.drop_db().await?;
        self.group.delete_topics().await
    }
}
