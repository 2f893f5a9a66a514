//! `punchctl topics`: the Kafka topics of a tenant group, created as CONTRACT §2 describes.
//!
//! Each tenant group gets its own raw, checked and attendance topics so that a storm in one
//! group cannot delay another; `punches.quarantine` is shared. Creation is idempotent.

use std::time::Duration;

use dakoku_schemas::{GroupId, Topic};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// How long to wait for the broker on each admin call before giving up with an error.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors creating or describing topics.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The Kafka client could not be created (bad broker list or configuration).
    #[error("cannot create a Kafka client for {brokers}: {source}")]
    Client {
        /// The bootstrap servers given.
        brokers: String,
        /// What librdkafka said.
        #[source]
        source: KafkaError,
    },
    /// The broker did not answer or refused the request as a whole.
    #[error(
        "Kafka admin request failed: {0}; is the broker up? (`scripts/stack status`, KAFKA_BROKERS)"
    )]
    Admin(#[source] KafkaError),
    /// The broker refused to create one topic.
    #[error("cannot create topic {topic}: {code}")]
    Create {
        /// The topic name.
        topic: String,
        /// Kafka's error code.
        code: RDKafkaErrorCode,
    },
    /// The settings cannot work (e.g. zero partitions).
    #[error("invalid topic settings: {0}")]
    Settings(String),
}

/// Partitioning, replication and retention for newly created topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    /// Partitions per topic; consumers of a group scale up to this many.
    pub partitions: i32,
    /// Replicas per partition: 1 on the local stack, 3 in production.
    pub replication_factor: i32,
    /// `retention.ms` of the non-compacted topics; -1 (unlimited) by default because the raw
    /// log is the source of truth and replays start from its beginning.
    pub retention_ms: i64,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            partitions: 6,
            replication_factor: 1,
            retention_ms: -1,
        }
    }
}

impl TopicSettings {
    fn validate(&self) -> Result<(), TopicsError> {
        if self.partitions < 1 {
            return Err(TopicsError::Settings(
                "partitions must be at least 1".into(),
            ));
        }
        if self.replication_factor < 1 {
            return Err(TopicsError::Settings(
                "replication factor must be at least 1".into(),
            ));
        }
        if self.retention_ms < -1 || self.retention_ms == 0 {
            return Err(TopicsError::Settings(
                "retention must be -1 (unlimited) or a positive number of milliseconds".into(),
            ));
        }
        Ok(())
    }

    /// Topic-level configuration for `topic` (cleanup policy, retention, durability).
    pub fn configs(&self, topic: &Topic) -> Vec<(&'static str, String)> {
        // With acks=all, two in-sync replicas survive one broker loss; never more than exist.
        let min_isr = self.replication_factor.min(2);
        let mut configs = vec![("min.insync.replicas", min_isr.to_string())];
        if topic.is_compacted() {
            configs.push(("cleanup.policy", "compact".to_owned()));
        } else {
            configs.push(("cleanup.policy", "delete".to_owned()));
            configs.push(("retention.ms", self.retention_ms.to_string()));
            configs.push(("retention.bytes", "-1".to_owned()));
        }
        configs
    }
}

/// What happened to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Created now.
    Created,
    /// It was there already, with this many partitions (left unchanged).
    Exists {
        /// Partition count of the existing topic.
        partitions: usize,
    },
}

/// A thin wrapper over librdkafka's admin client for Dakoku's topics.
pub struct Topics {
    admin: AdminClient<DefaultClientContext>,
    metadata: BaseConsumer,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics").finish_non_exhaustive()
    }
}

impl Topics {
    /// Connects (lazily) to the brokers in `brokers` (`host:port[,host:port...]`).
    pub fn connect(brokers: &str) -> Result<Self, TopicsError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        let client_err = |source| TopicsError::Client {
            brokers: brokers.to_owned(),
            source,
        };
        Ok(Self {
            admin: config.create().map_err(client_err)?,
            metadata: config.create().map_err(client_err)?,
        })
    }

    /// Creates the topics of `group` plus the shared quarantine topic; existing ones are kept.
    pub async fn create_for_group(
        &self,
        group: &GroupId,
        settings: &TopicSettings,
    ) -> Result<Vec<(Topic, Outcome)>, TopicsError> {
        let mut topics: Vec<Topic> = Topic::for_group(group).into_iter().collect();
        topics.push(Topic::Quarantine);
        self.create(&topics, settings).await
    }

    /// Creates `topics` with `settings`; a topic that already exists is reported, not changed.
    pub async fn create(
        &self,
        topics: &[Topic],
        settings: &TopicSettings,
    ) -> Result<Vec<(Topic, Outcome)>, TopicsError> {
        settings.validate()?;
        let names: Vec<String> = topics.iter().map(Topic::name).collect();
        let configs: Vec<Vec<(&'static str, String)>> =
            topics.iter().map(|t| settings.configs(t)).collect();
        let new_topics: Vec<NewTopic<'_>> = names
            .iter()
            .zip(&configs)
            .map(|(name, configs)| {
                configs.iter().fold(
                    NewTopic::new(
                        name,
                        settings.partitions,
                        TopicReplication::Fixed(settings.replication_factor),
                    ),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .request_timeout(Some(ADMIN_TIMEOUT));
        let results = self
            .admin
            .create_topics(&new_topics, &options)
            .await
            .map_err(TopicsError::Admin)?;
        let mut outcomes = Vec::with_capacity(topics.len());
        for (topic, result) in topics.iter().zip(results) {
            let outcome = match result {
                Ok(_) => Outcome::Created,
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => Outcome::Exists {
                    partitions: self.partition_count(&topic.name())?.unwrap_or(0),
                },
                Err((name, code)) => return Err(TopicsError::Create { topic: name, code }),
            };
            tracing::info!(topic = %topic.name(), ?outcome, "topic ready");
            outcomes.push((topic.clone(), outcome));
        }
        Ok(outcomes)
    }

    /// Partition count of `topic`, or `None` when the broker does not know it.
    pub fn partition_count(&self, topic: &str) -> Result<Option<usize>, TopicsError> {
        let metadata = self
            .metadata
            .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
            .map_err(TopicsError::Admin)?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len()))
    }

    /// Every Dakoku topic the broker knows, with its partition count, sorted by name.
    pub fn list(&self) -> Result<Vec<(Topic, usize)>, TopicsError> {
        let metadata = self
            .metadata
            .fetch_metadata(None, ADMIN_TIMEOUT)
            .map_err(TopicsError::Admin)?;
        let mut topics: Vec<(Topic, usize)> = metadata
            .topics()
            .iter()
            .filter_map(|t| Topic::parse(t.name()).map(|topic| (topic, t.partitions().len())))
            .collect();
        topics.sort_by_key(|(topic, _)| topic.name());
        Ok(topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupId {
        "g1".parse().expect("valid group id")
    }

    #[test]
    fn compacted_topic_has_no_retention_limit_and_others_keep_everything() {
        let settings = TopicSettings::default();
        let daily = settings.configs(&Topic::AttendanceDaily(group()));
        assert!(daily.contains(&("cleanup.policy", "compact".to_owned())));
        assert!(!daily.iter().any(|(k, _)| *k == "retention.ms"));
        let raw = settings.configs(&Topic::Raw(group()));
        assert!(raw.contains(&("cleanup.policy", "delete".to_owned())));
        assert!(raw.contains(&("retention.ms", "-1".to_owned())));
    }

    #[test]
    fn min_insync_replicas_never_exceeds_the_replication_factor() {
        for (rf, want) in [(1, "1"), (2, "2"), (3, "2")] {
            let settings = TopicSettings {
                replication_factor: rf,
                ..TopicSettings::default()
            };
            let configs = settings.configs(&Topic::Raw(group()));
            assert!(configs.contains(&("min.insync.replicas", want.to_owned())));
        }
    }

    #[test]
    fn nonsense_settings_are_refused() {
        for bad in [
            TopicSettings {
                partitions: 0,
                ..TopicSettings::default()
            },
            TopicSettings {
                replication_factor: 0,
                ..TopicSettings::default()
            },
            TopicSettings {
                retention_ms: 0,
                ..TopicSettings::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(TopicsError::Settings(_))));
        }
    }
}
