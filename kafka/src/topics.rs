//! Dakoku's own topics as CONTRACT §2 describes them: each tenant group's raw, checked and
//! attendance topics plus the shared quarantine, with the retention, compaction and durability
//! settings they are created with. `punchctl topics`, the test kit and the tools create topics
//! here, so every one is created the same way.

use dakoku_schemas::{GroupId, Topic};

use crate::admin::{Admin, Created, TopicSpec};
use crate::error::Result;

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

/// Settings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic settings: {0}")]
pub struct SettingsError(pub &'static str);

impl TopicSettings {
    /// Refuses settings that cannot work (no partitions, no replicas, zero retention).
    pub fn validate(&self) -> std::result::Result<(), SettingsError> {
        if self.partitions < 1 {
            return Err(SettingsError("partitions must be at least 1"));
        }
        if self.replication_factor < 1 {
            return Err(SettingsError("replication factor must be at least 1"));
        }
        if self.retention_ms < -1 || self.retention_ms == 0 {
            return Err(SettingsError(
                "retention must be -1 (unlimited) or a positive number of milliseconds",
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
            // Corrections are the only record of what an administrator changed and why; an
            // operator's shorter retention for the raw logs must never expire them.
            let retention_ms = match topic {
                Topic::Corrections(_) => -1,
                _ => self.retention_ms,
            };
            configs.push(("retention.ms", retention_ms.to_string()));
            configs.push(("retention.bytes", "-1".to_owned()));
        }
        configs
    }

    /// What to create for `topic`.
    pub fn spec(&self, topic: &Topic) -> TopicSpec {
        TopicSpec {
            name: topic.name(),
            partitions: self.partitions,
            replication_factor: self.replication_factor,
            configs: self
                .configs(topic)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        }
    }
}

/// The topics of `group` and the shared quarantine, in pipeline order.
pub fn topics_of_group(group: &GroupId) -> Vec<Topic> {
    let mut topics: Vec<Topic> = Topic::for_group(group).into_iter().collect();
    topics.push(Topic::Quarantine);
    topics
}

impl Admin {
    /// Creates `topics` with `settings`; one that exists already is reported, not changed.
    /// `settings` must be valid ([`TopicSettings::validate`]).
    pub async fn create_dakoku_topics(
        &self,
        topics: &[Topic],
        settings: &TopicSettings,
    ) -> Result<Vec<(Topic, Created)>> {
        let specs: Vec<TopicSpec> = topics.iter().map(|t| settings.spec(t)).collect();
        let created = self.create_topics(&specs).await?;
        Ok(topics
            .iter()
            .cloned()
            .zip(created.into_iter().map(|(_, outcome)| outcome))
            .inspect(|(topic, outcome)| tracing::info!(%topic, ?outcome, "topic ready"))
            .collect())
    }

    /// Every Dakoku topic the broker knows, with its partition count, sorted by name.
    pub fn dakoku_topics(&self) -> Result<Vec<(Topic, usize)>> {
        let mut topics: Vec<(Topic, usize)> = self
            .topics()?
            .into_iter()
            .filter_map(|(name, partitions)| Topic::parse(&name).map(|t| (t, partitions)))
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
        assert_eq!(settings.spec(&Topic::Raw(group())).name, "punches.raw.g1");
    }

    #[test]
    fn corrections_keep_everything_even_when_the_logs_expire() {
        let settings = TopicSettings {
            retention_ms: 7 * 24 * 3_600_000,
            ..TopicSettings::default()
        };
        let corrections = settings.configs(&Topic::Corrections(group()));
        assert!(corrections.contains(&("retention.ms", "-1".to_owned())));
        assert!(corrections.contains(&("cleanup.policy", "delete".to_owned())));
        let raw = settings.configs(&Topic::Raw(group()));
        assert!(raw.contains(&("retention.ms", "604800000".to_owned())));
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
            assert!(bad.validate().is_err());
        }
    }
}
