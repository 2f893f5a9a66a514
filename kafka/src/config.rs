//! The client factory: every Kafka client of Dakoku starts here, from [`KafkaArgs`], with its
//! role's settings; callers add their own on top with [`ClientBuilder::set`]. The only place
//! `ClientConfig::new()` is called.

use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};

use crate::args::{ArgsError, KafkaArgs, shown};
use crate::context::LogContext;
use crate::error::{Error, Result};

/// Builds clients for one set of [`KafkaArgs`]; cheap to clone and share.
#[derive(Clone)]
pub struct ClientFactory {
    brokers: String,
    /// The operator's pass-through properties, applied last on every client.
    properties: Arc<[(String, String)]>,
}

impl std::fmt::Debug for ClientFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFactory")
            .field("brokers", &self.brokers)
            .field("properties", &Redacted(&self.properties))
            .finish()
    }
}

impl KafkaArgs {
    /// The factory for these settings; reads the properties file (once, here).
    pub fn factory(&self) -> Result<ClientFactory, ArgsError> {
        Ok(ClientFactory {
            brokers: self.brokers.clone(),
            properties: self.resolved_properties()?.into(),
        })
    }
}

impl ClientFactory {
    /// A factory for `brokers` with no other property (tests, tools handed a broker list).
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Arc::new([]),
        }
    }

    /// The bootstrap servers.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// A client with nothing but the connection and `client_id` (an admin or metadata client,
    /// or a role this module does not name).
    pub fn client(&self, client_id: impl Into<String>) -> ClientBuilder {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id.into());
        ClientBuilder {
            config,
            properties: Arc::clone(&self.properties),
        }
    }

    /// A producer with librdkafka's defaults (benchmarks, tests).
    pub fn producer(&self, client_id: impl Into<String>) -> ClientBuilder {
        self.client(client_id)
    }

    /// A producer whose records are acknowledged by every in-sync replica, and whose retries
    /// inside librdkafka never duplicate or reorder.
    pub fn idempotent_producer(&self, client_id: impl Into<String>) -> ClientBuilder {
        self.client(client_id)
            .set("acks", "all")
            .set("enable.idempotence", "true")
    }

    /// An idempotent producer with `transactional_id` (call `init_transactions` before use:
    /// it fences an earlier producer with the same id).
    pub fn transactional_producer(
        &self,
        client_id: impl Into<String>,
        transactional_id: impl Into<String>,
    ) -> ClientBuilder {
        self.idempotent_producer(client_id)
            .set("transactional.id", transactional_id.into())
    }

    /// A consumer that reads partitions assigned by hand: it never joins a group or commits
    /// (librdkafka requires a group id anyway: `<client_id>.<pid>`), sees committed
    /// transactions only, and reports the end of each partition as the scan expects.
    pub fn reader(&self, client_id: impl Into<String>) -> ClientBuilder {
        let client_id = client_id.into();
        let group_id = format!("{client_id}.{}", std::process::id());
        self.client(client_id)
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
    }

    /// A member of `group` that subscribes: committed transactions only, offsets committed by
    /// the caller only (never automatically), eager round-robin rebalancing (a revoke takes
    /// every partition, which the consumers' transaction and lock handling rely on), and a new
    /// group starting at the beginning (librdkafka's default, latest, would skip the backlog).
    pub fn group_member(
        &self,
        client_id: impl Into<String>,
        group: impl Into<String>,
    ) -> ClientBuilder {
        self.client(client_id)
            .set("group.id", group.into())
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "roundrobin")
    }

    /// A client that acts for `group` from outside it: reads or commits its offsets without
    /// joining, so running members are not disturbed.
    pub fn group_client(
        &self,
        client_id: impl Into<String>,
        group: impl Into<String>,
    ) -> ClientBuilder {
        self.client(client_id)
            .set("group.id", group.into())
            .set("enable.auto.commit", "false")
    }
}

/// One client's configuration on its way to [`ClientBuilder::create`].
#[derive(Clone)]
pub struct ClientBuilder {
    config: ClientConfig,
    properties: Arc<[(String, String)]>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut settings: Vec<(&String, &String)> = self.config.config_map().iter().collect();
        settings.sort();
        let settings: Vec<(&str, &str)> = settings
            .into_iter()
            .map(|(k, v)| (k.as_str(), shown(k, v)))
            .collect();
        f.debug_struct("ClientBuilder")
            .field("settings", &settings)
            .field("properties", &Redacted(&self.properties))
            .finish()
    }
}

impl ClientBuilder {
    /// Sets a librdkafka property for this client (replacing the role's default). The
    /// operator's pass-through properties still win.
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.set(key.into(), value.into());
        self
    }

    /// The value this client will get for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.config.get(key))
    }

    /// The final configuration, for APIs that want a `ClientConfig` itself.
    pub fn into_config(mut self) -> ClientConfig {
        for (key, value) in self.properties.iter() {
            self.config.set(key, value);
        }
        self.config
    }

    /// Creates the client with [`LogContext`], e.g. `BaseConsumer<LogContext>`.
    pub fn create<T: FromClientConfigAndContext<LogContext>>(self) -> Result<T> {
        self.create_with_context(LogContext)
    }

    /// Creates the client with a context of the caller's; its `ClientContext::log` and
    /// `error` should call [`crate::context::log_line`] and [`crate::context::error_event`].
    pub fn create_with_context<C, T>(self, context: C) -> Result<T>
    where
        C: ClientContext,
        T: FromClientConfigAndContext<C>,
    {
        let client_id = self.config.get("client.id").unwrap_or("").to_owned();
        self.into_config()
            .create_with_context(context)
            .map_err(|source| Error::kafka(format!("creating Kafka client {client_id}"), source))
    }
}

/// Properties as `Debug` shows them: secrets redacted.
struct Redacted<'a>(&'a [(String, String)]);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, v)| (k, shown(k, v))))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factory() -> ClientFactory {
        KafkaArgs::new("k1:9092")
            .with_property("linger.ms", "50")
            .with_property("sasl.password", "hunter2")
            .factory()
            .expect("no file to read")
    }

    #[test]
    fn roles_carry_their_settings_and_callers_add_theirs() {
        let tx = factory()
            .transactional_producer("licence-check.g1", "licence-check.g1.0")
            .set("linger.ms", "5");
        assert_eq!(tx.get("bootstrap.servers"), Some("k1:9092"));
        assert_eq!(tx.get("client.id"), Some("licence-check.g1"));
        assert_eq!(tx.get("acks"), Some("all"));
        assert_eq!(tx.get("enable.idempotence"), Some("true"));
        assert_eq!(tx.get("transactional.id"), Some("licence-check.g1.0"));
        // The operator's pass-through wins over the code's setting.
        assert_eq!(tx.get("linger.ms"), Some("50"));
        assert_eq!(tx.clone().into_config().get("linger.ms"), Some("50"));

        let reader = factory().reader("punchctl-lag");
        assert_eq!(reader.get("isolation.level"), Some("read_committed"));
        assert_eq!(reader.get("enable.auto.commit"), Some("false"));
        assert_eq!(reader.get("enable.partition.eof"), Some("true"));
        let group_id = format!("punchctl-lag.{}", std::process::id());
        assert_eq!(reader.get("group.id"), Some(group_id.as_str()));

        let member = factory().group_member("attendance-1", "attendance.g1");
        assert_eq!(member.get("group.id"), Some("attendance.g1"));
        assert_eq!(member.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(member.get("auto.offset.reset"), Some("earliest"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let builder = factory().client("x").set("ssl.key.password", "s3cret");
        let text = format!("{builder:?} {:?}", factory());
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(text.contains("linger.ms"), "{text}");
    }
}
