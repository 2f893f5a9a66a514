//! Kafka consumer-group names. Each stage of a tenant group reads with its own consumer group,
//! named here once, so operators' tools (`replay`, `lag`, `audit`) and the services can never
//! disagree on a name.

use std::fmt;
use std::str::FromStr;

use crate::ids::GroupId;

/// The consumer group of one pipeline stage for one tenant group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConsumerGroup {
    /// `licence-check.<group>`: reads `punches.raw.<group>`.
    LicenceCheck(GroupId),
    /// `attendance.<group>`: reads `punches.checked.<group>` (its real offsets live in Postgres;
    /// the Kafka commit is advisory).
    Attendance(GroupId),
}

const LICENCE_CHECK_PREFIX: &str = "licence-check.";
const ATTENDANCE_PREFIX: &str = "attendance.";

impl ConsumerGroup {
    /// The Kafka `group.id`.
    pub fn name(&self) -> String {
        match self {
            ConsumerGroup::LicenceCheck(group) => format!("{LICENCE_CHECK_PREFIX}{group}"),
            ConsumerGroup::Attendance(group) => format!("{ATTENDANCE_PREFIX}{group}"),
        }
    }

    /// The tenant group this consumer group serves.
    pub fn group(&self) -> &GroupId {
        match self {
            ConsumerGroup::LicenceCheck(group) | ConsumerGroup::Attendance(group) => group,
        }
    }

    /// The transactional id of one instance of this stage, `<name>.<instance>`: a restarted
    /// instance with the same id fences its zombie (Kafka EOS).
    pub fn transactional_id(&self, instance: &str) -> String {
        format!("{}.{instance}", self.name())
    }
}

impl fmt::Display for ConsumerGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Why a string is not a Dakoku consumer-group name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a Dakoku consumer group: expected licence-check.<group> or attendance.<group>"
)]
pub struct ConsumerGroupError(pub String);

impl FromStr for ConsumerGroup {
    type Err = ConsumerGroupError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let (make, group): (fn(GroupId) -> ConsumerGroup, &str) =
            if let Some(group) = name.strip_prefix(LICENCE_CHECK_PREFIX) {
                (ConsumerGroup::LicenceCheck, group)
            } else if let Some(group) = name.strip_prefix(ATTENDANCE_PREFIX) {
                (ConsumerGroup::Attendance, group)
            } else {
                return Err(ConsumerGroupError(name.to_owned()));
            };
        group
            .parse()
            .map(make)
            .map_err(|_| ConsumerGroupError(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> GroupId {
        name.parse().expect("valid group in test")
    }

    #[test]
    fn names_follow_the_contract_and_parse_back() {
        let g = group("tokyo-1");
        let lc = ConsumerGroup::LicenceCheck(g.clone());
        let at = ConsumerGroup::Attendance(g.clone());
        assert_eq!(lc.name(), "licence-check.tokyo-1");
        assert_eq!(at.name(), "attendance.tokyo-1");
        assert_eq!(lc.transactional_id("pod-0"), "licence-check.tokyo-1.pod-0");
        assert_eq!(lc.group(), &g);
        for cg in [lc, at] {
            assert_eq!(cg.name().parse::<ConsumerGroup>(), Ok(cg.clone()));
        }
    }

    #[test]
    fn foreign_and_malformed_names_are_refused() {
        for name in [
            "",
            "attendance.",
            "licence-check.A_B",
            "payroll.g1",
            "attendance",
        ] {
            assert!(name.parse::<ConsumerGroup>().is_err(), "{name}");
        }
    }
}
