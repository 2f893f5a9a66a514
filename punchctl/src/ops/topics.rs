//! `punchctl topics`: the Kafka topics of a tenant group, created as CONTRACT §2 describes
//! (the settings themselves are `dakoku_kafka::topics`, shared with the test kit and tools).
//!
//! Each tenant group gets its own raw, checked and attendance topics so that a storm in one
//! group cannot delay another; `punches.quarantine` is shared. Creation is idempotent.

use std::time::Duration;

use dakoku_kafka::{Admin, ClientFactory, SettingsError, topics_of_group};
use dakoku_schemas::{GroupId, Topic};

pub use dakoku_kafka::TopicSettings;
pub use dakoku_kafka::admin::Created as Outcome;

/// How long to wait for the broker on each admin call before giving up with an error.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors creating or describing topics.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The broker did not answer or refused a request.
    #[error("{0}; is the broker up? (`scripts/stack status`, KAFKA_BROKERS)")]
    Kafka(#[from] dakoku_kafka::Error),
    /// The settings cannot work (e.g. zero partitions).
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// Dakoku's topics on one cluster.
#[derive(Debug)]
pub struct Topics {
    admin: Admin,
}

impl Topics {
    /// Connects (lazily) to the brokers in `brokers` (`host:port[,host:port...]`).
    pub fn connect(brokers: &str) -> Result<Self, TopicsError> {
        Self::with_factory(&ClientFactory::new(brokers))
    }

    /// Connects (lazily) with the clients `factory` makes.
    pub fn with_factory(factory: &ClientFactory) -> Result<Self, TopicsError> {
        Ok(Self {
            admin: Admin::new(factory, "punchctl-topics", ADMIN_TIMEOUT)?,
        })
    }

    /// Creates the topics of `group` plus the shared quarantine topic; existing ones are kept.
    pub async fn create_for_group(
        &self,
        group: &GroupId,
        settings: &TopicSettings,
    ) -> Result<Vec<(Topic, Outcome)>, TopicsError> {
        self.create(&topics_of_group(group), settings).await
    }

    /// Creates `topics` with `settings`; a topic that already exists is reported, not changed.
    pub async fn create(
        &self,
        topics: &[Topic],
        settings: &TopicSettings,
    ) -> Result<Vec<(Topic, Outcome)>, TopicsError> {
        settings.validate()?;
        Ok(self.admin.create_dakoku_topics(topics, settings).await?)
    }

    /// Partition count of `topic`, or `None` when the broker does not know it.
    pub fn partition_count(&self, topic: &str) -> Result<Option<usize>, TopicsError> {
        Ok(self.admin.partition_count(topic)?)
    }

    /// Every Dakoku topic the broker knows, with its partition count, sorted by name.
    pub fn list(&self) -> Result<Vec<(Topic, usize)>, TopicsError> {
        Ok(self.admin.dakoku_topics()?)
    }
}
