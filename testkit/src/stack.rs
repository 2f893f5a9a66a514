//! Where the stack under test listens, and the Kafka clients tests build for it.

use dakoku_kafka::ClientFactory;

/// Where the stack under test listens.
#[derive(Debug, Clone)]
pub struct Stack {
    /// Kafka bootstrap servers (`KAFKA_BROKERS`).
    pub brokers: String,
    /// A database URL whose role may create databases (`DATABASE_URL`).
    pub database_url: String,
}

impl Stack {
    /// Reads `KAFKA_BROKERS` and `DATABASE_URL`, defaulting to the local stack's.
    pub fn from_env() -> Self {
        Self {
            brokers: std::env::var("KAFKA_BROKERS")
                .unwrap_or_else(|_| dakoku_kafka::DEFAULT_BROKERS.into()),
            database_url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| dakoku_store::DEFAULT_DATABASE_URL.into()),
        }
    }

    /// The client factory for the broker, for producers, consumers and admin clients in tests.
    pub fn kafka(&self) -> ClientFactory {
        ClientFactory::new(&self.brokers)
    }
}
