//! What a storm did: per-recorder acked sets, the timeline, totals and why it stopped.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::config::Behaviour;
use super::live::Tally;

/// A set of `seq`s as sorted, disjoint, non-adjacent inclusive ranges (acks come in order,
/// so 10,000 acked punches are usually one range).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqSet(Vec<(u64, u64)>);

impl SeqSet {
    /// Adds `seq`.
    pub fn insert(&mut self, seq: u64) {
        if let Some(last) = self.0.last_mut() {
            if seq >= last.0 && seq <= last.1 {
                return;
            }
            if seq == last.1 + 1 {
                last.1 = seq;
                return;
            }
            if seq > last.1 {
                self.0.push((seq, seq));
                return;
            }
        } else {
            self.0.push((seq, seq));
            return;
        }
        // Out of order (rare): insert and normalise.
        self.0.push((seq, seq));
        self.normalise();
    }

    fn normalise(&mut self) {
        self.0.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(self.0.len());
        for &(lo, hi) in &self.0 {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        self.0 = out;
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < seq);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= seq)
    }

    /// Number of seqs.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|&(lo, hi)| hi - lo + 1).sum()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every seq, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    /// The ranges.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.0
    }
}

/// What one recorder ended with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecorderOutcome {
    /// Tenant.
    pub tenant: String,
    /// Device.
    pub device: String,
    /// Every seq acked at least once.
    pub acked: SeqSet,
    /// Punches created (pool plus trickle): seqs `1..=created`.
    pub created: u64,
    /// Punches still pending when the storm stopped.
    pub pending: u64,
    /// When its initial pool was empty, seconds after the storm started.
    pub pool_drained_after_secs: Option<f64>,
}

/// What a storm did.
#[derive(Debug)]
pub struct Outcome {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it ran.
    pub elapsed: Duration,
    /// The behaviour.
    pub behaviour: Behaviour,
    /// Per recorder.
    pub recorders: Vec<RecorderOutcome>,
    /// Per second since the start.
    pub timeline: Vec<Tally>,
    /// All of it.
    pub totals: Tally,
    /// Latency of every request (µs), whatever its answer.
    pub latency: Histogram<u64>,
    /// `429`/`503` answers that came without a `Retry-After` (a contract breach if not 0).
    pub missing_retry_after: u64,
    /// Why it stopped.
    pub stopped_because: StopReason,
}

/// Why a storm stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every recorder emptied its initial pool.
    Drained,
    /// `max_duration` passed.
    DurationCap,
    /// The caller's shutdown future resolved.
    Shutdown,
}

impl Outcome {
    /// Distinct punches acked.
    pub fn acked_distinct(&self) -> u64 {
        self.recorders.iter().map(|r| r.acked.len()).sum()
    }

    /// Punches still pending at the end.
    pub fn pending(&self) -> u64 {
        self.recorders.iter().map(|r| r.pending).sum()
    }

    /// Seconds until every initial pool was empty (`None` if some was not).
    pub fn all_drained_after_secs(&self) -> Option<f64> {
        self.recorders
            .iter()
            .map(|r| r.pool_drained_after_secs)
            .try_fold(0.0_f64, |max, d| d.map(|d| max.max(d)))
    }

    /// Recorders whose initial pool was not empty at the end.
    pub fn pools_remaining(&self) -> usize {
        self.recorders
            .iter()
            .filter(|r| r.pool_drained_after_secs.is_none())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_sets_merge_ranges_in_any_order() {
        let mut set = SeqSet::default();
        for seq in [1, 2, 3, 7, 5, 6, 3, 4, 10] {
            set.insert(seq);
        }
        assert_eq!(set.ranges(), &[(1, 7), (10, 10)]);
        assert_eq!(set.len(), 8);
        assert!(set.contains(6) && set.contains(10) && !set.contains(8) && !set.contains(0));
    }
}
