//! The circuit breaker on undecodable input: a bad deploy upstream (new schema, wrong topic,
//! corrupt producer) must stop the consumer group with a clear error instead of quarantining
//! the whole log (arroyo's `DlqLimit`).
//!
//! It keeps the outcome of the last `window` records. Records of the open transaction are
//! pending: they count for tripping at once (so the batch that crosses the limit is aborted,
//! not committed into quarantine) but are only kept once their transaction commits; an aborted
//! transaction's records are processed again and must not be counted twice.

use std::collections::VecDeque;

/// Limits of the breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerLimits {
    /// Trip when the invalid fraction of the window exceeds this.
    pub max_invalid_ratio: f64,
    /// Records the ratio is computed over.
    pub window: usize,
    /// Records seen before the breaker may trip.
    pub min_records: usize,
}

/// Why the breaker tripped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tripped {
    /// Invalid records in the window.
    pub invalid: usize,
    /// Records in the window.
    pub seen: usize,
    /// The limit that was passed.
    pub max_invalid_ratio: f64,
}

/// The breaker's state.
#[derive(Debug, Clone)]
pub struct Breaker {
    limits: BreakerLimits,
    committed: VecDeque<bool>,
    committed_invalid: usize,
    pending: Vec<bool>,
    pending_invalid: usize,
}

impl Breaker {
    /// A breaker that has seen nothing.
    pub fn new(limits: BreakerLimits) -> Self {
        Self {
            limits,
            committed: VecDeque::with_capacity(limits.window),
            committed_invalid: 0,
            pending: Vec::new(),
            pending_invalid: 0,
        }
    }

    /// Records one record of the open transaction; `Err` when the breaker trips with it.
    pub fn record(&mut self, valid: bool) -> Result<(), Tripped> {
        self.pending.push(valid);
        if !valid {
            self.pending_invalid += 1;
            return self.check();
        }
        Ok(())
    }

    /// The window as it would be with the pending records: (invalid, seen).
    fn window(&self) -> (usize, usize) {
        let window = self.limits.window;
        if self.pending.len() >= window {
            let tail = &self.pending[self.pending.len() - window..];
            return (tail.iter().filter(|v| !**v).count(), window);
        }
        let keep = window - self.pending.len();
        let dropped = self.committed.len().saturating_sub(keep);
        let dropped_invalid = self.committed.iter().take(dropped).filter(|v| !**v).count();
        (
            self.committed_invalid - dropped_invalid + self.pending_invalid,
            self.committed.len() - dropped + self.pending.len(),
        )
    }

    fn check(&self) -> Result<(), Tripped> {
        let (invalid, seen) = self.window();
        // Compare in integers scaled by the ratio: seen * ratio may be fractional.
        if seen >= self.limits.min_records
            && invalid as f64 > self.limits.max_invalid_ratio * seen as f64
        {
            return Err(Tripped {
                invalid,
                seen,
                max_invalid_ratio: self.limits.max_invalid_ratio,
            });
        }
        Ok(())
    }

    /// The invalid fraction of the window (pending included), for metrics.
    pub fn ratio(&self) -> f64 {
        let (invalid, seen) = self.window();
        if seen == 0 {
            0.0
        } else {
            invalid as f64 / seen as f64
        }
    }

    /// The open transaction committed: its records join the window.
    pub fn commit(&mut self) {
        for valid in self.pending.drain(..) {
            if self.committed.len() == self.limits.window
                && let Some(old) = self.committed.pop_front()
                && !old
            {
                self.committed_invalid -= 1;
            }
            self.committed.push_back(valid);
            if !valid {
                self.committed_invalid += 1;
            }
        }
        self.pending_invalid = 0;
    }

    /// The open transaction aborted: its records will be seen again.
    pub fn abort(&mut self) {
        self.pending.clear();
        self.pending_invalid = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(ratio: f64, window: usize, min: usize) -> BreakerLimits {
        BreakerLimits {
            max_invalid_ratio: ratio,
            window,
            min_records: min,
        }
    }

    #[test]
    fn does_not_trip_before_min_records() {
        let mut b = Breaker::new(limits(0.5, 10, 4));
        assert!(b.record(false).is_ok());
        assert!(b.record(false).is_ok());
        assert!(b.record(false).is_ok());
        let tripped = b.record(false).expect_err("4 of 4 invalid");
        assert_eq!((tripped.invalid, tripped.seen), (4, 4));
    }

    #[test]
    fn trips_only_above_the_limit() {
        let mut b = Breaker::new(limits(0.5, 10, 10));
        for _ in 0..5 {
            b.record(true).expect("valid");
        }
        for _ in 0..5 {
            b.record(false)
                .expect("5 of 10 is at, not above, the limit");
        }
        b.commit();
        // The window slides: a valid record leaves, an invalid one enters: 6 of 10.
        assert!(b.record(false).is_err());
    }

    #[test]
    fn aborted_records_are_forgotten_and_committed_ones_slide_out() {
        let mut b = Breaker::new(limits(0.5, 4, 4));
        b.record(false).expect("ok");
        b.record(false).expect("ok");
        b.abort();
        for _ in 0..4 {
            b.record(true).expect("valid");
        }
        b.commit();
        assert_eq!(b.ratio(), 0.0);
        b.record(false).expect("1 of 4");
        b.record(false).expect("2 of 4");
        b.commit();
        assert_eq!(b.ratio(), 0.5);
        assert!(b.record(false).is_err(), "3 of 4");
    }

    proptest! {
        #[test]
        fn window_matches_a_naive_count(ops in proptest::collection::vec(0u8..4, 0..200)) {
            let mut b = Breaker::new(limits(1.0, 7, 1));
            let mut history: Vec<bool> = Vec::new();
            let mut pending: Vec<bool> = Vec::new();
            for op in ops {
                match op {
                    0 | 1 => { let _ = b.record(op == 0); pending.push(op == 0); }
                    2 => { b.commit(); history.append(&mut pending); }
                    _ => { b.abort(); pending.clear(); }
                }
                let all: Vec<bool> = history.iter().chain(pending.iter()).copied().collect();
                let tail = &all[all.len().saturating_sub(7)..];
                let expected = (tail.iter().filter(|v| !**v).count(), tail.len());
                prop_assert_eq!(b.window(), expected);
            }
        }
    }
}
