//! The end-state check: every punch the simulator saw acked must be stored exactly once.
//!
//! It reads the stored `(tenant, device, seq)` straight from Postgres (the pipeline's
//! `punches` projection, or the synchronous control's table) and compares them with the acked
//! sets of [`crate::sim::Outcome`]: `lost` = acked but not stored, `doubled` = stored more than
//! once, `unacked_stored` = stored but never seen acked (allowed: the server took it but its
//! answer did not arrive; reported, not hidden).

use std::collections::HashMap;

use futures::TryStreamExt as _;
use serde::Serialize;

use crate::sim::Outcome;

/// Where the stored punches are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredIn {
    /// The attendance consumer's `punches` table (one row per `punch_id`).
    Punches,
    /// The synchronous control's `control_punches` table.
    Control,
}

impl StoredIn {
    fn sql(self) -> &'static str {
        match self {
            Self::Punches => {
                "SELECT tenant_id, device_id, seq FROM punches WHERE tenant_id = ANY($1)"
            }
            Self::Control => {
                "SELECT tenant_id, device_id, seq FROM control_punches WHERE tenant_id = ANY($1)"
            }
        }
    }
}

/// The audit's verdict.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Audit {
    /// Distinct punches acked to the simulator.
    pub acked: u64,
    /// Rows stored for the storm's tenants.
    pub stored_rows: u64,
    /// Acked punches not stored.
    pub lost: u64,
    /// Punches stored more than once (extra rows).
    pub doubled: u64,
    /// Stored punches the simulator never saw acked.
    pub unacked_stored: u64,
    /// A few lost punches, `tenant/device#seq`, to start looking.
    pub lost_examples: Vec<String>,
}

impl Audit {
    /// Zero lost and zero doubled.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.doubled == 0
    }
}

/// Why the audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading the stored punches failed; is Postgres up and the database the storm's?
    #[error("reading stored punches: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// Counts stored rows per punch and compares with what `outcome` saw acked.
pub async fn audit(
    client: &tokio_postgres::Client,
    stored_in: StoredIn,
    outcome: &Outcome,
) -> Result<Audit, AuditError> {
    let mut tenants: Vec<&str> = outcome
        .recorders
        .iter()
        .map(|r| r.tenant.as_str())
        .collect();
    tenants.sort_unstable();
    tenants.dedup();
    // (tenant, device) -> seqs stored, with repeats.
    let mut stored: HashMap<(String, String), Vec<u64>> = HashMap::new();
    let statement = client.prepare(stored_in.sql()).await?;
    let rows = client.query_raw(&statement, [&tenants]).await?;
    futures::pin_mut!(rows);
    let mut stored_rows = 0u64;
    while let Some(row) = rows.try_next().await? {
        let tenant: String = row.get(0);
        let device: String = row.get(1);
        let seq: i64 = row.get(2);
        stored
            .entry((tenant, device))
            .or_default()
            .push(u64::try_from(seq).unwrap_or(0));
        stored_rows += 1;
    }
    let mut audit = Audit {
        stored_rows,
        ..Audit::default()
    };
    for recorder in &outcome.recorders {
        audit.acked += recorder.acked.len();
        let mut seqs = stored
            .remove(&(recorder.tenant.clone(), recorder.device.clone()))
            .unwrap_or_default();
        seqs.sort_unstable();
        let before = seqs.len();
        seqs.dedup();
        audit.doubled += (before - seqs.len()) as u64;
        // Both sides sorted: one merge pass.
        let mut stored_iter = seqs.iter().peekable();
        for seq in recorder.acked.iter() {
            while stored_iter.next_if(|&&s| s < seq).is_some() {
                audit.unacked_stored += 1;
            }
            if stored_iter.next_if(|&&s| s == seq).is_none() {
                audit.lost += 1;
                if audit.lost_examples.len() < 10 {
                    audit
                        .lost_examples
                        .push(format!("{}/{}#{seq}", recorder.tenant, recorder.device));
                }
            }
        }
        audit.unacked_stored += stored_iter.count() as u64;
    }
    // Rows of devices the simulator does not know.
    audit.unacked_stored += stored.values().map(|v| v.len() as u64).sum::<u64>();
    Ok(audit)
}
