//! Tenants' work rules (CONTRACT §4.1, §4.5) in `tenant_rules`: effective-dated versions,
//! append-only, read as [`Rulebook`]s for the attendance engine and changed by
//! `punchctl rules set`, which also asks the attendance consumer to recompute from the change.
//!
//! A tenant's versions are numbered 1, 2, 3... in the order they were recorded; per
//! `effective_from` the highest number is in force (recording rules for a date that already
//! has a version supersedes it, and the older row stays as history). Every tenant has version 1
//! from `2000-01-01` (defaults on its calendar), written by the `V7` migration and a trigger on
//! `tenants`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use dakoku_rules::v2::calendar::work_date;
use dakoku_rules::v2::rulebook::{RuleChange, RuleError, value_text};
use dakoku_rules::v2::{RuleVersion, Rulebook};
use dakoku_schemas::TenantId;
use serde_json::Value;
use tokio_postgres::GenericClient;

/// The channel a recorded rules version is announced on; the payload is the tenant id.
pub const RECOMPUTE_CHANNEL: &str = "dakoku_attendance_recompute";

/// Errors of the rules verbs; each says what the operator can do about it. Nothing is written
/// when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The tenant does not exist. Add it first with `punchctl tenant add`.
    #[error(
        "unknown tenant {0}: add it first with `punchctl tenant add --tenant {0} --name <name> --group <group>`"
    )]
    TenantNotFound(TenantId),
    /// A rule's key or value is wrong, or the versions would not fit together (`closing_day`
    /// differing between versions, `night_start` equal to `night_end`).
    #[error("{}: {}; nothing changed", .0.key, .0.message)]
    Rule(RuleError),
    /// The same rule was given twice in one change.
    #[error("{0}: given twice; give each rule once. Nothing changed")]
    Repeated(String),
    /// Versions start on or after the tenant's first one: before it, the first one holds anyway.
    #[error(
        "effective_from {from} is before the tenant's first rules version ({first}); to change the rules for all time, set them from {first}. Nothing changed"
    )]
    BeforeFirstVersion {
        /// The date given.
        from: NaiveDate,
        /// The first version's `effective_from`.
        first: NaiveDate,
    },
    /// The change would alter a payroll month that is closed (CONTRACT §4.7).
    #[error(
        "effective_from {from}: payroll month {month} of tenant {tenant} is closed and this change would alter it; nothing changed"
    )]
    MonthClosed {
        /// The tenant.
        tenant: TenantId,
        /// The date given.
        from: NaiveDate,
        /// The closed month (`YYYY-MM`).
        month: String,
    },
    /// A stored version cannot be read as rules (edited by hand?).
    #[error(
        "stored rules version {version} of tenant {tenant} is not valid: {error}; record a corrected version with `punchctl rules set`"
    )]
    Stored {
        /// The tenant.
        tenant: String,
        /// The version number.
        version: i64,
        /// What is wrong.
        error: RuleError,
    },
    /// Postgres refused or failed a query.
    #[error(
        "Postgres query failed: {0}; is the server up (`scripts/stack status`) and the schema migrated (`punchctl db migrate`)?"
    )]
    Db(#[from] tokio_postgres::Error),
}

/// A tenant's rules as the engine uses them, with the stored number of each version (a day
/// record stores the version it was computed with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRulebook {
    rulebook: Rulebook,
    /// Parallel to `rulebook.versions()`; 0 for the defaults of a tenant without rows.
    numbers: Vec<i64>,
}

impl StoredRulebook {
    /// Every rule at its default, as version 0 (a tenant without stored rules).
    pub fn defaults() -> Self {
        Self {
            rulebook: Rulebook::defaults(),
            numbers: vec![0],
        }
    }

    /// From the versions in force and their numbers (any order).
    fn build(mut versions: Vec<(i64, RuleVersion)>) -> Result<Self, RuleError> {
        if versions.is_empty() {
            return Ok(Self::defaults());
        }
        // Rulebook::new orders by effective_from; so must the numbers.
        versions.sort_by_key(|(_, v)| v.effective_from);
        let numbers = versions.iter().map(|(n, _)| *n).collect();
        let rulebook = Rulebook::new(
            versions
                .into_iter()
                .enumerate()
                .map(|(i, (_, v))| (i, v))
                .collect(),
        )?;
        Ok(Self { rulebook, numbers })
    }

    /// The rules.
    pub fn rulebook(&self) -> &Rulebook {
        &self.rulebook
    }

    /// The stored number of each version of [`Rulebook::versions`], in the same order.
    pub fn numbers(&self) -> &[i64] {
        &self.numbers
    }

    /// The number of the version in force on a work date (what its day record stores).
    pub fn version_on(&self, date: NaiveDate) -> i64 {
        self.numbers[self.rulebook.index_on(date)]
    }

    /// The number of the version in force at an instant (Unix seconds).
    pub fn version_at(&self, at: i64) -> i64 {
        self.numbers[self.rulebook.index_at(at)]
    }
}

/// One stored version with when, by whom and why it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// Its number among the tenant's versions.
    pub version: i64,
    /// The rules.
    pub rules: RuleVersion,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The database role that recorded it.
    pub recorded_by: String,
    /// Why.
    pub reason: String,
    /// The later version recorded for the same `effective_from`, if any.
    pub superseded_by: Option<i64>,
}

/// A tenant's recorded versions, in `effective_from` order, then by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRules {
    /// The tenant.
    pub tenant: TenantId,
    /// Every recorded version, superseded ones included.
    pub versions: Vec<StoredVersion>,
}

impl TenantRules {
    /// The versions in force (not superseded), in `effective_from` order.
    pub fn in_force(&self) -> impl Iterator<Item = &StoredVersion> {
        self.versions.iter().filter(|v| v.superseded_by.is_none())
    }

    /// The rules the engine uses.
    pub fn rulebook(&self) -> Result<StoredRulebook, RulesError> {
        StoredRulebook::build(
            self.in_force()
                .map(|v| (v.version, v.rules.clone()))
                .collect(),
        )
        .map_err(|error| RulesError::Stored {
            tenant: self.tenant.to_string(),
            version: 0,
            error,
        })
    }
}

/// One rule a change set, as an administrator writes values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDifference {
    /// The rule.
    pub key: String,
    /// Its value in the version that was in force on the date.
    pub before: String,
    /// Its value from the date on.
    pub after: String,
}

/// A rules version recorded by [`set_rules`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesRecorded {
    /// The new version's number.
    pub version: i64,
    /// Its `effective_from`.
    pub effective_from: NaiveDate,
    /// The version it supersedes (one recorded earlier for the same `effective_from`).
    pub supersedes: Option<i64>,
    /// The rules that changed compared with the version in force on the date before.
    pub changes: Vec<RuleDifference>,
    /// The first work date whose figures may change: the attendance consumer recomputes from
    /// there (the day before `effective_from` as a rule, since a version starts at local
    /// midnight and the early hours belong to the previous work date).
    pub recompute_from: NaiveDate,
    /// The recompute request written with it.
    pub request_id: i64,
}

/// What [`set_rules`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesSet {
    /// A new version was recorded, with its recompute request.
    Recorded(RulesRecorded),
    /// The rules in force on the date already have these values; nothing was written.
    Unchanged {
        /// The version in force on the date.
        version: i64,
        /// Its `effective_from`.
        effective_from: NaiveDate,
    },
}

/// The rules of many tenants in one query, as the attendance consumer and `rebuild` load them;
/// a tenant without stored rules (or unknown) gets every default as version 0.
pub async fn rulebooks(
    client: &impl GenericClient,
    tenant_ids: &[&str],
) -> Result<HashMap<String, StoredRulebook>, RulesError> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (tenant_id, effective_from) tenant_id, version, effective_from, rules
             FROM tenant_rules WHERE tenant_id = ANY($1)
             ORDER BY tenant_id, effective_from, version DESC",
            &[&tenant_ids],
        )
        .await?;
    let mut versions: HashMap<String, Vec<(i64, RuleVersion)>> = HashMap::new();
    for row in rows {
        let tenant: String = row.get(0);
        let version: i64 = row.get(1);
        let rules = read_version(&tenant, version, row.get(2), row.get(3))?;
        versions.entry(tenant).or_default().push((version, rules));
    }
    let mut books = HashMap::new();
    for tenant in tenant_ids {
        let book = match versions.remove(*tenant) {
            Some(list) => StoredRulebook::build(list).map_err(|error| RulesError::Stored {
                tenant: (*tenant).to_owned(),
                version: 0,
                error,
            })?,
            None => StoredRulebook::defaults(),
        };
        books.insert((*tenant).to_owned(), book);
    }
    Ok(books)
}

/// Reads a stored row's rules (`effective_from` is its column, not a key of `rules`).
fn read_version(
    tenant: &str,
    version: i64,
    effective_from: NaiveDate,
    rules: Value,
) -> Result<RuleVersion, RulesError> {
    let stored = |error| RulesError::Stored {
        tenant: tenant.to_owned(),
        version,
        error,
    };
    let Value::Object(mut object) = rules else {
        return Err(stored(RuleError {
            version: 0,
            key: "rules".into(),
            message: "expected an object".into(),
        }));
    };
    object.insert(
        "effective_from".into(),
        Value::from(effective_from.format("%Y-%m-%d").to_string()),
    );
    RuleVersion::from_json(0, &object).map_err(stored)
}

/// A tenant's recorded versions (superseded ones included), for `punchctl rules show`.
pub async fn show_rules(
    client: &impl GenericClient,
    tenant: &TenantId,
) -> Result<TenantRules, RulesError> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM tenants WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )
        .await?;
    if exists.is_none() {
        return Err(RulesError::TenantNotFound(tenant.clone()));
    }
    load(client, tenant).await
}

async fn load(client: &impl GenericClient, tenant: &TenantId) -> Result<TenantRules, RulesError> {
    let rows = client
        .query(
            "SELECT version, effective_from, rules, recorded_at, recorded_by, reason
             FROM tenant_rules WHERE tenant_id = $1 ORDER BY effective_from, version",
            &[&tenant.as_str()],
        )
        .await?;
    let mut versions: Vec<StoredVersion> = Vec::with_capacity(rows.len());
    for row in rows {
        let version: i64 = row.get(0);
        let rules = read_version(tenant.as_str(), version, row.get(1), row.get(2))?;
        if let Some(previous) = versions.last_mut()
            && previous.rules.effective_from == rules.effective_from
        {
            previous.superseded_by = Some(version);
        }
        versions.push(StoredVersion {
            version,
            rules,
            recorded_at: row.get(3),
            recorded_by: row.get(4),
            reason: row.get(5),
            superseded_by: None,
        });
    }
    Ok(TenantRules {
        tenant: tenant.clone(),
        versions,
    })
}

/// Records a new rules version of `tenant` from `from`: the version in force on that date (the
/// first one when none is yet) with `changes` applied, checked as a whole rulebook, with its
/// recompute request and notification, in one transaction. Setting what is already in force
/// writes nothing ([`RulesSet::Unchanged`]).
pub async fn set_rules(
    client: &mut impl GenericClient,
    tenant: &TenantId,
    from: NaiveDate,
    changes: &[RuleChange],
    reason: &str,
) -> Result<RulesSet, RulesError> {
    let tx = client.transaction().await?;
    // Serialises version numbering per tenant; a key-share lock would let two numbers clash.
    let locked = tx
        .query_opt(
            "SELECT 1 FROM tenants WHERE tenant_id = $1 FOR NO KEY UPDATE",
            &[&tenant.as_str()],
        )
        .await?;
    if locked.is_none() {
        return Err(RulesError::TenantNotFound(tenant.clone()));
    }
    let history = load(&tx, tenant).await?;
    let in_force: Vec<(i64, RuleVersion)> = history
        .in_force()
        .map(|v| (v.version, v.rules.clone()))
        .collect();
    let plan = match plan(&in_force, from, changes)? {
        Planned::Unchanged(version, effective_from) => {
            return Ok(RulesSet::Unchanged {
                version,
                effective_from,
            });
        }
        Planned::Record(plan) => plan,
    };
    refuse_closed_months(&tx, tenant, plan.recompute_from).await?;
    let recorded = record(&tx, tenant, plan, reason).await?;
    tx.commit().await?;
    Ok(RulesSet::Recorded(recorded))
}

/// Where a rules change is checked against closed payroll months (CONTRACT §4.7): a change
/// that would alter a closed month must be refused here, or go through the closing's
/// adjustments once they exist. No month can be closed yet, so every change passes.
pub async fn refuse_closed_months(
    _tx: &impl GenericClient,
    _tenant: &TenantId,
    _recompute_from: NaiveDate,
) -> Result<(), RulesError> {
    Ok(())
}

async fn record(
    tx: &impl GenericClient,
    tenant: &TenantId,
    plan: Plan,
    reason: &str,
) -> Result<RulesRecorded, RulesError> {
    let mut rules = plan.version.to_json();
    rules.remove("effective_from");
    let version: i64 = tx
        .query_one(
            "INSERT INTO tenant_rules (tenant_id, version, effective_from, rules, reason)
             SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4
             FROM tenant_rules WHERE tenant_id = $1
             RETURNING version",
            &[
                &tenant.as_str(),
                &plan.version.effective_from,
                &Value::Object(rules),
                &reason,
            ],
        )
        .await?
        .get(0);
    let request_id: i64 = tx
        .query_one(
            "INSERT INTO attendance_recompute_requests (tenant_id, from_date, rules_version)
             VALUES ($1, $2, $3) RETURNING request_id",
            &[&tenant.as_str(), &plan.recompute_from, &version],
        )
        .await?
        .get(0);
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&RECOMPUTE_CHANNEL, &tenant.as_str()],
    )
    .await?;
    tracing::info!(tenant = %tenant, version, effective_from = %plan.version.effective_from,
        recompute_from = %plan.recompute_from, "recorded a rules version");
    Ok(RulesRecorded {
        version,
        effective_from: plan.version.effective_from,
        supersedes: plan.supersedes,
        changes: plan.changes,
        recompute_from: plan.recompute_from,
        request_id,
    })
}

/// A version to record, worked out from the versions in force.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    version: RuleVersion,
    supersedes: Option<i64>,
    changes: Vec<RuleDifference>,
    recompute_from: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Planned {
    /// Already so: the number and start of the version in force on the date.
    Unchanged(i64, NaiveDate),
    Record(Plan),
}

/// The new version from `from` on and what it changes, checked as a whole rulebook; pure.
fn plan(
    in_force: &[(i64, RuleVersion)],
    from: NaiveDate,
    changes: &[RuleChange],
) -> Result<Planned, RulesError> {
    for (i, change) in changes.iter().enumerate() {
        if change.key == "effective_from" {
            // RuleChange::new refuses it; a change built field by field must not move the date.
            return Err(RulesError::Rule(RuleError {
                version: 0,
                key: change.key.clone(),
                message: "is the date the version starts, not a rule".into(),
            }));
        }
        if changes[..i].iter().any(|c| c.key == change.key) {
            return Err(RulesError::Repeated(change.key.clone()));
        }
    }
    let before = StoredRulebook::build(in_force.to_vec()).map_err(RulesError::Rule)?;
    let first = before.rulebook().versions()[0].effective_from;
    if from < first && !in_force.is_empty() {
        return Err(RulesError::BeforeFirstVersion { from, first });
    }
    let index = before.rulebook().index_on(from);
    let base = &before.rulebook().versions()[index];
    let mut object = base.to_json();
    object.insert(
        "effective_from".into(),
        Value::from(from.format("%Y-%m-%d").to_string()),
    );
    let mut differences = Vec::new();
    for change in changes {
        let old = object.insert(change.key.clone(), change.value.clone());
        let old = old.as_ref().map(value_text).unwrap_or_default();
        if old != change.value_text() {
            differences.push(RuleDifference {
                key: change.key.clone(),
                before: old,
                after: change.value_text(),
            });
        }
    }
    if differences.is_empty() {
        return Ok(Planned::Unchanged(
            before.numbers()[index],
            base.effective_from,
        ));
    }
    let version = RuleVersion::from_json(0, &object).map_err(RulesError::Rule)?;
    let superseded = in_force.iter().find(|(_, v)| v.effective_from == from);
    let mut after: Vec<(i64, RuleVersion)> = in_force
        .iter()
        .filter(|(_, v)| v.effective_from != from)
        .cloned()
        .collect();
    after.push((0, version.clone()));
    let after = StoredRulebook::build(after).map_err(RulesError::Rule)?;
    let recompute_from = first_changed_date(
        before.rulebook(),
        after.rulebook(),
        &version,
        superseded.map(|(_, v)| v),
    );
    Ok(Planned::Record(Plan {
        version,
        supersedes: superseded.map(|(n, _)| *n),
        changes: differences,
        recompute_from,
    }))
}

/// The first work date whose figures a new version can change. Punches from the instant it (or
/// the version it supersedes) starts take other rules, beginning with their work date: under
/// the old rules they sat on one date, under the new ones possibly on another (a version starts
/// at local midnight, before the day change, and may change the zone or the day change).
fn first_changed_date(
    before: &Rulebook,
    after: &Rulebook,
    new: &RuleVersion,
    superseded: Option<&RuleVersion>,
) -> NaiveDate {
    let start = superseded.map_or(new.starts_at(), |old| old.starts_at().min(new.starts_at()));
    let old = work_date(start, before.at_instant(start));
    let new_date = work_date(start, after.at_instant(start));
    old.min(new_date).min(new.effective_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn change(s: &str) -> RuleChange {
        s.parse().expect("valid change")
    }

    fn first() -> Vec<(i64, RuleVersion)> {
        vec![(1, RuleVersion::defaults(date("2000-01-01")))]
    }

    fn recorded(planned: Planned) -> Plan {
        match planned {
            Planned::Record(plan) => plan,
            Planned::Unchanged(..) => panic!("expected a version to record"),
        }
    }

    #[test]
    fn a_change_takes_the_version_in_force_and_recomputes_from_the_previous_work_date() {
        let plan = recorded(
            plan(
                &first(),
                date("2026-06-01"),
                &[change("daily_limit_minutes=420")],
            )
            .expect("valid"),
        );
        assert_eq!(plan.version.daily_limit_minutes, 420);
        assert_eq!(plan.version.effective_from, date("2026-06-01"));
        assert_eq!(plan.supersedes, None);
        assert_eq!(
            plan.changes,
            vec![RuleDifference {
                key: "daily_limit_minutes".into(),
                before: "480".into(),
                after: "420".into()
            }]
        );
        // 00:00 on June 1st is before the 05:00 day change: work date May 31st.
        assert_eq!(plan.recompute_from, date("2026-05-31"));
    }

    #[test]
    fn setting_what_is_in_force_is_unchanged_and_a_same_date_change_supersedes() {
        let mut versions = first();
        let mut june = RuleVersion::defaults(date("2026-06-01"));
        june.daily_limit_minutes = 420;
        versions.push((2, june));
        assert_eq!(
            plan(
                &versions,
                date("2026-07-01"),
                &[change("daily_limit_minutes=420")]
            )
            .expect("valid"),
            Planned::Unchanged(2, date("2026-06-01"))
        );
        let plan = recorded(
            plan(
                &versions,
                date("2026-06-01"),
                &[change("night_start=23:00")],
            )
            .expect("valid"),
        );
        assert_eq!(plan.supersedes, Some(2));
        assert_eq!(plan.version.daily_limit_minutes, 420, "kept from version 2");
    }

    #[test]
    fn bad_changes_name_the_rule_at_fault() {
        let key = |result: Result<Planned, RulesError>| match result {
            Err(RulesError::Rule(e)) => e.key,
            Err(RulesError::Repeated(key)) => key,
            other => panic!("unexpected {other:?}"),
        };
        let mut versions = first();
        versions.push((2, RuleVersion::defaults(date("2026-06-01"))));
        assert_eq!(
            key(plan(
                &versions,
                date("2026-07-01"),
                &[change("closing_day=20")]
            )),
            "closing_day"
        );
        assert_eq!(
            key(plan(
                &first(),
                date("2026-07-01"),
                &[change("night_end=22:00")]
            )),
            "night_end"
        );
        assert_eq!(
            key(plan(
                &first(),
                date("2026-07-01"),
                &[change("week_start=monday"), change("week_start=friday")]
            )),
            "week_start"
        );
        let moved = RuleChange {
            key: "effective_from".into(),
            value: Value::from("2027-01-01"),
        };
        assert_eq!(
            key(plan(&first(), date("2026-07-01"), &[moved])),
            "effective_from"
        );
        assert!(matches!(
            plan(&first(), date("1999-12-31"), &[change("week_start=monday")]),
            Err(RulesError::BeforeFirstVersion { .. })
        ));
        // One version only: closing_day may change (it is then the same in every version).
        assert!(plan(&first(), date("2000-01-01"), &[change("closing_day=20")]).is_ok());
    }

    #[test]
    fn a_zone_change_recomputes_from_the_earliest_date_either_zone_gives() {
        // Midnight in Kiritimati (UTC+14) is the previous morning in Niue (UTC-11): punches
        // from then on move from the old work date two days back.
        let mut niue = RuleVersion::defaults(date("2000-01-01"));
        niue.time_zone = chrono_tz::Pacific::Niue;
        let plan = recorded(
            plan(
                &[(1, niue)],
                date("2026-06-10"),
                &[change("time_zone=Pacific/Kiritimati")],
            )
            .expect("valid"),
        );
        assert_eq!(plan.recompute_from, date("2026-06-08"));
    }

    #[test]
    fn stored_numbers_follow_effective_dates_whatever_order_they_come_in() {
        let mut june = RuleVersion::defaults(date("2026-06-01"));
        june.daily_limit_minutes = 420;
        let book = StoredRulebook::build(vec![
            (3, june),
            (1, RuleVersion::defaults(date("2000-01-01"))),
        ])
        .expect("valid");
        assert_eq!(book.numbers(), &[1, 3]);
        assert_eq!(book.version_on(date("2026-05-31")), 1);
        assert_eq!(book.version_on(date("2026-06-01")), 3);
        assert_eq!(StoredRulebook::defaults().version_on(date("2026-06-01")), 0);
    }
}
