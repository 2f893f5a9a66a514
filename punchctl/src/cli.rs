//! The command line: verbs, flags and the dispatcher.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use dakoku_schemas::GroupId;

use crate::topics::{Outcome, TopicSettings, Topics};

/// Operate a Dakoku installation: topics, schema, master data, intake, replay and audit.
#[derive(Debug, Parser)]
#[command(name = "punchctl", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

/// Where Kafka and Postgres are.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    /// Postgres connection URL.
    #[arg(long, global = true, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Kafka topics of tenant groups.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// The Postgres schema.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a tenant group's topics (raw, checked, attendance.daily) and the shared
    /// quarantine topic. Idempotent: existing topics are reported and left unchanged.
    Create {
        /// The tenant group ([a-z0-9-]{1,32}); repeat for several groups.
        #[arg(long = "group", required = true, value_parser = parse_group)]
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

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (safe to run concurrently and repeatedly).
    Migrate,
}

fn parse_group(s: &str) -> Result<GroupId, String> {
    s.parse::<GroupId>().map_err(|e| e.to_string())
}

/// Runs one command; the exit code tells scripts whether something needs attention.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let conn = cli.connection;
    match cli.command {
        Command::Topics(TopicsCommand::Create {
            groups,
            partitions,
            replication_factor,
            retention_ms,
        }) => {
            let settings = TopicSettings {
                partitions,
                replication_factor,
                retention_ms,
            };
            let topics = Topics::connect(&conn.brokers)?;
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
                    println!("{:<40} {what}", topic.name());
                }
            }
        }
        Command::Topics(TopicsCommand::List) => {
            let topics = Topics::connect(&conn.brokers)?;
            for (topic, partitions) in topics.list()? {
                println!("{:<40} {partitions} partitions", topic.name());
            }
        }
        Command::Db(DbCommand::Migrate) => {
            let migrated = crate::db::migrate(&conn.database_url)
                .await
                .with_context(|| {
                    format!("migrating {}", dakoku_store::redact(&conn.database_url))
                })?;
            for name in &migrated.applied {
                println!("applied {name}");
            }
            let version = migrated
                .current_version
                .map_or_else(|| "none".to_owned(), |v| v.to_string());
            if migrated.applied.is_empty() {
                println!("schema up to date (version {version})");
            } else {
                println!("schema at version {version}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
