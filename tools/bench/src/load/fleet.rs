//! The devices load is sent for: ids, tokens, each device's next `seq`, and the request
//! bodies and raw records of their punches.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderValue;
use bytes::Bytes;
use chrono::{DateTime, FixedOffset, SecondsFormat};
use dakoku_schemas::{CardId, DeviceId, GroupId, PunchId, PunchKind, RawPunch, TenantId};

use crate::setup::BenchGroup;

/// Distinct card ids per device.
const CARDS_PER_DEVICE: usize = 50;
/// Distinct punch times the bodies cycle through.
const TIMES: usize = 64;

/// The devices load is sent for: ids, tokens and each device's next `seq`.
#[derive(Debug)]
pub struct Fleet {
    pub(super) tenant: TenantId,
    group: GroupId,
    pub(super) devices: Vec<DeviceId>,
    pub(super) authorizations: Vec<HeaderValue>,
    next_seq: Vec<AtomicU64>,
    times: Vec<PunchTime>,
}

#[derive(Debug)]
struct PunchTime {
    rfc3339: String,
    at: DateTime<FixedOffset>,
}

impl Fleet {
    /// The bench group's devices, every `seq` starting at 1.
    pub fn new(bench: &BenchGroup) -> Self {
        let base = DateTime::parse_from_rfc3339("2026-05-11T08:00:00+09:00")
            .unwrap_or_else(|_| DateTime::UNIX_EPOCH.fixed_offset());
        let times = (0..TIMES)
            .map(|i| {
                let at = base + chrono::Duration::seconds(37 * i as i64);
                PunchTime {
                    rfc3339: at.to_rfc3339_opts(SecondsFormat::Secs, false),
                    at,
                }
            })
            .collect();
        Self {
            tenant: bench.tenant.clone(),
            group: bench.group.clone(),
            devices: bench.devices.clone(),
            authorizations: bench.authorizations.clone(),
            next_seq: bench.devices.iter().map(|_| AtomicU64::new(1)).collect(),
            times,
        }
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether there is no device.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Reserves `n` consecutive `seq`s of `device`; returns the first.
    pub fn take_seqs(&self, device: usize, n: usize) -> u64 {
        self.next_seq[device].fetch_add(n as u64, Ordering::Relaxed)
    }

    fn kind(seq: u64) -> PunchKind {
        PunchKind::ALL[(seq % PunchKind::ALL.len() as u64) as usize]
    }

    fn card(device: usize, seq: u64) -> String {
        format!(
            "C{:08}",
            device * CARDS_PER_DEVICE + (seq % CARDS_PER_DEVICE as u64) as usize
        )
    }

    fn time(&self, seq: u64) -> &PunchTime {
        &self.times[(seq % self.times.len() as u64) as usize]
    }

    /// The JSON body of a request with punches `first_seq..first_seq + n` of `device`.
    pub fn body(&self, device: usize, first_seq: u64, n: usize) -> Bytes {
        let mut body = String::with_capacity(48 + n * 96);
        let _ = write!(
            body,
            r#"{{"device_id":"{}","punches":["#,
            self.devices[device]
        );
        for seq in first_seq..first_seq + n as u64 {
            if seq != first_seq {
                body.push(',');
            }
            let _ = write!(
                body,
                r#"{{"seq":{seq},"card_id":"{}","kind":"{}","at":"{}"}}"#,
                Self::card(device, seq),
                Self::kind(seq).as_str(),
                self.time(seq).rfc3339
            );
        }
        body.push_str("]}");
        Bytes::from(body)
    }

    /// The record ingest-api would write for punch `seq` of `device`.
    pub fn raw_punch(
        &self,
        device: usize,
        seq: u64,
        received_at: i64,
        acceptor_id: &str,
    ) -> anyhow::Result<RawPunch> {
        let device_id = &self.devices[device];
        let (at, at_offset_minutes) = RawPunch::at_fields(self.time(seq).at);
        Ok(RawPunch {
            punch_id: PunchId::derive(&self.tenant, device_id, seq),
            tenant_id: self.tenant.clone(),
            group: self.group.clone(),
            device_id: device_id.clone(),
            seq,
            card_id: Self::card(device, seq).parse::<CardId>()?,
            kind: Self::kind(seq),
            at,
            at_offset_minutes,
            received_at,
            acceptor_id: acceptor_id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use dakoku_ingest_api::request;

    use super::*;

    fn fleet() -> Fleet {
        let devices: Vec<DeviceId> = (0..3)
            .map(|i| format!("D{i:06}").parse().expect("id"))
            .collect();
        Fleet::new(&BenchGroup {
            group: "bench-test".parse().expect("group"),
            baseline_group: "bench-test-b".parse().expect("group"),
            tenant: "bench-test".parse().expect("tenant"),
            authorizations: devices
                .iter()
                .map(|_| HeaderValue::from_static("Bearer x"))
                .collect(),
            devices,
            token_keys: String::new(),
        })
    }

    #[test]
    fn bodies_pass_the_acceptors_own_validation() {
        let fleet = fleet();
        let first = fleet.take_seqs(2, 500);
        assert_eq!((first, fleet.take_seqs(2, 1)), (1, 501));
        let body = fleet.body(2, first, 500);
        let envelope = request::parse_envelope(&body).expect("valid envelope");
        assert_eq!(envelope.device_id, "D000002");
        assert_eq!(envelope.punches.len(), 500);
        for (i, raw) in envelope.punches.iter().enumerate() {
            let punch = request::validate_punch(i, raw).expect("valid punch");
            assert_eq!(punch.seq, first + i as u64);
            // The raw producer writes what the acceptor would for the same punch.
            let record = fleet.raw_punch(2, punch.seq, 0, "x").expect("record");
            assert_eq!(record.card_id, punch.card_id);
            assert_eq!(record.kind, punch.kind);
            assert_eq!(
                (record.at, record.at_offset_minutes),
                RawPunch::at_fields(punch.at)
            );
        }
    }
}
