//! Questions about the cluster and changes to its topics: partitions, watermarks, offsets by
//! time, topic creation (idempotent), deletion and configuration.
//!
//! The reads are blocking (run them off async threads); topic changes are async, as
//! librdkafka's admin API is.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::ClientFactory;
use crate::context::LogContext;
use crate::error::{Doing, Error, Result};

/// `(low, high)` watermarks per partition: the first retained offset and the end.
///
/// Asked through a `read_committed` client (librdkafka's default isolation, so every client
/// of this crate unless told otherwise), the end is the last stable offset: below any
/// transaction still open. A scan bounded by it never waits for a producer.
pub type Watermarks = BTreeMap<i32, (i64, i64)>;

/// The partition ids of `topic`, sorted, asked through any client. A topic the broker does
/// not know fails with an error whose [`Error::is_unknown_topic`] is true.
pub fn partitions<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>> {
    let doing = || format!("reading the partitions of {topic}");
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .doing_with(doing)?;
    let mut ids: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if ids.is_empty() {
        return Err(Error::kafka(
            doing(),
            KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition),
        ));
    }
    ids.sort_unstable();
    Ok(ids)
}

/// The watermarks of `partitions` of `topic`, asked through any client.
pub fn watermarks<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<Watermarks> {
    partitions
        .iter()
        .map(|&p| {
            client
                .fetch_watermarks(topic, p, timeout)
                .map(|marks| (p, marks))
                .doing_with(|| format!("reading the offsets of {topic}"))
        })
        .collect()
}

/// Partitions, replication and configuration of a topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic's name.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
    /// Replicas per partition.
    pub replication_factor: i32,
    /// Topic-level configuration (`cleanup.policy`, `retention.ms`, `min.insync.replicas`...).
    pub configs: Vec<(String, String)>,
}

/// What [`Admin::create_topics`] did with one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Created now.
    Created,
    /// It was there already, with this many partitions; left unchanged.
    Exists {
        /// Partition count of the existing topic.
        partitions: usize,
    },
}

/// An admin client and a metadata client for one cluster, with one timeout for every call.
pub struct Admin {
    pub(crate) factory: ClientFactory,
    pub(crate) client_id: String,
    admin: AdminClient<LogContext>,
    pub(crate) metadata: BaseConsumer<LogContext>,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("factory", &self.factory)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Creates the clients (connections are made lazily) as `client_id`; every call waits up
    /// to `timeout` for the broker.
    pub fn new(factory: &ClientFactory, client_id: &str, timeout: Duration) -> Result<Self> {
        Ok(Self {
            factory: factory.clone(),
            client_id: client_id.to_owned(),
            admin: factory.client(client_id).create()?,
            metadata: factory.client(client_id).create()?,
            timeout,
        })
    }

    /// The partition ids of `topic`, sorted (see [`partitions`]).
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>> {
        partitions(self.metadata.client(), topic, self.timeout)
    }

    /// Partition count of `topic`, or `None` when the broker does not know it.
    pub fn partition_count(&self, topic: &str) -> Result<Option<usize>> {
        let metadata = self
            .metadata
            .fetch_metadata(Some(topic), self.timeout)
            .doing_with(|| format!("reading the metadata of {topic}"))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len()))
    }

    /// Every topic the broker knows with its partition count, sorted by name.
    pub fn topics(&self) -> Result<Vec<(String, usize)>> {
        let metadata = self
            .metadata
            .fetch_metadata(None, self.timeout)
            .doing("listing the topics")?;
        let mut topics: Vec<(String, usize)> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect();
        topics.sort();
        Ok(topics)
    }

    /// The watermarks of every partition of `topic`.
    pub fn watermarks(&self, topic: &str) -> Result<Watermarks> {
        let ids = self.partitions(topic)?;
        watermarks(self.metadata.client(), topic, &ids, self.timeout)
    }

    /// Per partition of `marks`, the first offset whose timestamp is at or after `millis`
    /// (ms since the epoch); the partition's end when no record is that recent.
    pub fn offsets_for_time(
        &self,
        topic: &str,
        marks: &Watermarks,
        millis: i64,
    ) -> Result<BTreeMap<i32, i64>> {
        let mut query = TopicPartitionList::new();
        for &partition in marks.keys() {
            query
                .add_partition_offset(topic, partition, Offset::Offset(millis))
                .doing("building the timestamp query")?;
        }
        let found = self
            .metadata
            .offsets_for_times(query, self.timeout)
            .doing_with(|| format!("looking up offsets by time in {topic}"))?;
        Ok(found
            .elements()
            .iter()
            .map(|e| {
                let end = marks.get(&e.partition()).map_or(0, |(_, end)| *end);
                let offset = match e.offset() {
                    Offset::Offset(offset) => offset,
                    // No record at or after the moment.
                    _ => end,
                };
                (e.partition(), offset)
            })
            .collect())
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(self.timeout))
            .request_timeout(Some(self.timeout))
    }

    /// Creates `topics`; one that exists already is reported with its partition count and
    /// left unchanged, so running this twice is safe. Results are in the order of `topics`.
    pub async fn create_topics(&self, topics: &[TopicSpec]) -> Result<Vec<(String, Created)>> {
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|spec| {
                spec.configs.iter().fold(
                    NewTopic::new(
                        &spec.name,
                        spec.partitions,
                        TopicReplication::Fixed(spec.replication_factor),
                    ),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        let results = self
            .admin
            .create_topics(&new_topics, &self.options())
            .await
            .doing("creating topics")?;
        let mut outcomes = Vec::with_capacity(topics.len());
        for (spec, result) in topics.iter().zip(results) {
            let outcome = match result {
                Ok(_) => Created::Created,
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => Created::Exists {
                    partitions: self.partition_count(&spec.name)?.unwrap_or(0),
                },
                Err((name, code)) => {
                    return Err(Error::kafka(
                        format!("creating topic {name}"),
                        KafkaError::AdminOp(code),
                    ));
                }
            };
            outcomes.push((spec.name.clone(), outcome));
        }
        Ok(outcomes)
    }

    /// Deletes `topics`. A topic that does not exist counts as deleted; the first other
    /// refusal fails the call (the others may be deleted already).
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<()> {
        let results = self
            .admin
            .delete_topics(topics, &self.options())
            .await
            .doing_with(|| format!("deleting topics {topics:?}"))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((name, code)) => {
                    return Err(Error::kafka(
                        format!("deleting topic {name}"),
                        KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The configuration of `topic` as the broker applies it (defaults included); sensitive
    /// values are absent.
    pub async fn topic_config(&self, topic: &str) -> Result<BTreeMap<String, String>> {
        let doing = || format!("describing the configuration of {topic}");
        let results = self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(topic)], &self.options())
            .await
            .doing_with(doing)?;
        let mut config = BTreeMap::new();
        for result in results {
            let resource =
                result.map_err(|code| Error::kafka(doing(), KafkaError::AdminOp(code)))?;
            for entry in resource.entries {
                if let (Some(value), false) = (entry.value, entry.is_sensitive) {
                    config.insert(entry.name, value);
                }
            }
        }
        Ok(config)
    }
}
