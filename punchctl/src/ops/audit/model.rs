//! What the audit learns, in memory: each punch as the log has it (interned names, counts of
//! raw records and verdicts, the latest verdict) and the Postgres rows it is compared with.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_rules::v2::calendar::work_date;
use dakoku_rules::v2::{Correction, CorrectionAction, DayFigures, Month, MonthFigures};
use dakoku_schemas::{PunchKind, VerdictKey};
use tokio_postgres::Row;
use uuid::Uuid;

use super::findings::PunchFinding;

pub(crate) const NONE: u32 = u32::MAX;

/// Interned strings (tenants, devices, employees repeat across millions of punches).
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub(crate) ids: HashMap<String, u32>,
    pub(crate) names: Vec<String>,
}

impl Names {
    pub(crate) fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(NONE - 1);
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    pub(crate) fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }
}

/// One punch as the log has it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) tenant: u32,
    pub(crate) device: u32,
    pub(crate) employee: u32,
    pub(crate) seq: u64,
    pub(crate) at: i64,
    pub(crate) kind: PunchKind,
    pub(crate) work_date: NaiveDate,
    /// Raw records read.
    pub(crate) raw: u32,
    /// Raw records below licence-check's position at the start (must have a verdict).
    pub(crate) raw_judged: u32,
    /// Judgements allowed: raw records below its position after the checked scan (they bound
    /// every verdict read), each counted once more per `punchctl replay` that covered it.
    pub(crate) raw_bound: u32,
    pub(crate) accepted: u32,
    pub(crate) rejected: u32,
    /// The latest verdict as the attendance consumer decides it.
    pub(crate) latest: Option<VerdictKey>,
    /// Verdicts the consumer sets aside (conflicts, accepted without employee).
    pub(crate) set_aside: u32,
    /// A verdict at or beyond attendance's stored position.
    pub(crate) pending: bool,
    /// Seen in `punches` (in scope).
    pub(crate) stored: bool,
}

/// A tenant's work rules, as the attendance consumer reads them.
pub(crate) use dakoku_store::master::rules::StoredRulebook as Rules;

/// The own work date of a punch at `at_millis` of `tenant` (defaults for an unknown tenant).
pub(crate) fn own_date(rules: &HashMap<String, Rules>, tenant: &str, at_millis: i64) -> NaiveDate {
    let at = at_millis.div_euclid(1000);
    match rules.get(tenant) {
        Some(r) => work_date(at, r.rulebook().at_instant(at)),
        None => work_date(at, Rules::defaults().rulebook().at_instant(at)),
    }
}

/// Everything the Kafka phase learned.
#[derive(Debug, Default)]
pub(crate) struct Log {
    pub(crate) names: Names,
    pub(crate) entries: HashMap<Uuid, Entry>,
    pub(crate) raw_undecodable: u64,
    pub(crate) verdicts_undecodable: u64,
    pub(crate) raw_not_yet_checked: u64,
    /// First retained offset of each checked partition (> 0: retention deleted verdicts).
    pub(crate) checked_low: BTreeMap<i32, i64>,
    pub(crate) raw_truncated: bool,
    pub(crate) checked_truncated: bool,
}

impl Log {
    pub(crate) fn entry(
        &mut self,
        id: Uuid,
        rules: &HashMap<String, Rules>,
        make: impl FnOnce(&mut Names) -> (u32, u32, u64, i64, PunchKind),
    ) -> &mut Entry {
        let names = &mut self.names;
        self.entries.entry(id).or_insert_with(|| {
            let (tenant, device, seq, at, kind) = make(names);
            let work_date = own_date(rules, names.name(tenant).unwrap_or_default(), at);
            Entry {
                tenant,
                device,
                employee: NONE,
                seq,
                at,
                kind,
                work_date,
                raw: 0,
                raw_judged: 0,
                raw_bound: 0,
                accepted: 0,
                rejected: 0,
                latest: None,
                set_aside: 0,
                pending: false,
                stored: false,
            }
        })
    }

    pub(crate) fn finding(&self, id: Uuid, e: &Entry, detail: String) -> PunchFinding {
        let name = |n: u32| self.names.name(n).unwrap_or_default().to_owned();
        PunchFinding {
            punch_id: id,
            tenant: name(e.tenant),
            device: name(e.device),
            seq: e.seq,
            employee: (e.employee != NONE).then(|| name(e.employee)),
            kind: e.kind.as_str().to_owned(),
            at: DateTime::from_timestamp_millis(e.at),
            work_date: e.work_date,
            detail,
        }
    }
}

/// One `punches` row.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub(crate) punch_id: Uuid,
    pub(crate) tenant: String,
    pub(crate) device: String,
    pub(crate) seq: i64,
    pub(crate) card: String,
    pub(crate) employee: String,
    pub(crate) kind: String,
    pub(crate) at: DateTime<Utc>,
    pub(crate) work_date: NaiveDate,
    pub(crate) withdrawn: bool,
    pub(crate) source_partition: i32,
    pub(crate) source_offset: i64,
}

impl StoredRow {
    pub(crate) const SQL: &'static str = "SELECT punch_id, tenant_id, device_id, seq, card_id, employee_id, \
         kind, at, work_date, withdrawn, source_partition, source_offset FROM punches \
         WHERE group_id = $1 AND ($2::text IS NULL OR tenant_id = $2) \
         ORDER BY tenant_id COLLATE \"C\", employee_id COLLATE \"C\", at, punch_id";

    pub(crate) fn of(row: &Row) -> Self {
        Self {
            punch_id: row.get(0),
            tenant: row.get(1),
            device: row.get(2),
            seq: row.get(3),
            card: row.get(4),
            employee: row.get(5),
            kind: row.get(6),
            at: row.get(7),
            work_date: row.get(8),
            withdrawn: row.get(9),
            source_partition: row.get(10),
            source_offset: row.get(11),
        }
    }

    pub(crate) fn employee_key(&self) -> EmployeeKey {
        (self.tenant.clone(), self.employee.clone())
    }

    pub(crate) fn finding(&self, detail: String) -> PunchFinding {
        PunchFinding {
            punch_id: self.punch_id,
            tenant: self.tenant.clone(),
            device: self.device.clone(),
            seq: u64::try_from(self.seq).unwrap_or(0),
            employee: Some(self.employee.clone()),
            kind: self.kind.clone(),
            at: Some(self.at),
            work_date: self.work_date,
            detail,
        }
    }
}

/// One `attendance_days` row.
#[derive(Debug, Clone)]
pub(crate) struct DayRow {
    pub(crate) key: DayKey,
    pub(crate) figures: DayFigures,
}

impl DayRow {
    /// The stored days of the scope's employees: key, then the store's own figure columns
    /// (driven by the engine's figure list, so a new figure needs no edit here).
    pub(crate) fn sql() -> String {
        format!(
            "SELECT d.tenant_id, d.employee_id, d.work_date, {} FROM attendance_days d \
             WHERE d.group_id = $1 AND ($2::text IS NULL OR d.tenant_id = $2) \
             ORDER BY d.tenant_id COLLATE \"C\", d.employee_id COLLATE \"C\", d.work_date",
            dakoku_attendance::store::figure_columns("d")
        )
    }

    pub(crate) fn of(row: &Row) -> Self {
        Self {
            key: (row.get(0), row.get(1), row.get(2)),
            // An unknown anomaly code cannot be recomputed, so it shows as a difference.
            figures: dakoku_attendance::store::figures_of(row, 3),
        }
    }
}

/// One `attendance_months` row.
#[derive(Debug, Clone)]
pub(crate) struct MonthRow {
    pub(crate) employee: EmployeeKey,
    pub(crate) month: Option<Month>,
    pub(crate) first_day: NaiveDate,
    pub(crate) last_day: NaiveDate,
    pub(crate) figures: MonthFigures,
}

impl MonthRow {
    /// The stored months of the scope's employees.
    pub(crate) fn sql() -> String {
        format!(
            "SELECT m.tenant_id, m.employee_id, m.month, m.first_day, m.last_day, {} \
             FROM attendance_months m \
             WHERE m.group_id = $1 AND ($2::text IS NULL OR m.tenant_id = $2) \
             ORDER BY m.tenant_id COLLATE \"C\", m.employee_id COLLATE \"C\", m.month",
            dakoku_attendance::store::month_columns("m")
        )
    }

    pub(crate) fn of(row: &Row) -> Self {
        Self {
            employee: (row.get(0), row.get(1)),
            month: Month::parse(row.get(2)),
            first_day: row.get(3),
            last_day: row.get(4),
            figures: dakoku_attendance::store::month_figures_of(row, 5),
        }
    }
}

/// A stored correction (§4.6) as the engine reads it, with its employee.
#[derive(Debug, Clone)]
pub(crate) struct CorrectionRow {
    pub(crate) employee: EmployeeKey,
    /// `None` for a row this build cannot read (an unknown kind): left out of the recompute,
    /// so the days it touched show up as differing.
    pub(crate) correction: Option<Correction>,
}

impl CorrectionRow {
    /// The stored corrections of the scope's employees, in the order they were stored.
    pub(crate) const SQL: &'static str = "SELECT c.tenant_id, c.employee_id, \
         c.correction_id::text, c.action, c.kind, c.at, c.target_id::text FROM corrections c \
         WHERE c.group_id = $1 AND ($2::text IS NULL OR c.tenant_id = $2) \
         ORDER BY c.tenant_id COLLATE \"C\", c.employee_id COLLATE \"C\", c.stored_at, \
         c.source_partition, c.source_offset";

    pub(crate) fn of(row: &Row) -> Self {
        let action = || {
            Some(match row.get::<_, &str>(3) {
                "add" => CorrectionAction::Add {
                    kind: PunchKind::ALL
                        .iter()
                        .copied()
                        .find(|k| Some(k.as_str()) == row.get::<_, Option<&str>>(4))?,
                    at: row.get::<_, Option<DateTime<Utc>>>(5)?.timestamp(),
                },
                _ => CorrectionAction::Void {
                    target: row.get::<_, Option<String>>(6)?,
                },
            })
        };
        Self {
            employee: (row.get(0), row.get(1)),
            correction: action().map(|action| Correction {
                id: row.get(2),
                action,
            }),
        }
    }
}

/// `(tenant, employee, work date)`, ordered bytewise like `COLLATE "C"`.
pub(crate) type DayKey = (String, String, NaiveDate);

/// `(tenant, employee)`, ordered bytewise like `COLLATE "C"`.
pub(crate) type EmployeeKey = (String, String);
