//! Dakoku's one door to Kafka. Every client is built here from [`KafkaArgs`] (brokers now,
//! TLS and SASL later, in one place), logs librdkafka's events at their true level, and fails
//! with the one [`Error`]. Admin, consumer-group and scan operations that several binaries
//! need are written once here.
//!
//! # Layout
//! - [`args`]: [`KafkaArgs`], the flags and environment binaries flatten in (`--brokers`,
//!   `KAFKA_BROKERS`, `--kafka-property`, `KAFKA_PROPERTIES_FILE`); secrets redacted.
//! - [`config`]: [`ClientFactory`] and [`ClientBuilder`], the client kinds Dakoku uses
//!   (producer, idempotent, transactional, reader, group member, group client); the only
//!   `ClientConfig::new()`.
//! - [`context`]: [`LogContext`], librdkafka's log lines and error events mapped to `tracing`
//!   levels (`PartitionEOF` is DEBUG, not ERROR); [`log_to_tracing!`] for services' own
//!   contexts.
//! - [`admin`]: [`Admin`], partitions, watermarks, offsets by time, topic create (idempotent),
//!   delete and configuration.
//! - [`groups`]: members of a consumer group, its committed offsets, committing for it.
//! - [`topics`]: Dakoku's own topics ([`TopicSettings`]: partitions, retention, compaction,
//!   `min.insync.replicas`) created through [`Admin`].
//! - [`scan`]: the bounded `read_committed` scan of a topic to its end offsets.
//! - [`error`]: [`Error`] and the `.doing("step")` extension, [`Doing`].

pub mod admin;
pub mod args;
pub mod config;
pub mod context;
pub mod error;
pub mod groups;
pub mod scan;
pub mod topics;

/// The librdkafka binding this crate is built on, so every crate uses the same version.
pub use rdkafka;

pub use admin::{Admin, Created, TopicSpec, Watermarks};
pub use args::{ArgsError, DEFAULT_BROKERS, KafkaArgs};
pub use config::{ClientBuilder, ClientFactory};
pub use context::LogContext;
pub use error::{Doing, Error, Result};
pub use groups::Member;
pub use topics::{SettingsError, TopicSettings, topics_of_group};

/// A hand-assigned consumer with the logging context ([`ClientFactory::reader`]).
pub type Reader = rdkafka::consumer::BaseConsumer<LogContext>;
/// An async producer with the logging context.
pub type FutureProducer = rdkafka::producer::FutureProducer<LogContext>;
/// A producer polled by its own thread, with the logging context.
pub type ThreadedProducer = rdkafka::producer::ThreadedProducer<LogContext>;
