//! Raw punches as the acceptor writes them, for tests that start further down the pipeline.

use chrono::DateTime;
use dakoku_schemas::{GroupId, PunchId, PunchKind, RawPunch};

/// A raw punch of `tenant`/`device` with `seq`, `card` and `at` (RFC 3339), as the acceptor
/// would have written it to `group`'s topic.
pub fn raw_punch(
    group: &GroupId,
    tenant: &str,
    device: &str,
    seq: u64,
    card: &str,
    at: &str,
) -> anyhow::Result<RawPunch> {
    let tenant = tenant.parse()?;
    let device = device.parse()?;
    let (at, at_offset_minutes) = RawPunch::at_fields(DateTime::parse_from_rfc3339(at)?);
    Ok(RawPunch {
        punch_id: PunchId::derive(&tenant, &device, seq),
        tenant_id: tenant,
        group: group.clone(),
        device_id: device,
        seq,
        card_id: card.parse()?,
        kind: PunchKind::ClockIn,
        at,
        at_offset_minutes,
        received_at: at,
        acceptor_id: "test".into(),
    })
}
