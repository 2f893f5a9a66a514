//! The stored first verdict of every `punch_id` (table `punch_verdicts`, migration V8), for the
//! worker's blocking threads and `punchctl recheck`: one lookup per batch (`= ANY($1)`), one
//! insert of the verdicts judged now (`ON CONFLICT DO NOTHING`) before the batch's Kafka
//! transaction commits. The pure rule is [`crate::first`].
//!
//! Crash windows, with the guarantee that holds in each:
//! - rows inserted, Kafka transaction aborted (crash, rebalance, broker error): the retried
//!   batch finds them and republishes those verdicts, identical: fine;
//! - insert failed (Postgres away): the Kafka transaction is aborted and the session rebuilt
//!   with backoff; nothing was published, nothing is skipped (checking stalls while Postgres
//!   is away: a verdict that is not stored could not stand);
//! - two instances judging one punch at once (a zombie before it is fenced): the second insert
//!   conflicts, its batch re-reads the winner's row and publishes that, so both write the same
//!   record (and the zombie's transaction is fenced anyway);
//! - `recheck` updates the row before it publishes; if publishing fails, a resend already
//!   repeats the new verdict and running recheck again publishes it.

use std::collections::HashMap;

use dakoku_schemas::{CheckedPunch, PunchId, RawPunch, RejectReason, Verdict};
use tokio::runtime::Runtime;
use tokio_postgres::Client;

use crate::first::{Judged, Settled, settle};

/// Why the verdict store failed; the caller aborts its batch and retries.
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    /// No connection (see the message for what to check).
    #[error("verdict store: {0}")]
    Connect(#[from] dakoku_store::StoreError),
    /// A query failed.
    #[error(
        "verdict store query failed: {0}; is Postgres up and the schema migrated (`punchctl db migrate`)?"
    )]
    Query(#[from] tokio_postgres::Error),
    /// The runtime for the connection could not be built.
    #[error("verdict store runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// A blocking handle on `punch_verdicts`: its own single-threaded runtime drives the
/// connection, so it works from the worker's plain threads.
pub struct VerdictStore {
    runtime: Runtime,
    client: Client,
}

impl std::fmt::Debug for VerdictStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictStore").finish_non_exhaustive()
    }
}

fn symbol<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str, value: &str) -> Option<T> {
    all.iter().copied().find(|v| name(*v) == value)
}

impl VerdictStore {
    /// Connects to `database_url`. Blocking; not from inside an async runtime.
    pub fn connect(database_url: &str) -> Result<Self, VerdictError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = runtime.block_on(dakoku_store::connect(database_url))?;
        Ok(Self { runtime, client })
    }

    /// The stored verdicts of `ids`.
    pub fn stored(&self, ids: &[PunchId]) -> Result<HashMap<PunchId, Judged>, VerdictError> {
        let ids: Vec<_> = ids.iter().map(|id| *id.as_uuid()).collect();
        let rows = self.runtime.block_on(self.client.query(
            "SELECT punch_id::text, verdict, reason, employee_id, master_data_version, checked_at
             FROM punch_verdicts WHERE punch_id = ANY($1)",
            &[&ids],
        ))?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: String = row.get(0);
            let verdict: String = row.get(1);
            let reason: Option<String> = row.get(2);
            let employee: Option<String> = row.get(3);
            // Rows are written from these types; one that does not read back is skipped (and
            // judged again) rather than stopping the group.
            let (Ok(id), Some(verdict)) = (
                id.parse::<PunchId>(),
                symbol(Verdict::ALL, Verdict::as_str, &verdict),
            ) else {
                tracing::error!(
                    punch_id = id,
                    verdict,
                    "unreadable stored verdict; ignoring it"
                );
                continue;
            };
            out.insert(
                id,
                Judged {
                    verdict,
                    reason: reason
                        .and_then(|r| symbol(RejectReason::ALL, RejectReason::as_str, &r)),
                    employee: employee.and_then(|e| e.parse().ok()),
                    master_data_version: row.get(4),
                    checked_at: row.get(5),
                },
            );
        }
        Ok(out)
    }

    /// Stores `verdicts` where the `punch_id` has none yet (`replace`: overwrite, for recheck).
    /// Returns how many rows were written.
    fn write(&self, verdicts: &[CheckedPunch], replace: bool) -> Result<u64, VerdictError> {
        if verdicts.is_empty() {
            return Ok(0);
        }
        let ids: Vec<_> = verdicts.iter().map(|v| *v.punch_id.as_uuid()).collect();
        let tenants: Vec<&str> = verdicts.iter().map(|v| v.tenant_id.as_str()).collect();
        let kinds: Vec<&str> = verdicts.iter().map(|v| v.verdict.as_str()).collect();
        let reasons: Vec<Option<&str>> = verdicts
            .iter()
            .map(|v| v.reason.map(RejectReason::as_str))
            .collect();
        let employees: Vec<Option<&str>> = verdicts
            .iter()
            .map(|v| v.employee_id.as_ref().map(|e| e.as_str()))
            .collect();
        let versions: Vec<i64> = verdicts.iter().map(|v| v.master_data_version).collect();
        let checked: Vec<i64> = verdicts.iter().map(|v| v.checked_at).collect();
        let conflict = if replace {
            "ON CONFLICT (punch_id) DO UPDATE SET verdict = EXCLUDED.verdict,
                 reason = EXCLUDED.reason, employee_id = EXCLUDED.employee_id,
                 master_data_version = EXCLUDED.master_data_version,
                 checked_at = EXCLUDED.checked_at, rechecks = punch_verdicts.rechecks + 1"
        } else {
            "ON CONFLICT (punch_id) DO NOTHING"
        };
        let sql = format!(
            "INSERT INTO punch_verdicts (punch_id, tenant_id, verdict, reason, employee_id,
                 master_data_version, checked_at)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::int8[], $7::int8[])
             {conflict}"
        );
        Ok(self.runtime.block_on(self.client.execute(
            &sql,
            &[
                &ids, &tenants, &kinds, &reasons, &employees, &versions, &checked,
            ],
        ))?)
    }

    /// Settles a batch against the stored verdicts and stores the new ones: what to publish.
    /// If another instance stored some of them meanwhile, theirs are read back and used.
    pub fn settle(
        &self,
        batch: Vec<RawPunch>,
        mut judge: impl FnMut(&RawPunch) -> Judged,
    ) -> Result<Settled, VerdictError> {
        let ids: Vec<PunchId> = batch.iter().map(|raw| raw.punch_id).collect();
        let mut stored = self.stored(&ids)?;
        let settled = settle(batch.clone(), &stored, &mut judge);
        let written = self.write(&settled.judged, false)?;
        if written == settled.judged.len() as u64 {
            return Ok(settled);
        }
        tracing::info!(
            lost = settled.judged.len() as u64 - written,
            "another instance stored verdicts of this batch first; publishing theirs"
        );
        let ours: Vec<PunchId> = settled.judged.iter().map(|v| v.punch_id).collect();
        stored.extend(self.stored(&ours)?);
        let mut again = settle(batch, &stored, judge);
        // Whatever is still new here was written above (the conflict was on the others).
        again.judged.clear();
        Ok(again)
    }

    /// Replaces the stored verdicts of `verdicts` (recheck). Returns rows written.
    pub fn replace(&self, verdicts: &[CheckedPunch]) -> Result<u64, VerdictError> {
        self.write(verdicts, true)
    }
}
