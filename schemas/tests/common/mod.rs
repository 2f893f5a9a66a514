//! Sample records and proptest strategies shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use dakoku_schemas::{
    AttendanceDay, CardId, CheckedPunch, Correction, DeviceId, EmployeeId, GroupId,
    MonthlyAttendance, MonthlyRecordKind, PunchId, PunchKind, QuarantinedInput, RawPunch,
    RejectReason, TenantId, Verdict,
};
use proptest::{collection::vec, option, prelude::*};

/// Timestamps fastavro can represent as `datetime` (years 1 to 9999), so the same strategies
/// serve the cross-implementation test.
pub const MIN_MILLIS: i64 = -62_135_596_800_000;
pub const MAX_MILLIS: i64 = 253_402_300_799_999;
/// Days of 0001-01-01 and 9999-12-31.
pub const MIN_DAYS: i32 = -719_162;
pub const MAX_DAYS: i32 = 2_932_896;

pub fn id<T: std::str::FromStr<Err = dakoku_schemas::IdError>>(s: &str) -> T {
    s.parse().unwrap_or_else(|e| panic!("test id {s:?}: {e}"))
}

pub fn raw_example() -> RawPunch {
    let tenant: TenantId = id("acme");
    let device: DeviceId = id("PT-000123");
    RawPunch {
        punch_id: PunchId::derive(&tenant, &device, 18211),
        tenant_id: tenant,
        group: id("tokyo-1"),
        device_id: device,
        seq: 18211,
        card_id: id("01010312A40B5C2D"),
        kind: PunchKind::ClockIn,
        at: 1_607_039_099_000,
        at_offset_minutes: 540,
        received_at: 1_607_039_100_250,
        acceptor_id: "ingest-api-7d9f-x2".into(),
    }
}

pub fn checked_example() -> CheckedPunch {
    CheckedPunch::from_raw(
        raw_example(),
        Verdict::Accepted,
        None,
        Some(id("E-0042")),
        17,
        1_607_039_101_000,
    )
}

pub fn quarantine_example() -> QuarantinedInput {
    let mut q = QuarantinedInput::new(
        1_607_039_100_250,
        "ingest-api",
        "invalid_punch",
        "kind: unknown value \"clockin\"".into(),
        br#"{"seq":18213,"card_id":"01010312A40B5C2D","kind":"clockin","at":"2020-12-04T08:44:59+09:00"}"#,
        1 << 20,
    );
    q.tenant_id = Some("acme".into());
    q.device_id = Some("PT-000123".into());
    q.content_type = Some("application/json".into());
    q
}

pub fn attendance_example() -> AttendanceDay {
    AttendanceDay {
        tenant_id: id("acme"),
        employee_id: id("E-0042"),
        work_date: 18_600,
        first_in: Some(1_607_039_099_000),
        last_out: None,
        worked_minutes: 0,
        break_minutes: 0,
        night_minutes: 0,
        overtime_minutes: 0,
        punch_count: 1,
        anomalies: vec!["missing_clock_out".into()],
        revision: 3,
        computed_at: 1_607_039_102_000,
        worked_seconds: Some(0),
        break_seconds: Some(0),
        night_seconds: Some(0),
        holiday_seconds: Some(0),
        overtime_daily_seconds: Some(0),
        overtime_weekly_seconds: Some(0),
        within_statutory_seconds: Some(0),
        corrected: true,
        rules_version: Some(2),
        correction_ids: vec!["6f1c2a10-7c55-4c1e-9a53-3f3a2d9e8b01".into()],
    }
}

pub fn monthly_example() -> MonthlyAttendance {
    MonthlyAttendance {
        tenant_id: id("acme"),
        employee_id: id("E-0042"),
        month: "2026-12".into(),
        first_day: 20_778,
        last_day: 20_807,
        days_worked: 21,
        anomaly_days: 1,
        worked_seconds: 648_030,
        break_seconds: 75_600,
        night_seconds: 25_200,
        holiday_seconds: 0,
        within_statutory_seconds: 0,
        overtime_seconds: 43_230,
        overtime_over60_seconds: 0,
        worked_minutes: 10_800,
        overtime_minutes: 720,
        overtime_over60_minutes: 0,
        night_minutes: 420,
        holiday_minutes: 0,
        rules_version: 1,
        revision: 1,
        computed_at: 1_607_039_102_000,
        record: MonthlyRecordKind::Month,
        adjustment_seq: None,
        export_month: None,
        causes: Vec::new(),
    }
}

/// An adjustment of a closed month: differences, negative ones among them.
pub fn adjustment_example() -> MonthlyAttendance {
    MonthlyAttendance {
        days_worked: -1,
        worked_seconds: -28_800,
        worked_minutes: -480,
        overtime_seconds: 3_600,
        overtime_minutes: 60,
        revision: 1,
        record: MonthlyRecordKind::Adjustment,
        adjustment_seq: Some(2),
        export_month: Some("2027-01".into()),
        causes: vec![
            "correction:6f1c2a10-7c55-4c1e-9a53-3f3a2d9e8b01".into(),
            "punch:2a07d5f7-7137-57bc-ab96-f57b81e3e822".into(),
        ],
        ..monthly_example()
    }
}

pub fn correction_examples() -> Vec<Correction> {
    let add = Correction::add(
        PunchId::from(uuid::Uuid::from_u128(
            0x6f1c2a10_7c55_4c1e_9a53_3f3a2d9e8b01,
        )),
        id("acme"),
        id("E-0042"),
        PunchKind::ClockOut,
        1_607_039_099_000,
        "cli:ops".into(),
        "forgot to clock out; confirmed by the shift leader".into(),
        1_607_139_099_000,
    );
    let void = Correction::void(
        PunchId::from(uuid::Uuid::from_u128(
            0x0b5e7d44_1111_4c1e_9a53_3f3a2d9e8b02,
        )),
        id("acme"),
        id("E-0042"),
        add.correction_id,
        "api:hr-screen".into(),
        "added to the wrong day".into(),
        1_607_139_199_000,
    );
    vec![add, void]
}

/// Edge cases: the other branch of every union, extreme numbers, odd text.
pub fn raw_examples() -> Vec<RawPunch> {
    let tenant: TenantId = id(&"T".repeat(64));
    let device: DeviceId = id("a.b_c-D");
    let edge = RawPunch {
        punch_id: PunchId::derive(&tenant, &device, RawPunch::MAX_SEQ),
        tenant_id: tenant,
        group: id(&"z".repeat(32)),
        device_id: device,
        seq: RawPunch::MAX_SEQ,
        card_id: id("_"),
        kind: PunchKind::BreakEnd,
        at: MIN_MILLIS,
        at_offset_minutes: -720,
        received_at: MAX_MILLIS,
        acceptor_id: "受付-🕒\u{0}\"\\".into(),
    };
    vec![raw_example(), edge]
}

pub fn checked_examples() -> Vec<CheckedPunch> {
    let rejected = CheckedPunch::from_raw(
        raw_examples()[1].clone(),
        Verdict::Rejected,
        Some(RejectReason::UnknownTenant),
        None,
        i64::MIN,
        0,
    );
    vec![checked_example(), rejected]
}

pub fn quarantine_examples() -> Vec<QuarantinedInput> {
    let poison = QuarantinedInput {
        received_at: -1,
        source: "licence-check".into(),
        error_code: "undecodable".into(),
        error: String::new(),
        tenant_id: None,
        device_id: None,
        origin_topic: Some("punches.raw.tokyo-1".into()),
        origin_partition: Some(i32::MAX),
        origin_offset: Some(i64::MAX),
        content_type: None,
        payload: vec![0xC3, 0x01, 0xFF, 0x00, 0x80],
        payload_truncated: true,
        original_size: 0,
    };
    vec![quarantine_example(), poison]
}

pub fn attendance_examples() -> Vec<AttendanceDay> {
    let edge = AttendanceDay {
        work_date: MIN_DAYS,
        first_in: None,
        last_out: Some(MAX_MILLIS),
        worked_minutes: i32::MAX,
        break_minutes: i32::MIN,
        night_minutes: 1,
        overtime_minutes: -1,
        punch_count: 0,
        anomalies: vec![],
        revision: i64::MAX,
        computed_at: MIN_MILLIS,
        worked_seconds: Some(i64::MAX),
        break_seconds: None,
        night_seconds: Some(i64::MIN),
        corrected: false,
        rules_version: None,
        ..attendance_example()
    };
    vec![attendance_example(), edge]
}

fn parsed<T: std::str::FromStr<Err = dakoku_schemas::IdError> + std::fmt::Debug>(
    pattern: &'static str,
) -> impl Strategy<Value = T> {
    pattern.prop_map(|s| id::<T>(&s))
}

pub fn millis() -> impl Strategy<Value = i64> {
    MIN_MILLIS..=MAX_MILLIS
}

pub fn kind() -> impl Strategy<Value = PunchKind> {
    proptest::sample::select(PunchKind::ALL)
}

pub fn raw_punch() -> impl Strategy<Value = RawPunch> {
    (
        parsed::<TenantId>("[A-Za-z0-9_-]{1,64}"),
        parsed::<GroupId>("[a-z0-9-]{1,32}"),
        parsed::<DeviceId>("[A-Za-z0-9_.-]{1,64}"),
        0..=RawPunch::MAX_SEQ,
        parsed::<CardId>("[0-9A-Za-z_-]{1,64}"),
        kind(),
        millis(),
        any::<i32>(),
        millis(),
        any::<String>(),
    )
        .prop_map(
            |(
                tenant_id,
                group,
                device_id,
                seq,
                card_id,
                kind,
                at,
                off,
                received_at,
                acceptor_id,
            )| {
                RawPunch {
                    punch_id: PunchId::derive(&tenant_id, &device_id, seq),
                    tenant_id,
                    group,
                    device_id,
                    seq,
                    card_id,
                    kind,
                    at,
                    at_offset_minutes: off,
                    received_at,
                    acceptor_id,
                }
            },
        )
}

pub fn checked_punch() -> impl Strategy<Value = CheckedPunch> {
    (
        raw_punch(),
        proptest::sample::select(Verdict::ALL),
        option::of(proptest::sample::select(RejectReason::ALL)),
        option::of(parsed::<EmployeeId>("[A-Za-z0-9_.-]{1,64}")),
        any::<i64>(),
        millis(),
    )
        .prop_map(|(raw, verdict, reason, employee, version, checked_at)| {
            CheckedPunch::from_raw(raw, verdict, reason, employee, version, checked_at)
        })
}

pub fn quarantined_input() -> impl Strategy<Value = QuarantinedInput> {
    (
        (
            millis(),
            any::<String>(),
            any::<String>(),
            any::<String>(),
            option::of(any::<String>()),
            option::of(any::<String>()),
            option::of(any::<String>()),
        ),
        (
            option::of(any::<i32>()),
            option::of(any::<i64>()),
            option::of(any::<String>()),
            vec(any::<u8>(), 0..300),
            any::<bool>(),
            any::<i64>(),
        ),
    )
        .prop_map(
            |(
                (received_at, source, error_code, error, tenant_id, device_id, origin_topic),
                (origin_partition, origin_offset, content_type, payload, truncated, size),
            )| QuarantinedInput {
                received_at,
                source,
                error_code,
                error,
                tenant_id,
                device_id,
                origin_topic,
                origin_partition,
                origin_offset,
                content_type,
                payload,
                payload_truncated: truncated,
                original_size: size,
            },
        )
}

pub fn attendance_day() -> impl Strategy<Value = AttendanceDay> {
    (
        (
            parsed::<TenantId>("[A-Za-z0-9_-]{1,64}"),
            parsed::<EmployeeId>("[A-Za-z0-9_.-]{1,64}"),
            MIN_DAYS..=MAX_DAYS,
            option::of(millis()),
            option::of(millis()),
        ),
        (
            any::<[i32; 5]>(),
            vec("[a-z_]{1,24}", 0..5),
            any::<i64>(),
            millis(),
        ),
        (
            any::<[Option<i64>; 7]>(),
            any::<bool>(),
            option::of(any::<i64>()),
        ),
    )
        .prop_map(
            |(
                (tenant_id, employee_id, work_date, first_in, last_out),
                ([worked, brk, night, overtime, count], anomalies, revision, computed_at),
                (seconds, corrected, rules_version),
            )| AttendanceDay {
                tenant_id,
                employee_id,
                work_date,
                first_in,
                last_out,
                worked_minutes: worked,
                break_minutes: brk,
                night_minutes: night,
                overtime_minutes: overtime,
                punch_count: count,
                anomalies,
                revision,
                computed_at,
                worked_seconds: seconds[0],
                break_seconds: seconds[1],
                night_seconds: seconds[2],
                holiday_seconds: seconds[3],
                overtime_daily_seconds: seconds[4],
                overtime_weekly_seconds: seconds[5],
                within_statutory_seconds: seconds[6],
                corrected,
                rules_version,
                correction_ids: if corrected {
                    vec!["6f1c2a10-7c55-4c1e-9a53-3f3a2d9e8b01".into()]
                } else {
                    Vec::new()
                },
            },
        )
}

pub fn monthly_attendance() -> impl Strategy<Value = MonthlyAttendance> {
    (
        (
            parsed::<TenantId>("[A-Za-z0-9_-]{1,64}"),
            parsed::<EmployeeId>("[A-Za-z0-9_.-]{1,64}"),
            "[0-9]{4}-(0[1-9]|1[0-2])",
            MIN_DAYS..=MAX_DAYS,
            MIN_DAYS..=MAX_DAYS,
            any::<[i32; 2]>(),
        ),
        any::<[i64; 15]>(),
        millis(),
    )
        .prop_map(
            |((tenant_id, employee_id, month, first_day, last_day, [days, anomalies]), n, at)| {
                MonthlyAttendance {
                    tenant_id,
                    employee_id,
                    month,
                    first_day,
                    last_day,
                    days_worked: days,
                    anomaly_days: anomalies,
                    worked_seconds: n[0],
                    break_seconds: n[1],
                    night_seconds: n[2],
                    holiday_seconds: n[3],
                    within_statutory_seconds: n[4],
                    overtime_seconds: n[5],
                    overtime_over60_seconds: n[6],
                    worked_minutes: n[7],
                    overtime_minutes: n[8],
                    overtime_over60_minutes: n[9],
                    night_minutes: n[10],
                    holiday_minutes: n[11],
                    rules_version: n[12],
                    revision: n[13],
                    computed_at: at,
                    record: if n[14] % 2 == 0 {
                        MonthlyRecordKind::Month
                    } else {
                        MonthlyRecordKind::Adjustment
                    },
                    adjustment_seq: (n[14] % 2 != 0).then_some(n[14].rem_euclid(1000) + 1),
                    export_month: (n[14] % 2 != 0).then(|| "2027-01".to_owned()),
                    causes: if n[14] % 2 != 0 {
                        vec![format!("rules:{}", n[12])]
                    } else {
                        Vec::new()
                    },
                }
            },
        )
}
