//! The acceptor's metrics, named in one place, exported in Prometheus text format.
//!
//! Besides its own counters it republishes librdkafka's statistics (producer queue depth,
//! broker round-trip times), which are the first thing to look at when acks slow down.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::ClientContext;
use rdkafka::Statistics;

/// Metric names: the only place they are spelled.
pub mod name {
    /// Requests by route and status.
    pub const REQUESTS: &str = "ingest_requests_total";
    /// Punches acked (durably in Kafka).
    pub const PUNCHES_ACKED: &str = "ingest_punches_acked_total";
    /// Punches rejected (invalid, preserved in quarantine).
    pub const PUNCHES_REJECTED: &str = "ingest_punches_rejected_total";
    /// Requests refused, by reason (the error code).
    pub const REFUSALS: &str = "ingest_refusals_total";
    /// Time from request start to answer for batches with acks, seconds.
    pub const ACK_LATENCY: &str = "ingest_ack_latency_seconds";
    /// Punches in flight right now.
    pub const INFLIGHT_PUNCHES: &str = "ingest_inflight_punches";
    /// Request-body bytes held right now.
    pub const INFLIGHT_BODY_BYTES: &str = "ingest_inflight_body_bytes";
    /// Whether the last Kafka check succeeded (1) or not (0).
    pub const KAFKA_REACHABLE: &str = "ingest_kafka_reachable";
    /// Version of the master-data snapshot in use.
    pub const SNAPSHOT_VERSION: &str = "ingest_snapshot_version";
    /// Seconds since the snapshot was last confirmed current.
    pub const SNAPSHOT_AGE: &str = "ingest_snapshot_age_seconds";
    /// Whether the last contact with Postgres worked (1) or not (0).
    pub const SNAPSHOT_DATABASE_OK: &str = "ingest_snapshot_database_ok";
    /// Connections closed with a lingering read, by how the linger ended.
    pub const LINGERING_CLOSES: &str = "ingest_lingering_closes_total";
    /// librdkafka: messages in the producer queue.
    pub const PRODUCER_QUEUE_MESSAGES: &str = "ingest_kafka_producer_queue_messages";
    /// librdkafka: bytes in the producer queue.
    pub const PRODUCER_QUEUE_BYTES: &str = "ingest_kafka_producer_queue_bytes";
    /// librdkafka: broker round-trip time, by broker and quantile, seconds.
    pub const BROKER_RTT: &str = "ingest_kafka_broker_rtt_seconds";
    /// librdkafka: requests waiting for a broker response, by broker.
    pub const BROKER_OUTBUF: &str = "ingest_kafka_broker_waitresp_requests";
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Handles for the series nearly every request touches, registered once at install: the
/// macros hash the name and labels into the registry on every call, which was measurable per
/// single-punch request (BENCHMARKS.md, finding 1).
struct Hot {
    punches_ok: Counter,
    healthz_ok: Counter,
    acked: Counter,
    rejected: Counter,
    ack_latency: Histogram,
}

static HOT: OnceLock<Hot> = OnceLock::new();

fn hot() -> &'static Hot {
    HOT.get_or_init(|| Hot {
        punches_ok: counter!(name::REQUESTS, "route" => "punches", "status" => "200"),
        healthz_ok: counter!(name::REQUESTS, "route" => "healthz", "status" => "200"),
        acked: counter!(name::PUNCHES_ACKED),
        rejected: counter!(name::PUNCHES_REJECTED),
        ack_latency: histogram!(name::ACK_LATENCY),
    })
}

/// Installs the process-wide recorder once and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = dakoku_service::install_prometheus();
            describe();
            // After the recorder: handles taken before it would count into nothing.
            hot();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(name::REQUESTS, "Requests by route and status.");
    describe_counter!(
        name::PUNCHES_ACKED,
        "Punches acked: durably in Kafka before the answer."
    );
    describe_counter!(
        name::PUNCHES_REJECTED,
        "Punches rejected as invalid and preserved in quarantine."
    );
    describe_counter!(name::REFUSALS, "Requests refused as a whole, by reason.");
    describe_counter!(
        name::LINGERING_CLOSES,
        "Closed connections read until the client stopped sending, by outcome: clean (nothing left), drained (unread body discarded), timeout, too_much, error, no_slot (closed at once)."
    );
    describe_histogram!(
        name::ACK_LATENCY,
        metrics::Unit::Seconds,
        "Request start to answer, for requests with acks."
    );
    describe_gauge!(name::INFLIGHT_PUNCHES, "Punches in flight.");
    describe_gauge!(name::INFLIGHT_BODY_BYTES, "Request-body bytes held.");
    describe_gauge!(
        name::KAFKA_REACHABLE,
        "1 if the last Kafka check succeeded."
    );
    describe_gauge!(
        name::SNAPSHOT_VERSION,
        "master_data_version of the snapshot in use."
    );
    describe_gauge!(
        name::SNAPSHOT_AGE,
        metrics::Unit::Seconds,
        "Since the snapshot was last confirmed current."
    );
    describe_gauge!(
        name::SNAPSHOT_DATABASE_OK,
        "1 if the last contact with Postgres worked."
    );
    describe_gauge!(
        name::PRODUCER_QUEUE_MESSAGES,
        "librdkafka producer queue, messages."
    );
    describe_gauge!(
        name::PRODUCER_QUEUE_BYTES,
        "librdkafka producer queue, bytes."
    );
    describe_gauge!(
        name::BROKER_RTT,
        metrics::Unit::Seconds,
        "librdkafka broker round-trip time."
    );
    describe_gauge!(
        name::BROKER_OUTBUF,
        "librdkafka requests awaiting a broker response."
    );
}

/// Counts a finished request.
pub fn request(route: &'static str, status: u16) {
    match (route, status) {
        ("punches", 200) => hot().punches_ok.increment(1),
        ("healthz", 200) => hot().healthz_ok.increment(1),
        _ => counter!(name::REQUESTS, "route" => route, "status" => status_label(status))
            .increment(1),
    }
}

/// The label of a status, without allocating for the ones the acceptor answers with.
fn status_label(status: u16) -> metrics::SharedString {
    let known = match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        503 => "503",
        other => return metrics::SharedString::from(other.to_string()),
    };
    metrics::SharedString::const_str(known)
}

/// Counts a refusal.
pub fn refusal(code: &'static str) {
    counter!(name::REFUSALS, "reason" => code).increment(1);
}

/// Counts a lingering close by how it ended.
pub fn lingering_close(outcome: &'static str) {
    counter!(name::LINGERING_CLOSES, "outcome" => outcome).increment(1);
}

/// Counts a batch's outcome.
pub fn batch(acked: usize, rejected: usize, elapsed: Duration) {
    let hot = hot();
    hot.acked.increment(acked as u64);
    if rejected > 0 {
        hot.rejected.increment(rejected as u64);
    }
    if acked > 0 {
        hot.ack_latency.record(elapsed.as_secs_f64());
    }
}

/// Sets the in-flight gauges (at scrape time: Prometheus reads nothing in between).
pub fn inflight(punches: usize, body_bytes: usize) {
    gauge!(name::INFLIGHT_PUNCHES).set(punches as f64);
    gauge!(name::INFLIGHT_BODY_BYTES).set(body_bytes as f64);
}

/// Records Kafka's reachability.
pub fn kafka_reachable(ok: bool) {
    gauge!(name::KAFKA_REACHABLE).set(if ok { 1.0 } else { 0.0 });
}

/// Records a snapshot load.
pub fn snapshot_loaded(version: i64) {
    gauge!(name::SNAPSHOT_VERSION).set(version as f64);
}

/// Records the snapshot's health.
pub fn snapshot_health(age: Option<Duration>, database_ok: bool) {
    gauge!(name::SNAPSHOT_AGE).set(age.map_or(f64::INFINITY, |a| a.as_secs_f64()));
    gauge!(name::SNAPSHOT_DATABASE_OK).set(if database_ok { 1.0 } else { 0.0 });
}

/// The producer's librdkafka context: republishes statistics as metrics, and logs
/// librdkafka's events at their true level.
#[derive(Debug, Default, Clone, Copy)]
pub struct KafkaStats;

impl ClientContext for KafkaStats {
    dakoku_kafka::log_to_tracing!();

    fn stats(&self, stats: Statistics) {
        gauge!(name::PRODUCER_QUEUE_MESSAGES).set(stats.msg_cnt as f64);
        gauge!(name::PRODUCER_QUEUE_BYTES).set(stats.msg_size as f64);
        for broker in stats.brokers.values() {
            // Bootstrap pseudo-brokers have no traffic worth reporting.
            if broker.nodeid < 0 {
                continue;
            }
            let id = broker.nodeid.to_string();
            if let Some(rtt) = &broker.rtt {
                for (quantile, micros) in [("0.5", rtt.p50), ("0.99", rtt.p99), ("avg", rtt.avg)] {
                    gauge!(name::BROKER_RTT, "broker" => id.clone(), "quantile" => quantile)
                        .set(micros as f64 / 1e6);
                }
            }
            gauge!(name::BROKER_OUTBUF, "broker" => id).set(broker.waitresp_cnt as f64);
        }
    }
}
