//! Fixtures for the `punchctl audit` and `punchctl lag` tests: a whole pipeline of one tenant
//! group (raw punches -> licence-check -> attendance, both in-process) settled on a realistic
//! week with resends and one rejected punch, ready to be audited and tampered with.
//!
//! # Layout
//! - [`AuditPipeline`]: the group, its database and services, and what was sent.
//! - [`AuditPipeline::settle`]: waits until the attendance days are the oracle's.
//! - [`AuditPipeline::punchctl`]: runs a `punchctl` command line against it, with its exit code.
//! - [`StoredPunch`], [`AuditPipeline::stored_punches`]: rows of `punches` to tamper with.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use clap::Parser as _;
use dakoku_rules::v2::DayFigures;
use dakoku_schemas::{GroupId, RawPunch};
use punchctl::audit::{AuditReport, AuditRequest, NoProgress};
use uuid::Uuid;

use dakoku_testkit::days::{punch_counts, wait_for_days};
use dakoku_testkit::produce::produce_raw;
use dakoku_testkit::{
    DayKey, Scenario, Stack, TenantSeed, TestDatabase, TestGroup, eventually, raw_punch,
    unique_suffix,
};

use crate::attendance::TestAttendance;
use crate::licence::{TestLicenceCheck, test_config};

/// The card nobody holds: its punch is rejected by licence-check.
pub const STRANGER_CARD: &str = "NOBODY";

/// A tenant group with its own topics, database, licence-check and attendance.
#[derive(Debug)]
pub struct AuditPipeline {
    /// Where the stack is.
    pub stack: Stack,
    /// The group and its topics.
    pub group: TestGroup,
    /// Its database.
    pub db: TestDatabase,
    /// The tenant's week.
    pub scenario: Scenario,
    /// Every raw punch produced, resends included.
    pub raw: Vec<RawPunch>,
    /// licence-check, while running.
    pub licence: Option<TestLicenceCheck>,
    /// attendance, while running.
    pub attendance: Option<TestAttendance>,
}

impl AuditPipeline {
    /// Creates a group (3 partitions) and database, seeds a tenant with `employees` licensed
    /// employees, starts licence-check and attendance, and produces the tenant's week (from
    /// Monday 2020-11-30) as raw punches: every punch once, a third of them again as resends
    /// (new `received_at`), and one punch of [`STRANGER_CARD`].
    pub async fn start(employees: usize, seed: u64) -> anyhow::Result<Self> {
        let stack = Stack::from_env();
        let group = TestGroup::create(&stack, 3).await?;
        let db = TestDatabase::create(&stack).await?;
        let tenant = format!("a{}", unique_suffix());
        let start = NaiveDate::from_ymd_opt(2020, 11, 30).unwrap_or_default();
        let scenario = Scenario::realistic_week(&tenant, &group.group, employees, start, seed)?;
        let mut seed = TenantSeed::new(&tenant, &group.group).licence(50);
        for (employee, card) in &scenario.employees {
            seed = seed.licensed(employee.as_str(), card.as_str());
        }
        seed.seed(&db).await?;
        let mut raw: Vec<RawPunch> = scenario.punches.iter().map(|p| p.raw()).collect();
        let resends: Vec<RawPunch> = raw
            .iter()
            .step_by(3)
            .map(|p| RawPunch {
                received_at: p.received_at + 3_600_000,
                ..p.clone()
            })
            .collect();
        raw.extend(resends);
        raw.push(raw_punch(
            &group.group,
            &tenant,
            "PT-000009",
            1,
            STRANGER_CARD,
            "2020-12-01T09:00:00+09:00",
        )?);

        let licence =
            TestLicenceCheck::start(test_config(&stack, &db, std::slice::from_ref(&group.group)))
                .await?;
        let attendance = TestAttendance::start(&stack, &db.url, &group.group, |_| {});
        produce_raw(&stack, &group.group, &raw).await?;
        Ok(Self {
            stack,
            group,
            db,
            scenario,
            raw,
            licence: Some(licence),
            attendance: Some(attendance),
        })
    }

    /// The tenant group.
    pub fn group(&self) -> &GroupId {
        &self.group.group
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        self.scenario.tenant.as_str()
    }

    /// Waits until `attendance_days` equals the scenario's expected days and the stranger's
    /// rejection is applied (so every verdict is in Postgres).
    pub async fn settle(&self) -> anyhow::Result<BTreeMap<DayKey, DayFigures>> {
        let expected = self.scenario.expected();
        wait_for_days(&self.db, &expected, Duration::from_secs(120)).await?;
        let db = &self.db;
        eventually(
            "the stranger's rejection applied",
            Duration::from_secs(60),
            || async move { Ok((punch_counts(db).await?.3 == 1).then_some(())) },
        )
        .await?;
        Ok(expected)
    }

    /// An audit request for the whole group.
    pub fn request(&self) -> AuditRequest {
        let mut request =
            AuditRequest::new(&self.stack.brokers, &self.db.url, self.group().clone());
        request.limit = 20;
        request.timeout = Duration::from_secs(60);
        request
    }

    /// Audits `request` through the library.
    pub async fn audit(&self, request: &AuditRequest) -> anyhow::Result<AuditReport> {
        Ok(punchctl::audit::run(request, Arc::new(NoProgress)).await?)
    }

    /// Runs `punchctl <args>` against this pipeline's broker and database through the real
    /// dispatcher: its exit code, stdout and stderr.
    pub async fn punchctl(&self, args: &[&str]) -> anyhow::Result<(ExitCode, String, String)> {
        let mut argv = vec![
            "punchctl",
            "--brokers",
            self.stack.brokers.as_str(),
            "--database-url",
            self.db.url.as_str(),
        ];
        argv.extend_from_slice(args);
        let cli = punchctl::Cli::try_parse_from(argv)?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = punchctl::run_with_output(cli, &mut out, &mut err).await?;
        Ok((code, String::from_utf8(out)?, String::from_utf8(err)?))
    }

    /// The stored punches, by tenant, device and seq.
    pub async fn stored_punches(&self) -> anyhow::Result<Vec<StoredPunch>> {
        let client = self.db.client().await?;
        let rows = client
            .query(
                "SELECT punch_id, device_id, seq, employee_id, work_date, kind FROM punches \
                 ORDER BY tenant_id, device_id, seq",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| StoredPunch {
                punch_id: r.get(0),
                device: r.get(1),
                seq: r.get(2),
                employee: r.get(3),
                work_date: r.get(4),
                kind: r.get(5),
            })
            .collect())
    }

    /// Stops the services, drops the database and deletes the topics.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(attendance) = self.attendance.take() {
            attendance.stop().await?;
        }
        if let Some(licence) = self.licence.take() {
            licence.stop().await?;
        }
        self.db.drop_db().await?;
        self.group.delete_topics().await
    }
}

/// A row of `punches`, as far as the tests need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPunch {
    /// Its id.
    pub punch_id: Uuid,
    /// Its recorder.
    pub device: String,
    /// Its sequence number.
    pub seq: i64,
    /// Its employee.
    pub employee: String,
    /// Its work date.
    pub work_date: NaiveDate,
    /// Its kind.
    pub kind: String,
}
