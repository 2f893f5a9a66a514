//! The store's SQL: every statement of the batch transaction, prepared once per connection.
//! The day and month statements are built from the engine's figure lists
//! ([`DAY_FIELDS`], [`MONTH_FIELDS`]), so a new figure needs no SQL edit here.

use dakoku_rules::v2::figures::{DAY_FIELDS, MONTH_FIELDS};
use dakoku_store::offsets;
use tokio_postgres::{Client, Statement};

use super::marker;

/// The prepared statements of one connection.
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) lock: Statement,
    pub(super) offsets: Statement,
    pub(super) punches: Statement,
    pub(super) rejections: Statement,
    pub(super) insert_punches: Statement,
    pub(super) update_punches: Statement,
    pub(super) insert_conflicts: Statement,
    pub(super) upsert_rejections: Statement,
    pub(super) delete_rejections: Statement,
    pub(super) window_punches: Statement,
    pub(super) bounds: Statement,
    pub(super) stored_days: Statement,
    pub(super) stored_months: Statement,
    pub(super) upsert_days: Statement,
    pub(super) upsert_months: Statement,
    pub(super) store_offsets: Statement,
    pub(super) mark: Statement,
    pub(super) unfinished: Statement,
}

/// The group's advisory lock (see the README, "Scaling past one instance per group") and the
/// batch's sequence number.
const SQL_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), \
     nextval('attendance_batch_seq')";
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
/// Per employee (`$1` tenants, `$2` employees, `$3`..`$4` instants), what counts in the range,
/// tagged with the employee's index (1-based): its punches that are not withdrawn and its added
/// punches (corrections `add`: `added` true, `seq` 0), each with the ids of the corrections
/// voiding it (§4.6), looked up only for an employee with a void at all (most have none, and
/// the lookup per punch doubled a batch's cost). `LATERAL .. OFFSET 0` keeps the plan an index
/// range scan per employee: joined plainly, Postgres sorts and merges the whole table.
const SQL_WINDOW_PUNCHES: &str = "SELECT k.i, p.id, p.seq, p.kind, p.at, p.added, \
     CASE WHEN h.voids THEN ARRAY(SELECT v.correction_id::text FROM corrections v \
     WHERE v.tenant_id = k.tenant_id AND v.target_id = p.id AND v.action = 'void' ORDER BY 1) \
     ELSE '{}'::text[] END \
     FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
     WITH ORDINALITY AS k(tenant_id, employee_id, lo, hi, i) \
     CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM corrections c \
     WHERE c.tenant_id = k.tenant_id AND c.employee_id = k.employee_id \
     AND c.action = 'void') AS voids) h \
     CROSS JOIN LATERAL (SELECT p.punch_id AS id, p.seq, p.kind, p.at, false AS added \
     FROM punches p WHERE p.tenant_id = k.tenant_id AND p.employee_id = k.employee_id \
     AND p.at >= k.lo AND p.at <= k.hi AND NOT p.withdrawn \
     UNION ALL SELECT c.correction_id, 0::bigint, c.kind, c.at, true FROM corrections c \
     WHERE c.tenant_id = k.tenant_id AND c.employee_id = k.employee_id AND c.action = 'add' \
     AND c.at >= k.lo AND c.at <= k.hi OFFSET 0) p";
/// Per employee, the instants of its first and last counting punch or added punch (one index
/// probe each).
const SQL_BOUNDS: &str = "SELECT k.i, \
     LEAST((SELECT min(p.at) FROM punches p WHERE p.tenant_id = k.tenant_id \
      AND p.employee_id = k.employee_id AND NOT p.withdrawn), \
      (SELECT min(c.at) FROM corrections c WHERE c.tenant_id = k.tenant_id \
      AND c.employee_id = k.employee_id AND c.action = 'add')), \
     GREATEST((SELECT max(p.at) FROM punches p WHERE p.tenant_id = k.tenant_id \
      AND p.employee_id = k.employee_id AND NOT p.withdrawn), \
      (SELECT max(c.at) FROM corrections c WHERE c.tenant_id = k.tenant_id \
      AND c.employee_id = k.employee_id AND c.action = 'add')) \
     FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS k(tenant_id, employee_id, i)";
const SQL_MARK: &str = "INSERT INTO attendance_publish_marks (consumer_group, published_batch_seq) \
     VALUES ($1, $2) ON CONFLICT (consumer_group) DO UPDATE SET published_batch_seq = \
     GREATEST(attendance_publish_marks.published_batch_seq, EXCLUDED.published_batch_seq), \
     updated_at = now()";
/// Days committed after the group's publish mark: `tenant, employee, work_date, revision,
/// computed_at, rules_version, batch_seq`, then [`figure_columns`].
pub(super) fn unpublished_days() -> String {
    format!(
        "SELECT d.tenant_id, d.employee_id, d.work_date, d.revision, d.computed_at, \
         d.rules_version, d.batch_seq, {} FROM attendance_days d \
         WHERE d.group_id = $1 AND d.batch_seq > COALESCE((SELECT published_batch_seq \
         FROM attendance_publish_marks WHERE consumer_group = $2), 0) \
         ORDER BY d.batch_seq",
        figure_columns("d")
    )
}

/// The group's publish mark, for the outbox queries (`$1` group, `$2` consumer group).
const AFTER_MARK: &str = "batch_seq > COALESCE((SELECT published_batch_seq \
     FROM attendance_publish_marks WHERE consumer_group = $2), 0)";

/// Months committed after the group's publish mark: `tenant, employee, month, first_day,
/// last_day, revision, computed_at, rules_version, batch_seq`, then [`month_columns`]. A closed
/// month is published as it was paid (`paid_months`), never with its live figures.
pub(super) fn unpublished_months() -> String {
    months_to_publish(&format!("m.{AFTER_MARK}"))
}

/// The months of one batch (`$1` group, `$2` batch_seq), as [`unpublished_months`].
pub(super) fn months_of_batch() -> String {
    months_to_publish("m.batch_seq = $2")
}

fn months_to_publish(filter: &str) -> String {
    format!(
        "SELECT * FROM (SELECT m.tenant_id, m.employee_id, m.month, m.first_day, m.last_day, \
         m.revision, m.computed_at, m.rules_version, m.batch_seq, {open} \
         FROM attendance_months m WHERE m.group_id = $1 AND {filter} \
         AND NOT EXISTS (SELECT 1 FROM closed_months c WHERE c.tenant_id = m.tenant_id \
         AND c.month = m.month) \
         UNION ALL SELECT p.tenant_id, p.employee_id, p.month, p.first_day, p.last_day, \
         p.revision, p.computed_at, p.rules_version, m.batch_seq, {paid} \
         FROM attendance_months m JOIN paid_months p ON p.tenant_id = m.tenant_id \
         AND p.employee_id = m.employee_id AND p.month = m.month \
         WHERE m.group_id = $1 AND {filter}) u ORDER BY batch_seq",
        open = month_columns("m"),
        paid = month_columns("p"),
    )
}

/// Adjustments committed after the group's publish mark: `tenant, employee, month,
/// first_day, last_day, seq, computed_at, rules_version, batch_seq`, then [`month_columns`],
/// then `export_month, causes`.
pub(super) fn unpublished_adjustments() -> String {
    format!(
        "SELECT a.tenant_id, a.employee_id, a.month, a.first_day, a.last_day, a.seq, \
         a.computed_at, a.rules_version, a.batch_seq, {}, a.export_month, a.causes \
         FROM attendance_adjustments a WHERE a.group_id = $1 AND a.{AFTER_MARK} \
         ORDER BY a.batch_seq, a.tenant_id, a.employee_id, a.month, a.seq",
        month_columns("a")
    )
}

/// The day figures other than the engine's integer list, then that list, as stored.
const DAY_EXTRA: [&str; 3] = ["first_in", "last_out", "anomalies"];

/// The columns of a day's figures with table alias `alias`: `first_in, last_out, anomalies`,
/// then the seconds figures and `punch_count` in [`DAY_FIELDS`] order, then `corrected` and
/// `correction_ids` (read back with [`figures_of`](super::figures_of)).
pub fn figure_columns(alias: &str) -> String {
    DAY_EXTRA
        .iter()
        .copied()
        .chain(DAY_FIELDS.iter().map(|f| f.name))
        .chain(["corrected", "correction_ids"])
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns of a month's figures in [`MONTH_FIELDS`] order, with alias `alias`.
pub fn month_columns(alias: &str) -> String {
    MONTH_FIELDS
        .iter()
        .map(|f| format!("{alias}.{}", f.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Per employee (`$1` tenants, `$2` employees, `$3`..`$4` work dates), its stored days:
/// `index, work_date, revision, rules_version`, then [`figure_columns`].
fn stored_days() -> String {
    format!(
        "SELECT k.i, d.work_date, d.revision, d.rules_version, {} \
         FROM UNNEST($1::text[], $2::text[], $3::date[], $4::date[]) \
         WITH ORDINALITY AS k(tenant_id, employee_id, lo, hi, i) \
         CROSS JOIN LATERAL (SELECT * FROM attendance_days d WHERE d.tenant_id = k.tenant_id \
         AND d.employee_id = k.employee_id AND d.work_date >= k.lo AND d.work_date <= k.hi \
         OFFSET 0) d",
        figure_columns("d")
    )
}

/// Per employee (`$1`..`$4` as [`stored_days`]), its stored months that meet the dates:
/// `index, month, revision, rules_version`, then [`month_columns`].
fn stored_months() -> String {
    format!(
        "SELECT k.i, m.month, m.revision, m.rules_version, {} \
         FROM UNNEST($1::text[], $2::text[], $3::date[], $4::date[]) \
         WITH ORDINALITY AS k(tenant_id, employee_id, lo, hi, i) \
         CROSS JOIN LATERAL (SELECT * FROM attendance_months m WHERE m.tenant_id = k.tenant_id \
         AND m.employee_id = k.employee_id AND m.last_day >= k.lo AND m.first_day <= k.hi \
         OFFSET 0) m",
        month_columns("m")
    )
}

/// The upsert of changed days: `$1` group, `$2` computed_at, `$3` batch_seq, then arrays of
/// tenant, employee, date, first_in, last_out, anomalies (comma-joined), revision,
/// rules_version, corrected, the four display minutes, and one `bigint[]` per figure in
/// [`DAY_FIELDS`] order, then correction ids (comma-joined).
fn upsert_days() -> String {
    let columns: Vec<&str> = DAY_FIELDS.iter().map(|f| f.name).collect();
    let n = columns.len();
    let first = 17;
    let values: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if *c == "punch_count" {
                format!("u.f{i}::int")
            } else {
                format!("u.f{i}")
            }
        })
        .collect();
    let arrays: Vec<String> = (0..n)
        .map(|i| format!("${}::bigint[]", first + i))
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
    let ids = first + n;
    let sets: Vec<String> = columns
        .iter()
        .chain(&[
            "worked_minutes",
            "break_minutes",
            "night_minutes",
            "overtime_minutes",
            "corrected",
            "correction_ids",
            "rules_version",
        ])
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO attendance_days (tenant_id, employee_id, work_date, group_id, first_in, \
         last_out, anomalies, revision, computed_at, batch_seq, rules_version, corrected, \
         worked_minutes, break_minutes, night_minutes, overtime_minutes, double_taps, \
         {columns}, correction_ids) \
         SELECT u.t, u.e, u.d, $1, u.fi, u.lo, string_to_array(u.a, ','), u.r, $2, $3, u.rv, \
         u.c, u.wm, u.bm, u.nm, u.om, 0, {values}, string_to_array(u.ci, ',') \
         FROM UNNEST($4::text[], $5::text[], $6::date[], $7::timestamptz[], $8::timestamptz[], \
         $9::text[], $10::bigint[], $11::bigint[], $12::bool[], $13::int[], $14::int[], \
         $15::int[], $16::int[], {arrays}, ${ids}::text[]) \
         AS u(t, e, d, fi, lo, a, r, rv, c, wm, bm, nm, om, {names}, ci) \
         ON CONFLICT (tenant_id, employee_id, work_date) DO UPDATE SET \
         group_id = EXCLUDED.group_id, first_in = EXCLUDED.first_in, \
         last_out = EXCLUDED.last_out, anomalies = EXCLUDED.anomalies, {sets}, \
         double_taps = 0, revision = EXCLUDED.revision, computed_at = EXCLUDED.computed_at, \
         batch_seq = EXCLUDED.batch_seq",
        columns = columns.join(", "),
        values = values.join(", "),
        arrays = arrays.join(", "),
        names = names.join(", "),
        sets = sets.join(", "),
    )
}

/// The upsert of changed months: `$1` group, `$2` computed_at, `$3` batch_seq, then arrays of
/// tenant, employee, month, first_day, last_day, revision, rules_version, and one
/// `bigint[]` per figure in [`MONTH_FIELDS`] order.
fn upsert_months() -> String {
    let columns: Vec<&str> = MONTH_FIELDS.iter().map(|f| f.name).collect();
    let n = columns.len();
    let first = 11;
    let values: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if matches!(*c, "days_worked" | "anomaly_days") {
                format!("u.f{i}::int")
            } else {
                format!("u.f{i}")
            }
        })
        .collect();
    let arrays: Vec<String> = (0..n)
        .map(|i| format!("${}::bigint[]", first + i))
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
    let sets: Vec<String> = columns
        .iter()
        .chain(&["first_day", "last_day", "rules_version"])
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO attendance_months (tenant_id, employee_id, month, group_id, first_day, \
         last_day, revision, rules_version, computed_at, batch_seq, {columns}) \
         SELECT u.t, u.e, u.m, $1, u.fd, u.ld, u.r, u.rv, $2, $3, {values} \
         FROM UNNEST($4::text[], $5::text[], $6::text[], $7::date[], $8::date[], \
         $9::bigint[], $10::bigint[], {arrays}) AS u(t, e, m, fd, ld, r, rv, {names}) \
         ON CONFLICT (tenant_id, employee_id, month) DO UPDATE SET \
         group_id = EXCLUDED.group_id, {sets}, revision = EXCLUDED.revision, \
         computed_at = EXCLUDED.computed_at, batch_seq = EXCLUDED.batch_seq",
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
        punches: client.prepare(SQL_PUNCHES).await?,
        rejections: client.prepare(SQL_REJECTIONS).await?,
        insert_punches: client.prepare(SQL_INSERT_PUNCHES).await?,
        update_punches: client.prepare(SQL_UPDATE_PUNCHES).await?,
        insert_conflicts: client.prepare(SQL_INSERT_CONFLICTS).await?,
        upsert_rejections: client.prepare(SQL_UPSERT_REJECTIONS).await?,
        delete_rejections: client.prepare(SQL_DELETE_REJECTIONS).await?,
        window_punches: client.prepare(SQL_WINDOW_PUNCHES).await?,
        bounds: client.prepare(SQL_BOUNDS).await?,
        stored_days: client.prepare(&stored_days()).await?,
        stored_months: client.prepare(&stored_months()).await?,
        upsert_days: client.prepare(&upsert_days()).await?,
        upsert_months: client.prepare(&upsert_months()).await?,
        store_offsets: client.prepare(offsets::SQL_STORE).await?,
        mark: client.prepare(SQL_MARK).await?,
        unfinished: client.prepare(marker::SQL_UNFINISHED).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_statements_follow_the_fields() {
        let upsert = upsert_days();
        for field in DAY_FIELDS {
            assert!(upsert.contains(&format!("{0} = EXCLUDED.{0}", field.name)));
            assert!(stored_days().contains(&format!("d.{}", field.name)));
        }
        let last = format!("${}::bigint[]", 16 + DAY_FIELDS.len());
        assert!(upsert.contains(&last), "one bigint[] parameter per field");
        let months = upsert_months();
        for field in MONTH_FIELDS {
            assert!(months.contains(&format!("{0} = EXCLUDED.{0}", field.name)));
            assert!(stored_months().contains(&format!("m.{}", field.name)));
        }
        let last = format!("${}::bigint[]", 10 + MONTH_FIELDS.len());
        assert!(
            months.contains(&last),
            "one bigint[] parameter per month field"
        );
    }
}
