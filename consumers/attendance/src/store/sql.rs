//! The store's SQL: every statement of the batch transaction, prepared once per connection.
//! The days' statements are built from [`dakoku_rules::fields`], so a new figure needs no SQL
//! edit here.

use dakoku_rules::fields;
use dakoku_store::offsets;
use tokio_postgres::{Client, Statement};

use super::marker;

/// The prepared statements of one connection.
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) lock: Statement,
    pub(super) offsets: Statement,
    pub(super) tenants: Statement,
    pub(super) punches: Statement,
    pub(super) rejections: Statement,
    pub(super) insert_punches: Statement,
    pub(super) update_punches: Statement,
    pub(super) insert_conflicts: Statement,
    pub(super) upsert_rejections: Statement,
    pub(super) delete_rejections: Statement,
    pub(super) day_punches: Statement,
    pub(super) days: Statement,
    pub(super) upsert_days: Statement,
    pub(super) store_offsets: Statement,
    pub(super) mark: Statement,
    pub(super) unfinished: Statement,
}

/// The group's advisory lock (see the README, "Scaling past one instance per group") and the
/// batch's sequence number.
const SQL_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), \
     nextval('attendance_batch_seq')";
const SQL_TENANTS: &str = "SELECT tenant_id, time_zone, day_change_time FROM tenants \
     WHERE tenant_id = ANY($1)";
const SQL_PUNCHES: &str = "SELECT punch_id, tenant_id, employee_id, work_date, card_id, kind, \
     at, at_offset_minutes, withdrawn, verdict_master_data_version, verdict_checked_at, \
     (verdict_source_offset IS NULL AND master_data_version = verdict_master_data_version) \
     FROM punches WHERE punch_id = ANY($1)";
const SQL_REJECTIONS: &str = "SELECT punch_id, master_data_version, checked_at \
     FROM punch_rejections WHERE punch_id = ANY($1)";
const SQL_INSERT_PUNCHES: &str = "INSERT INTO punches (punch_id, tenant_id, group_id, device_id, \
     seq, card_id, employee_id, kind, at, at_offset_minutes, work_date, received_at, \
     master_data_version, source_topic, source_partition, source_offset, withdrawn, \
     verdict_master_data_version, verdict_checked_at, verdict_source_partition, \
     verdict_source_offset) \
     SELECT u.punch_id, u.tenant_id, $1, u.device_id, u.seq, u.card_id, u.employee_id, u.kind, \
     u.at, u.at_offset_minutes, u.work_date, u.received_at, u.mdv, $2, u.part, u.off, \
     u.withdrawn, u.vmdv, u.vchecked, u.vpart, u.voff \
     FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], \
     $9::text[], $10::timestamptz[], $11::int[], $12::date[], $13::timestamptz[], $14::bigint[], \
     $15::int[], $16::bigint[], $17::bool[], $18::bigint[], $19::timestamptz[], $20::int[], \
     $21::bigint[]) \
     AS u(punch_id, tenant_id, device_id, seq, card_id, employee_id, kind, at, \
     at_offset_minutes, work_date, received_at, mdv, part, off, withdrawn, vmdv, vchecked, \
     vpart, voff)";
const SQL_UPDATE_PUNCHES: &str = "UPDATE punches p SET withdrawn = u.withdrawn, \
     verdict_master_data_version = u.vmdv, verdict_checked_at = u.vchecked, \
     verdict_source_partition = u.part, verdict_source_offset = u.off \
     FROM UNNEST($1::uuid[], $2::bool[], $3::bigint[], $4::timestamptz[], $5::int[], \
     $6::bigint[]) AS u(punch_id, withdrawn, vmdv, vchecked, part, off) \
     WHERE p.punch_id = u.punch_id";
const SQL_INSERT_CONFLICTS: &str = "INSERT INTO punch_conflicts (punch_id, tenant_id, received, \
     source_topic, source_partition, source_offset) \
     SELECT u.punch_id, u.tenant_id, u.received, $1, u.part, u.off \
     FROM UNNEST($2::uuid[], $3::text[], $4::jsonb[], $5::int[], $6::bigint[]) \
     AS u(punch_id, tenant_id, received, part, off) \
     ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING";
const SQL_UPSERT_REJECTIONS: &str = "INSERT INTO punch_rejections (punch_id, tenant_id, reason, \
     master_data_version, checked_at, source_topic, source_partition, source_offset) \
     SELECT u.punch_id, u.tenant_id, u.reason, u.mdv, u.checked, $1, u.part, u.off \
     FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], \
     $7::int[], $8::bigint[]) AS u(punch_id, tenant_id, reason, mdv, checked, part, off) \
     ON CONFLICT (punch_id) DO UPDATE SET reason = EXCLUDED.reason, \
     master_data_version = EXCLUDED.master_data_version, checked_at = EXCLUDED.checked_at, \
     source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset";
const SQL_DELETE_REJECTIONS: &str = "DELETE FROM punch_rejections WHERE punch_id = ANY($1)";
const SQL_DAY_PUNCHES: &str = "SELECT p.tenant_id, p.employee_id, p.work_date, p.punch_id, \
     p.seq, p.kind, p.at \
     FROM UNNEST($1::text[], $2::text[], $3::date[]) AS k(tenant_id, employee_id, work_date) \
     JOIN punches p ON p.tenant_id = k.tenant_id AND p.employee_id = k.employee_id \
     AND p.work_date = k.work_date \
     WHERE NOT p.withdrawn";
const SQL_MARK: &str = "INSERT INTO attendance_publish_marks (consumer_group, published_batch_seq) \
     VALUES ($1, $2) ON CONFLICT (consumer_group) DO UPDATE SET published_batch_seq = \
     GREATEST(attendance_publish_marks.published_batch_seq, EXCLUDED.published_batch_seq), \
     updated_at = now()";
pub(super) const SQL_UNPUBLISHED: &str = "SELECT tenant_id, employee_id, work_date, first_in, last_out, \
     worked_minutes, break_minutes, night_minutes, overtime_minutes, punch_count, anomalies, \
     revision, computed_at, batch_seq FROM attendance_days \
     WHERE group_id = $1 AND batch_seq > COALESCE((SELECT published_batch_seq \
     FROM attendance_publish_marks WHERE consumer_group = $2), 0) \
     ORDER BY batch_seq";

/// The columns of a day's figures with table alias `alias`: `first_in, last_out, anomalies`,
/// then the counted figures in [`fields`] order (read back with
/// [`figures_of`](super::figures_of)).
pub fn figure_columns(alias: &str) -> String {
    let mut columns = vec![
        format!("{alias}.first_in"),
        format!("{alias}.last_out"),
        format!("{alias}.anomalies"),
    ];
    columns.extend(fields().iter().map(|f| format!("{alias}.{}", f.column)));
    columns.join(", ")
}

/// The stored rows of the given days: `tenant_id, employee_id, work_date, revision`, then
/// [`figure_columns`].
fn days() -> String {
    format!(
        "SELECT d.tenant_id, d.employee_id, d.work_date, d.revision, {} \
         FROM UNNEST($1::text[], $2::text[], $3::date[]) AS k(tenant_id, employee_id, work_date) \
         JOIN attendance_days d ON d.tenant_id = k.tenant_id AND d.employee_id = k.employee_id \
         AND d.work_date = k.work_date",
        figure_columns("d")
    )
}

/// The upsert of changed days: `$1` group, `$2` computed_at, `$3` batch_seq, then arrays of
/// tenant, employee, date, first_in, last_out, anomalies (comma-joined), revision, and one
/// `int[]` per counted figure in [`fields`] order.
fn upsert_days() -> String {
    let columns: Vec<&str> = fields().iter().map(|f| f.column).collect();
    let n = columns.len();
    let values: Vec<String> = (0..n).map(|i| format!("u.f{i}")).collect();
    let arrays: Vec<String> = (0..n).map(|i| format!("${}::int[]", 11 + i)).collect();
    let names: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
    let sets: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO attendance_days (tenant_id, employee_id, work_date, group_id, first_in, \
         last_out, anomalies, revision, computed_at, batch_seq, {columns}) \
         SELECT u.t, u.e, u.d, $1, u.fi, u.lo, string_to_array(u.a, ','), u.r, $2, $3, {values} \
         FROM UNNEST($4::text[], $5::text[], $6::date[], $7::timestamptz[], $8::timestamptz[], \
         $9::text[], $10::bigint[], {arrays}) AS u(t, e, d, fi, lo, a, r, {names}) \
         ON CONFLICT (tenant_id, employee_id, work_date) DO UPDATE SET \
         group_id = EXCLUDED.group_id, first_in = EXCLUDED.first_in, \
         last_out = EXCLUDED.last_out, anomalies = EXCLUDED.anomalies, {sets}, \
         revision = EXCLUDED.revision, computed_at = EXCLUDED.computed_at, \
         batch_seq = EXCLUDED.batch_seq",
        columns = columns.join(", "),
        values = values.join(", "),
        arrays = arrays.join(", "),
        names = names.join(", "),
        sets = sets.join(", "),
    )
}

/// Prepares every statement on `client`.
pub(super) async fn prepare(client: &Client) -> Result<Statements, tokio_postgres::Error> {
    Ok(Statements {
        lock: client.prepare(SQL_LOCK).await?,
        offsets: client.prepare(offsets::SQL_LOAD).await?,
        tenants: client.prepare(SQL_TENANTS).await?,
        punches: client.prepare(SQL_PUNCHES).await?,
        rejections: client.prepare(SQL_REJECTIONS).await?,
        insert_punches: client.prepare(SQL_INSERT_PUNCHES).await?,
        update_punches: client.prepare(SQL_UPDATE_PUNCHES).await?,
        insert_conflicts: client.prepare(SQL_INSERT_CONFLICTS).await?,
        upsert_rejections: client.prepare(SQL_UPSERT_REJECTIONS).await?,
        delete_rejections: client.prepare(SQL_DELETE_REJECTIONS).await?,
        day_punches: client.prepare(SQL_DAY_PUNCHES).await?,
        days: client.prepare(&days()).await?,
        upsert_days: client.prepare(&upsert_days()).await?,
        store_offsets: client.prepare(offsets::SQL_STORE).await?,
        mark: client.prepare(SQL_MARK).await?,
        unfinished: client.prepare(marker::SQL_UNFINISHED).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_statements_follow_the_fields() {
        let upsert = upsert_days();
        for field in fields() {
            assert!(upsert.contains(&format!("{0} = EXCLUDED.{0}", field.column)));
            assert!(days().contains(&format!("d.{}", field.column)));
        }
        let last = format!("${}::int[]", 10 + fields().len());
        assert!(upsert.contains(&last), "one int[] parameter per field");
    }
}
