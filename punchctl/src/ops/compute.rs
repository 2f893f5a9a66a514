//! `punchctl attendance compute` (CONTRACT §4.8): the rules file, punch and correction lines,
//! and the day and month records printed, as pure text in and text out around the attendance
//! engine (`dakoku_rules::v2`). Errors name the file, line and field.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value};

use dakoku_rules::v2::Month;
use dakoku_rules::v2::figures::{DAY_FIELDS, DayFigures, MONTH_FIELDS, MonthFigures};
use dakoku_rules::v2::{Computed, Correction, CorrectionAction, Punch, PunchKind, compute};
use dakoku_rules::v2::{RuleVersion, Rulebook};

/// Bad input: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct InputError {
    /// The file as named on the command line.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The field at fault (`-` when the line is not an object at all).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn error(file: &str, line: usize, field: &str, message: impl Into<String>) -> InputError {
    InputError {
        file: file.to_owned(),
        line,
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Reads a rules file: `{"versions": [{"effective_from": ..., <rules>}]}`.
pub fn read_rules(file: &str, text: &str) -> Result<Rulebook, InputError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| error(file, e.line().max(1), "-", format!("not JSON: {e}")))?;
    let lines = key_lines(text);
    let line_of = |path: &[&str]| {
        lines
            .iter()
            .find(|(p, _)| p.iter().map(String::as_str).eq(path.iter().copied()))
            .map_or(1, |(_, line)| *line)
    };
    let Value::Object(top) = value else {
        return Err(error(
            file,
            1,
            "-",
            "expected an object {\"versions\": [...]}",
        ));
    };
    if let Some(key) = top.keys().find(|k| *k != "versions") {
        return Err(error(
            file,
            line_of(&[key]),
            key,
            "unknown field; expected versions",
        ));
    }
    let versions = match top.get("versions") {
        Some(Value::Array(versions)) => versions,
        Some(_) => {
            return Err(error(
                file,
                line_of(&["versions"]),
                "versions",
                "expected a list",
            ));
        }
        None => return Err(error(file, 1, "versions", "is required")),
    };
    let mut read = Vec::new();
    for (index, version) in versions.iter().enumerate() {
        let Value::Object(object) = version else {
            return Err(error(
                file,
                line_of(&["versions"]),
                "versions",
                "expected objects",
            ));
        };
        let v = RuleVersion::from_json(index, object).map_err(|e| {
            let i = index.to_string();
            let line = line_of(&["versions", &i, &e.key]);
            let line = if line == 1 {
                line_of(&["versions"])
            } else {
                line
            };
            error(file, line, &e.key, e.message)
        })?;
        read.push((index, v));
    }
    Rulebook::new(read).map_err(|e| {
        let i = e.version.to_string();
        error(file, line_of(&["versions", &i, &e.key]), &e.key, e.message)
    })
}

/// The line of every object key, by its path (object keys and array indexes as text).
fn key_lines(text: &str) -> Vec<(Vec<String>, usize)> {
    enum Frame {
        Object {
            key: Option<String>,
            expect_key: bool,
        },
        Array(usize),
    }
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '{' => stack.push(Frame::Object {
                key: None,
                expect_key: true,
            }),
            '[' => stack.push(Frame::Array(0)),
            '}' | ']' => {
                stack.pop();
            }
            ',' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                Some(Frame::Array(i)) => *i += 1,
                None => {}
            },
            ':' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = false;
                }
            }
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(next) = chars.next() {
                                s.push(next);
                            }
                        }
                        '\n' => line += 1,
                        other => s.push(other),
                    }
                }
                if let Some(Frame::Object {
                    key,
                    expect_key: true,
                }) = stack.last_mut()
                {
                    *key = Some(s.clone());
                    let mut path: Vec<String> = stack[..stack.len() - 1]
                        .iter()
                        .map(|f| match f {
                            Frame::Object { key, .. } => key.clone().unwrap_or_default(),
                            Frame::Array(i) => i.to_string(),
                        })
                        .collect();
                    path.push(s);
                    out.push((path, line));
                }
            }
            _ => {}
        }
    }
    out
}

/// The non-blank lines of a JSON-lines file, each parsed as an object, with its line number.
/// A JSON-lines line: its number and its object.
type NumberedObject = (usize, Map<String, Value>);

fn objects(file: &str, text: &str) -> Result<Vec<NumberedObject>, InputError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(object)) => out.push((line, object)),
            Ok(_) => return Err(error(file, line, "-", "expected a JSON object")),
            Err(e) => return Err(error(file, line, "-", format!("not JSON: {e}"))),
        }
    }
    Ok(out)
}

/// One line's fields, read with errors naming the field.
struct Line<'a> {
    file: &'a str,
    line: usize,
    object: &'a Map<String, Value>,
}

impl Line<'_> {
    fn fail(&self, field: &str, message: impl Into<String>) -> InputError {
        error(self.file, self.line, field, message)
    }

    fn only(&self, allowed: &[&str]) -> Result<(), InputError> {
        match self.object.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(self.fail(
                key,
                format!("unknown field; expected {}", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    fn text(&self, field: &str) -> Result<String, InputError> {
        match self.object.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(other) => {
                Err(self.fail(field, format!("expected a non-empty string, got {other}")))
            }
            None => Err(self.fail(field, "is required")),
        }
    }

    fn optional_text(&self, field: &str) -> Result<(), InputError> {
        match self.object.get(field) {
            None | Some(Value::String(_) | Value::Null) => Ok(()),
            Some(other) => Err(self.fail(field, format!("expected a string, got {other}"))),
        }
    }

    fn seq(&self) -> Result<u64, InputError> {
        match self.object.get("seq") {
            Some(v) => v.as_u64().ok_or_else(|| {
                self.fail(
                    "seq",
                    format!("expected an unsigned 64-bit integer, got {v}"),
                )
            }),
            None => Err(self.fail("seq", "is required")),
        }
    }

    fn kind(&self) -> Result<PunchKind, InputError> {
        let s = self.text("kind")?;
        Ok(match s.as_str() {
            "clock_in" => PunchKind::ClockIn,
            "clock_out" => PunchKind::ClockOut,
            "break_start" => PunchKind::BreakStart,
            "break_end" => PunchKind::BreakEnd,
            _ => {
                return Err(self.fail(
                    "kind",
                    format!(
                        "unknown kind {s:?}; expected clock_in, clock_out, break_start or break_end"
                    ),
                ));
            }
        })
    }

    fn instant(&self, field: &str) -> Result<i64, InputError> {
        let s = self.text(field)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|at| at.timestamp())
            .map_err(|e| {
                self.fail(
                    field,
                    format!("expected RFC 3339 with an offset, got {s:?} ({e})"),
                )
            })
    }
}

/// Punches and corrections by employee, as read from the files.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Each employee's punches and added punches' corrections, in file order.
    pub employees: BTreeMap<String, (Vec<Punch>, Vec<Correction>)>,
}

/// Reads the punch lines and the correction lines (§4.8).
pub fn read_inputs(
    punch_file: &str,
    punch_text: &str,
    correction_file: Option<(&str, &str)>,
) -> Result<Inputs, InputError> {
    let mut inputs = Inputs::default();
    let mut owner: HashMap<String, String> = HashMap::new();
    for (line, object) in objects(punch_file, punch_text)? {
        let l = Line {
            file: punch_file,
            line,
            object: &object,
        };
        l.only(&["employee_id", "punch_id", "seq", "kind", "at"])?;
        let employee = l.text("employee_id")?;
        let punch = Punch {
            id: l.text("punch_id")?,
            seq: l.seq()?,
            kind: l.kind()?,
            at: l.instant("at")?,
            added: false,
        };
        if owner.contains_key(&punch.id) {
            continue; // a resend: the first stands
        }
        owner.insert(punch.id.clone(), employee.clone());
        inputs.employees.entry(employee).or_default().0.push(punch);
    }
    let Some((file, text)) = correction_file else {
        return Ok(inputs);
    };
    let mut voids = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, object) in objects(file, text)? {
        let l = Line {
            file,
            line,
            object: &object,
        };
        l.only(&[
            "correction_id",
            "action",
            "employee_id",
            "kind",
            "at",
            "punch_id",
            "reason",
            "actor",
            "created_at",
        ])?;
        let id = l.text("correction_id")?;
        for optional in ["reason", "actor"] {
            l.optional_text(optional)?;
        }
        if matches!(object.get("created_at"), Some(v) if !v.is_null()) {
            l.instant("created_at")?;
        }
        let action = match l.text("action")?.as_str() {
            "add" => CorrectionAction::Add {
                kind: l.kind()?,
                at: l.instant("at")?,
            },
            "void" => CorrectionAction::Void {
                target: l.text("punch_id")?,
            },
            other => return Err(l.fail("action", format!("expected add or void, got {other:?}"))),
        };
        let employee = match (&action, object.get("employee_id")) {
            (CorrectionAction::Add { .. }, _) | (_, Some(_)) => Some(l.text("employee_id")?),
            (CorrectionAction::Void { .. }, None) => None,
        };
        if !seen.insert(id.clone()) {
            continue; // a resend: the first stands
        }
        match action {
            CorrectionAction::Add { .. } => {
                let employee = employee.expect("an add names its employee");
                owner.entry(id.clone()).or_insert_with(|| employee.clone());
                let correction = Correction { id, action };
                inputs
                    .employees
                    .entry(employee)
                    .or_default()
                    .1
                    .push(correction);
            }
            CorrectionAction::Void { target } => voids.push((line, id, target)),
        }
    }
    for (line, id, target) in voids {
        let Some(employee) = owner.get(&target) else {
            return Err(error(
                file,
                line,
                "punch_id",
                format!("{target:?} is neither a punch nor an added punch"),
            ));
        };
        inputs
            .employees
            .entry(employee.clone())
            .or_default()
            .1
            .push(Correction {
                id,
                action: CorrectionAction::Void { target },
            });
    }
    Ok(inputs)
}

/// Computes every employee and prints the records: per employee (sorted by id) its days by
/// date, then its months by month.
pub fn render(rules: &Rulebook, inputs: &Inputs) -> String {
    let mut out = String::new();
    for (employee, (punches, corrections)) in &inputs.employees {
        let Computed { days, months, .. } = compute(rules, punches, corrections);
        for (date, day) in &days {
            render_day(&mut out, employee, *date, day);
        }
        for (month, m) in &months {
            render_month(&mut out, employee, *month, m);
        }
    }
    out
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

fn instant(at: Option<i64>) -> String {
    at.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map_or_else(
            || "null".into(),
            |t| quoted(&t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        )
}

fn render_day(out: &mut String, employee: &str, date: NaiveDate, d: &DayFigures) {
    let _ = write!(
        out,
        "{{\"record\": \"day\", \"employee_id\": {}, \"work_date\": \"{}\"",
        quoted(employee),
        date.format("%Y-%m-%d")
    );
    for field in DAY_FIELDS.iter().filter(|f| f.name != "punch_count") {
        let _ = write!(out, ", \"{}\": {}", field.name, (field.get)(d));
    }
    let anomalies: Vec<String> = d.anomalies.iter().map(|a| quoted(a.as_str())).collect();
    let _ = writeln!(
        out,
        ", \"first_in\": {}, \"last_out\": {}, \"punch_count\": {}, \"anomalies\": [{}], \"corrected\": {}}}",
        instant(d.first_in),
        instant(d.last_out),
        d.punch_count,
        anomalies.join(", "),
        d.corrected
    );
}

fn render_month(out: &mut String, employee: &str, month: Month, m: &MonthFigures) {
    let _ = write!(
        out,
        "{{\"record\": \"month\", \"employee_id\": {}, \"month\": \"{month}\"",
        quoted(employee)
    );
    for field in MONTH_FIELDS {
        let _ = write!(out, ", \"{}\": {}", field.name, (field.get)(m));
    }
    out.push_str("}\n");
}

/// Why `attendance compute` could not compute.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file as named.
        path: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not what §4.8 describes.
    #[error(transparent)]
    Input(#[from] InputError),
}

/// Reads the files (named in errors as given) and returns the records to print.
pub fn compute_files(
    rules: &std::path::Path,
    punches: &std::path::Path,
    corrections: Option<&std::path::Path>,
) -> Result<String, ComputeError> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|source| ComputeError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let name = |path: &std::path::Path| path.display().to_string();
    let book = read_rules(&name(rules), &read(rules)?)?;
    let corrections = match corrections {
        Some(path) => Some((name(path), read(path)?)),
        None => None,
    };
    let inputs = read_inputs(
        &name(punches),
        &read(punches)?,
        corrections.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
    )?;
    Ok(render(&book, &inputs))
}
