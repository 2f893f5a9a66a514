//! Fixtures for licence-check tests: the service in-process with test-friendly settings, and
//! readers of its transactional output (master data, raw punches and poison come from
//! `dakoku_testkit`).

use std::time::Duration;

use anyhow::Context as _;
use dakoku_licence_check::{Config, GroupState, Service};
use dakoku_schemas::{CheckedPunch, GroupId, QuarantinedInput, Topic, decode};
use dakoku_testkit::read::read_to_end;
use dakoku_testkit::{Stack, TestDatabase, eventually, unique_suffix};

/// Test-friendly settings: short batches, polls and timeouts, an ephemeral metrics port, and
/// an instance id of its own.
pub fn test_config(stack: &Stack, db: &TestDatabase, groups: &[GroupId]) -> Config {
    let mut config = Config::new(&stack.brokers, &db.url, groups);
    config.instance_id = Some(format!("test-{}", unique_suffix()));
    config.batch_max_ms = 100;
    config.snapshot_poll_ms = 500;
    config.transaction_timeout_ms = 20_000;
    config.kafka_op_timeout_ms = 10_000;
    config.session_timeout_ms = 10_000;
    config.shutdown_timeout_ms = 5_000;
    config
}

/// A licence-check service running in this process.
#[derive(Debug)]
pub struct TestLicenceCheck {
    /// The service (until stopped).
    pub service: Service,
    /// `http://127.0.0.1:<port>` of its `/metrics`, `/healthz` and `/readyz`.
    pub base_url: String,
}

impl TestLicenceCheck {
    /// Starts `config` and waits until every group consumes.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let groups = config.groups.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let service = Service::start(config, listener)?;
        let base_url = format!("http://{}", service.local_addr());
        let this = Self { service, base_url };
        for group in &groups {
            this.wait_for(group, "running", |s| matches!(s, GroupState::Running))
                .await?;
        }
        Ok(this)
    }

    /// Waits until `group`'s state satisfies `pred`.
    pub async fn wait_for(
        &self,
        group: &GroupId,
        what: &str,
        pred: impl Fn(&GroupState) -> bool,
    ) -> anyhow::Result<GroupState> {
        eventually(
            &format!("group {group} {what}"),
            Duration::from_secs(30),
            || {
                let state = self.service.group_state(group);
                let hit = state.filter(|s| pred(s));
                async move { Ok(hit) }
            },
        )
        .await
    }

    /// `GET <path>`: status and body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.base_url)).await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// Shuts down (commits open transactions) and returns what the service returned.
    pub async fn stop(self) -> Result<(), dakoku_licence_check::RunError> {
        self.service.stop().await
    }
}

/// The committed verdicts of `group` (read_committed, to the current end), keyed.
pub async fn verdicts(
    stack: &Stack,
    group: &GroupId,
) -> anyhow::Result<Vec<(String, CheckedPunch)>> {
    read_to_end(
        stack,
        &Topic::Checked(group.clone()).name(),
        "read_committed",
    )
    .await?
    .into_iter()
    .map(|(_, key, payload)| {
        let payload = payload.context("a verdict without a value")?;
        Ok((key, decode::<CheckedPunch>(&payload)?))
    })
    .collect()
}

/// Waits until `group` has at least `n` committed verdicts and returns them all.
pub async fn wait_for_verdicts(
    stack: &Stack,
    group: &GroupId,
    n: usize,
) -> anyhow::Result<Vec<(String, CheckedPunch)>> {
    eventually(
        &format!("{n} verdicts in punches.checked.{group}"),
        Duration::from_secs(60),
        || async move {
            let found = verdicts(stack, group).await?;
            Ok((found.len() >= n).then_some(found))
        },
    )
    .await
}

/// The committed quarantine records that came from `origin_topic`.
pub async fn quarantined_from(
    stack: &Stack,
    origin_topic: &str,
) -> anyhow::Result<Vec<QuarantinedInput>> {
    Ok(
        read_to_end(stack, &Topic::Quarantine.name(), "read_committed")
            .await?
            .into_iter()
            .filter_map(|(_, _, payload)| decode::<QuarantinedInput>(&payload?).ok())
            .filter(|q| q.origin_topic.as_deref() == Some(origin_topic))
            .collect(),
    )
}
