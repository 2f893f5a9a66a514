//! `punchctl attendance compute` (CONTRACT §4.8): the rules file, punch and correction lines,
//! and the day and month records printed, as pure text in and text out around the attendance
//! engine (`dakoku_rules::v2`). Errors name the file, line and field.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::BufRead;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value};

use dakoku_rules::v2::Month;
use dakoku_rules::v2::art36::{self, Art36};
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

/// A JSON-lines line: its number and its object.
type NumberedObject = (usize, Map<String, Value>);

/// The objects of a JSON-lines file, read one line at a time (blank lines skipped), so a file
/// of a million punches never sits in memory as text or as JSON values.
struct JsonLines<'a, R> {
    file: &'a str,
    reader: R,
    line: usize,
    buffer: String,
}

impl<'a, R: BufRead> JsonLines<'a, R> {
    fn new(file: &'a str, reader: R) -> Self {
        JsonLines {
            file,
            reader,
            line: 0,
            buffer: String::new(),
        }
    }

    /// The next non-blank line and its 1-based number, or `None` at the end.
    fn next_line(&mut self) -> Result<Option<(usize, &str)>, ComputeError> {
        loop {
            self.buffer.clear();
            self.line += 1;
            match self.reader.read_line(&mut self.buffer) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(error(self.file, self.line, "-", "not UTF-8 text").into());
                }
                Err(source) => {
                    return Err(ComputeError::Read {
                        path: self.file.to_owned(),
                        source,
                    });
                }
            }
            if !self.buffer.trim().is_empty() {
                return Ok(Some((self.line, &self.buffer)));
            }
        }
    }

    /// The next object and its 1-based line, or `None` at the end.
    fn next_object(&mut self) -> Result<Option<NumberedObject>, ComputeError> {
        let file = self.file;
        match self.next_line()? {
            Some((line, text)) => object(file, line, text).map(|o| Some((line, o))),
            None => Ok(None),
        }
    }
}

/// One line parsed as a JSON object.
fn object(file: &str, line: usize, text: &str) -> Result<Map<String, Value>, ComputeError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(error(file, line, "-", "expected a JSON object").into()),
        Err(e) => Err(error(file, line, "-", format!("not JSON: {e}")).into()),
    }
}

/// A punch line in its common form, read straight into its fields: a million punch lines
/// parsed as JSON values spend most of their time allocating maps. Anything else (a field
/// missing, unknown or repeated, a value of the wrong type or form) takes the general path,
/// which names the field at fault, so both paths accept exactly the same lines.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainPunch<'a> {
    #[serde(borrow)]
    employee_id: Cow<'a, str>,
    #[serde(borrow)]
    punch_id: Cow<'a, str>,
    seq: u64,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    at: Cow<'a, str>,
}

impl PlainPunch<'_> {
    fn read(text: &str) -> Option<(PlainPunch<'_>, Punch)> {
        let p: PlainPunch<'_> = serde_json::from_str(text).ok()?;
        if p.employee_id.is_empty() || p.punch_id.is_empty() {
            return None;
        }
        let punch = Punch {
            id: p.punch_id.as_ref().to_owned(),
            seq: p.seq,
            kind: kind_of(&p.kind)?,
            at: DateTime::parse_from_rfc3339(&p.at).ok()?.timestamp(),
            added: false,
        };
        Some((p, punch))
    }
}

fn kind_of(s: &str) -> Option<PunchKind> {
    Some(match s {
        "clock_in" => PunchKind::ClockIn,
        "clock_out" => PunchKind::ClockOut,
        "break_start" => PunchKind::BreakStart,
        "break_end" => PunchKind::BreakEnd,
        _ => return None,
    })
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
        kind_of(&s).ok_or_else(|| {
            self.fail(
                "kind",
                format!(
                    "unknown kind {s:?}; expected clock_in, clock_out, break_start or break_end"
                ),
            )
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
    /// Each employee's punches and corrections, in file order.
    pub employees: BTreeMap<String, (Vec<Punch>, Vec<Correction>)>,
}

/// Inputs as they are read: employees by arrival, and the employee of every punch and added
/// punch id (for resends and voids) as a slot number rather than another copy of its id.
#[derive(Default)]
struct Collector {
    slot_of: HashMap<String, u32>,
    slots: Vec<(String, Vec<Punch>, Vec<Correction>)>,
    owner: HashMap<Box<str>, u32>,
}

impl Collector {
    fn slot(&mut self, employee: &str) -> u32 {
        if let Some(&slot) = self.slot_of.get(employee) {
            return slot;
        }
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 employees");
        self.slot_of.insert(employee.to_owned(), slot);
        self.slots
            .push((employee.to_owned(), Vec::new(), Vec::new()));
        slot
    }

    fn finish(self) -> Inputs {
        Inputs {
            employees: self
                .slots
                .into_iter()
                .map(|(employee, punches, corrections)| (employee, (punches, corrections)))
                .collect(),
        }
    }
}

/// Reads the punch lines and the correction lines (§4.8) from text.
pub fn read_inputs(
    punch_file: &str,
    punch_text: &str,
    correction_file: Option<(&str, &str)>,
) -> Result<Inputs, InputError> {
    read_inputs_from(
        punch_file,
        punch_text.as_bytes(),
        punch_text.len() as u64,
        correction_file.map(|(file, text)| (file, text.as_bytes())),
    )
    .map_err(|e| match e {
        ComputeError::Input(e) => e,
        // Text in memory has no read errors; keep the message if one ever appears.
        other => error(punch_file, 0, "-", other.to_string()),
    })
}

/// Reads the punch lines and the correction lines (§4.8), one line at a time. `punch_bytes`,
/// the punch file's size if known (else 0), sizes the table of punch ids up front: growing it
/// step by step rehashes every id again and was an eighth of the time at a million punches.
pub fn read_inputs_from(
    punch_file: &str,
    punches: impl BufRead,
    punch_bytes: u64,
    corrections: Option<(&str, impl BufRead)>,
) -> Result<Inputs, ComputeError> {
    let mut c = Collector::default();
    // A punch line is rarely shorter than 96 bytes (the contract's example has 103).
    c.owner
        .reserve(usize::try_from(punch_bytes / 96).unwrap_or(0).min(1 << 26));
    let mut lines = JsonLines::new(punch_file, punches);
    while let Some((line, text)) = lines.next_line()? {
        let (employee, punch) = match PlainPunch::read(text) {
            Some((plain, punch)) => (plain.employee_id, punch),
            None => {
                let object = object(punch_file, line, text)?;
                let (employee, punch) = punch_line(&Line {
                    file: punch_file,
                    line,
                    object: &object,
                })?;
                (Cow::Owned(employee), punch)
            }
        };
        if c.owner.contains_key(punch.id.as_str()) {
            continue; // a resend: the first stands
        }
        let slot = c.slot(&employee);
        c.owner.insert(punch.id.as_str().into(), slot);
        c.slots[slot as usize].1.push(punch);
    }
    if let Some((file, reader)) = corrections {
        read_corrections(&mut c, file, reader)?;
    }
    Ok(c.finish())
}

/// A punch line read by the general path: every field checked, the first at fault named.
fn punch_line(l: &Line<'_>) -> Result<(String, Punch), InputError> {
    l.only(&["employee_id", "punch_id", "seq", "kind", "at"])?;
    let employee = l.text("employee_id")?;
    let punch = Punch {
        id: l.text("punch_id")?,
        seq: l.seq()?,
        kind: l.kind()?,
        at: l.instant("at")?,
        added: false,
    };
    Ok((employee, punch))
}

fn read_corrections(
    c: &mut Collector,
    file: &str,
    reader: impl BufRead,
) -> Result<(), ComputeError> {
    let mut voids = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut lines = JsonLines::new(file, reader);
    while let Some((line, object)) = lines.next_object()? {
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
            other => {
                return Err(l
                    .fail("action", format!("expected add or void, got {other:?}"))
                    .into());
            }
        };
        let employee = match (&action, object.get("employee_id")) {
            (CorrectionAction::Add { .. }, _) | (_, Some(_)) => Some(l.text("employee_id")?),
            (CorrectionAction::Void { .. }, None) => None,
        };
        if !seen.insert(id.clone()) {
            continue; // a resend: the first stands
        }
        match (action, employee) {
            (action @ CorrectionAction::Add { .. }, Some(employee)) => {
                let slot = c.slot(&employee);
                c.owner.entry(id.as_str().into()).or_insert(slot);
                c.slots[slot as usize].2.push(Correction { id, action });
            }
            (CorrectionAction::Void { target }, _) => voids.push((line, id, target)),
            (CorrectionAction::Add { .. }, None) => {
                return Err(l.fail("employee_id", "is required").into());
            }
        }
    }
    for (line, id, target) in voids {
        let Some(&slot) = c.owner.get(target.as_str()) else {
            return Err(error(
                file,
                line,
                "punch_id",
                format!("{target:?} is neither a punch nor an added punch"),
            )
            .into());
        };
        c.slots[slot as usize].2.push(Correction {
            id,
            action: CorrectionAction::Void { target },
        });
    }
    Ok(())
}

/// Computes every employee and prints the records: per employee (sorted by id) its days by
/// date, then its months by month.
pub fn render(rules: &Rulebook, inputs: &Inputs) -> String {
    let mut out = String::new();
    for (employee, (punches, corrections)) in &inputs.employees {
        render_employee(&mut out, rules, employee, punches, corrections);
    }
    out
}

/// [`render`] written to `out` one employee at a time, each employee's inputs dropped once
/// printed.
pub fn write_records(
    out: &mut impl std::io::Write,
    rules: &Rulebook,
    inputs: &Inputs,
) -> std::io::Result<()> {
    let mut text = String::new();
    for (employee, (punches, corrections)) in &inputs.employees {
        text.clear();
        render_employee(&mut text, rules, employee, punches, corrections);
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

fn render_employee(
    out: &mut String,
    rules: &Rulebook,
    employee: &str,
    punches: &[Punch],
    corrections: &[Correction],
) {
    let Computed { days, months, .. } = compute(rules, punches, corrections);
    for (date, day) in &days {
        render_day(out, employee, *date, day);
    }
    let limits = art36::annotate(rules, &months);
    for (month, m) in &months {
        let a = limits.get(month).cloned().unwrap_or_default();
        render_month(out, employee, *month, m, &a);
    }
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

fn render_month(out: &mut String, employee: &str, month: Month, m: &MonthFigures, a: &Art36) {
    let _ = write!(
        out,
        "{{\"record\": \"month\", \"employee_id\": {}, \"month\": \"{month}\"",
        quoted(employee)
    );
    for field in MONTH_FIELDS {
        let _ = write!(out, ", \"{}\": {}", field.name, (field.get)(m));
    }
    // The Article 36 fields (§4.9) after the §4.8 ones, so a reader of those keeps working.
    let alerts: Vec<String> = a.alerts.iter().map(|c| quoted(c.as_str())).collect();
    let _ = writeln!(
        out,
        ", \"overtime_and_holiday_seconds\": {}, \"year_overtime_seconds\": {}, \
         \"months_over_limit\": {}, \"max_average_seconds\": {}, \"art36_alerts\": [{}]}}",
        a.overtime_and_holiday_seconds,
        a.year_overtime_seconds,
        a.months_over_limit,
        a.max_average_seconds,
        alerts.join(", ")
    );
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
    /// The records could not be written (e.g. the output's reader went away).
    #[error("writing the records: {0}")]
    Write(#[source] std::io::Error),
}

/// Reads the files (named in errors as given) and writes the records to `out`. Nothing is
/// written when an input is bad: every line is read before the first record is computed.
pub fn compute_files_to(
    rules: &std::path::Path,
    punches: &std::path::Path,
    corrections: Option<&std::path::Path>,
    out: &mut dyn std::io::Write,
) -> Result<(), ComputeError> {
    let name = |path: &std::path::Path| path.display().to_string();
    let open = |path: &std::path::Path| {
        std::fs::File::open(path)
            .map(|file| std::io::BufReader::with_capacity(1 << 16, file))
            .map_err(|source| ComputeError::Read {
                path: name(path),
                source,
            })
    };
    let rules_text = std::fs::read_to_string(rules).map_err(|source| ComputeError::Read {
        path: name(rules),
        source,
    })?;
    let book = read_rules(&name(rules), &rules_text)?;
    let correction_name = corrections.map(name);
    let correction_reader = match corrections {
        Some(path) => Some(open(path)?),
        None => None,
    };
    let punch_bytes = std::fs::metadata(punches).map_or(0, |m| m.len());
    let inputs = read_inputs_from(
        &name(punches),
        open(punches)?,
        punch_bytes,
        correction_name.as_deref().zip(correction_reader),
    )?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    write_records(&mut out, &book, &inputs).map_err(ComputeError::Write)?;
    std::io::Write::flush(&mut out).map_err(ComputeError::Write)
}

/// Reads the files (named in errors as given) and returns the records to print.
pub fn compute_files(
    rules: &std::path::Path,
    punches: &std::path::Path,
    corrections: Option<&std::path::Path>,
) -> Result<String, ComputeError> {
    let mut out = Vec::new();
    compute_files_to(rules, punches, corrections, &mut out)?;
    String::from_utf8(out)
        .map_err(|e| ComputeError::Write(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}
