//! A tenant group of its own for each test, with its topics created as `punchctl topics
//! create` creates them (`dakoku_kafka`'s [`Admin::create_dakoku_topics`]).

use std::time::Duration;

use dakoku_kafka::{Admin, TopicSettings, topics_of_group};
use dakoku_schemas::{GroupId, Topic};

use crate::stack::Stack;
use crate::wait::unique_suffix;

/// How long an admin call waits for the broker (as `punchctl topics` does).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A tenant group of its own for one test, with its topics.
#[derive(Debug)]
pub struct TestGroup {
    /// The group (`t-<suffix>`).
    pub group: GroupId,
    stack: Stack,
}

impl TestGroup {
    /// Creates the group's topics (and the shared quarantine, when missing) with `partitions`
    /// partitions each.
    pub async fn create(stack: &Stack, partitions: i32) -> anyhow::Result<Self> {
        let group: GroupId = format!("t-{}", unique_suffix()).parse()?;
        let settings = TopicSettings {
            partitions,
            ..TopicSettings::default()
        };
        settings.validate()?;
        admin(stack)?
            .create_dakoku_topics(&topics_of_group(&group), &settings)
            .await?;
        Ok(Self {
            group,
            stack: stack.clone(),
        })
    }

    /// Deletes the group's own topics (not the shared quarantine). Call at the end of a test.
    pub async fn delete_topics(self) -> anyhow::Result<()> {
        let names: Vec<String> = Topic::for_group(&self.group)
            .iter()
            .map(Topic::name)
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        admin(&self.stack)?.delete_topics(&names).await?;
        Ok(())
    }
}

fn admin(stack: &Stack) -> anyhow::Result<Admin> {
    Ok(Admin::new(&stack.kafka(), "dakoku-testkit", ADMIN_TIMEOUT)?)
}
