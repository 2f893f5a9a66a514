//! The consumer's configuration: one typed struct, read once from flags and the environment,
//! units in the names, cross-field checks at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use dakoku_kafka::{ClientFactory, KafkaArgs};
use dakoku_schemas::GroupId;

/// Everything `attendance` can be told. Defaults suit the local stack.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where Kafka is (`--brokers`/`KAFKA_BROKERS`) and its client properties.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Postgres URL (punches, attendance days, offsets; tenants' calendars are read from it).
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Tenant group to consume (`punches.checked.<group>`, consumer group `attendance.<group>`);
    /// repeat for several groups, or set ATTENDANCE_GROUPS=a,b. Production runs one per group.
    #[arg(
        long = "group",
        env = "ATTENDANCE_GROUPS",
        value_delimiter = ',',
        required = true
    )]
    pub groups: Vec<GroupId>,

    /// Most records in one batch (one Postgres transaction).
    #[arg(long, env = "ATTENDANCE_BATCH_MAX_RECORDS", default_value_t = 5_000)]
    pub batch_max_records: usize,
    /// Longest a batch waits for more records after its first one, in milliseconds.
    #[arg(long, env = "ATTENDANCE_BATCH_MAX_WAIT_MS", default_value_t = 200)]
    pub batch_max_wait_ms: u64,
    /// Budget of one batch transaction (and of connecting); a Postgres that does not answer
    /// within it is treated as down: the batch is rolled back and retried.
    #[arg(
        long,
        env = "ATTENDANCE_STATEMENT_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub statement_timeout_ms: u64,
    /// First retry delay after a Postgres or Kafka failure; doubles up to the maximum.
    #[arg(long, env = "ATTENDANCE_RETRY_INITIAL_MS", default_value_t = 200)]
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    #[arg(long, env = "ATTENDANCE_RETRY_MAX_MS", default_value_t = 10_000)]
    pub retry_max_ms: u64,
    /// Time allowed at shutdown to commit the open batch and publish its days; what does not
    /// finish is rolled back and read again at the next start. Below the session timeout.
    #[arg(long, env = "ATTENDANCE_DRAIN_TIMEOUT_MS", default_value_t = 10_000)]
    pub drain_timeout_ms: u64,
    /// librdkafka `session.timeout.ms` of the consumer group.
    #[arg(long, env = "ATTENDANCE_SESSION_TIMEOUT_MS", default_value_t = 45_000)]
    pub session_timeout_ms: u64,
    /// A batch of at least 20 records of which more than this share cannot be decoded stops
    /// the consumer (a bad deploy upstream) instead of quarantining everything.
    #[arg(long, env = "ATTENDANCE_MAX_INVALID_RATIO", default_value_t = 0.5)]
    pub max_invalid_ratio: f64,
    /// Address of `/metrics`, `/healthz` and `/readyz`; `none` to serve none.
    #[arg(long, env = "ATTENDANCE_METRICS_LISTEN", default_value = "127.0.0.1:9102",
          value_parser = parse_listen)]
    pub metrics_listen: MetricsListen,
    /// Kafka `client.id` (default: `attendance-<host>-<pid>`).
    #[arg(long, env = "ATTENDANCE_CLIENT_ID")]
    pub client_id: Option<String>,

    /// Testing only: hold every batch transaction open this long before COMMIT, so that a
    /// kill lands mid-batch.
    #[arg(
        long,
        env = "ATTENDANCE_DEBUG_BATCH_DELAY_MS",
        default_value_t = 0,
        hide = true
    )]
    pub debug_batch_delay_ms: u64,
}

/// Where to serve metrics and health, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

fn parse_listen(s: &str) -> Result<MetricsListen, String> {
    if s.trim().is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(MetricsListen(None));
    }
    s.parse::<SocketAddr>()
        .map(|addr| MetricsListen(Some(addr)))
        .map_err(|e| format!("{s:?} is not host:port or none: {e}"))
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// A configuration for `groups` on the given stack with the defaults, no metrics listener
    /// (for tests and tools).
    pub fn new(brokers: &str, database_url: &str, groups: Vec<GroupId>) -> Self {
        Self {
            kafka: KafkaArgs::new(brokers),
            database_url: database_url.to_owned(),
            groups,
            batch_max_records: 5_000,
            batch_max_wait_ms: 200,
            statement_timeout_ms: 30_000,
            retry_initial_ms: 200,
            retry_max_ms: 10_000,
            drain_timeout_ms: 10_000,
            session_timeout_ms: 45_000,
            max_invalid_ratio: 0.5,
            metrics_listen: MetricsListen(None),
            client_id: None,
            debug_batch_delay_ms: 0,
        }
    }

    /// Cross-field checks, run once at start-up.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if self.groups.is_empty() {
            return fail("at least one --group is needed".into());
        }
        let mut groups = self.groups.clone();
        groups.sort();
        groups.dedup();
        if groups.len() != self.groups.len() {
            return fail("a --group is given twice".into());
        }
        if self.batch_max_records == 0 {
            return fail("batch_max_records must be at least 1".into());
        }
        if self.retry_initial_ms == 0 || self.retry_initial_ms > self.retry_max_ms {
            return fail("retry_initial_ms must be between 1 and retry_max_ms".into());
        }
        if self.drain_timeout_ms >= self.session_timeout_ms {
            return fail(format!(
                "drain_timeout_ms ({}) must be below session_timeout_ms ({}): a drain longer \
                 than the session gets the partitions reassigned while they are still written",
                self.drain_timeout_ms, self.session_timeout_ms
            ));
        }
        if !(0.0..=1.0).contains(&self.max_invalid_ratio) {
            return fail("max_invalid_ratio must be between 0 and 1".into());
        }
        Ok(())
    }

    /// `batch_max_wait_ms` as a duration.
    pub fn batch_max_wait(&self) -> Duration {
        Duration::from_millis(self.batch_max_wait_ms)
    }

    /// `statement_timeout_ms` as a duration.
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }

    /// `drain_timeout_ms` as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// `debug_batch_delay_ms` as a duration.
    pub fn debug_batch_delay(&self) -> Duration {
        Duration::from_millis(self.debug_batch_delay_ms)
    }

    /// The Kafka client factory for [`Config::kafka`]; a properties file that cannot be read
    /// is a configuration error.
    pub fn kafka_factory(&self) -> Result<ClientFactory, ConfigError> {
        self.kafka
            .factory()
            .map_err(|error| ConfigError(error.to_string()))
    }

    /// The Kafka client id.
    pub fn client_id(&self) -> String {
        self.client_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
            format!("attendance-{host}-{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(
            "127.0.0.1:9092",
            "postgres://x@127.0.0.1/x",
            vec!["g".parse().expect("group")],
        )
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().expect("defaults");
    }

    #[test]
    fn cross_field_checks() {
        let mut c = config();
        c.drain_timeout_ms = c.session_timeout_ms;
        assert!(c.validate().is_err());
        let mut c = config();
        c.groups.push("g".parse().expect("group"));
        assert!(c.validate().is_err());
        let mut c = config();
        c.retry_initial_ms = c.retry_max_ms + 1;
        assert!(c.validate().is_err());
        let mut c = config();
        c.batch_max_records = 0;
        assert!(c.validate().is_err());
    }
}
