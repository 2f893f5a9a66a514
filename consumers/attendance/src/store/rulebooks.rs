//! Each tenant's work rules as the v2 engine reads them: the stored, effective-dated versions
//! ([`StoredRulebook`]: the engine's `Rulebook` and the number of each version, which a day
//! record names).

use std::collections::HashMap;

use chrono::NaiveDate;
use dakoku_rules::v2::calendar::work_date;
pub(crate) use dakoku_store::master::rules::StoredRulebook as TenantRules;
use tokio_postgres::Transaction;

use super::StoreError;

/// The rules of `tenant_ids` (a tenant without stored rules, or unknown, gets the defaults).
pub(super) async fn load(
    tx: &Transaction<'_>,
    tenant_ids: &[&str],
) -> Result<HashMap<String, TenantRules>, StoreError> {
    Ok(dakoku_store::master::rules::rulebooks(tx, tenant_ids).await?)
}

/// The own work date of a punch at `at_millis` under `rules`.
pub(super) fn own_date(rules: &TenantRules, at_millis: i64) -> NaiveDate {
    let at = at_millis.div_euclid(1000);
    work_date(at, rules.rulebook().at_instant(at))
}
