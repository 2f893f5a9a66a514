//! The raw topic read to its end: the probe tenants' records, leaks and missing controls.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context as _;
use dakoku_kafka::{ClientFactory, Reader, scan};
use dakoku_schemas::{RawPunch, Topic, decode};

use super::fixture::{ProbeEnv, ProbeFixture};

/// Timeout of the Kafka metadata and offset calls.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the next record before the read is given up.
const READ_STALL: Duration = Duration::from_secs(60);

/// Reads the group's raw topic to its end: how many records the probe tenants have, those
/// that are not controls, and the controls not found.
pub(super) async fn raw_records(
    env: &ProbeEnv,
    fixture: &ProbeFixture,
    controls: &BTreeSet<(String, String, u64)>,
) -> anyhow::Result<(usize, Vec<String>, Vec<String>)> {
    let brokers = env.brokers.clone();
    let topic = Topic::Raw(env.group.clone()).name();
    let tenants = [fixture.tenant_a.to_string(), fixture.tenant_b.to_string()];
    let controls = controls.clone();
    tokio::task::spawn_blocking(
        move || -> anyhow::Result<(usize, Vec<String>, Vec<String>)> {
            let reader: Reader = ClientFactory::new(brokers)
                .reader("storm-probes-reader")
                .create()?;
            let (mut found, mut leaked) = (0usize, Vec::new());
            let mut unseen = controls.clone();
            let mut on = |_partition: i32, _offset: i64, payload: Option<&[u8]>| {
                let Some(punch) = payload.and_then(|p| decode::<RawPunch>(p).ok()) else {
                    return;
                };
                if !tenants.contains(&punch.tenant_id.to_string()) {
                    return;
                }
                found += 1;
                let id = (
                    punch.tenant_id.to_string(),
                    punch.device_id.to_string(),
                    punch.seq,
                );
                if !controls.contains(&id) {
                    leaked.push(format!("{}/{}/{}", id.0, id.1, id.2));
                }
                unseen.remove(&id);
            };
            scan::scan_to_end(
                &reader,
                &topic,
                &BTreeMap::new(),
                KAFKA_TIMEOUT,
                READ_STALL,
                &mut on,
                &mut |_| {},
            )
            .with_context(|| format!("reading {topic} to its end"))?;
            let missing = unseen
                .into_iter()
                .map(|(t, d, s)| format!("{t}/{d}/{s}"))
                .collect();
            Ok((found, leaked, missing))
        },
    )
    .await?
}
