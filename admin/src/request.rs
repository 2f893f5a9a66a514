//! [`CorrectionRequest`], what an administrator asks for, and its checks that need no data:
//! which fields each action requires, actor and reason. The checks against stored data
//! (tenant, employee, target) are in `lib.rs` on top of `sql`.

use chrono::{DateTime, Utc};
use dakoku_schemas::{CorrectionAction, EmployeeId, MAX_REASON_CHARS, PunchId, PunchKind};
use serde::Deserialize;

use crate::AdminError;

/// A correction as asked for; [`Admin::submit_correction`](crate::Admin::submit_correction)
/// checks it, fills in the id, employee (for a void) and time, and appends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CorrectionRequest {
    /// Whose punch is added (required for `add`; for `void`, optional and then checked against
    /// the target's employee).
    pub employee_id: Option<String>,
    /// Add or void.
    pub action: CorrectionAction,
    /// The added punch's kind (`add` only).
    pub kind: Option<PunchKind>,
    /// The added punch's instant (`add` only); fractions of a second are dropped.
    pub at: Option<DateTime<Utc>>,
    /// The raw punch id or add's correction id a void removes (`void` only).
    pub target_id: Option<String>,
    /// Who makes it (`cli:<name>`, `api:<subject>`).
    pub actor: String,
    /// Why; required, at most [`MAX_REASON_CHARS`] characters.
    pub reason: String,
}

/// A request whose fields fit its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Add `kind` at `at` for `employee`.
    Add {
        employee: EmployeeId,
        kind: PunchKind,
        at: DateTime<Utc>,
    },
    /// Void `target`, optionally asserting whose it is.
    Void {
        target: PunchId,
        employee: Option<EmployeeId>,
    },
}

/// Parses a punch kind by its symbol (`clock_in`...).
pub fn parse_kind(text: &str) -> Result<PunchKind, AdminError> {
    PunchKind::ALL
        .iter()
        .copied()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| {
            AdminError::invalid(
                "kind",
                format!("{text:?} is not one of clock_in, clock_out, break_start, break_end"),
            )
        })
}

/// Checks what can be checked without data.
pub(crate) fn check(req: &CorrectionRequest) -> Result<Checked, AdminError> {
    if req.actor.trim().is_empty() {
        return Err(AdminError::invalid(
            "actor",
            "who makes the correction is required",
        ));
    }
    if req.reason.trim().is_empty() {
        return Err(AdminError::invalid(
            "reason",
            "a reason is required: say why the record is corrected",
        ));
    }
    let chars = req.reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(AdminError::invalid(
            "reason",
            format!("{chars} characters; at most {MAX_REASON_CHARS}, shorten it"),
        ));
    }
    let employee = match &req.employee_id {
        None => None,
        Some(text) => Some(
            text.parse::<EmployeeId>()
                .map_err(|e| AdminError::invalid("employee_id", format!("{text:?}: {e}")))?,
        ),
    };
    match req.action {
        CorrectionAction::Add => {
            if req.target_id.is_some() {
                return Err(AdminError::invalid(
                    "target_id",
                    "an add names no target; to remove a punch, send a void",
                ));
            }
            let employee = employee.ok_or_else(|| {
                AdminError::invalid(
                    "employee_id",
                    "an add needs the employee whose punch it adds",
                )
            })?;
            let kind = req.kind.ok_or_else(|| {
                AdminError::invalid(
                    "kind",
                    "an add needs the punch kind: clock_in, clock_out, break_start or break_end",
                )
            })?;
            let at = req.at.ok_or_else(|| {
                AdminError::invalid(
                    "at",
                    "an add needs the punch's instant, RFC 3339 with offset, e.g. 2026-11-03T18:00:00+09:00",
                )
            })?;
            Ok(Checked::Add { employee, kind, at })
        }
        CorrectionAction::Void => {
            if req.kind.is_some() || req.at.is_some() {
                return Err(AdminError::invalid(
                    "kind",
                    "a void carries no kind or instant; to add a punch, send an add",
                ));
            }
            let text = req.target_id.as_deref().ok_or_else(|| {
                AdminError::invalid(
                    "target_id",
                    "a void needs the punch id or correction id it removes",
                )
            })?;
            let target = text
                .trim()
                .parse::<PunchId>()
                .map_err(|e| AdminError::invalid("target_id", format!("{text:?}: {e}")))?;
            Ok(Checked::Void { target, employee })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add() -> CorrectionRequest {
        CorrectionRequest {
            employee_id: Some("E1".into()),
            action: CorrectionAction::Add,
            kind: Some(PunchKind::ClockOut),
            at: Some("2026-11-03T09:00:00Z".parse().unwrap()),
            target_id: None,
            actor: "cli:ops".into(),
            reason: "forgot to clock out".into(),
        }
    }

    fn void() -> CorrectionRequest {
        CorrectionRequest {
            employee_id: None,
            action: CorrectionAction::Void,
            kind: None,
            at: None,
            target_id: Some("2a07d5f7-7137-57bc-ab96-f57b81e3e822".into()),
            actor: "cli:ops".into(),
            reason: "double punch".into(),
        }
    }

    fn field(req: &CorrectionRequest) -> &'static str {
        match check(req) {
            Err(AdminError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn well_formed_requests_pass() {
        assert!(matches!(
            check(&add()),
            Ok(Checked::Add {
                kind: PunchKind::ClockOut,
                ..
            })
        ));
        assert!(matches!(
            check(&void()),
            Ok(Checked::Void { employee: None, .. })
        ));
    }

    #[test]
    fn each_missing_or_bad_field_is_named() {
        let mut r = add();
        r.kind = None;
        assert_eq!(field(&r), "kind");
        let mut r = add();
        r.at = None;
        assert_eq!(field(&r), "at");
        let mut r = add();
        r.employee_id = None;
        assert_eq!(field(&r), "employee_id");
        let mut r = add();
        r.employee_id = Some("no spaces allowed".into());
        assert_eq!(field(&r), "employee_id");
        let mut r = add();
        r.target_id = Some("x".into());
        assert_eq!(field(&r), "target_id");
        let mut r = add();
        r.reason = "  ".into();
        assert_eq!(field(&r), "reason");
        let mut r = add();
        r.reason = "é".repeat(MAX_REASON_CHARS + 1);
        assert_eq!(field(&r), "reason");
        let mut r = add();
        r.reason = "é".repeat(MAX_REASON_CHARS);
        assert!(check(&r).is_ok(), "500 characters (1000 bytes) are allowed");
        let mut r = add();
        r.actor = String::new();
        assert_eq!(field(&r), "actor");
        let mut r = void();
        r.target_id = None;
        assert_eq!(field(&r), "target_id");
        let mut r = void();
        r.target_id = Some("not-a-uuid".into());
        assert_eq!(field(&r), "target_id");
        let mut r = void();
        r.kind = Some(PunchKind::ClockIn);
        assert_eq!(field(&r), "kind");
    }

    #[test]
    fn kinds_parse_by_symbol() {
        assert_eq!(parse_kind("break_end").unwrap(), PunchKind::BreakEnd);
        assert!(matches!(
            parse_kind("lunch"),
            Err(AdminError::Invalid { field: "kind", .. })
        ));
    }
}
