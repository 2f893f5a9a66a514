//! The phases: batch throughput against the raw producer, single-punch throughput against the
//! bare endpoint, and latency at a fraction of each peak.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use dakoku_ingest_api::publisher::Publisher;

use super::context::{Context, ingest_config};
use super::rounds::{Rounds, ordered, round};
use crate::load::{Fleet, HttpSender, KafkaSender, Pace, Sender, Spec};
use crate::report::{LogCheck, PhaseReport};
use crate::setup::{self, BenchGroup};

/// The batch phase's results.
pub(super) struct Batch {
    /// HTTP batches to ingest-api.
    pub(super) http: PhaseReport,
    /// The raw producer with ingest-api's settings.
    pub(super) raw: PhaseReport,
    /// Records the raw producer wrote while being primed.
    pub(super) primed: u64,
    /// The raw producer's topic.
    pub(super) baseline_topic: String,
}

/// Batch throughput, closed loop: ingest-api and the raw producer, alternating (A B, B A, ...).
pub(super) async fn batch(
    cx: &Context,
    bench: &BenchGroup,
    ingest_addr: SocketAddr,
    logs: &Path,
) -> anyhow::Result<Batch> {
    let (args, fleet) = (&cx.args, &cx.fleet);
    let bc = args.batch_connections;
    let batch = batch_spec(args.batch_size);
    let publisher = Publisher::new(&ingest_config(args, bench))
        .context("creating the raw producer (ingest-api's Publisher)")?;
    let baseline_topic = bench.baseline_topic();
    // Prime the raw producer (metadata, idempotent producer id) as ingest-api's was by its
    // readiness check, so its first batch does not carry a one-off second of set-up.
    let primed = prime(fleet, &publisher, &baseline_topic).await?;
    let mut batch_http = Rounds::new("batch/ingest-api", "HTTP batches to ingest-api", bc, batch);
    let mut batch_raw = Rounds::new(
        "batch/raw-producer",
        "raw rdkafka producer with ingest-api's settings",
        bc,
        batch,
    );
    for r in 0..args.rounds {
        let secs = args.batch_secs / f64::from(args.rounds);
        for ours in ordered(r) {
            if ours {
                let senders = HttpSender::many(fleet, ingest_addr, bc);
                batch_http.add(round(cx, &batch_http, r, senders, secs).await);
            } else {
                let senders = KafkaSender::many(fleet, &publisher, &baseline_topic, bc);
                batch_raw.add(round(cx, &batch_raw, r, senders, secs).await);
            }
        }
    }
    drop(publisher);
    let batch_http = batch_http.report();
    let batch_raw = batch_raw.report();
    if batch_http.punches == 0 {
        bail!(
            "ingest-api acked nothing in the batch phase ({:?}); see {}",
            batch_http.failure_examples,
            logs.join("ingest-api.log").display()
        );
    }
    Ok(Batch {
        http: batch_http,
        raw: batch_raw,
        primed,
        baseline_topic,
    })
}

/// Single-punch throughput, closed loop: ingest-api and the bare endpoint, alternating.
pub(super) async fn single(
    cx: &Context,
    ingest_addr: SocketAddr,
    bare_addr: SocketAddr,
) -> (PhaseReport, PhaseReport) {
    let (args, fleet) = (&cx.args, &cx.fleet);
    let sc = args.single_connections;
    let single = single_spec();
    let mut single_http = Rounds::new(
        "single/ingest-api",
        "one punch per request to ingest-api",
        sc,
        single,
    );
    let mut single_bare = Rounds::new(
        "single/bare-endpoint",
        "one punch per request to the bare endpoint",
        sc,
        single,
    );
    for r in 0..args.rounds {
        let secs = args.single_secs / f64::from(args.rounds);
        for ours in ordered(r) {
            let (phase, addr) = if ours {
                (&mut single_http, ingest_addr)
            } else {
                (&mut single_bare, bare_addr)
            };
            let senders = HttpSender::many(fleet, addr, sc);
            let result = round(cx, phase, r, senders, secs).await;
            phase.add(result);
        }
    }
    (single_http.report(), single_bare.report())
}

/// Latency, open loop at `--latency-load` of each ingest-api peak: batch, then single punch.
pub(super) async fn latency(
    cx: &Context,
    ingest_addr: SocketAddr,
    batch_http: &PhaseReport,
    single_http: &PhaseReport,
) -> anyhow::Result<(PhaseReport, PhaseReport)> {
    let (args, fleet) = (&cx.args, &cx.fleet);
    let (bc, sc) = (args.batch_connections, args.single_connections);
    let batch_rate = args.latency_load * batch_http.requests_per_sec;
    let single_rate = args.latency_load * single_http.requests_per_sec;
    if batch_rate <= 0.0 || single_rate <= 0.0 {
        bail!("a peak rate was zero; nothing to derive the latency load from");
    }
    let mut latency_batch = Rounds::new(
        "latency/batch",
        "HTTP batches to ingest-api at a fixed rate",
        bc,
        Spec {
            pace: Pace::Open {
                requests_per_sec: batch_rate,
            },
            ..batch_spec(args.batch_size)
        },
    );
    let senders = HttpSender::many(fleet, ingest_addr, bc);
    latency_batch.add(round(cx, &latency_batch, 0, senders, args.latency_secs).await);
    let mut latency_single = Rounds::new(
        "latency/single",
        "single punches to ingest-api at a fixed rate",
        sc,
        Spec {
            pace: Pace::Open {
                requests_per_sec: single_rate,
            },
            ..single_spec()
        },
    );
    let senders = HttpSender::many(fleet, ingest_addr, sc);
    latency_single.add(round(cx, &latency_single, 0, senders, args.latency_secs).await);
    Ok((latency_batch.report(), latency_single.report()))
}

fn batch_spec(punches_per_request: usize) -> Spec {
    Spec {
        punches_per_request,
        pace: Pace::Closed,
    }
}

fn single_spec() -> Spec {
    Spec {
        punches_per_request: 1,
        pace: Pace::Closed,
    }
}

/// Sends one record through the raw producer and waits for it; returns how many were acked.
async fn prime(fleet: &Arc<Fleet>, publisher: &Publisher, topic: &str) -> anyhow::Result<u64> {
    let mut sender = KafkaSender::many(fleet, publisher, topic, 1);
    let Some(sender) = sender.first_mut() else {
        unreachable!("one sender")
    };
    sender
        .send(0, fleet.take_seqs(0, 1), 1)
        .await
        .map_err(|f| anyhow::anyhow!("raw producer cannot write to {topic}: {}", f.detail))
}

/// Sums a topic's end offsets and compares them with what was acked into it.
pub(super) async fn log_check(
    what: &str,
    brokers: &str,
    topic: &str,
    acked: u64,
) -> anyhow::Result<LogCheck> {
    let (brokers_owned, topic_owned) = (brokers.to_owned(), topic.to_owned());
    let end_offsets_sum =
        tokio::task::spawn_blocking(move || setup::end_offsets_sum(&brokers_owned, &topic_owned))
            .await??;
    let check = LogCheck {
        what: what.to_owned(),
        topic: topic.to_owned(),
        acked,
        end_offsets_sum,
        holds: u64::try_from(end_offsets_sum).unwrap_or(0) >= acked,
    };
    eprintln!(
        "ingest-bench: log check, {what}: end offsets {} vs {} acked: {}",
        check.end_offsets_sum,
        check.acked,
        if check.holds { "ok" } else { "FAILED" }
    );
    Ok(check)
}
