//! [`Correction`]: the value of `punches.corrections.<group>`, an administrator's add or void
//! of one employee's punch. Raw punches are never edited; attendance computes from the accepted
//! raw punches plus the added less the voided.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog;
use crate::codec::{AvroRecord, ParsedSchema};
use crate::ids::{EmployeeId, PunchId, TenantId};
use crate::records::{PunchKind, from_millis};

symbols! {
    /// What a correction does (Avro enum `dakoku.CorrectionAction`).
    CorrectionAction {
        /// A punch the recorder did not take.
        Add = "add",
        /// A punch (raw, or an earlier add) that must not count.
        Void = "void",
    }
}

/// One correction; mirrors `avro/Correction.avsc`.
///
/// Exactly one of (`kind` and `at`) or `target_id` is set, by `action`: use [`Correction::add`]
/// and [`Correction::void`], and [`Correction::check`] on anything read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// Identity of the correction; an added punch takes it as its `punch_id`.
    pub correction_id: PunchId,
    /// Tenant of the employee.
    pub tenant_id: TenantId,
    /// Whose punches are corrected (for a void, the voided punch's employee).
    pub employee_id: EmployeeId,
    /// Add or void.
    pub action: CorrectionAction,
    /// The added punch's kind.
    pub kind: Option<PunchKind>,
    /// The added punch's instant, milliseconds since the Unix epoch (whole seconds).
    pub at: Option<i64>,
    /// The punch or add a void removes.
    pub target_id: Option<PunchId>,
    /// Who made it (`cli:<name>`, `api:<subject>`).
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When it was made, milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Longest `reason` accepted, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Why a correction is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("correction {id}: {field}: {problem}")]
pub struct CorrectionError {
    /// The correction's id.
    pub id: String,
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Correction {
    /// An add of a `kind` punch at `at` (milliseconds; fractions of a second are dropped).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        correction_id: PunchId,
        tenant_id: TenantId,
        employee_id: EmployeeId,
        kind: PunchKind,
        at: i64,
        actor: String,
        reason: String,
        created_at: i64,
    ) -> Self {
        Self {
            correction_id,
            tenant_id,
            employee_id,
            action: CorrectionAction::Add,
            kind: Some(kind),
            at: Some(at.div_euclid(1000) * 1000),
            target_id: None,
            actor,
            reason,
            created_at,
        }
    }

    /// A void of `target_id` (a raw punch or an add of `employee_id`).
    pub fn void(
        correction_id: PunchId,
        tenant_id: TenantId,
        employee_id: EmployeeId,
        target_id: PunchId,
        actor: String,
        reason: String,
        created_at: i64,
    ) -> Self {
        Self {
            correction_id,
            tenant_id,
            employee_id,
            action: CorrectionAction::Void,
            kind: None,
            at: None,
            target_id: Some(target_id),
            actor,
            reason,
            created_at,
        }
    }

    /// Checks the fields `action` requires and forbids, a non-empty actor and reason (at most
    /// [`MAX_REASON_CHARS`]), an instant chrono can represent, and a void that does not void
    /// itself.
    pub fn check(&self) -> Result<(), CorrectionError> {
        let fail = |field: &'static str, problem: &str| {
            Err(CorrectionError {
                id: self.correction_id.to_string(),
                field,
                problem: problem.to_owned(),
            })
        };
        match self.action {
            CorrectionAction::Add => {
                if self.kind.is_none() {
                    return fail("kind", "an add needs the kind of the punch it adds");
                }
                match self.at {
                    None => return fail("at", "an add needs the instant of the punch it adds"),
                    Some(at) if from_millis(at).is_none() => {
                        return fail("at", "not a representable instant");
                    }
                    Some(_) => {}
                }
                if self.target_id.is_some() {
                    return fail("target_id", "an add names no target");
                }
            }
            CorrectionAction::Void => {
                match self.target_id {
                    None => return fail("target_id", "a void names the punch or add it removes"),
                    Some(target) if target == self.correction_id => {
                        return fail("target_id", "a void cannot name itself");
                    }
                    Some(_) => {}
                }
                if self.kind.is_some() || self.at.is_some() {
                    return fail("kind", "a void carries no kind or instant");
                }
            }
        }
        if self.actor.trim().is_empty() {
            return fail("actor", "who made the correction is required");
        }
        if self.reason.trim().is_empty() {
            return fail("reason", "a reason is required");
        }
        if self.reason.chars().count() > MAX_REASON_CHARS {
            return fail("reason", "longer than 500 characters");
        }
        Ok(())
    }

    /// `at` as a UTC instant (adds only).
    pub fn at_utc(&self) -> Option<DateTime<Utc>> {
        self.at.and_then(from_millis)
    }

    /// `created_at` as a UTC instant.
    pub fn created_at_utc(&self) -> Option<DateTime<Utc>> {
        from_millis(self.created_at)
    }
}

avro_record!(Correction, catalog::CORRECTION);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode};

    fn ids() -> (TenantId, EmployeeId) {
        ("acme".parse().unwrap(), "E1".parse().unwrap())
    }

    #[test]
    fn an_add_and_a_void_round_trip_and_check() {
        let (tenant, employee) = ids();
        let id = PunchId::random();
        let add = Correction::add(
            id,
            tenant.clone(),
            employee.clone(),
            PunchKind::ClockOut,
            1_785_000_000_123,
            "cli:ops".into(),
            "forgot to clock out".into(),
            1_785_100_000_000,
        );
        assert_eq!(
            add.at,
            Some(1_785_000_000_000),
            "fractions of a second dropped"
        );
        add.check().unwrap();
        let back: Correction = decode(&encode(&add).unwrap()).unwrap();
        assert_eq!(back, add);
        let void = Correction::void(
            PunchId::random(),
            tenant,
            employee,
            id,
            "api:hr".into(),
            "wrong day".into(),
            1_785_100_000_001,
        );
        void.check().unwrap();
        let back: Correction = decode(&encode(&void).unwrap()).unwrap();
        assert_eq!(back, void);
    }

    #[test]
    fn malformed_corrections_name_the_field() {
        let (tenant, employee) = ids();
        let id = PunchId::random();
        let mut add = Correction::add(
            id,
            tenant.clone(),
            employee.clone(),
            PunchKind::ClockIn,
            0,
            "cli:ops".into(),
            "r".into(),
            0,
        );
        add.kind = None;
        assert_eq!(add.check().unwrap_err().field, "kind");
        let mut void = Correction::void(id, tenant, employee, id, "cli:ops".into(), "r".into(), 0);
        assert_eq!(void.check().unwrap_err().field, "target_id");
        void.target_id = Some(PunchId::random());
        void.reason = " ".into();
        assert_eq!(void.check().unwrap_err().field, "reason");
        void.reason = "x".repeat(501);
        assert_eq!(void.check().unwrap_err().field, "reason");
        void.reason = "ok".into();
        void.actor = String::new();
        assert_eq!(void.check().unwrap_err().field, "actor");
    }
}
