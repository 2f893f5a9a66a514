//! What a batch or a recompute did, as the store reports it.

use std::collections::BTreeMap;

use dakoku_schemas::AttendanceDay;

use crate::counts::Counts;

/// What a batch did, for the publisher, metrics and logs.
#[derive(Debug, Default)]
pub struct Applied {
    /// The batch's sequence number (`attendance_batch_seq`).
    pub batch_seq: i64,
    /// Days whose figures changed, as committed: publish these.
    pub changed_days: Vec<AttendanceDay>,
    /// Offsets stored: partition -> next offset to read.
    pub offsets: BTreeMap<i32, i64>,
    /// Counts of what happened to the records.
    pub counts: Counts,
}

/// What [`Store::recompute`](crate::store::Store::recompute) did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recomputed {
    /// The transaction's batch sequence: changed days carry it (the outbox position).
    pub batch_seq: i64,
    /// Days whose figures changed (written with a new revision).
    pub changed: u64,
    /// Days whose figures were already right (not written).
    pub unchanged: u64,
}
