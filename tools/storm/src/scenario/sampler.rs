//! The sampler: once a second, the storm's counters, the target's RSS and CPU, and the lag.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dakoku_bench::process;
use tokio::sync::watch;

use crate::lag::LagReader;
use crate::sample::Sample;
use crate::sim::Live;

/// Takes one [`Sample`] a second.
pub(super) struct Sampler {
    live: Arc<Live>,
    pid: u32,
    started: Instant,
    pub(super) samples: Vec<Sample>,
    last_acked: u64,
    last_refused: u64,
    last_failed: u64,
    pub(super) last_cpu: f64,
    pub(super) cpu_at_start: f64,
    lag_reader: Option<Arc<LagReader>>,
    pub(super) peak_cores: f64,
    /// The latest sample, for the catch-up wait.
    latest: watch::Sender<Option<Sample>>,
}

impl Sampler {
    /// A sampler of the process `pid` and the storm's `live` counters; seconds count from
    /// `started`; each sample is also sent to `latest`.
    pub(super) fn new(
        live: Arc<Live>,
        pid: u32,
        started: Instant,
        lag_reader: Option<Arc<LagReader>>,
        latest: watch::Sender<Option<Sample>>,
    ) -> Self {
        Self {
            live,
            pid,
            started,
            samples: Vec::new(),
            last_acked: 0,
            last_refused: 0,
            last_failed: 0,
            last_cpu: process::usage(pid).map_or(0.0, |u| u.cpu_secs),
            cpu_at_start: process::usage(pid).map_or(0.0, |u| u.cpu_secs),
            lag_reader,
            peak_cores: 0.0,
            latest,
        }
    }

    pub(super) async fn run(
        mut self,
        db: tokio_postgres::Client,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                _ = ticker.tick() => {}
            }
            let sample = self.sample(&db).await;
            let _ = self.latest.send(Some(sample.clone()));
            self.samples.push(sample);
        }
        Ok(self)
    }

    async fn sample(&mut self, db: &tokio_postgres::Client) -> Sample {
        let acked = self.live.acked.load(Ordering::Relaxed);
        let refused = self.live.refusals.load(Ordering::Relaxed);
        let failed = self.live.failures.load(Ordering::Relaxed);
        let usage = process::usage(self.pid);
        let cpu = usage.map_or(self.last_cpu, |u| u.cpu_secs);
        let cores = cpu - self.last_cpu;
        self.peak_cores = self.peak_cores.max(cores);
        let (lag_raw, lag_checked) = match &self.lag_reader {
            Some(reader) => match reader.read(db).await {
                Ok(lag) => (lag.licence_check.total(), lag.attendance.total()),
                Err(error) => {
                    tracing::warn!(%error, "could not read the lag this second");
                    self.samples
                        .last()
                        .map_or((0, 0), |s| (s.lag_raw, s.lag_checked))
                }
            },
            None => (0, 0),
        };
        let sample = Sample {
            t_s: self.started.elapsed().as_secs_f64(),
            acked_per_s: (acked - self.last_acked) as f64,
            refused_per_s: (refused - self.last_refused) as f64,
            failed_per_s: (failed - self.last_failed) as f64,
            lag_raw,
            lag_checked,
            rss_mib: usage.map_or(0.0, |u| u.rss_kib as f64 / 1024.0),
            cpu_cores: cores,
            health_max_ms: 0.0,
            pending: self.live.pending.load(Ordering::Relaxed),
        };
        self.last_acked = acked;
        self.last_refused = refused;
        self.last_failed = failed;
        self.last_cpu = cpu;
        sample
    }
}
