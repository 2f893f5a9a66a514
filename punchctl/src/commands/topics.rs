//! `punchctl topics`: create a group's topics (idempotent) and list Dakoku's topics.

use std::io::Write;

use anyhow::Context as _;
use clap::Subcommand;
use dakoku_kafka::ClientFactory;
use dakoku_schemas::GroupId;

use crate::ops::topics::{Outcome, TopicSettings, Topics};

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a tenant group's topics (raw, checked, attendance.daily) and the shared
    /// quarantine topic. Idempotent: existing topics are reported and left unchanged.
    Create {
        /// The tenant group ([a-z0-9-]{1,32}); repeat for several groups.
        #[arg(long = "group", required = true)]
        groups: Vec<GroupId>,
        /// Partitions per topic (consumers of a group scale up to this many).
        #[arg(long, default_value_t = TopicSettings::default().partitions)]
        partitions: i32,
        /// Replicas per partition (1 locally, 3 in production).
        #[arg(long, default_value_t = TopicSettings::default().replication_factor)]
        replication_factor: i32,
        /// retention.ms of the raw, checked and quarantine topics; -1 keeps everything.
        #[arg(long, default_value_t = TopicSettings::default().retention_ms, allow_negative_numbers = true)]
        retention_ms: i64,
    },
    /// List Dakoku's topics on the broker with their partition counts.
    List,
}

/// Runs `punchctl topics ...`.
pub async fn run(
    command: TopicsCommand,
    kafka: &ClientFactory,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        TopicsCommand::Create {
            groups,
            partitions,
            replication_factor,
            retention_ms,
        } => {
            let settings = TopicSettings {
                partitions,
                replication_factor,
                retention_ms,
            };
            let topics = Topics::with_factory(kafka)?;
            for group in &groups {
                let outcomes = topics
                    .create_for_group(group, &settings)
                    .await
                    .with_context(|| format!("creating the topics of group {group}"))?;
                for (topic, outcome) in outcomes {
                    let what = match outcome {
                        Outcome::Created => format!("created ({partitions} partitions)"),
                        Outcome::Exists { partitions } => {
                            format!("exists ({partitions} partitions, unchanged)")
                        }
                    };
                    writeln!(out, "{:<40} {what}", topic.name())?;
                }
            }
        }
        TopicsCommand::List => {
            let topics = Topics::with_factory(kafka)?;
            for (topic, partitions) in topics.list()? {
                writeln!(out, "{:<40} {partitions} partitions", topic.name())?;
            }
        }
    }
    Ok(())
}
