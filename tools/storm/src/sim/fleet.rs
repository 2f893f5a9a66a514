//! The simulated recorders and the punches they send, a pure function of recorder and `seq`.

use chrono::NaiveDate;
use dakoku_schemas::{DeviceId, PunchKind, TenantId};

/// The recorders' time zone offset (Asia/Tokyo, the default tenant time zone).
const OFFSET: &str = "+09:00";

/// One simulated recorder: who it is, its token, and the cards of the employees who use it.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Its tenant.
    pub tenant: TenantId,
    /// Its device id.
    pub device: DeviceId,
    /// Its device token (minted as `punchctl device add` mints it).
    pub token: String,
    /// The cards punched at it; punch `seq` uses card `(seq - 1) / 4 % cards.len()`.
    pub cards: Vec<String>,
}

/// What one simulated punch is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPunch {
    /// The card.
    pub card: String,
    /// The kind.
    pub kind: PunchKind,
    /// RFC 3339 local time with offset.
    pub at: String,
}

/// Punch `seq` (1-based) of `recorder`: employee `(seq - 1) / 4 % E` punches in, starts and
/// ends a break, punches out, on work date `first_day + (seq - 1) / (4 E)`.
pub fn punch_of(recorder: &Recorder, first_day: NaiveDate, seq: u64) -> SimPunch {
    let employees = recorder.cards.len().max(1) as u64;
    let i = seq.saturating_sub(1);
    let day = i / (4 * employees);
    let employee = (i / 4) % employees;
    let (kind, minutes) = match i % 4 {
        0 => (PunchKind::ClockIn, 8 * 60 + 30 + employee % 30),
        1 => (PunchKind::BreakStart, 12 * 60 + employee % 20),
        2 => (PunchKind::BreakEnd, 12 * 60 + 45 + employee % 20),
        _ => (PunchKind::ClockOut, 17 * 60 + 30 + employee % 60),
    };
    let date = first_day + chrono::Duration::days(day as i64);
    let card = recorder
        .cards
        .get(employee as usize)
        .cloned()
        .unwrap_or_default();
    SimPunch {
        card,
        kind,
        at: format!(
            "{}T{:02}:{:02}:{:02}{OFFSET}",
            date.format("%Y-%m-%d"),
            minutes / 60,
            minutes % 60,
            (seq * 7) % 60
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(cards: usize) -> Recorder {
        Recorder {
            tenant: "t".parse().expect("tenant"),
            device: "D1".parse().expect("device"),
            token: "x".into(),
            cards: (0..cards).map(|i| format!("C{i}")).collect(),
        }
    }

    #[test]
    fn punches_follow_a_working_day_per_employee() {
        let r = recorder(2);
        let day = NaiveDate::from_ymd_opt(2020, 12, 1).expect("date");
        let kinds: Vec<PunchKind> = (1..=8).map(|s| punch_of(&r, day, s).kind).collect();
        assert_eq!(
            kinds,
            [
                PunchKind::ClockIn,
                PunchKind::BreakStart,
                PunchKind::BreakEnd,
                PunchKind::ClockOut
            ]
            .repeat(2)
        );
        assert_eq!(punch_of(&r, day, 1).card, "C0");
        assert_eq!(punch_of(&r, day, 5).card, "C1");
        assert!(punch_of(&r, day, 8).at.starts_with("2020-12-01T17:"));
        assert!(punch_of(&r, day, 9).at.starts_with("2020-12-02T08:"));
        assert!(punch_of(&r, day, 9).at.ends_with("+09:00"));
    }
}
