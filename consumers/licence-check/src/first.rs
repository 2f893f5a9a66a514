//! The first verdict of a `punch_id` stands (CONTRACT §3), the pure part: given the verdicts
//! stored for a batch's punches, which punches are judged now, and what is published for each.
//!
//! A punch whose `punch_id` has a stored verdict is published with that verdict unchanged
//! (same verdict, reason, employee, master-data version and `checked_at`), so downstream the
//! record is identical to the first one; a punch seen twice in one batch is judged once. Only
//! `punchctl recheck` changes a stored verdict. The I/O around it is [`crate::verdicts`].

use std::collections::HashMap;

use dakoku_schemas::{CheckedPunch, EmployeeId, PunchId, RawPunch, RejectReason, Verdict};

/// A verdict without its punch: what is stored per `punch_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// Accepted or rejected.
    pub verdict: Verdict,
    /// Why rejected; `None` exactly when accepted.
    pub reason: Option<RejectReason>,
    /// The card's employee, when known.
    pub employee: Option<EmployeeId>,
    /// `master_data_version` of the snapshot that judged.
    pub master_data_version: i64,
    /// When it was judged, ms since the epoch.
    pub checked_at: i64,
}

impl Judged {
    /// The verdict part of a checked punch.
    pub fn of(checked: &CheckedPunch) -> Self {
        Self {
            verdict: checked.verdict,
            reason: checked.reason,
            employee: checked.employee_id.clone(),
            master_data_version: checked.master_data_version,
            checked_at: checked.checked_at,
        }
    }

    /// `raw` with this verdict.
    pub fn apply(&self, raw: RawPunch) -> CheckedPunch {
        CheckedPunch::from_raw(
            raw,
            self.verdict,
            self.reason,
            self.employee.clone(),
            self.master_data_version,
            self.checked_at,
        )
    }
}

/// What a batch publishes and what it must store first.
#[derive(Debug, Default)]
pub struct Settled {
    /// One verdict per raw punch, in the batch's order.
    pub out: Vec<CheckedPunch>,
    /// Verdicts judged now (one per new `punch_id`), to store before the batch commits.
    pub judged: Vec<CheckedPunch>,
    /// Punches published with a stored verdict (resends, replays).
    pub reused: usize,
}

/// Settles a batch: the stored verdict where there is one, else `judge`'s (once per
/// `punch_id`).
pub fn settle(
    batch: Vec<RawPunch>,
    stored: &HashMap<PunchId, Judged>,
    mut judge: impl FnMut(&RawPunch) -> Judged,
) -> Settled {
    let mut settled = Settled::default();
    let mut now: HashMap<PunchId, Judged> = HashMap::new();
    for raw in batch {
        if let Some(first) = stored.get(&raw.punch_id) {
            settled.reused += 1;
            settled.out.push(first.apply(raw));
            continue;
        }
        let verdict = now.entry(raw.punch_id).or_insert_with(|| {
            let verdict = judge(&raw);
            settled.judged.push(verdict.apply(raw.clone()));
            verdict
        });
        settled.out.push(verdict.apply(raw));
    }
    settled
}

#[cfg(test)]
mod tests {
    use super::*;
    use dakoku_schemas::PunchKind;
    use proptest::prelude::*;

    fn raw(seq: u64) -> RawPunch {
        let tenant = "acme".parse().expect("tenant");
        let device = "PT-1".parse().expect("device");
        RawPunch {
            punch_id: PunchId::derive(&tenant, &device, seq),
            tenant_id: tenant,
            group: "g1".parse().expect("group"),
            device_id: device,
            seq,
            card_id: "C".parse().expect("card"),
            kind: PunchKind::ClockIn,
            at: 1_000 * seq as i64,
            at_offset_minutes: 540,
            received_at: 0,
            acceptor_id: "a".into(),
        }
    }

    /// A judge whose answer depends on the master data of the moment (`epoch`).
    fn judge(epoch: i64) -> impl FnMut(&RawPunch) -> Judged {
        move |raw| {
            let accepted = (raw.seq as i64 + epoch) % 2 == 0;
            Judged {
                verdict: if accepted {
                    Verdict::Accepted
                } else {
                    Verdict::Rejected
                },
                reason: (!accepted).then_some(RejectReason::NotLicensed),
                employee: None,
                master_data_version: epoch,
                checked_at: epoch * 10,
            }
        }
    }

    proptest! {
        /// Any sequence of resends, in batches of any size, judged each time with other
        /// master data: every punch is published with its first verdict, every time.
        #[test]
        fn every_resend_publishes_the_first_verdict(
            batches in proptest::collection::vec(proptest::collection::vec(0u64..8, 0..12), 1..8),
        ) {
            let mut stored: HashMap<PunchId, Judged> = HashMap::new();
            let mut first: HashMap<PunchId, Judged> = HashMap::new();
            for (epoch, seqs) in batches.iter().enumerate() {
                let batch: Vec<RawPunch> = seqs.iter().map(|s| raw(*s)).collect();
                let settled = settle(batch.clone(), &stored, judge(epoch as i64));
                prop_assert_eq!(settled.out.len(), batch.len());
                for (raw, out) in batch.iter().zip(&settled.out) {
                    prop_assert_eq!(&out.raw(), raw);
                    let verdict = first.entry(raw.punch_id).or_insert_with(|| Judged::of(out));
                    prop_assert_eq!(&Judged::of(out), verdict);
                }
                let mut ids: Vec<_> = settled.judged.iter().map(|j| j.punch_id).collect();
                ids.sort_unstable();
                ids.dedup();
                prop_assert_eq!(ids.len(), settled.judged.len(), "judged once per punch");
                prop_assert_eq!(settled.reused + settled.out.len() - settled.reused, batch.len());
                for judged in &settled.judged {
                    prop_assert!(stored.insert(judged.punch_id, Judged::of(judged)).is_none());
                }
            }
        }
    }
}
