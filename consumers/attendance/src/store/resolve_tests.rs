//! Unit tests of `resolve`: which verdict of a punch counts, case by case.

use super::*;
use dakoku_schemas::{DeviceId, PunchId, TenantId};

/// 2020-12-04T09:00:00+09:00.
const AT: i64 = 1_607_040_000_000;

fn verdict(accepted: bool, master_data_version: i64, checked_at: i64) -> CheckedPunch {
    let tenant: TenantId = "acme".parse().expect("tenant");
    let device: DeviceId = "PT-1".parse().expect("device");
    CheckedPunch {
        punch_id: PunchId::derive(&tenant, &device, 1),
        tenant_id: tenant,
        group: "g".parse().expect("group"),
        device_id: device,
        seq: 1,
        card_id: "C1".parse().expect("card"),
        kind: PunchKind::ClockIn,
        at: AT,
        at_offset_minutes: 540,
        received_at: AT,
        acceptor_id: "test".into(),
        verdict: if accepted {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        },
        reason: None,
        employee_id: Some("E1".parse().expect("employee")),
        master_data_version,
        checked_at,
    }
}

fn accepted(mdv: i64, checked_at: i64) -> CheckedPunch {
    verdict(true, mdv, checked_at)
}

fn rejected(mdv: i64, checked_at: i64) -> CheckedPunch {
    verdict(false, mdv, checked_at)
}

fn records(verdicts: Vec<CheckedPunch>) -> Vec<Incoming> {
    verdicts
        .into_iter()
        .enumerate()
        .map(|(i, v)| Incoming {
            partition: 0,
            offset: i as i64,
            verdict: Some(v),
        })
        .collect()
}

/// The punch's standing after a batch.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    Unknown,
    Rejected { key: VerdictKey, upsert: bool },
    Stored { key: VerdictKey, withdrawn: bool },
}

struct Outcome {
    counts: Counts,
    touched: usize,
    conflicts: usize,
    standing: Standing,
}

/// Resolves `verdicts` in order, as one batch on an empty store.
fn run(verdicts: Vec<CheckedPunch>) -> Outcome {
    let batch = records(verdicts);
    let mut states = HashMap::new();
    let mut counts = Counts::default();
    let mut touched = BTreeSet::new();
    let mut conflicts = Vec::new();
    for record in &batch {
        let verdict = record.verdict.as_ref().expect("verdict");
        resolve(
            &mut states,
            record,
            verdict,
            &TenantRules::defaults(),
            &mut counts,
            &mut touched,
            &mut conflicts,
        );
    }
    let standing = match states.values().next() {
        None => Standing::Unknown,
        Some(PunchState::Rejected { key, upsert }) => Standing::Rejected {
            key: *key,
            upsert: upsert.is_some(),
        },
        Some(PunchState::Stored { key, withdrawn, .. }) => Standing::Stored {
            key: *key,
            withdrawn: *withdrawn,
        },
    };
    assert!(states.len() <= 1, "one punch");
    Outcome {
        counts,
        touched: touched.len(),
        conflicts: conflicts.len(),
        standing,
    }
}

fn key(mdv: i64, checked_at: i64, rank: u8) -> VerdictKey {
    VerdictKey {
        master_data_version: mdv,
        checked_at,
        rank,
    }
}

#[test]
fn an_acceptance_stores_the_punch_on_its_work_date() {
    let out = run(vec![accepted(1, 10)]);
    assert_eq!(out.counts.stored, 1);
    assert_eq!(out.touched, 1);
    assert_eq!(
        out.standing,
        Standing::Stored {
            key: key(1, 10, 0),
            withdrawn: false
        }
    );
}

#[test]
fn a_rejection_of_an_unknown_punch_is_remembered_and_touches_nothing() {
    let out = run(vec![rejected(1, 10)]);
    assert_eq!(out.counts.rejected, 1);
    assert_eq!(out.touched, 0);
    assert_eq!(
        out.standing,
        Standing::Rejected {
            key: key(1, 10, 1),
            upsert: true
        }
    );
}

#[test]
fn a_later_rejection_withdraws_and_a_later_acceptance_reinstates() {
    let out = run(vec![accepted(1, 10), rejected(2, 20)]);
    assert_eq!((out.counts.stored, out.counts.withdrawn), (1, 1));
    assert_eq!(
        out.standing,
        Standing::Stored {
            key: key(2, 20, 1),
            withdrawn: true
        }
    );

    let out = run(vec![accepted(1, 10), rejected(2, 20), accepted(3, 30)]);
    assert_eq!(out.counts.reinstated, 1);
    assert_eq!(
        out.standing,
        Standing::Stored {
            key: key(3, 30, 0),
            withdrawn: false
        }
    );
}

#[test]
fn verdict_key_order_not_arrival_order_decides() {
    // The rejection judged with older master data arrives later: it changes nothing.
    let out = run(vec![accepted(2, 10), rejected(1, 20)]);
    assert_eq!((out.counts.superseded, out.counts.withdrawn), (1, 0));
    assert_eq!(
        out.standing,
        Standing::Stored {
            key: key(2, 10, 0),
            withdrawn: false
        }
    );

    // An older acceptance read after a newer rejection: stored, but withdrawn.
    let out = run(vec![rejected(2, 20), accepted(1, 10)]);
    assert_eq!((out.counts.rejected, out.counts.superseded), (1, 1));
    assert_eq!(out.counts.stored, 0);
    assert_eq!(out.touched, 0, "a withdrawn punch adds nothing to its day");
    assert_eq!(
        out.standing,
        Standing::Stored {
            key: key(2, 20, 1),
            withdrawn: true
        }
    );
}

#[test]
fn on_a_tie_the_rejection_wins() {
    // Same master data, same checked_at: never pay on a tie, whatever arrives first.
    let out = run(vec![accepted(1, 10), rejected(1, 10)]);
    assert_eq!(out.counts.withdrawn, 1);
    assert_eq!(
        out.standing,
        Standing::Stored {
            key: key(1, 10, 1),
            withdrawn: true
        }
    );

    let out = run(vec![rejected(1, 10), accepted(1, 10)]);
    assert_eq!(out.counts.superseded, 1);
    assert_eq!(
        out.standing,
        Standing::Stored {
            key: key(1, 10, 1),
            withdrawn: true
        }
    );
}

#[test]
fn a_resend_judged_again_with_the_same_master_data_writes_nothing() {
    let out = run(vec![accepted(1, 10), accepted(1, 99), accepted(1, 10)]);
    assert_eq!((out.counts.stored, out.counts.duplicates), (1, 2));
    assert_eq!(
        out.standing,
        Standing::Stored {
            key: key(1, 10, 0),
            withdrawn: false
        },
        "the later checked_at of the same master data orders nothing"
    );

    // A rejection resent with a later checked_at does not move the stored rejection either.
    let out = run(vec![rejected(1, 10), rejected(1, 99)]);
    assert_eq!(out.counts.rejected, 2);
    assert_eq!(
        out.standing,
        Standing::Rejected {
            key: key(1, 10, 1),
            upsert: true
        }
    );
}

#[test]
fn different_content_under_the_same_punch_id_is_a_conflict() {
    let mut other = accepted(2, 20);
    other.at += 60_000;
    let out = run(vec![accepted(1, 10), other]);
    assert_eq!((out.counts.stored, out.counts.conflicts), (1, 1));
    assert_eq!(out.conflicts, 1);
    assert_eq!(
        out.standing,
        Standing::Stored {
            key: key(1, 10, 0),
            withdrawn: false
        },
        "a conflict never changes the stored punch"
    );

    // An acceptance naming another employee conflicts; a rejection without one does not.
    let mut moved = accepted(2, 20);
    moved.employee_id = Some("E2".parse().expect("employee"));
    let mut anonymous = rejected(3, 30);
    anonymous.employee_id = None;
    let out = run(vec![accepted(1, 10), moved, anonymous]);
    assert_eq!(
        (out.counts.conflicts, out.counts.withdrawn),
        (1, 1),
        "the rejection is about this punch"
    );
}

#[test]
fn an_acceptance_without_an_employee_is_invalid() {
    let mut v = accepted(1, 10);
    v.employee_id = None;
    let out = run(vec![v]);
    assert_eq!(out.counts.invalid, 1);
    assert_eq!(out.standing, Standing::Unknown);
}
