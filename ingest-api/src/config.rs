//! The acceptor's configuration: one typed struct, read once from flags and the environment,
//! with units in the names and cross-field checks at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use dakoku_kafka::{ClientFactory, KafkaArgs};

/// Everything `ingest-api` can be told. Defaults suit the local stack.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "INGEST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where Kafka is (`--brokers`/`KAFKA_BROKERS`) and its client properties.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Postgres URL of the master data (read only, in the background, never per request).
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Device-token keys, `<key id>:<base64 secret>[,...]`; all verify, the first signs.
    #[arg(long, env = "DAKOKU_TOKEN_KEYS", hide_env_values = true)]
    pub token_keys: String,
    /// This acceptor's id, recorded in every RawPunch (default: host name and pid).
    #[arg(long, env = "INGEST_ACCEPTOR_ID")]
    pub acceptor_id: Option<String>,

    /// Largest request body, in bytes.
    #[arg(long, env = "INGEST_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most punches in one request.
    #[arg(long, env = "INGEST_MAX_PUNCHES", default_value_t = 1000)]
    pub max_punches: usize,
    /// Punches that may be in flight (parsed, not yet answered) across all requests. This and
    /// `max_inflight_body_bytes` bound the acceptor's memory whatever the load.
    #[arg(long, env = "INGEST_MAX_INFLIGHT_PUNCHES", default_value_t = 50_000)]
    pub max_inflight_punches: usize,
    /// Request-body bytes that may be held at once across all requests.
    #[arg(long, env = "INGEST_MAX_INFLIGHT_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_inflight_body_bytes: usize,
    /// Open connections at most; further connections wait in the kernel's backlog.
    #[arg(long, env = "INGEST_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Every request is answered within this time, whatever Kafka does.
    #[arg(long, env = "INGEST_REQUEST_DEADLINE_MS", default_value_t = 10_000)]
    pub request_deadline_ms: u64,
    /// Time allowed for a client to send its headers (slow clients are cut off).
    #[arg(long, env = "INGEST_HEADER_READ_TIMEOUT_MS", default_value_t = 5_000)]
    pub header_read_timeout_ms: u64,
    /// After answering, how long a connection is still read from (and the bytes discarded)
    /// before it closes, so a client still sending a body it was refused gets the answer
    /// instead of a reset; a quarter of it without data ends the wait. 0 closes at once.
    #[arg(long, env = "INGEST_LINGERING_CLOSE_MS", default_value_t = 2_000)]
    pub lingering_close_ms: u64,
    /// Time allowed for a client to send its body.
    #[arg(long, env = "INGEST_BODY_READ_TIMEOUT_MS", default_value_t = 3_000)]
    pub body_read_timeout_ms: u64,
    /// librdkafka `message.timeout.ms`: a record not confirmed by then fails, so the request
    /// can answer `503` before its deadline. Must be below the deadline minus the body timeout.
    #[arg(long, env = "INGEST_MESSAGE_TIMEOUT_MS", default_value_t = 5_000)]
    pub message_timeout_ms: u64,
    /// librdkafka `linger.ms`: batching delay; a few ms buys much throughput.
    #[arg(long, env = "INGEST_LINGER_MS", default_value_t = 5)]
    pub linger_ms: u64,
    /// librdkafka `queue.buffering.max.messages`: the producer queue bound; full means `503`.
    #[arg(
        long,
        env = "INGEST_PRODUCER_QUEUE_MESSAGES",
        default_value_t = 100_000
    )]
    pub producer_queue_messages: usize,
    /// librdkafka `queue.buffering.max.kbytes`.
    #[arg(long, env = "INGEST_PRODUCER_QUEUE_KBYTES", default_value_t = 65_536)]
    pub producer_queue_kbytes: usize,

    /// Requests per second each device may make (token bucket refill rate).
    #[arg(long, env = "INGEST_DEVICE_RATE_PER_SEC", default_value_t = 5)]
    pub device_rate_per_sec: u32,
    /// Burst of requests a device may make at once.
    #[arg(long, env = "INGEST_DEVICE_BURST", default_value_t = 20)]
    pub device_burst: u32,
    /// Base `Retry-After` (seconds) when overloaded or Kafka is unavailable; the answer is
    /// uniformly jittered between this and twice this, so recorders spread out.
    #[arg(long, env = "INGEST_RETRY_AFTER_SECS", default_value_t = 5)]
    pub retry_after_secs: u32,

    /// How often the master-data snapshot is re-read even without a notification.
    #[arg(long, env = "INGEST_SNAPSHOT_POLL_MS", default_value_t = 5_000)]
    pub snapshot_poll_ms: u64,
    /// How often Kafka's reachability is checked for `/readyz` and fast refusals.
    #[arg(long, env = "INGEST_KAFKA_CHECK_MS", default_value_t = 2_000)]
    pub kafka_check_ms: u64,
    /// On shutdown, time to finish in-flight requests and flush the producer.
    #[arg(long, env = "INGEST_DRAIN_TIMEOUT_MS", default_value_t = 15_000)]
    pub drain_timeout_ms: u64,
}

/// A configuration that cannot work, said before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ingest-api configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// A configuration for the given brokers, database and keys with every other default.
    pub fn new(brokers: &str, database_url: &str, token_keys: &str) -> Self {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        let mut config = Wrapper::parse_from([
            "ingest-api",
            "--brokers",
            brokers,
            "--database-url",
            database_url,
            "--token-keys",
            token_keys,
        ])
        .config;
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: &str| Err(ConfigError(m.to_owned()));
        if self.max_punches == 0 || self.max_body_bytes == 0 {
            return fail("max_punches and max_body_bytes must be positive");
        }
        if self.max_inflight_punches < self.max_punches {
            return fail(
                "max_inflight_punches must be at least max_punches, or a full batch could never be accepted",
            );
        }
        if self.max_inflight_body_bytes < self.max_body_bytes {
            return fail("max_inflight_body_bytes must be at least max_body_bytes");
        }
        if self.message_timeout_ms + self.body_read_timeout_ms >= self.request_deadline_ms {
            return fail(
                "message_timeout_ms + body_read_timeout_ms must be below request_deadline_ms, so Kafka failures are answered before the deadline",
            );
        }
        if self.device_rate_per_sec == 0 || self.device_burst == 0 {
            return fail("device_rate_per_sec and device_burst must be positive");
        }
        if self.retry_after_secs == 0 {
            return fail("retry_after_secs must be positive");
        }
        if self.max_connections == 0 {
            return fail("max_connections must be positive");
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

    /// `acceptor_id`, or host name and pid.
    pub fn acceptor_id(&self) -> String {
        self.acceptor_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".to_owned());
            format!("{host}:{}", std::process::id())
        })
    }

    /// [`Config::request_deadline_ms`] as a duration.
    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new("127.0.0.1:9092", "postgres://x@127.0.0.1/x", "k:x")
    }

    #[test]
    fn defaults_are_consistent() {
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn deadline_must_leave_room_for_kafka_to_fail() {
        let mut c = config();
        c.message_timeout_ms = c.request_deadline_ms;
        assert!(c.validate().is_err());
    }

    #[test]
    fn budget_must_hold_a_full_batch() {
        let mut c = config();
        c.max_inflight_punches = c.max_punches - 1;
        assert!(c.validate().is_err());
    }
}
