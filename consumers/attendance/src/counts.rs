//! What a batch did to its records and days, counted: the store fills it, metrics and the
//! rebuild's report read it.

/// Per-batch counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Records below the stored offsets (applied by an earlier batch), skipped.
    pub already_applied: u64,
    /// Punches stored for the first time.
    pub stored: u64,
    /// Accepted verdicts of a punch already stored with the same content.
    pub duplicates: u64,
    /// Verdicts whose content differs from the stored punch: kept aside.
    pub conflicts: u64,
    /// Stored punches withdrawn by a later rejection.
    pub withdrawn: u64,
    /// Withdrawn punches counted again after a later acceptance.
    pub reinstated: u64,
    /// Rejections of punches never stored (skipped; remembered).
    pub rejected: u64,
    /// Verdicts older than the one already known for their punch (no effect).
    pub superseded: u64,
    /// Quarantined records whose offsets advanced.
    pub invalid: u64,
    /// Days whose figures changed.
    pub days_changed: u64,
    /// Days and months recomputed with no change.
    pub days_unchanged: u64,
    /// Months whose figures changed.
    pub months_changed: u64,
    /// Punches stored by the batch that the rules ignore as double taps.
    pub double_taps: u64,
}

impl Counts {
    /// Adds `other` to these counts (the rebuild sums its batches).
    pub fn add(&mut self, other: &Counts) {
        self.already_applied += other.already_applied;
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.conflicts += other.conflicts;
        self.withdrawn += other.withdrawn;
        self.reinstated += other.reinstated;
        self.rejected += other.rejected;
        self.superseded += other.superseded;
        self.invalid += other.invalid;
        self.days_changed += other.days_changed;
        self.days_unchanged += other.days_unchanged;
        self.months_changed += other.months_changed;
        self.double_taps += other.double_taps;
    }
}
