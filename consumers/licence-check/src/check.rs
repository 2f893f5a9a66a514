//! The licence check (CONTRACT §3): a pure function of a punch and the master-data history,
//! judged **as of the punch's `at`**, never as of now.
//!
//! The rules, first failing one wins:
//! 1. the punch's tenant is in master data, else `unknown_tenant`;
//! 2. an employee of that tenant has the card (the card as registered now), else
//!    `unknown_card`;
//! 3. the employee is active at `at` (`active_from <= at < active_until`, the range recorded
//!    last), else `employee_inactive`;
//! 4. the employee holds a licence at `at` (the grant recorded last that covers `at`), else
//!    `not_licensed`;
//! 5. the tenant's licence in force on the punch's work date (tenant time zone and day change,
//!    [`work_date`]; the licence row recorded last that covers it) has seats, else
//!    `licence_expired` (no licence at all gets it too: the contract has no separate reason).
//!
//! Otherwise the punch is accepted. A change recorded from a date on leaves every punch before
//! that date judged as before (property-tested below). Every lookup is a hash probe and a
//! short scan of the employee's rows; the work date is computed only when a licence row has a
//! bound.

use dakoku_schemas::{CheckedPunch, EmployeeId, RawPunch, RejectReason, Verdict, work_date};

use crate::snapshot::Snapshot;

/// The outcome of checking one punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'s> {
    /// Accepted or rejected.
    pub verdict: Verdict,
    /// Why it was rejected; `None` exactly when accepted.
    pub reason: Option<RejectReason>,
    /// The card's employee, when the card is known.
    pub employee: Option<&'s EmployeeId>,
}

impl<'s> Decision<'s> {
    fn rejected(reason: RejectReason, employee: Option<&'s EmployeeId>) -> Self {
        Self {
            verdict: Verdict::Rejected,
            reason: Some(reason),
            employee,
        }
    }

    /// The punch with this decision, stamped with the snapshot version and `checked_at`.
    pub fn apply(self, raw: RawPunch, master_data_version: i64, checked_at: i64) -> CheckedPunch {
        CheckedPunch::from_raw(
            raw,
            self.verdict,
            self.reason,
            self.employee.cloned(),
            master_data_version,
            checked_at,
        )
    }
}

/// Checks `punch` against `snapshot`.
pub fn check<'s>(punch: &RawPunch, snapshot: &'s Snapshot) -> Decision<'s> {
    let Some(tenant) = snapshot.tenant(punch.tenant_id.as_str()) else {
        return Decision::rejected(RejectReason::UnknownTenant, None);
    };
    let Some(employee) = tenant.employee_by_card(punch.card_id.as_str()) else {
        return Decision::rejected(RejectReason::UnknownCard, None);
    };
    let id = Some(&employee.employee);
    if !employee.active_at(punch.at) {
        return Decision::rejected(RejectReason::EmployeeInactive, id);
    }
    if !employee.licensed_at(punch.at) {
        return Decision::rejected(RejectReason::NotLicensed, id);
    }
    let licences = &tenant.licences;
    let valid = if licences.is_dated() {
        licences.valid_on(work_date(punch.at, tenant.time_zone, tenant.day_change))
    } else {
        licences.valid_always()
    };
    if !valid {
        return Decision::rejected(RejectReason::LicenceExpired, id);
    }
    Decision {
        verdict: Verdict::Accepted,
        reason: None,
        employee: id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Employee, Tenant};
    use chrono::{DateTime, NaiveDate, NaiveTime};
    use dakoku_schemas::{PunchId, PunchKind};
    use dakoku_store::master::history::{ActiveRange, Grant, Grants, LicenceRow, Licences};
    use proptest::prelude::*;

    const DAY: i64 = 86_400_000;

    fn millis(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("valid time")
            .timestamp_millis()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn punch(tenant: &str, card: &str, at: i64) -> RawPunch {
        let tenant = tenant.parse().expect("tenant");
        let device = "PT-1".parse().expect("device");
        RawPunch {
            punch_id: PunchId::derive(&tenant, &device, 1),
            tenant_id: tenant,
            group: "g1".parse().expect("group"),
            device_id: device,
            seq: 1,
            card_id: card.parse().expect("card"),
            kind: PunchKind::ClockIn,
            at,
            at_offset_minutes: 540,
            received_at: at,
            acceptor_id: "a".into(),
        }
    }

    fn licence(seats: u32, from: Option<NaiveDate>, until: Option<NaiveDate>) -> Licences {
        Licences(vec![LicenceRow {
            seats,
            valid_from: from,
            valid_until: until,
        }])
    }

    fn grant(granted: bool, from: Option<i64>, until: Option<i64>) -> Grant {
        Grant {
            granted,
            range: ActiveRange { from, until },
        }
    }

    fn tokyo_tenant(licences: Licences) -> Tenant {
        Tenant::new(
            "g1".parse().expect("group"),
            chrono_tz::Asia::Tokyo,
            NaiveTime::from_hms_opt(5, 0, 0).expect("time"),
            licences,
        )
    }

    /// acme: licensed until 2020-12-03 (Tokyo, day change 05:00), with employees
    /// ok (licensed, active), gone (left 2020-12-01), unlicensed, and late (licence revoked
    /// from 2020-12-02 on).
    fn snapshot() -> Snapshot {
        let mut s = Snapshot::empty(42);
        s.insert_tenant(
            "acme",
            tokyo_tenant(licence(10, Some(date(2020, 1, 1)), Some(date(2020, 12, 3)))),
        );
        s.insert_tenant(
            "nolicence",
            Tenant::new(
                "g1".parse().expect("group"),
                chrono_tz::Asia::Tokyo,
                NaiveTime::MIN,
                licence(0, None, None),
            ),
        );
        let employee = |id: &str, until: Option<i64>, grants: Vec<Grant>| Employee {
            employee: id.parse().expect("employee"),
            active: ActiveRange { from: None, until },
            grants: Grants(grants),
        };
        let always = || vec![grant(true, None, None)];
        assert!(s.insert_employee("acme", "OK", employee("E-ok", None, always())));
        assert!(s.insert_employee(
            "acme",
            "GONE",
            employee(
                "E-gone",
                Some(millis("2020-12-01T00:00:00+09:00")),
                always()
            )
        ));
        assert!(s.insert_employee("acme", "NOLIC", employee("E-nolic", None, vec![])));
        let revoked = vec![
            grant(true, None, None),
            grant(false, Some(millis("2020-12-02T00:00:00+09:00")), None),
        ];
        assert!(s.insert_employee("acme", "LATE", employee("E-late", None, revoked)));
        assert!(s.insert_employee("nolicence", "X", employee("E-x", None, always())));
        s
    }

    fn reason(tenant: &str, card: &str, at: &str) -> Option<RejectReason> {
        let s = snapshot();
        let decision = check(&punch(tenant, card, millis(at)), &s);
        assert_eq!(
            decision.reason.is_none(),
            decision.verdict == Verdict::Accepted
        );
        decision.reason
    }

    #[test]
    fn every_reason_in_contract_order() {
        let at = "2020-12-02T09:00:00+09:00";
        assert_eq!(reason("acme", "OK", at), None);
        assert_eq!(reason("other", "OK", at), Some(RejectReason::UnknownTenant));
        assert_eq!(reason("acme", "NOPE", at), Some(RejectReason::UnknownCard));
        assert_eq!(
            reason("acme", "GONE", at),
            Some(RejectReason::EmployeeInactive)
        );
        assert_eq!(reason("acme", "NOLIC", at), Some(RejectReason::NotLicensed));
        assert_eq!(
            reason("acme", "OK", "2020-12-04T09:00:00+09:00"),
            Some(RejectReason::LicenceExpired)
        );
        assert_eq!(
            reason("nolicence", "X", at),
            Some(RejectReason::LicenceExpired),
            "a tenant without seats has no licence"
        );
    }

    #[test]
    fn a_licence_is_judged_as_of_the_punch_not_as_of_now() {
        assert_eq!(reason("acme", "LATE", "2020-12-01T23:59:59+09:00"), None);
        assert_eq!(
            reason("acme", "LATE", "2020-12-02T00:00:00+09:00"),
            Some(RejectReason::NotLicensed)
        );
    }

    #[test]
    fn licence_validity_follows_the_work_date_not_the_calendar_date() {
        // 02:00 on the 4th in Tokyo is work date the 3rd: still licensed.
        assert_eq!(reason("acme", "OK", "2020-12-04T02:00:00+09:00"), None);
        assert_eq!(
            reason("acme", "OK", "2020-12-04T05:00:00+09:00"),
            Some(RejectReason::LicenceExpired)
        );
    }

    #[test]
    fn the_verdict_names_the_employee_when_the_card_is_known() {
        let s = snapshot();
        let at = millis("2020-12-02T09:00:00+09:00");
        let known = check(&punch("acme", "NOLIC", at), &s);
        assert_eq!(known.employee.map(EmployeeId::as_str), Some("E-nolic"));
        assert_eq!(check(&punch("acme", "NOPE", at), &s).employee, None);
        let checked =
            check(&punch("acme", "OK", at), &s).apply(punch("acme", "OK", at), s.version, 7);
        assert_eq!(checked.master_data_version, 42);
        assert_eq!(checked.checked_at, 7);
        assert_eq!(
            checked.employee_id.map(|e| e.to_string()),
            Some("E-ok".into())
        );
    }

    /// A random history for one tenant "t" (Tokyo, 05:00) and one employee on card "C", over
    /// December 2020 (instants as hours into the month).
    #[derive(Debug, Clone)]
    struct History {
        licences: Vec<(u32, Option<u32>, Option<u32>)>,
        range: (Option<i64>, Option<i64>),
        grants: Vec<(bool, Option<i64>, Option<i64>)>,
    }

    const DEC: &str = "2020-12-01T05:00:00+09:00";
    const HOUR: i64 = 3_600_000;

    fn hours(h: i64) -> i64 {
        millis(DEC) + h * HOUR
    }

    fn arb_history() -> impl Strategy<Value = History> {
        let hour = || proptest::option::of(0i64..31 * 24);
        let day = || proptest::option::of(1u32..=31);
        (
            proptest::collection::vec((0u32..3, day(), day()), 0..4),
            (hour(), hour()),
            proptest::collection::vec((any::<bool>(), hour(), hour()), 0..5),
        )
            .prop_map(|(licences, range, grants)| History {
                licences,
                range,
                grants,
            })
    }

    fn ordered<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> (Option<T>, Option<T>) {
        match (a, b) {
            (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
            other => other,
        }
    }

    fn build(history: &History) -> Snapshot {
        let rows = history
            .licences
            .iter()
            .map(|&(seats, from, until)| {
                let (from, until) = ordered(from, until);
                LicenceRow {
                    seats,
                    valid_from: from.map(|d| date(2020, 12, d)),
                    valid_until: until.map(|d| date(2020, 12, d)),
                }
            })
            .collect();
        let mut s = Snapshot::empty(1);
        s.insert_tenant("t", tokyo_tenant(Licences(rows)));
        let (from, until) = ordered(history.range.0, history.range.1);
        let grants = history
            .grants
            .iter()
            .map(|&(granted, a, b)| {
                let (a, b) = ordered(a, b);
                grant(granted, a.map(hours), b.map(hours))
            })
            .collect();
        let employee = Employee {
            employee: "E".parse().expect("employee"),
            active: ActiveRange {
                from: from.map(hours),
                until: until.map(hours),
            },
            grants: Grants(grants),
        };
        assert!(s.insert_employee("t", "C", employee));
        s
    }

    /// A change recorded "from today on" (today = work date `day`, which starts at
    /// `hours((day - 1) * 24)`): a grant or revocation from then, a licence row from then, or
    /// an end date then.
    #[derive(Debug, Clone)]
    enum Change {
        Grant(bool, Option<i64>),
        Licence(u32, Option<u32>),
        EndDate,
    }

    fn arb_change() -> impl Strategy<Value = Change> {
        prop_oneof![
            (any::<bool>(), proptest::option::of(0i64..200)).prop_map(|(g, u)| Change::Grant(g, u)),
            (0u32..3, proptest::option::of(0u32..10)).prop_map(|(s, u)| Change::Licence(s, u)),
            Just(Change::EndDate),
        ]
    }

    fn apply(history: &History, change: &Change, day: u32) -> History {
        let start = i64::from(day - 1) * 24;
        let mut after = history.clone();
        match *change {
            Change::Grant(granted, length) => {
                after
                    .grants
                    .push((granted, Some(start), length.map(|l| start + l)));
            }
            Change::Licence(seats, length) => {
                let until = length.map(|l| (day + l).min(31));
                after.licences.push((seats, Some(day), until));
            }
            Change::EndDate => {
                let (from, until) = ordered(history.range.0, history.range.1);
                let end = until.map_or(start, |u| u.min(start));
                after.range = (from.map(|f| f.min(end)), Some(end));
            }
        }
        after
    }

    proptest! {
        /// The bug, for any history: a change recorded from today on never changes the
        /// verdict of a punch before today.
        #[test]
        fn a_change_from_today_leaves_earlier_punches_judged_as_before(
            history in arb_history(),
            change in arb_change(),
            day in 2u32..=31,
            at in 0i64..31 * 24 * 60,
        ) {
            let before = build(&history);
            let after = build(&apply(&history, &change, day));
            let at = millis(DEC) + at * 60_000;
            let p = punch("t", "C", at);
            let earlier = at < hours(i64::from(day - 1) * 24);
            if earlier {
                prop_assert_eq!(check(&p, &before).reason, check(&p, &after).reason);
            }
        }
    }

    proptest! {
        #[test]
        fn total_deterministic_and_reason_iff_rejected(
            at in (millis("2019-01-01T00:00:00Z") / DAY)..(millis("2022-01-01T00:00:00Z") / DAY),
            ms in 0i64..DAY,
            card in prop_oneof![Just("OK"), Just("GONE"), Just("NOLIC"), Just("NOPE")],
            tenant in prop_oneof![Just("acme"), Just("other"), Just("nolicence")],
        ) {
            let s = snapshot();
            let p = punch(tenant, card, at * DAY + ms);
            let first = check(&p, &s);
            prop_assert_eq!(first, check(&p, &s));
            prop_assert_eq!(first.reason.is_none(), first.verdict == Verdict::Accepted);
        }
    }
}
