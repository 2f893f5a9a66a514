//! Which verdict counts: each verdict of a batch applied, in log order, to the batch's view of
//! its punch (stored, rejected, or new), deciding what is written and which days are touched
//! (see the store's docs, "Which verdict counts").

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use dakoku_schemas::{CheckedPunch, PunchKind, Verdict, VerdictKey};
use uuid::Uuid;

use super::keys::{EmployeeKey, Touch};
use super::rulebooks::{self, TenantRules};
use crate::counts::Counts;
use crate::decode::Incoming;

/// The content of a punch that must agree between verdicts of one `punch_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Content {
    pub(super) card_id: String,
    pub(super) kind: PunchKind,
    pub(super) at: i64,
    pub(super) at_offset_minutes: i32,
    pub(super) employee_id: Option<String>,
}

impl Content {
    fn of(verdict: &CheckedPunch) -> Self {
        Self {
            card_id: verdict.card_id.to_string(),
            kind: verdict.kind,
            at: verdict.at,
            at_offset_minutes: verdict.at_offset_minutes,
            employee_id: verdict.employee_id.as_ref().map(ToString::to_string),
        }
    }

    /// Whether `verdict` is about this punch: the raw content matches, and for an acceptance
    /// the employee too (a rejection may not know the employee any more).
    fn agrees_with(&self, verdict: &CheckedPunch) -> bool {
        let other = Content::of(verdict);
        self.card_id == other.card_id
            && self.kind == other.kind
            && self.at == other.at
            && self.at_offset_minutes == other.at_offset_minutes
            && (verdict.verdict == Verdict::Rejected || self.employee_id == other.employee_id)
    }
}

/// What is known about a punch during a batch; `'a` borrows the batch's verdicts.
#[derive(Debug)]
pub(super) enum PunchState<'a> {
    /// In `punch_rejections` (or about to be): rejected, never accepted.
    Rejected {
        key: VerdictKey,
        /// The latest rejection, to upsert (None: the stored row is current).
        upsert: Option<&'a Incoming>,
    },
    /// In `punches` (or about to be).
    Stored {
        content: Content,
        touch: Touch,
        key: VerdictKey,
        withdrawn: bool,
        /// The row to insert, if it is new in this batch.
        insert: Option<NewPunch<'a>>,
        /// Where the verdict that set `key` came from, when it changed in this batch.
        verdict_source: Option<(i32, i64)>,
        /// Whether the row had a `punch_rejections` entry to delete.
        drop_rejection: bool,
    },
}

/// A punch row to insert.
#[derive(Debug, Clone, Copy)]
pub(super) struct NewPunch<'a> {
    pub(super) record: &'a Incoming,
    pub(super) verdict: &'a CheckedPunch,
    pub(super) work_date: NaiveDate,
}

/// Applies one verdict to the batch's view of its punch.
pub(super) fn resolve<'a>(
    states: &mut HashMap<Uuid, PunchState<'a>>,
    record: &'a Incoming,
    verdict: &'a CheckedPunch,
    rules: &TenantRules,
    counts: &mut Counts,
    touched: &mut BTreeSet<Touch>,
    conflicts: &mut Vec<&'a Incoming>,
) {
    let id = *verdict.punch_id.as_uuid();
    match states.get_mut(&id) {
        Some(state @ PunchState::Stored { .. }) => {
            against_stored(state, record, verdict, counts, touched, conflicts);
        }
        Some(PunchState::Rejected { .. }) => {
            against_rejected(states, record, verdict, rules, counts, touched);
        }
        None => first_verdict(states, record, verdict, rules, counts, touched),
    }
}

/// A verdict of a punch stored in `punches`: a conflict, a duplicate or older verdict, or a
/// change of standing (withdrawn, reinstated).
fn against_stored<'a>(
    state: &mut PunchState<'a>,
    record: &'a Incoming,
    verdict: &'a CheckedPunch,
    counts: &mut Counts,
    touched: &mut BTreeSet<Touch>,
    conflicts: &mut Vec<&'a Incoming>,
) {
    let PunchState::Stored {
        content,
        touch,
        key: stored_key,
        withdrawn,
        verdict_source,
        ..
    } = state
    else {
        return;
    };
    let key = VerdictKey::of(verdict);
    let accepted = verdict.verdict == Verdict::Accepted;
    let source = (record.partition, record.offset);

    if !content.agrees_with(verdict) {
        counts.conflicts += 1;
        conflicts.push(record);
        return;
    }
    if key <= *stored_key {
        if accepted && !*withdrawn {
            counts.duplicates += 1;
        } else {
            counts.superseded += 1;
        }
        return;
    }
    if key.master_data_version == stored_key.master_data_version && accepted != *withdrawn {
        // The same verdict from the same master data: a resend judged again. Verdicts
        // of one master-data version cannot disagree (the check is a pure function of
        // punch and snapshot), so its later `checked_at` orders nothing: not written.
        if accepted {
            counts.duplicates += 1;
        } else {
            counts.superseded += 1;
        }
        return;
    }
    *stored_key = key;
    *verdict_source = Some(source);
    match (accepted, *withdrawn) {
        (true, true) => {
            *withdrawn = false;
            counts.reinstated += 1;
            touched.insert(touch.clone());
        }
        (false, false) => {
            *withdrawn = true;
            counts.withdrawn += 1;
            touched.insert(Touch {
                removed: true,
                ..touch.clone()
            });
        }
        (true, false) => counts.duplicates += 1,
        (false, true) => counts.superseded += 1,
    }
}

/// A verdict of a punch known only as rejected: an acceptance stores it (withdrawn if the
/// rejection is later), a newer rejection replaces the remembered one.
fn against_rejected<'a>(
    states: &mut HashMap<Uuid, PunchState<'a>>,
    record: &'a Incoming,
    verdict: &'a CheckedPunch,
    rules: &TenantRules,
    counts: &mut Counts,
    touched: &mut BTreeSet<Touch>,
) {
    let id = *verdict.punch_id.as_uuid();
    let key = VerdictKey::of(verdict);
    let accepted = verdict.verdict == Verdict::Accepted;
    let Some(PunchState::Rejected {
        key: rejected_key,
        upsert,
    }) = states.get_mut(&id)
    else {
        return;
    };

    if accepted {
        let Some(new) = new_punch(record, verdict, rules) else {
            counts.invalid += 1;
            return;
        };
        let withdrawn = *rejected_key > key;
        let touch = new.touch();
        if withdrawn {
            counts.superseded += 1;
        } else {
            counts.stored += 1;
            touched.insert(touch.clone());
        }
        let stored_key = key.max(*rejected_key);
        states.insert(
            id,
            PunchState::Stored {
                content: Content::of(verdict),
                touch,
                key: stored_key,
                withdrawn,
                insert: Some(new),
                verdict_source: None,
                drop_rejection: true,
            },
        );
    } else {
        counts.rejected += 1;
        if key.master_data_version > rejected_key.master_data_version {
            *rejected_key = key;
            *upsert = Some(record);
        }
    }
}

/// The first verdict of a punch: an acceptance stores it, a rejection is remembered.
fn first_verdict<'a>(
    states: &mut HashMap<Uuid, PunchState<'a>>,
    record: &'a Incoming,
    verdict: &'a CheckedPunch,
    rules: &TenantRules,
    counts: &mut Counts,
    touched: &mut BTreeSet<Touch>,
) {
    let id = *verdict.punch_id.as_uuid();
    let key = VerdictKey::of(verdict);
    let accepted = verdict.verdict == Verdict::Accepted;

    if accepted {
        let Some(new) = new_punch(record, verdict, rules) else {
            counts.invalid += 1;
            return;
        };
        counts.stored += 1;
        let touch = new.touch();
        touched.insert(touch.clone());
        states.insert(
            id,
            PunchState::Stored {
                content: Content::of(verdict),
                touch,
                key,
                withdrawn: false,
                insert: Some(new),
                verdict_source: None,
                drop_rejection: false,
            },
        );
    } else {
        counts.rejected += 1;
        states.insert(
            id,
            PunchState::Rejected {
                key,
                upsert: Some(record),
            },
        );
    }
}

fn new_punch<'a>(
    record: &'a Incoming,
    verdict: &'a CheckedPunch,
    rules: &TenantRules,
) -> Option<NewPunch<'a>> {
    // The consumer quarantines accepted verdicts without an employee before they get here.
    verdict.employee_id.as_ref()?;
    Some(NewPunch {
        record,
        verdict,
        work_date: rulebooks::own_date(rules, verdict.at),
    })
}

impl NewPunch<'_> {
    fn touch(&self) -> Touch {
        Touch {
            employee: EmployeeKey {
                tenant: self.verdict.tenant_id.to_string(),
                employee: self
                    .verdict
                    .employee_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            },
            at: self.verdict.at,
            removed: false,
        }
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
