//! Tenants and their groups: add (idempotent, conflicts named), list, and the master-data
//! version every change bumps (CONTRACT §3, §4).
//!
//! Writes are idempotent and never silent: adding what exists with the same values reports
//! [`Added::Unchanged`] and writes nothing (so `master_data_version` is not bumped and acceptors
//! do not reload for nothing); adding with different values is refused with the differing
//! fields named.

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use dakoku_schemas::{DeviceId, GroupId, TenantId};
use tokio_postgres::{GenericClient, Row};

use super::outcome::{Added, Difference};

/// The contract's default tenant time zone (CONTRACT §4).
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Tokyo;
/// The contract's default day-change time, `05:00` (CONTRACT §4).
pub const DEFAULT_DAY_CHANGE: NaiveTime = match NaiveTime::from_hms_opt(5, 0, 0) {
    Some(time) => time,
    None => panic!("05:00 is a valid time"),
};
/// Longest tenant display name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Errors of the tenant and device verbs; each says what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The time zone is not an IANA zone name known to this build. Use a name such as
    /// `Asia/Tokyo`; `suggestion` is set when only the letter case was wrong.
    #[error(
        "unknown time zone {value:?}{}: use an IANA zone name such as Asia/Tokyo, Europe/Berlin or America/New_York",
        suggestion.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default()
    )]
    InvalidTimeZone {
        /// What was given.
        value: String,
        /// The zone with the same name in another letter case, if any.
        suggestion: Option<&'static str>,
    },
    /// The day-change time is not `HH:MM` (24-hour clock). Give e.g. `05:00`.
    #[error("day change {0:?} is not a time HH:MM between 00:00 and 23:59, e.g. 05:00")]
    InvalidDayChange(String),
    /// The tenant's display name is empty or too long. Give a short human name.
    #[error("tenant name must be 1 to {MAX_NAME_CHARS} characters and not blank")]
    InvalidName,
    /// The tenant exists with other values; nothing was changed. Re-run with the stored values
    /// (`punchctl tenant list`) if the existing tenant is the one meant; punchctl never changes a
    /// tenant as a side effect of `add`.
    #[error(
        "tenant {tenant} already exists with different values, nothing changed: {}; re-run with the stored values (see `punchctl tenant list`) or pick another tenant id",
        differences.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    TenantConflict {
        /// The tenant.
        tenant: TenantId,
        /// The fields whose stored value differs from the given one.
        differences: Vec<Difference>,
    },
    /// The tenant does not exist. Add it first with `punchctl tenant add`.
    #[error(
        "unknown tenant {0}: add it first with `punchctl tenant add --tenant {0} --name <name> --group <group>`"
    )]
    TenantNotFound(TenantId),
    /// The device was revoked; revoked device ids are never reactivated. Register the recorder
    /// under a new device id.
    #[error(
        "device {tenant}/{device} was revoked at {}; a revoked device id stays revoked: register the recorder under a new device id",
        revoked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    DeviceRevoked {
        /// The tenant.
        tenant: TenantId,
        /// The device.
        device: DeviceId,
        /// When it was revoked.
        revoked_at: DateTime<Utc>,
    },
    /// The device is not registered for that tenant. Check the ids with `punchctl device list`.
    #[error(
        "unknown device {tenant}/{device}: see `punchctl device list --tenant {tenant}` for the registered ones"
    )]
    DeviceNotFound {
        /// The tenant.
        tenant: TenantId,
        /// The device.
        device: DeviceId,
    },
    /// Postgres refused or failed a query. Check that the server is up (`scripts/stack status`)
    /// and the schema migrated (`punchctl db migrate`).
    #[error(
        "Postgres query failed: {0}; is the server up (`scripts/stack status`) and the schema migrated (`punchctl db migrate`)?"
    )]
    Db(#[from] tokio_postgres::Error),
}

/// Parses an IANA time zone name (`Asia/Tokyo`), suggesting the right case when only that is off.
pub fn parse_time_zone(value: &str) -> Result<Tz, MasterError> {
    value
        .parse::<Tz>()
        .map_err(|_| MasterError::InvalidTimeZone {
            value: value.to_owned(),
            suggestion: chrono_tz::TZ_VARIANTS
                .iter()
                .find(|tz| tz.name().eq_ignore_ascii_case(value.trim()))
                .map(|tz| tz.name()),
        })
}

/// Parses a day-change time written exactly `HH:MM` (24-hour clock, `00:00` to `23:59`).
pub fn parse_day_change(value: &str) -> Result<NaiveTime, MasterError> {
    let invalid = || MasterError::InvalidDayChange(value.to_owned());
    let bytes = value.as_bytes();
    let digits_ok = bytes.len() == 5
        && bytes[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| bytes[i].is_ascii_digit());
    if !digits_ok {
        return Err(invalid());
    }
    let hour: u32 = value[..2].parse().map_err(|_| invalid())?;
    let minute: u32 = value[3..].parse().map_err(|_| invalid())?;
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(invalid)
}

/// A tenant as `tenant add` creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    /// The tenant id.
    pub tenant: TenantId,
    /// Display name (1 to [`MAX_NAME_CHARS`] characters).
    pub name: String,
    /// The tenant group, created when missing.
    pub group: GroupId,
    /// The time zone of its work dates.
    pub time_zone: Tz,
    /// Local time at which a work date starts.
    pub day_change: NaiveTime,
}

impl NewTenant {
    /// A tenant with the contract's defaults: `Asia/Tokyo` and day change `05:00`.
    pub fn with_defaults(tenant: TenantId, name: impl Into<String>, group: GroupId) -> Self {
        Self {
            tenant,
            name: name.into(),
            group,
            time_zone: DEFAULT_TIME_ZONE,
            day_change: DEFAULT_DAY_CHANGE,
        }
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant id.
    pub tenant: TenantId,
    /// Display name.
    pub name: String,
    /// The tenant group (its topics are `punches.*.<group>`).
    pub group: GroupId,
    /// IANA time zone name as stored.
    pub time_zone: String,
    /// Local time at which a work date starts.
    pub day_change: NaiveTime,
    /// When the tenant was added.
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    const COLUMNS: &'static str =
        "tenant_id, name, group_id, time_zone, day_change_time, created_at";

    fn from_row(row: &Row) -> Self {
        Self {
            // The table's CHECK constraints enforce the same rules as the id types.
            tenant: TenantId::try_from(row.get::<_, String>(0))
                .expect("tenants.tenant_id CHECK matches TenantId"),
            name: row.get(1),
            group: GroupId::try_from(row.get::<_, String>(2))
                .expect("tenant_groups.group_id CHECK matches GroupId"),
            time_zone: row.get(3),
            day_change: row.get(4),
            created_at: row.get(5),
        }
    }

    /// The fields where this stored tenant differs from `given`.
    pub fn differences(&self, given: &NewTenant) -> Vec<Difference> {
        Difference::between([
            ("name", self.name.clone(), given.name.clone()),
            ("group", self.group.to_string(), given.group.to_string()),
            (
                "time-zone",
                self.time_zone.clone(),
                given.time_zone.name().to_owned(),
            ),
            (
                "day-change",
                self.day_change.format("%H:%M").to_string(),
                given.day_change.format("%H:%M").to_string(),
            ),
        ])
    }
}

/// Result of [`add_tenant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantAdded {
    /// Whether the tenant was created or was already there with the same values.
    pub outcome: Added,
    /// Whether its group was created by this call.
    pub group_created: bool,
    /// The tenant as stored now.
    pub tenant: Tenant,
}

/// The tenant as stored, or `None` when there is no such tenant.
pub async fn find_tenant(
    client: &impl GenericClient,
    tenant: &TenantId,
) -> Result<Option<Tenant>, MasterError> {
    let sql = format!(
        "SELECT {} FROM tenants WHERE tenant_id = $1",
        Tenant::COLUMNS
    );
    Ok(client
        .query_opt(&sql, &[&tenant.as_str()])
        .await?
        .map(|row| Tenant::from_row(&row)))
}

fn same_or_conflict(stored: Tenant, given: &NewTenant) -> Result<TenantAdded, MasterError> {
    let differences = stored.differences(given);
    if differences.is_empty() {
        Ok(TenantAdded {
            outcome: Added::Unchanged,
            group_created: false,
            tenant: stored,
        })
    } else {
        Err(MasterError::TenantConflict {
            tenant: given.tenant.clone(),
            differences,
        })
    }
}

/// Adds a tenant, creating its group when missing, in one transaction.
///
/// Idempotent: the same tenant again is [`Added::Unchanged`] and writes nothing; a tenant that
/// exists with other values is refused with [`MasterError::TenantConflict`].
pub async fn add_tenant(
    client: &mut impl GenericClient,
    new: &NewTenant,
) -> Result<TenantAdded, MasterError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(MasterError::InvalidName);
    }
    let new = &NewTenant {
        name: name.to_owned(),
        ..new.clone()
    };
    let tx = client.transaction().await?;
    if let Some(stored) = find_tenant(&tx, &new.tenant).await? {
        // Dropping the transaction rolls it back; nothing was written.
        return same_or_conflict(stored, new);
    }
    // Only write what is missing: the version triggers fire per statement, even on no-ops.
    let group_exists = tx
        .query_opt(
            "SELECT 1 FROM tenant_groups WHERE group_id = $1",
            &[&new.group.as_str()],
        )
        .await?
        .is_some();
    let group_created = !group_exists
        && tx
            .execute(
                "INSERT INTO tenant_groups (group_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&new.group.as_str()],
            )
            .await?
            == 1;
    let sql = format!(
        "INSERT INTO tenants (tenant_id, name, group_id, time_zone, day_change_time)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id) DO NOTHING
         RETURNING {}",
        Tenant::COLUMNS
    );
    let inserted = tx
        .query_opt(
            &sql,
            &[
                &new.tenant.as_str(),
                &new.name,
                &new.group.as_str(),
                &new.time_zone.name(),
                &new.day_change,
            ],
        )
        .await?;
    match inserted {
        Some(row) => {
            tx.commit().await?;
            Ok(TenantAdded {
                outcome: Added::Created,
                group_created,
                tenant: Tenant::from_row(&row),
            })
        }
        None => {
            // A concurrent add won the race and has committed (ON CONFLICT waited for it);
            // compare with what it stored and roll our group insert back.
            let stored = find_tenant(&tx, &new.tenant)
                .await?
                .ok_or_else(|| MasterError::TenantNotFound(new.tenant.clone()))?;
            same_or_conflict(stored, new)
        }
    }
}

/// Every tenant, or those of `group`, sorted by group then tenant id.
pub async fn list_tenants(
    client: &impl GenericClient,
    group: Option<&GroupId>,
) -> Result<Vec<Tenant>, MasterError> {
    let sql = format!(
        "SELECT {} FROM tenants WHERE $1::text IS NULL OR group_id = $1
         ORDER BY group_id, tenant_id",
        Tenant::COLUMNS
    );
    let group = group.map(GroupId::as_str);
    Ok(client
        .query(&sql, &[&group])
        .await?
        .iter()
        .map(Tenant::from_row)
        .collect())
}

/// The current master-data version (bumped by every change; snapshots record it).
pub async fn master_data_version(client: &impl GenericClient) -> Result<i64, MasterError> {
    Ok(client
        .query_one("SELECT version FROM master_data_version", &[])
        .await?
        .get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_are_iana_names_and_case_slips_get_a_suggestion() {
        assert_eq!(
            parse_time_zone("Europe/Berlin").ok(),
            Some(chrono_tz::Europe::Berlin)
        );
        let error = parse_time_zone("asia/tokyo").expect_err("wrong case");
        assert!(
            error.to_string().contains("did you mean Asia/Tokyo?"),
            "{error}"
        );
        let error = parse_time_zone("Tokyo").expect_err("not a zone");
        assert!(
            error.to_string().contains("Asia/Tokyo, Europe/Berlin"),
            "{error}"
        );
        assert!(!error.to_string().contains("did you mean"), "{error}");
    }

    #[test]
    fn day_change_is_strict_hh_mm() {
        assert_eq!(
            parse_day_change("05:00").ok(),
            NaiveTime::from_hms_opt(5, 0, 0)
        );
        assert_eq!(
            parse_day_change("23:59").ok(),
            NaiveTime::from_hms_opt(23, 59, 0)
        );
        for bad in [
            "5:00", "24:00", "05:60", "0500", "05:00:00", "", "ab:cd", "+5:00",
        ] {
            assert!(parse_day_change(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn differences_name_each_changed_field() {
        let given = NewTenant::with_defaults(
            "acme".parse().expect("tenant"),
            "ACME",
            "g1".parse().expect("group"),
        );
        let stored = Tenant {
            tenant: given.tenant.clone(),
            name: "ACME".into(),
            group: "g2".parse().expect("group"),
            time_zone: "Asia/Tokyo".into(),
            day_change: NaiveTime::from_hms_opt(4, 0, 0).expect("time"),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let fields: Vec<&str> = stored.differences(&given).iter().map(|d| d.field).collect();
        assert_eq!(fields, ["group", "day-change"]);
    }
}
