//! Kafka topic names and message keys. Every component names topics through [`Topic`], so a
//! rename is one edit here and a typo is a compile error rather than an empty topic.

use std::fmt;

use chrono::NaiveDate;

use crate::ids::{CardId, DeviceId, EmployeeId, GroupId, TenantId};

/// A Dakoku topic. Per-group topics isolate tenant groups: a storm or a poison record in one
/// group leaves the others untouched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `punches.raw.<group>`: accepted punches ([`RawPunch`](crate::RawPunch)), key
    /// [`raw_key`]. The source of truth.
    Raw(GroupId),
    /// `punches.quarantine`: rejected input and poison records
    /// ([`QuarantinedInput`](crate::QuarantinedInput)), keyed by tenant id when known.
    Quarantine,
    /// `punches.checked.<group>`: every raw punch with its licence verdict
    /// ([`CheckedPunch`](crate::CheckedPunch)), key [`checked_key`].
    Checked(GroupId),
    /// `attendance.daily.<group>`: latest whole-day attendance
    /// ([`AttendanceDay`](crate::AttendanceDay)), key [`attendance_key`]. Compacted.
    AttendanceDaily(GroupId),
    /// `payroll.monthly.<group>`: each employee's payroll month
    /// ([`MonthlyAttendance`](crate::MonthlyAttendance)), key [`monthly_key`]. Compacted.
    PayrollMonthly(GroupId),
    /// `punches.corrections.<group>`: administrators' corrections
    /// ([`Correction`](crate::Correction)), key [`correction_key`]. Append-only, unlimited
    /// retention: replayed like the raw log.
    Corrections(GroupId),
}

const RAW_PREFIX: &str = "punches.raw.";
const QUARANTINE: &str = "punches.quarantine";
const CHECKED_PREFIX: &str = "punches.checked.";
const ATTENDANCE_PREFIX: &str = "attendance.daily.";
const MONTHLY_PREFIX: &str = "payroll.monthly.";
const CORRECTIONS_PREFIX: &str = "punches.corrections.";

impl Topic {
    /// The Kafka topic name.
    pub fn name(&self) -> String {
        match self {
            Topic::Raw(group) => format!("{RAW_PREFIX}{group}"),
            Topic::Quarantine => QUARANTINE.to_owned(),
            Topic::Checked(group) => format!("{CHECKED_PREFIX}{group}"),
            Topic::AttendanceDaily(group) => format!("{ATTENDANCE_PREFIX}{group}"),
            Topic::PayrollMonthly(group) => format!("{MONTHLY_PREFIX}{group}"),
            Topic::Corrections(group) => format!("{CORRECTIONS_PREFIX}{group}"),
        }
    }

    /// The topic a Kafka topic name denotes, or `None` if it is not a Dakoku topic.
    pub fn parse(name: &str) -> Option<Topic> {
        if name == QUARANTINE {
            return Some(Topic::Quarantine);
        }
        let (make, group): (fn(GroupId) -> Topic, &str) =
            if let Some(group) = name.strip_prefix(RAW_PREFIX) {
                (Topic::Raw, group)
            } else if let Some(group) = name.strip_prefix(CHECKED_PREFIX) {
                (Topic::Checked, group)
            } else if let Some(group) = name.strip_prefix(ATTENDANCE_PREFIX) {
                (Topic::AttendanceDaily, group)
            } else if let Some(group) = name.strip_prefix(MONTHLY_PREFIX) {
                (Topic::PayrollMonthly, group)
            } else if let Some(group) = name.strip_prefix(CORRECTIONS_PREFIX) {
                (Topic::Corrections, group)
            } else {
                return None;
            };
        group.parse().ok().map(make)
    }

    /// Whether the topic is created with `cleanup.policy=compact`: only `attendance.daily.*`
    /// and `payroll.monthly.*`, whose records carry a whole day's or month's state, so the
    /// latest per key is all a consumer needs. Every other topic is an append-only log.
    pub fn is_compacted(&self) -> bool {
        matches!(self, Topic::AttendanceDaily(_) | Topic::PayrollMonthly(_))
    }

    /// The tenant group of a per-group topic; `None` for the shared quarantine.
    pub fn group(&self) -> Option<&GroupId> {
        match self {
            Topic::Raw(group)
            | Topic::Checked(group)
            | Topic::AttendanceDaily(group)
            | Topic::PayrollMonthly(group)
            | Topic::Corrections(group) => Some(group),
            Topic::Quarantine => None,
        }
    }

    /// The per-group topics of `group`, in pipeline order: raw, checked, attendance daily,
    /// payroll monthly, corrections.
    pub fn for_group(group: &GroupId) -> [Topic; 5] {
        [
            Topic::Raw(group.clone()),
            Topic::Checked(group.clone()),
            Topic::AttendanceDaily(group.clone()),
            Topic::PayrollMonthly(group.clone()),
            Topic::Corrections(group.clone()),
        ]
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Key of `punches.raw.<group>`: `<tenant_id>/<device_id>`, so each device's punches stay in
/// order on one partition.
pub fn raw_key(tenant: &TenantId, device: &DeviceId) -> String {
    format!("{tenant}/{device}")
}

/// Key of `punches.checked.<group>`: `<tenant_id>/<employee_id>` when the card's employee is
/// known, else `<tenant_id>/<card_id>`, so each employee's punches stay in order.
pub fn checked_key(tenant: &TenantId, employee: Option<&EmployeeId>, card: &CardId) -> String {
    match employee {
        Some(employee) => format!("{tenant}/{employee}"),
        None => format!("{tenant}/{card}"),
    }
}

/// Key of `attendance.daily.<group>`: `<tenant_id>/<employee_id>/<work_date>` with the date as
/// `YYYY-MM-DD`; compaction keeps the latest record per key, i.e. per employee and day.
pub fn attendance_key(tenant: &TenantId, employee: &EmployeeId, work_date: NaiveDate) -> String {
    format!("{tenant}/{employee}/{}", work_date.format("%Y-%m-%d"))
}

/// Key of `payroll.monthly.<group>`: `<tenant_id>/<employee_id>/<month>` with the payroll
/// month as `YYYY-MM`; compaction keeps the latest record per employee and month.
pub fn monthly_key(tenant: &TenantId, employee: &EmployeeId, month: &str) -> String {
    format!("{tenant}/{employee}/{month}")
}

/// Key of an adjustment record on `payroll.monthly.<group>`:
/// `<tenant_id>/<employee_id>/<month>/adjustment/<seq>`. Not the month's own key: compaction
/// keeps one record per key, and the closed month's record as paid must stay beside its
/// adjustments.
pub fn adjustment_key(tenant: &TenantId, employee: &EmployeeId, month: &str, seq: i64) -> String {
    format!("{tenant}/{employee}/{month}/adjustment/{seq}")
}

/// Key of `punches.corrections.<group>`: `<tenant_id>/<employee_id>`, so one employee's
/// corrections stay in order on one partition.
pub fn correction_key(tenant: &TenantId, employee: &EmployeeId) -> String {
    format!("{tenant}/{employee}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn group(name: &str) -> GroupId {
        name.parse().expect("valid group in test")
    }

    #[test]
    fn names_follow_the_contract() {
        let g = group("tokyo-1");
        assert_eq!(Topic::Raw(g.clone()).name(), "punches.raw.tokyo-1");
        assert_eq!(Topic::Quarantine.name(), "punches.quarantine");
        assert_eq!(Topic::Checked(g.clone()).name(), "punches.checked.tokyo-1");
        assert_eq!(
            Topic::AttendanceDaily(g.clone()).to_string(),
            "attendance.daily.tokyo-1"
        );
        assert_eq!(
            Topic::PayrollMonthly(g.clone()).name(),
            "payroll.monthly.tokyo-1"
        );
        assert_eq!(
            Topic::Corrections(g.clone()).name(),
            "punches.corrections.tokyo-1"
        );
    }

    #[test]
    fn parse_rejects_foreign_and_malformed_names() {
        for name in [
            "",
            "punches.raw.",
            "punches.raw.Tokyo",
            "punches.raw.a.b",
            "punches.quarantine.x",
            "punches.checked",
            "attendance.daily.a_b",
            "payroll.monthly.",
            "__consumer_offsets",
        ] {
            assert_eq!(Topic::parse(name), None, "{name:?}");
        }
    }

    #[test]
    fn only_the_state_topics_are_compacted() {
        let g = group("g");
        let [raw, checked, daily, monthly, corrections] = Topic::for_group(&g);
        assert_eq!(corrections, Topic::Corrections(g.clone()));
        assert!(!corrections.is_compacted());
        assert_eq!(
            Topic::parse("punches.corrections.g"),
            Some(Topic::Corrections(g.clone()))
        );
        assert_eq!(monthly, Topic::PayrollMonthly(g.clone()));
        assert!(monthly.is_compacted());
        assert_eq!(raw, Topic::Raw(g.clone()));
        assert_eq!(checked, Topic::Checked(g.clone()));
        assert_eq!(daily, Topic::AttendanceDaily(g.clone()));
        assert!(!raw.is_compacted() && !checked.is_compacted());
        assert!(!Topic::Quarantine.is_compacted());
        assert!(daily.is_compacted());
        assert_eq!(daily.group(), Some(&g));
        assert_eq!(Topic::Quarantine.group(), None);
    }

    #[test]
    fn keys_follow_the_contract() -> Result<(), crate::IdError> {
        let tenant: TenantId = "acme".parse()?;
        let card: CardId = "01010312A40B5C2D".parse()?;
        let employee: EmployeeId = "E-7".parse()?;
        assert_eq!(raw_key(&tenant, &"PT-000123".parse()?), "acme/PT-000123");
        assert_eq!(checked_key(&tenant, Some(&employee), &card), "acme/E-7");
        assert_eq!(checked_key(&tenant, None, &card), "acme/01010312A40B5C2D");
        let day = NaiveDate::from_ymd_opt(2020, 12, 4).expect("valid date");
        assert_eq!(
            attendance_key(&tenant, &employee, day),
            "acme/E-7/2020-12-04"
        );
        assert_eq!(
            monthly_key(&tenant, &employee, "2026-12"),
            "acme/E-7/2026-12"
        );
        Ok(())
    }

    fn any_topic() -> impl Strategy<Value = Topic> {
        let group = "[a-z0-9-]{1,32}".prop_map(|g| group(&g));
        prop_oneof![
            group.clone().prop_map(Topic::Raw),
            Just(Topic::Quarantine),
            group.clone().prop_map(Topic::Checked),
            group.clone().prop_map(Topic::AttendanceDaily),
            group.prop_map(Topic::PayrollMonthly),
        ]
    }

    proptest! {
        #[test]
        fn parse_inverts_name(topic in any_topic()) {
            prop_assert_eq!(Topic::parse(&topic.name()), Some(topic));
        }

        #[test]
        fn parse_never_panics(name in ".{0,80}") {
            if let Some(topic) = Topic::parse(&name) {
                prop_assert_eq!(topic.name(), name);
            }
        }
    }
}
