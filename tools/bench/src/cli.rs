//! The command line: every phase's duration and concurrency on a flag, defaults for a full run
//! of about two and a half minutes, `--quick` for a smoke run of a few seconds per phase.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Benchmarks Dakoku's acceptor (ingest-api) on the local stack, side by side with a raw Kafka
/// producer and a bare HTTP endpoint, and reports throughput ratios, latency, RSS and CPU.
///
/// Build and run:
///   cargo build --release -p dakoku-ingest-api -p dakoku-bench
///   scripts/stack up
///   target/release/ingest-bench [--quick] [--json results.json]
#[derive(Debug, Parser)]
#[command(name = "ingest-bench", version, about, verbatim_doc_comment)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Without a subcommand, runs the benchmark.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Benchmark settings.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Helper processes the benchmark starts itself.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serves the bare endpoint (POST /v1/punches reads the body and answers
    /// {"acked":[1],"rejected":[]}); the benchmark starts this as a separate process.
    BareServer(BareArgs),
}

/// Flags of `bare-server`.
#[derive(Debug, Clone, Args)]
pub struct BareArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

/// Benchmark settings. Durations are seconds; each phase runs its warm-up first, unmeasured.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Postgres URL of the master data (the bench adds and removes its own tenant group).
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// The ingest-api binary to start (default: `ingest-api` next to this executable).
    #[arg(long)]
    pub ingest_api_bin: Option<PathBuf>,
    /// Run even if this bench or ingest-api is a debug build (the figures are then meaningless).
    #[arg(long)]
    pub allow_debug: bool,

    /// Devices (recorders) the load is spread over, each with its own token. The acceptor keeps
    /// its default per-device rate limit, so this must be large enough for the peak request
    /// rate (default limit 5 requests/s per device).
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Punches per request in the batch phases.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Connections (HTTP) or tasks (raw producer) in the batch phases.
    #[arg(long, default_value_t = 32)]
    pub batch_connections: usize,
    /// Connections in the single-punch phases, the same for ingest-api and the bare endpoint.
    #[arg(long, default_value_t = 256)]
    pub single_connections: usize,

    /// Measured seconds of each batch throughput phase (ingest-api, raw producer).
    #[arg(long, default_value_t = 20.0)]
    pub batch_secs: f64,
    /// Measured seconds of each single-punch throughput phase (ingest-api, bare endpoint).
    #[arg(long, default_value_t = 15.0)]
    pub single_secs: f64,
    /// Measured seconds of each open-loop latency phase (batch, single punch).
    #[arg(long, default_value_t = 15.0)]
    pub latency_secs: f64,
    /// Unmeasured warm-up seconds before each phase and round.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_secs: f64,
    /// Each throughput comparison alternates ingest-api and its baseline this many times (the
    /// phase's seconds are split between rounds), so a noisy neighbour hits both alike.
    #[arg(long, default_value_t = 4)]
    pub rounds: u32,
    /// Open-loop rate of the latency phases, as a fraction of the measured peak.
    #[arg(long, default_value_t = 0.5)]
    pub latency_load: f64,
    /// Smoke run: 3 s per phase, 1 s warm-up, one round (overrides the settings above).
    #[arg(long)]
    pub quick: bool,
    /// Scrape ingest-api's /metrics this often, as Prometheus would (0: never).
    #[arg(long, default_value_t = 10.0)]
    pub scrape_secs: f64,

    /// Partitions of the bench group's topics.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Tenant group (and tenant) id to use (default: a fresh `bench-<suffix>` per run).
    #[arg(long)]
    pub group: Option<String>,
    /// Keep the group's topics and master data at the end (for inspection).
    #[arg(long)]
    pub keep: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seconds to wait for each started process to be ready.
    #[arg(long, default_value_t = 30.0)]
    pub ready_timeout_secs: f64,
    /// Pid of the Kafka broker, to report its CPU time per phase (default: read from
    /// `.stack/run/kafka.pid` if present).
    #[arg(long)]
    pub kafka_pid: Option<u32>,
}

impl RunArgs {
    /// The settings with `--quick` applied.
    pub fn effective(mut self) -> Self {
        if self.quick {
            self.batch_secs = 3.0;
            self.single_secs = 3.0;
            self.latency_secs = 3.0;
            self.warmup_secs = 1.0;
            self.rounds = 1;
        }
        self
    }

    /// Settings that cannot work, said before anything is set up.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("--batch-secs", self.batch_secs),
            ("--single-secs", self.single_secs),
            ("--latency-secs", self.latency_secs),
            ("--ready-timeout-secs", self.ready_timeout_secs),
        ];
        for (flag, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("{flag} must be a positive number of seconds"));
            }
        }
        if !(self.warmup_secs.is_finite() && self.warmup_secs >= 0.0) {
            return Err("--warmup-secs must be zero or positive".into());
        }
        if !(self.scrape_secs.is_finite() && self.scrape_secs >= 0.0) {
            return Err("--scrape-secs must be zero or positive".into());
        }
        if !(self.latency_load > 0.0 && self.latency_load <= 1.0) {
            return Err("--latency-load must be in (0, 1]".into());
        }
        if self.batch_size == 0 || self.batch_connections == 0 || self.single_connections == 0 {
            return Err("--batch-size and the connection counts must be positive".into());
        }
        let most = self.batch_connections.max(self.single_connections);
        if self.devices < most {
            return Err(format!(
                "--devices ({}) must be at least the largest connection count ({most}): each connection sends for its own devices",
                self.devices
            ));
        }
        if self.rounds == 0 {
            return Err("--rounds must be at least 1".into());
        }
        if let Some(group) = &self.group
            && group.len() > 30
        {
            return Err(
                "--group must be at most 30 characters (the baseline uses <group>-b)".into(),
            );
        }
        if self.partitions < 1 {
            return Err("--partitions must be at least 1".into());
        }
        Ok(())
    }
}
