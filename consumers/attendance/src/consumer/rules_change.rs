//! Serving recompute requests between batches: after `punchctl rules set`, every employee of the
//! tenant is recomputed in full under the new rules ([`Store::recompute_records`]), in chunks,
//! and each chunk's changed days and months are handed to the outbox like a batch's, so they
//! reach the compacted topics in batch order.

use std::future::Future;
use std::pin::Pin;

use chrono::Utc;

use super::backoff::Backoff;
use super::publish::{Publisher, Records};
use crate::store::{Store, StoreError};

/// Employees recomputed per transaction.
const CHUNK: usize = 200;

/// Serves the group's pending requests. `Ok(false)`: `cancel` fired while publishing (what is
/// committed is published at the next start).
pub(super) async fn serve(
    store: &mut Store,
    publisher: &mut Publisher,
    backoff: &mut Backoff,
    cancel: &mut Pin<&mut impl Future<Output = ()>>,
) -> Result<bool, StoreError> {
    for request in store.recompute_requests().await? {
        let employees: Vec<(String, String)> = store
            .tenant_employees(&request.tenant)
            .await?
            .into_iter()
            .map(|e| (request.tenant.clone(), e))
            .collect();
        let chunks: Vec<&[(String, String)]> = if employees.is_empty() {
            vec![&[]]
        } else {
            employees.chunks(CHUNK).collect()
        };
        let (mut changed, last) = (0u64, chunks.len() - 1);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let served = (i == last).then_some(&request);
            let now = Utc::now();
            let applied = store.recompute_records(chunk, served, now).await?;
            changed += applied.counts.days_changed + applied.counts.months_changed;
            let records = Records {
                days: applied.changed_days(now),
                months: applied.changed_months(now),
            };
            if !publisher
                .hand_over(applied.batch_seq, records, backoff, cancel)
                .await
            {
                return Ok(false);
            }
        }
        tracing::info!(tenant = %request.tenant, from = %request.from,
            employees = employees.len(), changed,
            "recomputed after a rules change");
    }
    Ok(true)
}
