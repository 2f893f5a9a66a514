//! Recomputing employees inside a transaction: the incremental recompute of a batch (the
//! windows the engine's [`plan`] asks for, loaded by instant) and the full recompute of a
//! rebuild or a rules change. Reads here; the caller writes the [`Changes`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_rules::v2::Month;
use dakoku_rules::v2::window::{Recompute, needed_dates, pairing_gap, plan};
use tokio_postgres::{Row, Transaction};

use super::StoreError;
use super::figures::Loaded;
use super::figures::{self, Changes, StoredDay, StoredMonth};
use super::keys::{DateRanges, EmployeeKey, Ranges, Touch};
use super::pipeline::{Pending, pipelined};
use super::rows;
use super::rulebooks::TenantRules;
use super::sql::Statements;

/// Instants and dates that bound "everything" in queries (inside Postgres' ranges).
const EARLIEST: i64 = -2_208_988_800; // 1900-01-01
const LATEST: i64 = 253_402_300_799; // 9999-12-31T23:59:59

fn all_dates() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN),
        NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX),
    )
}

fn rules_of<'r>(rules: &'r HashMap<String, TenantRules>, key: &EmployeeKey) -> &'r TenantRules {
    static DEFAULT: std::sync::LazyLock<TenantRules> =
        std::sync::LazyLock::new(TenantRules::defaults);
    rules.get(&key.tenant).unwrap_or(&DEFAULT)
}

/// One employee waiting for a plan.
struct Waiting {
    key: EmployeeKey,
    /// Instants (seconds) of punches that now count.
    added: Vec<i64>,
    /// Instants (seconds) of punches that stopped counting.
    removed: Vec<i64>,
}

/// The incremental recompute of every employee with a touched punch.
pub(super) async fn incremental(
    tx: &Transaction<'_>,
    st: &Statements,
    rules: &HashMap<String, TenantRules>,
    touched: &BTreeSet<Touch>,
) -> Result<Changes, StoreError> {
    let mut pending: Vec<Waiting> = Vec::new();
    for touch in touched {
        if pending.last().is_none_or(|p| p.key != touch.employee) {
            pending.push(Waiting {
                key: touch.employee.clone(),
                added: Vec::new(),
                removed: Vec::new(),
            });
        }
        if let Some(p) = pending.last_mut() {
            let at = touch.at.div_euclid(1000);
            if touch.removed {
                p.removed.push(at);
            } else {
                p.added.push(at);
            }
        }
    }
    let started = std::time::Instant::now();
    let mut rounds = 0;
    let mut planned: Vec<(Waiting, Loaded, Recompute)> = Vec::new();
    // Each round widens the window; the last loads the whole history, which always plans.
    for widen in [1i64, 8, 0] {
        if pending.is_empty() {
            break;
        }
        let ranges: BTreeMap<EmployeeKey, (i64, i64)> = pending
            .iter()
            .map(|p| {
                // Three days past the longest pairing reach: a sync point on each side even
                // across a weekend; the next rounds widen (a long absence). A day less makes
                // most batches of a realistic month take a second round (attendance-bench).
                let margin = pairing_gap(rules_of(rules, &p.key).rulebook()) + 3 * 86_400;
                let all = || p.added.iter().chain(&p.removed).copied();
                let low = all().min().unwrap_or(0);
                let high = all().max().unwrap_or(0);
                let range = if widen == 0 {
                    (EARLIEST, LATEST)
                } else {
                    (low - margin * widen, high + margin * widen)
                };
                (p.key.clone(), range)
            })
            .collect();
        rounds += 1;
        let (mut punches, bounds) = load_windows(tx, st, &ranges).await?;
        let mut still = Vec::new();
        for (index, p) in pending.into_iter().enumerate() {
            let i = i64::try_from(index + 1).unwrap_or(i64::MAX);
            let loaded = punches.remove(&i).unwrap_or_default();
            let (from, to) = ranges.get(&p.key).copied().unwrap_or((EARLIEST, LATEST));
            let (first, last) = bounds.get(&i).copied().unwrap_or((None, None));
            let complete = (
                first.is_none_or(|t| t >= from),
                last.is_none_or(|t| t <= to),
            );
            let book = rules_of(rules, &p.key).rulebook();
            match plan(book, &loaded.kept, &p.added, &p.removed, complete) {
                Some(recompute) => planned.push((p, loaded, recompute)),
                None => still.push(p),
            }
        }
        pending = still;
    }
    // The stored days the merge needs (weeks and payroll months around the window).
    let needed: BTreeMap<EmployeeKey, (NaiveDate, NaiveDate)> = planned
        .iter()
        .filter(|(_, _, r)| r.dates.0 <= r.dates.1)
        .map(|(p, _, r)| {
            let book = rules_of(rules, &p.key).rulebook();
            (p.key.clone(), needed_dates(book, r.dates))
        })
        .collect();
    let windows = started.elapsed();
    let (mut days, mut months) = load_records(tx, st, &needed).await?;
    let records = started.elapsed();
    let index: HashMap<&EmployeeKey, i64> = needed
        .keys()
        .enumerate()
        .map(|(i, key)| (key, i64::try_from(i + 1).unwrap_or(i64::MAX)))
        .collect();
    let mut changes = Changes::default();
    for (waiting, punches, recompute) in &planned {
        let key = &waiting.key;
        let i = index.get(key).copied().unwrap_or(0);
        let stored_days = days.remove(&i).unwrap_or_default();
        let stored_months = months.remove(&i).unwrap_or_default();
        changes.extend(figures::incremental(
            rules_of(rules, key),
            key,
            punches,
            &waiting.added,
            recompute,
            &stored_days,
            &stored_months,
        ));
    }
    tracing::debug!(
        employees = planned.len(),
        rounds,
        windows_ms = windows.as_millis() as u64,
        records_ms = (records - windows).as_millis() as u64,
        compute_ms = (started.elapsed() - records).as_millis() as u64,
        "incremental recompute"
    );
    Ok(changes)
}

/// The full recompute of `employees` from all their counting punches.
pub(super) async fn full(
    tx: &Transaction<'_>,
    st: &Statements,
    rules: &HashMap<String, TenantRules>,
    employees: &[EmployeeKey],
) -> Result<Changes, StoreError> {
    let ranges: BTreeMap<EmployeeKey, (i64, i64)> = employees
        .iter()
        .map(|key| (key.clone(), (EARLIEST, LATEST)))
        .collect();
    let dates: BTreeMap<EmployeeKey, (NaiveDate, NaiveDate)> = employees
        .iter()
        .map(|key| (key.clone(), all_dates()))
        .collect();
    let (mut punches, _) = load_windows(tx, st, &ranges).await?;
    let (mut days, mut months) = load_records(tx, st, &dates).await?;
    let mut changes = Changes::default();
    for (index, key) in ranges.keys().enumerate() {
        let i = i64::try_from(index + 1).unwrap_or(i64::MAX);
        changes.extend(figures::full(
            rules_of(rules, key),
            key,
            &punches.remove(&i).unwrap_or_default(),
            &days.remove(&i).unwrap_or_default(),
            &months.remove(&i).unwrap_or_default(),
        ));
    }
    Ok(changes)
}

type Bounds = HashMap<i64, (Option<i64>, Option<i64>)>;

/// Each employee's punches in its instant range (kept and voided, added ones included), and the
/// instants of its first and last counting punch; keyed by the employee's 1-based index in `ranges`.
async fn load_windows(
    tx: &Transaction<'_>,
    st: &Statements,
    ranges: &BTreeMap<EmployeeKey, (i64, i64)>,
) -> Result<(HashMap<i64, Loaded>, Bounds), StoreError> {
    let params = &Ranges::of(ranges);
    let round: Vec<Pending<'_>> = vec![
        Box::pin(async move {
            tx.query(
                &st.window_punches,
                &[&params.tenants, &params.employees, &params.from, &params.to],
            )
            .await
        }),
        Box::pin(async move {
            tx.query(&st.bounds, &[&params.tenants, &params.employees])
                .await
        }),
    ];
    let mut results = pipelined(round).await?.into_iter();
    let punch_rows = results.next().unwrap_or_default();
    let bound_rows = results.next().unwrap_or_default();
    Ok((rows::punches_by_index(&punch_rows), bounds_of(&bound_rows)))
}

fn bounds_of(rows: &[Row]) -> Bounds {
    let seconds = |row: &Row, i: usize| {
        row.get::<_, Option<DateTime<Utc>>>(i)
            .map(|t| t.timestamp())
    };
    rows.iter()
        .map(|row| (row.get(0), (seconds(row, 1), seconds(row, 2))))
        .collect()
}

type StoredDays = HashMap<i64, BTreeMap<NaiveDate, StoredDay>>;
type StoredMonths = HashMap<i64, BTreeMap<Month, StoredMonth>>;

/// Each employee's stored days in its date range and the stored months meeting it, keyed by
/// the employee's 1-based index in `dates`.
async fn load_records(
    tx: &Transaction<'_>,
    st: &Statements,
    dates: &BTreeMap<EmployeeKey, (NaiveDate, NaiveDate)>,
) -> Result<(StoredDays, StoredMonths), StoreError> {
    if dates.is_empty() {
        return Ok((HashMap::new(), HashMap::new()));
    }
    let params = &DateRanges::of(dates);
    let round: Vec<Pending<'_>> = vec![
        Box::pin(async move {
            tx.query(
                &st.stored_days,
                &[&params.tenants, &params.employees, &params.from, &params.to],
            )
            .await
        }),
        Box::pin(async move {
            tx.query(
                &st.stored_months,
                &[&params.tenants, &params.employees, &params.from, &params.to],
            )
            .await
        }),
    ];
    let mut results = pipelined(round).await?.into_iter();
    let day_rows = results.next().unwrap_or_default();
    let month_rows = results.next().unwrap_or_default();
    let days = rows::stored_days(&day_rows)
        .into_iter()
        .map(|(i, days)| (i, days.into_iter().collect()))
        .collect();
    let months = rows::stored_months(&month_rows)
        .into_iter()
        .map(|(i, months)| (i, months.into_iter().collect()))
        .collect();
    Ok((days, months))
}
