//! The bench's own tenant group: master data inserted straight into Postgres, the group's
//! topics, a fresh token key and one token per device; and their removal at the end.
//!
//! Every run uses a fresh group (`bench-<suffix>`), so runs never see each other's records and
//! the raw topic's end offsets count this run's punches only. The raw producer baseline writes
//! to the raw topic of a sibling group (`<group>-b`, topics only, same partitions), so the
//! acceptor's topic holds nothing but what ingest-api acked.

use std::time::Duration;

use anyhow::Context as _;
use axum::http::HeaderValue;
use dakoku_kafka::{Admin, ClientFactory, TopicSettings, topics_of_group};
use dakoku_schemas::{DeviceId, GroupId, TenantId, Topic};
use dakoku_token::{DeviceClaims, TokenKeys};

/// Key id of the bench's token key.
const KEY_ID: &str = "bench";
/// Validity of the bench's device tokens.
const TOKEN_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Timeout of Kafka metadata and admin calls.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// `client.id` of the bench's admin and metadata clients.
const CLIENT_ID: &str = "ingest-bench";

/// The bench's Kafka admin for `brokers`.
fn admin(brokers: &str) -> dakoku_kafka::Result<Admin> {
    Admin::new(&ClientFactory::new(brokers), CLIENT_ID, KAFKA_TIMEOUT)
}

/// What the bench created and needs to drive load.
#[derive(Debug)]
pub struct BenchGroup {
    /// The tenant group (also the tenant id).
    pub group: GroupId,
    /// The sibling group whose raw topic the raw producer baseline writes to (no master data).
    pub baseline_group: GroupId,
    /// The one tenant of the group.
    pub tenant: TenantId,
    /// The tenant's devices.
    pub devices: Vec<DeviceId>,
    /// `Authorization` header value per device (`Bearer <token>`).
    pub authorizations: Vec<HeaderValue>,
    /// `DAKOKU_TOKEN_KEYS` for the ingest-api process: the key the tokens were minted with.
    pub token_keys: String,
}

impl BenchGroup {
    /// `punches.raw.<group>`: what ingest-api writes.
    pub fn raw_topic(&self) -> String {
        Topic::Raw(self.group.clone()).name()
    }

    /// `punches.raw.<group>-b`: what the raw producer baseline writes.
    pub fn baseline_topic(&self) -> String {
        Topic::Raw(self.baseline_group.clone()).name()
    }
}

/// A fresh group id: `bench-` and ten base-36 characters from the clock and randomness.
pub fn fresh_group_id() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let seconds = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let mut n = seconds.wrapping_mul(1_000_003) ^ rand::random::<u64>();
    let suffix: String = (0..10)
        .map(|_| {
            let digit = DIGITS[(n % 36) as usize];
            n /= 36;
            char::from(digit)
        })
        .collect();
    format!("bench-{suffix}")
}

/// Migrates the schema, inserts the group, its tenant and `devices` devices, creates the
/// group's topics and mints a token per device. Idempotent for a given group id.
pub async fn prepare(
    database_url: &str,
    brokers: &str,
    group: &str,
    devices: usize,
    partitions: i32,
) -> anyhow::Result<BenchGroup> {
    let group: GroupId = group.parse().context("bench group id")?;
    let baseline_group: GroupId = format!("{group}-b")
        .parse()
        .context("bench group id too long for its baseline sibling (at most 30 characters)")?;
    let tenant: TenantId = group.as_str().parse().context("bench tenant id")?;
    let device_ids: Vec<DeviceId> = (0..devices)
        .map(|i| format!("D{i:06}").parse())
        .collect::<Result<_, _>>()
        .context("bench device ids")?;

    let mut client = dakoku_store::connect(database_url)
        .await
        .context("connecting to Postgres (is the stack up? `scripts/stack up`)")?;
    dakoku_store::migrate(&mut client)
        .await
        .context("migrating the schema")?;
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO tenant_groups (group_id) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&group.as_str()],
    )
    .await
    .context("inserting the bench tenant group")?;
    tx.execute(
        "INSERT INTO tenants (tenant_id, name, group_id) VALUES ($1, 'ingest-bench', $2) \
         ON CONFLICT DO NOTHING",
        &[&tenant.as_str(), &group.as_str()],
    )
    .await
    .context("inserting the bench tenant")?;
    let names: Vec<&str> = device_ids.iter().map(DeviceId::as_str).collect();
    tx.execute(
        "INSERT INTO devices (tenant_id, device_id, description) \
         SELECT $1, d, 'ingest-bench' FROM unnest($2::text[]) AS d ON CONFLICT DO NOTHING",
        &[&tenant.as_str(), &names],
    )
    .await
    .context("inserting the bench devices")?;
    tx.commit().await?;

    let admin = admin(brokers)?;
    let settings = TopicSettings {
        partitions,
        ..TopicSettings::default()
    };
    settings.validate()?;
    admin
        .create_dakoku_topics(&topics_of_group(&group), &settings)
        .await
        .context("creating the bench group's topics (is Kafka up? `scripts/stack up`)")?;
    admin
        .create_dakoku_topics(&[Topic::Raw(baseline_group.clone())], &settings)
        .await
        .context("creating the baseline's raw topic")?;

    let token_keys = TokenKeys::generate_entry(KEY_ID);
    let keys = TokenKeys::parse(&token_keys).context("generated token key")?;
    let expires_at = chrono::Utc::now().timestamp() + TOKEN_VALIDITY.as_secs() as i64;
    let authorizations = device_ids
        .iter()
        .map(|device| {
            let token = keys.mint(&DeviceClaims {
                tenant: tenant.clone(),
                device: device.clone(),
                expires_at,
            });
            HeaderValue::from_str(&format!("Bearer {token}"))
        })
        .collect::<Result<_, _>>()
        .context("token as a header value")?;

    Ok(BenchGroup {
        group,
        baseline_group,
        tenant,
        devices: device_ids,
        authorizations,
        token_keys,
    })
}

/// Sum of the end offsets (high watermarks) of every partition of `topic`: the number of
/// records it holds, since the bench's topics are fresh and never compacted or truncated.
pub fn end_offsets_sum(brokers: &str, topic: &str) -> anyhow::Result<i64> {
    let marks = admin(brokers)
        .context("Kafka client for the offsets check")?
        .watermarks(topic)?;
    Ok(marks.values().map(|&(_low, high)| high).sum())
}

/// Deletes the group's own topics (not the shared quarantine), the baseline's topic and the
/// group's master data. Returns what could not be removed, as warnings: a failed cleanup must
/// not hide the results.
pub async fn remove(database_url: &str, brokers: &str, bench: &BenchGroup) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut names: Vec<String> = Topic::for_group(&bench.group)
        .iter()
        .map(Topic::name)
        .collect();
    names.push(bench.baseline_topic());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let deleted = match admin(brokers) {
        Ok(admin) => admin.delete_topics(&refs).await,
        Err(error) => Err(error),
    };
    if let Err(error) = deleted {
        warnings.push(format!("could not delete topics {refs:?}: {error}"));
    }

    let result = async {
        let mut client = dakoku_store::connect(database_url).await?;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM devices WHERE tenant_id = $1",
            &[&bench.tenant.as_str()],
        )
        .await?;
        tx.execute(
            "DELETE FROM tenants WHERE tenant_id = $1",
            &[&bench.tenant.as_str()],
        )
        .await?;
        tx.execute(
            "DELETE FROM tenant_groups WHERE group_id = $1",
            &[&bench.group.as_str()],
        )
        .await?;
        tx.commit().await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = result {
        warnings.push(format!(
            "could not delete the bench master data of {}: {error:#}",
            bench.group
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_group_ids_are_valid_and_differ() {
        let a = fresh_group_id();
        let b = fresh_group_id();
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(id.parse::<GroupId>().is_ok(), "{id}");
            assert!(id.parse::<TenantId>().is_ok(), "{id}");
        }
    }
}
