//! Reads the history tables of migration V8 (`employee_ranges`, `licence_grants`,
//! `tenant_licences`) into the pure types of [`history`](super::history), for one tenant or all.
//! The seat accounting here and licence-check's snapshot read through these functions.

use std::collections::HashMap;

use tokio_postgres::GenericClient;

use super::history::{ActiveRange, Grant, Grants, LicenceRow, Licences};

/// `(tenant, employee)`.
pub type EmployeeKey = (String, String);

/// A `timestamptz` column as ms since the epoch: `-infinity` (and NULL) is an open bound
/// (`NULL`), `infinity` a bound nothing reaches.
fn millis(column: &str, open_is_max: bool) -> String {
    let (neg, pos) = if open_is_max {
        ("-9223372036854775808", "NULL")
    } else {
        ("NULL", "9223372036854775807")
    };
    format!(
        "CASE WHEN {column} IS NULL THEN NULL WHEN {column} = '-infinity' THEN {neg}
              WHEN {column} = 'infinity' THEN {pos}
              ELSE floor(extract(epoch FROM {column}) * 1000)::bigint END"
    )
}

fn tenant_filter(tenant: Option<&str>) -> &'static str {
    if tenant.is_some() {
        "WHERE tenant_id = $1"
    } else {
        "WHERE $1::text IS NULL"
    }
}

/// Each employee's range as recorded last.
pub async fn ranges(
    client: &impl GenericClient,
    tenant: Option<&str>,
) -> Result<HashMap<EmployeeKey, ActiveRange>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT DISTINCT ON (tenant_id, employee_id) tenant_id, employee_id, {}, {}
         FROM employee_ranges {} ORDER BY tenant_id, employee_id, seq DESC",
        millis("active_from", false),
        millis("active_until", true),
        tenant_filter(tenant)
    );
    let rows = client.query(&sql, &[&tenant]).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let range = ActiveRange {
                from: row.get(2),
                until: row.get(3),
            };
            ((row.get(0), row.get(1)), range)
        })
        .collect())
}

/// Each employee's grants in recorded order.
pub async fn grants(
    client: &impl GenericClient,
    tenant: Option<&str>,
) -> Result<HashMap<EmployeeKey, Grants>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT tenant_id, employee_id, granted, {}, {}
         FROM licence_grants {} ORDER BY seq",
        millis("valid_from", false),
        millis("valid_until", true),
        tenant_filter(tenant)
    );
    let mut out: HashMap<EmployeeKey, Grants> = HashMap::new();
    for row in client.query(&sql, &[&tenant]).await? {
        let grant = Grant {
            granted: row.get(2),
            range: ActiveRange {
                from: row.get(3),
                until: row.get(4),
            },
        };
        out.entry((row.get(0), row.get(1)))
            .or_default()
            .0
            .push(grant);
    }
    Ok(out)
}

/// Each tenant's licence rows in recorded order.
pub async fn licences(
    client: &impl GenericClient,
    tenant: Option<&str>,
) -> Result<HashMap<String, Licences>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT tenant_id, seats, valid_from, valid_until FROM tenant_licences {} ORDER BY seq",
        tenant_filter(tenant)
    );
    let mut out: HashMap<String, Licences> = HashMap::new();
    for row in client.query(&sql, &[&tenant]).await? {
        let seats: i32 = row.get(1);
        out.entry(row.get(0)).or_default().0.push(LicenceRow {
            seats: u32::try_from(seats).unwrap_or(0),
            valid_from: row.get(2),
            valid_until: row.get(3),
        });
    }
    Ok(out)
}
