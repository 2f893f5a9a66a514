//! The storm's counters: per-second tallies, latency, and live totals the sampler reads while
//! the storm runs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies above this are clamped in the histogram (µs).
const LATENCY_MAX_US: u64 = 120_000_000;

/// Counts of one second (or of the whole storm).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Requests answered or failed.
    pub requests: u64,
    /// Punches acked (answers may ack a punch again: counted each time).
    pub acked: u64,
    /// Punches rejected as invalid (the storm sends none).
    pub rejected: u64,
    /// Outcomes by label: the HTTP status (`"200"`, `"429"`, `"503"`, ...) or a client-side
    /// failure (`"timeout"`, `"connect"`, `"connection"`).
    pub statuses: BTreeMap<String, u64>,
}

impl Tally {
    pub(super) fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.acked += other.acked;
        self.rejected += other.rejected;
        for (label, n) in &other.statuses {
            *self.statuses.entry(label.clone()).or_default() += n;
        }
    }

    /// Requests with this label.
    pub fn status(&self, label: &str) -> u64 {
        self.statuses.get(label).copied().unwrap_or(0)
    }

    /// `429` and `503` answers: the acceptor's cheap refusals.
    pub fn refusals(&self) -> u64 {
        self.status("429") + self.status("503")
    }

    /// Answers that are neither `200` nor a documented refusal with `Retry-After`: other
    /// statuses and client-side failures. Counted, never hidden.
    pub fn undocumented(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(label, _)| !matches!(label.as_str(), "200" | "429" | "503"))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Live counters of a running storm, readable while it runs (the scenario's sampler).
#[derive(Debug, Default)]
pub struct Live {
    /// Punches acked so far (with repeats).
    pub acked: AtomicU64,
    /// Requests answered or failed so far.
    pub requests: AtomicU64,
    /// `429` + `503` answers so far.
    pub refusals: AtomicU64,
    /// Everything else that was not a `200`.
    pub failures: AtomicU64,
    /// Recorders whose initial pool is empty.
    pub drained: AtomicUsize,
    /// Punches still pending across recorders (pool and trickle), as of each one's last step.
    pub pending: AtomicU64,
    shared: Mutex<Shared>,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) timeline: Vec<Tally>,
    pub(super) latency: Histogram<u64>,
    pub(super) missing_retry_after: u64,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            timeline: Vec::new(),
            latency: new_histogram(),
            missing_retry_after: 0,
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_max(LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

impl Live {
    pub(super) fn record(
        &self,
        second: usize,
        label: &str,
        latency: Duration,
        acked: u64,
        rejected: u64,
    ) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.acked.fetch_add(acked, Ordering::Relaxed);
        match label {
            "200" => {}
            "429" | "503" => {
                self.refusals.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if shared.timeline.len() <= second {
            shared.timeline.resize_with(second + 1, Tally::default);
        }
        let bucket = &mut shared.timeline[second];
        bucket.requests += 1;
        bucket.acked += acked;
        bucket.rejected += rejected;
        *bucket.statuses.entry(label.to_owned()).or_default() += 1;
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_MAX_US);
        shared.latency.saturating_record(micros);
    }

    /// Takes the timeline, latency and breaches recorded so far (at the storm's end).
    pub(super) fn take_shared(&self) -> Shared {
        std::mem::take(&mut *self.shared.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn missing_retry_after(&self) {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .missing_retry_after += 1;
    }
}
