//! What every phase needs: the arguments, the fleet, the measured processes; the process
//! names used in the CPU accounting, the goals, and ingest-api's configuration.

use std::collections::BTreeMap;
use std::sync::Arc;

use dakoku_ingest_api::Config as IngestConfig;

use crate::cli::RunArgs;
use crate::load::Fleet;
use crate::setup::BenchGroup;

/// Goal: batch punches/s through ingest-api over raw producer records/s.
pub const BATCH_GOAL: f64 = 0.8;
/// Goal: single-punch requests/s of ingest-api over the bare endpoint's.
pub const SINGLE_GOAL: f64 = 0.5;
/// Goal: ingest-api's peak RSS, MiB.
pub const RSS_GOAL_MIB: f64 = 256.0;

/// Process names used in the CPU accounting.
pub(super) const INGEST: &str = "ingest-api";
pub(super) const BARE: &str = "bare-endpoint";
pub(super) const BENCH: &str = "ingest-bench";
pub(super) const KAFKA: &str = "kafka";

/// What every phase needs.
#[derive(Debug)]
pub(super) struct Context {
    pub(super) args: RunArgs,
    pub(super) fleet: Arc<Fleet>,
    /// Processes whose CPU time is measured per phase.
    pub(super) pids: Vec<(&'static str, u32)>,
}

/// The configuration ingest-api runs with (its defaults plus the bench's connection settings);
/// the raw producer is built from the same one.
pub(super) fn ingest_config(args: &RunArgs, bench: &BenchGroup) -> IngestConfig {
    IngestConfig::new(&args.brokers, &args.database_url, &bench.token_keys)
}

pub(super) fn producer_settings(config: &IngestConfig) -> BTreeMap<String, String> {
    [
        ("acks", "all".to_owned()),
        ("enable.idempotence", "true".to_owned()),
        ("compression.type", "lz4".to_owned()),
        ("linger.ms", config.linger_ms.to_string()),
        ("message.timeout.ms", config.message_timeout_ms.to_string()),
        (
            "queue.buffering.max.messages",
            config.producer_queue_messages.to_string(),
        ),
        (
            "queue.buffering.max.kbytes",
            config.producer_queue_kbytes.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
