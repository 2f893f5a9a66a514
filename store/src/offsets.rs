//! The `consumer_offsets` table: a projection's next offset per (consumer group, topic,
//! partition), written in the same transaction as the rows it produced, so the projection and
//! its position in the log never disagree. The one place its statements are written.

use std::collections::HashMap;

use tokio_postgres::{Error, GenericClient, Row};

/// `(partition, next_offset)` of one consumer group on one topic: `$1` group, `$2` topic.
pub const SQL_LOAD: &str = "SELECT partition, next_offset FROM consumer_offsets \
     WHERE consumer_group = $1 AND topic = $2";

/// Upserts the next offsets of `$1` group on `$2` topic: `$3` partitions (`int[]`) and `$4`
/// next offsets (`bigint[]`), pairwise.
pub const SQL_STORE: &str = "INSERT INTO consumer_offsets (consumer_group, \
     topic, partition, next_offset, updated_at) \
     SELECT $1, $2, u.p, u.o, now() FROM UNNEST($3::int[], $4::bigint[]) AS u(p, o) \
     ON CONFLICT (consumer_group, topic, partition) DO UPDATE \
     SET next_offset = EXCLUDED.next_offset, updated_at = now()";

/// Moves one partition's next offset of `$1` group on `$2` topic, `$3` partition, from `$4`
/// to `$5`: compare-and-set, no row changes when the stored offset is not `$4` any more.
pub const SQL_REWRITE: &str = "UPDATE consumer_offsets SET next_offset = $5, updated_at = now() \
     WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $4";

/// The sum of every next offset of `$1` group (all topics and partitions): how far it is.
pub const SQL_TOTAL: &str = "SELECT COALESCE(sum(next_offset), 0)::bigint \
     FROM consumer_offsets WHERE consumer_group = $1";

/// Rows of [`SQL_LOAD`] as partition -> next offset (for callers that pipeline the
/// statement themselves).
pub fn from_rows(rows: &[Row]) -> HashMap<i32, i64> {
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// The stored next offset of each partition of `topic` for `consumer_group`.
pub async fn load(
    client: &impl GenericClient,
    consumer_group: &str,
    topic: &str,
) -> Result<HashMap<i32, i64>, Error> {
    let rows = client.query(SQL_LOAD, &[&consumer_group, &topic]).await?;
    Ok(from_rows(&rows))
}

/// Stores `partitions[i]`'s next offset `next[i]` for `consumer_group` on `topic`; run it in
/// the transaction that wrote what those offsets cover.
pub async fn store(
    client: &impl GenericClient,
    consumer_group: &str,
    topic: &str,
    partitions: &[i32],
    next: &[i64],
) -> Result<u64, Error> {
    client
        .execute(SQL_STORE, &[&consumer_group, &topic, &partitions, &next])
        .await
}

/// Moves `partition`'s next offset of `consumer_group` on `topic` from `current` to `new`;
/// false, changing nothing, when the stored offset is no longer `current` (a consumer wrote
/// a batch meanwhile) or there is none.
pub async fn rewrite(
    client: &impl GenericClient,
    consumer_group: &str,
    topic: &str,
    partition: i32,
    current: i64,
    new: i64,
) -> Result<bool, Error> {
    let changed = client
        .execute(
            SQL_REWRITE,
            &[&consumer_group, &topic, &partition, &current, &new],
        )
        .await?;
    Ok(changed == 1)
}

/// The sum of `consumer_group`'s next offsets over every topic and partition (0 when none):
/// a single number that grows as the group consumes (benchmarks wait on it).
pub async fn total(client: &impl GenericClient, consumer_group: &str) -> Result<i64, Error> {
    Ok(client
        .query_one(SQL_TOTAL, &[&consumer_group])
        .await?
        .get(0))
}
