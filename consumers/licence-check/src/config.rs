//! The configuration of `licence-check`: one typed struct, read once from flags and the
//! environment, units in the names, cross-field checks at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};
use dakoku_kafka::{ClientFactory, KafkaArgs};
use dakoku_schemas::{ConsumerGroup, GroupId};

/// What the loop does with each raw record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Decode, check against the master-data snapshot, produce a `CheckedPunch`. The service.
    Check,
    /// Copy each record unchanged to the output topic through the same transactional loop,
    /// without decoding or checking: the benchmark's baseline. Never for production.
    Passthrough,
}

/// Everything `licence-check` can be told. Defaults suit the local stack.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Tenant groups to serve, each with its own consumer group `licence-check.<group>`,
    /// transactional producer and thread; repeat the flag or separate with commas.
    #[arg(
        long = "group",
        env = "LICENCE_CHECK_GROUPS",
        value_delimiter = ',',
        required = true
    )]
    pub groups: Vec<GroupId>,
    /// Where Kafka is (`--brokers`/`KAFKA_BROKERS`) and its client properties.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Postgres URL of the master data (read in the background, never per punch).
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// This instance's stable id (default: the host name). It must survive restarts and be
    /// unique among running instances: it names the transactional producer
    /// (`licence-check.<group>.<instance>`) so that a restarted instance fences its zombie, and
    /// the static group membership (`group.instance.id`) so a restart rejoins at once.
    #[arg(long, env = "LICENCE_CHECK_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Address of `/metrics` (Prometheus), `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "LICENCE_CHECK_METRICS_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_listen: SocketAddr,

    /// Most records in one transaction.
    #[arg(long, env = "LICENCE_CHECK_BATCH_MAX_RECORDS", default_value_t = 5_000)]
    pub batch_max_records: usize,
    /// Longest a transaction stays open collecting records before it is committed, in ms.
    #[arg(long, env = "LICENCE_CHECK_BATCH_MAX_MS", default_value_t = 250)]
    pub batch_max_ms: u64,
    /// librdkafka `transaction.timeout.ms`: the broker aborts a transaction left open longer
    /// (e.g. by a crashed instance that never comes back).
    #[arg(
        long,
        env = "LICENCE_CHECK_TRANSACTION_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    pub transaction_timeout_ms: u64,
    /// Time allowed for one transactional call (init, commit, abort, offsets) to the broker.
    #[arg(
        long,
        env = "LICENCE_CHECK_KAFKA_OP_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub kafka_op_timeout_ms: u64,
    /// librdkafka `session.timeout.ms`: how long the group waits for a silent member.
    #[arg(
        long,
        env = "LICENCE_CHECK_SESSION_TIMEOUT_MS",
        default_value_t = 45_000
    )]
    pub session_timeout_ms: u64,
    /// On shutdown, the budget to finish and commit the open transaction. Must be below the
    /// session timeout, so the group never reassigns partitions under a committing instance.
    #[arg(
        long,
        env = "LICENCE_CHECK_SHUTDOWN_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub shutdown_timeout_ms: u64,

    /// Circuit breaker: the consumer group stops with an error when, among the last
    /// `breaker_window_records` records, more than this fraction were undecodable.
    #[arg(
        long,
        env = "LICENCE_CHECK_BREAKER_MAX_INVALID_RATIO",
        default_value_t = 0.2
    )]
    pub breaker_max_invalid_ratio: f64,
    /// Circuit breaker: how many recent records the ratio is computed over.
    #[arg(
        long,
        env = "LICENCE_CHECK_BREAKER_WINDOW_RECORDS",
        default_value_t = 1_000
    )]
    pub breaker_window_records: usize,
    /// Circuit breaker: the fewest records seen before it may trip (one bad record out of one
    /// is not a bad deploy).
    #[arg(long, env = "LICENCE_CHECK_BREAKER_MIN_RECORDS", default_value_t = 100)]
    pub breaker_min_records: usize,
    /// Most bytes of an undecodable record kept in its quarantine record.
    #[arg(long, env = "LICENCE_CHECK_QUARANTINE_MAX_PAYLOAD_BYTES", default_value_t = 64 * 1024)]
    pub quarantine_max_payload_bytes: usize,

    /// How often the master-data version is polled even without a notification, in ms.
    #[arg(long, env = "LICENCE_CHECK_SNAPSHOT_POLL_MS", default_value_t = 5_000)]
    pub snapshot_poll_ms: u64,
    /// `check` (the service) or `passthrough` (benchmark baseline: copy without checking).
    #[arg(long, env = "LICENCE_CHECK_MODE", value_enum, default_value_t = Mode::Check)]
    pub mode: Mode,
    /// Testing only: sleep this long before committing each transaction, so a crash can be
    /// made to land while a transaction is open.
    #[arg(
        long,
        env = "LICENCE_CHECK_DEBUG_BATCH_DELAY_MS",
        default_value_t = 0,
        hide = true
    )]
    pub debug_batch_delay_ms: u64,
    /// Test and benchmark knob, never for production: sleep this many microseconds per checked
    /// punch, to replay the incident's slow licence check behind the log (`storm run
    /// --scenario incident`). 0 (the default) means no delay.
    #[arg(long, env = "DAKOKU_CHECK_DELAY_US", default_value_t = 0)]
    pub check_delay_us: u64,
}

/// A configuration that cannot work, said before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid licence-check configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// A configuration for `groups` on the given broker and database with every other default
    /// (metrics on an ephemeral port), for tests and tools.
    pub fn new(brokers: &str, database_url: &str, groups: &[GroupId]) -> Self {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        let groups = groups
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut config = Wrapper::parse_from([
            "licence-check",
            "--brokers",
            brokers,
            "--database-url",
            database_url,
            "--group",
            &groups,
        ])
        .config;
        config.metrics_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        if self.groups.is_empty() {
            return fail("give at least one --group".into());
        }
        let mut sorted = self.groups.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.groups.len() {
            return fail("a --group is given twice".into());
        }
        if self.batch_max_records == 0 || self.batch_max_ms == 0 {
            return fail("batch_max_records and batch_max_ms must be positive".into());
        }
        if self.shutdown_timeout_ms >= self.session_timeout_ms {
            return fail(format!(
                "shutdown_timeout_ms ({}) must be below session_timeout_ms ({}), so the open transaction is committed before the group hands its partitions to another instance",
                self.shutdown_timeout_ms, self.session_timeout_ms
            ));
        }
        if self.batch_max_ms + self.debug_batch_delay_ms + self.kafka_op_timeout_ms
            >= self.transaction_timeout_ms
        {
            return fail(format!(
                "batch_max_ms + kafka_op_timeout_ms (+ debug delay) = {} ms must be below transaction_timeout_ms ({}), or the broker aborts healthy transactions",
                self.batch_max_ms + self.kafka_op_timeout_ms + self.debug_batch_delay_ms,
                self.transaction_timeout_ms
            ));
        }
        if !(self.breaker_max_invalid_ratio > 0.0 && self.breaker_max_invalid_ratio <= 1.0) {
            return fail(format!(
                "breaker_max_invalid_ratio must be in (0, 1], got {}",
                self.breaker_max_invalid_ratio
            ));
        }
        if self.breaker_window_records == 0
            || self.breaker_min_records == 0
            || self.breaker_min_records > self.breaker_window_records
        {
            return fail("breaker_min_records must be between 1 and breaker_window_records".into());
        }
        if let Some(id) = &self.instance_id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        {
            return fail(format!(
                "instance id {id:?} must be 1 to 64 characters [A-Za-z0-9_.-]"
            ));
        }
        Ok(())
    }

    /// The Kafka client factory for [`Config::kafka`]; a properties file that cannot be read
    /// or parsed is a configuration error, said before anything starts.
    pub fn kafka_factory(&self) -> Result<ClientFactory, ConfigError> {
        self.kafka
            .factory()
            .map_err(|error| ConfigError(error.to_string()))
    }

    /// `instance_id`, or the host name.
    pub fn instance_id(&self) -> String {
        self.instance_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| {
                    h.trim()
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        .collect::<String>()
                })
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned())
        })
    }

    /// The Kafka consumer group of `group`: `licence-check.<group>`.
    pub fn consumer_group(group: &GroupId) -> String {
        ConsumerGroup::LicenceCheck(group.clone()).name()
    }

    /// The transactional id of `group` on this instance: `licence-check.<group>.<instance>`.
    pub fn transactional_id(&self, group: &GroupId) -> String {
        ConsumerGroup::LicenceCheck(group.clone()).transactional_id(&self.instance_id())
    }

    /// [`Config::kafka_op_timeout_ms`] as a duration.
    pub fn kafka_op_timeout(&self) -> Duration {
        Duration::from_millis(self.kafka_op_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(
            "127.0.0.1:9092",
            "postgres://x@127.0.0.1/x",
            &["g1".parse().expect("group")],
        )
    }

    #[test]
    fn defaults_are_consistent() {
        assert_eq!(config().validate(), Ok(()));
        assert_eq!(config().mode, Mode::Check);
        assert_eq!(
            Config::consumer_group(&"g1".parse().expect("group")),
            "licence-check.g1"
        );
    }

    #[test]
    fn shutdown_must_fit_in_the_session_timeout() {
        let mut c = config();
        c.shutdown_timeout_ms = c.session_timeout_ms;
        let error = c.validate().expect_err("refused");
        assert!(error.to_string().contains("session_timeout_ms"), "{error}");
    }

    #[test]
    fn a_batch_must_fit_in_the_transaction_timeout() {
        let mut c = config();
        c.debug_batch_delay_ms = c.transaction_timeout_ms;
        assert!(c.validate().is_err());
    }

    #[test]
    fn breaker_limits_are_checked() {
        let mut c = config();
        c.breaker_max_invalid_ratio = 0.0;
        assert!(c.validate().is_err());
        let mut c = config();
        c.breaker_min_records = c.breaker_window_records + 1;
        assert!(c.validate().is_err());
    }

    #[test]
    fn groups_are_unique_and_instance_ids_safe() {
        let mut c = config();
        c.groups.push("g1".parse().expect("group"));
        assert!(c.validate().is_err());
        let mut c = config();
        c.instance_id = Some("a b".into());
        assert!(c.validate().is_err());
        c.instance_id = Some("pod-0".into());
        assert_eq!(
            c.transactional_id(&"g1".parse().expect("group")),
            "licence-check.g1.pod-0"
        );
    }
}
