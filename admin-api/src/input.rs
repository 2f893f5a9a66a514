//! Reading requests into the operations' types: JSON bodies field by field (so a refusal names
//! the field, whatever is wrong with it) and path and query parameters. Pure: no state.

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_admin::{CorrectionAction, CorrectionRequest, parse_kind, parse_month};
use dakoku_schemas::EmployeeId;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Fields a correction body may carry.
const CORRECTION_FIELDS: &[&str] = &["employee_id", "action", "kind", "at", "target_id", "reason"];

/// A JSON object body, or an empty body read as `{}`.
fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("body", "the body must be a JSON object")),
        Err(error) => Err(ApiError::invalid(
            "body",
            format!("the body is not valid JSON ({error}); send a JSON object"),
        )),
    }
}

/// Refuses fields not in `allowed`; `actor` gets its own explanation.
fn only(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    for key in map.keys() {
        if key == "actor" {
            return Err(ApiError::invalid(
                "actor",
                "the actor is the admin token's, not the body's: leave it out",
            ));
        }
        if !allowed.contains(&key.as_str()) {
            return Err(ApiError::invalid(
                key.clone(),
                format!("unknown field; allowed: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The string value of `field`, `None` when absent or null.
fn text<'a>(map: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

/// A correction body as a request made by `actor` (the token's, recorded as `api:<actor>`).
pub fn correction(body: &[u8], actor: &str) -> Result<CorrectionRequest, ApiError> {
    let map = object(body)?;
    only(&map, CORRECTION_FIELDS)?;
    let action = match text(&map, "action")? {
        Some("add") => CorrectionAction::Add,
        Some("void") => CorrectionAction::Void,
        Some(other) => {
            return Err(ApiError::invalid(
                "action",
                format!("{other:?} is not an action: use \"add\" or \"void\""),
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "action",
                "required: \"add\" (a missing punch) or \"void\" (remove a punch)",
            ));
        }
    };
    let kind = text(&map, "kind")?
        .map(parse_kind)
        .transpose()
        .map_err(|e| ApiError::from_admin(e, 0))?;
    let at = text(&map, "at")?
        .map(|at| {
            DateTime::parse_from_rfc3339(at)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::invalid(
                        "at",
                        format!(
                            "{at:?} is not RFC 3339 with an offset ({e}); e.g. 2026-11-03T18:00:00+09:00"
                        ),
                    )
                })
        })
        .transpose()?;
    Ok(CorrectionRequest {
        employee_id: text(&map, "employee_id")?.map(str::to_owned),
        action,
        kind,
        at,
        target_id: text(&map, "target_id")?.map(str::to_owned),
        actor: api_actor(actor),
        reason: text(&map, "reason")?.unwrap_or_default().to_owned(),
    })
}

/// The reason of a reopen body (`{"reason": "..."}`); empty when absent (the operation says
/// it is required).
pub fn reopen_reason(body: &[u8]) -> Result<String, ApiError> {
    let map = object(body)?;
    only(&map, &["reason"])?;
    Ok(text(&map, "reason")?.unwrap_or_default().to_owned())
}

/// How the API records an administrator: `api:<token actor>` (the CLI records `cli:<name>`).
pub fn api_actor(actor: &str) -> String {
    format!("api:{actor}")
}

/// A `YYYY-MM` month parameter, checked.
pub fn month(text: &str) -> Result<String, ApiError> {
    parse_month(text)
        .map(|m| m.to_string())
        .map_err(|e| ApiError::from_admin(e, 0))
}

/// A `YYYY-MM-DD` work date parameter.
pub fn date(text: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid(
            "date",
            format!("{text:?} is not a date: use YYYY-MM-DD, e.g. 2026-11-03"),
        )
    })
}

/// An employee id parameter.
pub fn employee(text: &str) -> Result<EmployeeId, ApiError> {
    text.parse()
        .map_err(|e| ApiError::invalid("employee", format!("{text:?} is not an employee id: {e}")))
}

#[cfg(test)]
mod tests {
    use dakoku_admin::PunchKind;

    use super::*;

    fn field(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        match result {
            Err(e) if e.status == 422 => e.field.expect("field"),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn a_full_add_reads_into_a_request_with_the_tokens_actor() {
        let body = br#"{"employee_id": "E1", "action": "add", "kind": "clock_out",
            "at": "2026-11-03T18:00:00+09:00", "reason": "forgot", "target_id": null}"#;
        let req = correction(body, "hanako").expect("valid");
        assert_eq!(req.actor, "api:hanako");
        assert_eq!(req.kind, Some(PunchKind::ClockOut));
        assert_eq!(
            req.at,
            Some("2026-11-03T09:00:00Z".parse::<DateTime<Utc>>().unwrap())
        );
        assert_eq!(req.employee_id.as_deref(), Some("E1"));
        assert_eq!(req.target_id, None);
        assert_eq!(req.reason, "forgot");
    }

    #[test]
    fn each_bad_part_is_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "body"),
            (b"[1]", "body"),
            (br#"{"action": "add", "actor": "mallory"}"#, "actor"),
            (br#"{"action": "add", "colour": "red"}"#, "colour"),
            (br#"{"action": "undo"}"#, "action"),
            (br#"{"reason": "x"}"#, "action"),
            (br#"{"action": "add", "kind": "lunch"}"#, "kind"),
            (br#"{"action": "add", "at": "2026-11-03T18:00:00"}"#, "at"),
            (br#"{"action": "add", "reason": 5}"#, "reason"),
        ];
        for (body, expected) in cases {
            assert_eq!(
                field(correction(body, "a")),
                *expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(field(reopen_reason(b"{\"why\": \"x\"}")), "why");
        assert_eq!(reopen_reason(b"").expect("empty is {}"), "");
        assert_eq!(field(month("2026-13")), "month");
        assert_eq!(month("2026-02").expect("month"), "2026-02");
        assert_eq!(field(date("2026-02-30")), "date");
        assert_eq!(field(employee("no spaces")), "employee");
    }
}
