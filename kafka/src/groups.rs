//! Consumer-group operations from outside the group: who its members are, which offsets it
//! has committed, and committing new ones (what `punchctl replay` and `rebuild` do while the
//! group is stopped).

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::Admin;
use crate::context::LogContext;
use crate::error::{Doing, Result};

/// One live member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub id: String,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connects from.
    pub host: String,
}

impl Admin {
    /// The live members of `group` (none when it is empty or unknown).
    pub fn members(&self, group: &str) -> Result<Vec<Member>> {
        let list = self
            .metadata
            .fetch_group_list(Some(group), self.timeout)
            .doing_with(|| format!("describing consumer group {group}"))?;
        Ok(list
            .groups()
            .iter()
            .filter(|g| g.name() == group)
            .flat_map(|g| g.members())
            .map(|m| Member {
                id: m.id().to_owned(),
                client_id: m.client_id().to_owned(),
                host: m.client_host().to_owned(),
            })
            .collect())
    }

    /// A client acting for `group` without joining it.
    fn group_client(&self, group: &str) -> Result<BaseConsumer<LogContext>> {
        self.factory
            .group_client(self.client_id.as_str(), group)
            .create()
    }

    /// The next offsets `group` has committed on `partitions` of `topic` (absent: nothing
    /// committed). An OffsetFetch only: running members are not disturbed.
    pub fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>> {
        let consumer = self.group_client(group)?;
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, self.timeout)
            .doing_with(|| format!("reading the committed offsets of {group} on {topic}"))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    /// Commits `offsets` (partition -> next offset) of `topic` for `group` without joining it.
    /// The broker refuses it unless the group has no live member, so a consumer that started
    /// meanwhile fails the commit rather than losing its place.
    pub fn commit_offsets(
        &self,
        group: &str,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let consumer = self.group_client(group)?;
        let mut tpl = TopicPartitionList::new();
        for (&partition, &offset) in offsets {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .doing("building the commit")?;
        }
        consumer
            .commit(&tpl, CommitMode::Sync)
            .doing_with(|| format!("committing the offsets of {group} on {topic}"))
    }
}
