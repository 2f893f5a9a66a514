//! A run's tenant group in Kafka: its topics created as `punchctl topics create` makes them,
//! and deleted after the run.

use std::time::Duration;

use dakoku_kafka::{Admin, ClientFactory, TopicSettings, topics_of_group};
use dakoku_schemas::{GroupId, Topic};

/// Timeout of Kafka admin calls.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// The storm's admin client on `brokers`.
fn admin(brokers: &str) -> dakoku_kafka::Result<Admin> {
    Admin::new(&ClientFactory::new(brokers), "storm", KAFKA_TIMEOUT)
}

/// Creates `group`'s topics and the shared quarantine with `partitions` partitions each (the
/// other settings Dakoku's defaults); existing ones are kept.
pub async fn create(brokers: &str, group: &GroupId, partitions: i32) -> anyhow::Result<()> {
    let settings = TopicSettings {
        partitions,
        ..TopicSettings::default()
    };
    settings.validate()?;
    admin(brokers)?
        .create_dakoku_topics(&topics_of_group(group), &settings)
        .await?;
    Ok(())
}

/// Deletes `group`'s own topics (not the shared quarantine).
pub async fn delete(brokers: &str, group: &GroupId) -> anyhow::Result<()> {
    let names: Vec<String> = Topic::for_group(group).iter().map(Topic::name).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    admin(brokers)?.delete_topics(&names).await?;
    Ok(())
}
