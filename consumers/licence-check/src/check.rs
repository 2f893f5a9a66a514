//! The licence check (CONTRACT §3): a pure function of a punch and a master-data snapshot.
//!
//! The rules, first failing one wins:
//! 1. the punch's tenant is in master data, else `unknown_tenant`;
//! 2. an employee of that tenant has the card, else `unknown_card`;
//! 3. the employee is active at `at` (`active_from <= at < active_until`), else
//!    `employee_inactive`;
//! 4. the employee holds a licence seat (`licensed`), else `not_licensed`;
//! 5. the tenant's licence is valid on the punch's work date (tenant time zone and day change,
//!    [`work_date`]), else `licence_expired`. A tenant with no seats has no licence at all and
//!    gets `licence_expired` too (the contract has no separate reason).
//!
//! Otherwise the punch is accepted. Every lookup is a hash probe; the work date is computed
//! only when the licence has a bound.

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
    if !employee.licensed {
        return Decision::rejected(RejectReason::NotLicensed, id);
    }
    let licence = &tenant.licence;
    let valid = if licence.is_bounded() {
        licence.valid_on(work_date(punch.at, tenant.time_zone, tenant.day_change))
    } else {
        licence.seats > 0
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
    use crate::snapshot::{Employee, Licence, Tenant};
    use chrono::{DateTime, NaiveDate, NaiveTime};
    use dakoku_schemas::{PunchId, PunchKind};
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

    /// acme: licensed until 2020-12-03 (Tokyo, day change 05:00), with employees
    /// ok (licensed, active), gone (left 2020-12-01), unlicensed.
    fn snapshot() -> Snapshot {
        let mut s = Snapshot::empty(42);
        s.insert_tenant(
            "acme",
            Tenant::new(
                "g1".parse().expect("group"),
                chrono_tz::Asia::Tokyo,
                NaiveTime::from_hms_opt(5, 0, 0).expect("time"),
                Licence {
                    seats: 10,
                    valid_from: Some(date(2020, 1, 1)),
                    valid_until: Some(date(2020, 12, 3)),
                },
            ),
        );
        s.insert_tenant(
            "nolicence",
            Tenant::new(
                "g1".parse().expect("group"),
                chrono_tz::Asia::Tokyo,
                NaiveTime::MIN,
                Licence {
                    seats: 0,
                    valid_from: None,
                    valid_until: None,
                },
            ),
        );
        let employee = |id: &str, until: Option<i64>, licensed| Employee {
            employee: id.parse().expect("employee"),
            active_from: None,
            active_until: until,
            licensed,
        };
        assert!(s.insert_employee("acme", "OK", employee("E-ok", None, true)));
        assert!(s.insert_employee(
            "acme",
            "GONE",
            employee("E-gone", Some(millis("2020-12-01T00:00:00+09:00")), true)
        ));
        assert!(s.insert_employee("acme", "NOLIC", employee("E-nolic", None, false)));
        assert!(s.insert_employee("nolicence", "X", employee("E-x", None, true)));
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
