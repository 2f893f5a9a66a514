//! Checked-punch scenarios for the attendance tests: a tenant's realistic week (generated,
//! deterministic per seed), resends of it, and the oracle: the days expected from the pure
//! rules, independent of Postgres and of the consumer's batching.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context as _;
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, NaiveTime, TimeZone as _};
use chrono_tz::Tz;
use dakoku_rules::v2::{DayFigures, Punch, RuleVersion, Rulebook, compute};
use dakoku_schemas::{
    CardId, CheckedPunch, DeviceId, EmployeeId, GroupId, PunchId, PunchKind, TenantId, Verdict,
    VerdictKey,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};

use crate::database::TestDatabase;
use crate::master::TenantSeed;

/// `(tenant, employee, work date)`: the key of `attendance_days`.
pub type DayKey = (String, String, NaiveDate);

/// A tenant, its calendar and its employees' accepted punches.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The tenant.
    pub tenant: TenantId,
    /// Its group.
    pub group: GroupId,
    /// Its time zone.
    pub tz: Tz,
    /// Its day-change time.
    pub day_change: NaiveTime,
    /// `(employee, card)` pairs.
    pub employees: Vec<(EmployeeId, CardId)>,
    /// Distinct accepted verdicts, in the order a recorder would send them.
    pub punches: Vec<CheckedPunch>,
}

/// Master-data version the scenario's verdicts claim.
pub const SCENARIO_MDV: i64 = 10;

impl Scenario {
    /// A realistic week (from Monday `start`) of `employees` employees of `tenant` in Tokyo
    /// (day change 05:00), deterministic for a `seed`: day workers 9-18 with a lunch break,
    /// some overtime, night-shift workers 21:00-04:30 (crossing midnight, not the day change),
    /// weekends off, and the usual noise: a double tap, a forgotten clock-out, a break punched
    /// outside a span. Two recorders per tenant, each with its own sequence numbers.
    pub fn realistic_week(
        tenant: &str,
        group: &GroupId,
        employees: usize,
        start: NaiveDate,
        seed: u64,
    ) -> anyhow::Result<Self> {
        Self::generate(
            tenant,
            group,
            employees,
            start,
            7,
            seed,
            chrono_tz::Asia::Tokyo,
        )
    }

    /// Like [`Scenario::realistic_week`], over `days` days in time zone `tz`.
    pub fn generate(
        tenant: &str,
        group: &GroupId,
        employees: usize,
        start: NaiveDate,
        days: u32,
        seed: u64,
        tz: Tz,
    ) -> anyhow::Result<Self> {
        let tenant: TenantId = tenant.parse()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let staff: Vec<(EmployeeId, CardId)> = (0..employees)
            .map(|i| Ok((format!("E{i:04}").parse()?, format!("CARD{i:08X}").parse()?)))
            .collect::<anyhow::Result<_>>()?;
        let mut planned: Vec<Planned> = Vec::new();
        for e in 0..staff.len() {
            let night_worker = e % 5 == 4;
            for d in 0..days {
                let date = start + ChronoDuration::days(i64::from(d));
                let weekday = date.format("%u").to_string();
                if (weekday == "6" || weekday == "7") && !night_worker {
                    continue;
                }
                let mut day_punches = plan_day(&mut rng, tz, date, night_worker)?;
                add_noise(&mut day_punches, e + d as usize);
                planned.extend(day_punches.into_iter().map(|(kind, t)| Planned {
                    employee: e,
                    device: e % 2,
                    kind,
                    at: t,
                }));
            }
        }
        let punches = judged(&tenant, group, tz, &staff, planned)?;
        Ok(Self {
            tenant,
            group: group.clone(),
            tz,
            day_change: dakoku_rules::DEFAULT_DAY_CHANGE,
            employees: staff,
            punches,
        })
    }

    /// The tenant (with its calendar), a licence seat for each employee, and its employees
    /// licensed, as [`TenantSeed`] writes them.
    pub fn tenant_seed(&self) -> anyhow::Result<TenantSeed> {
        let seats = u32::try_from(self.employees.len())?;
        let mut seed = TenantSeed::new(self.tenant.as_str(), &self.group)
            .calendar(self.tz, self.day_change)
            .licence(seats);
        for (employee, card) in &self.employees {
            seed = seed.licensed(employee.as_str(), card.as_str());
        }
        Ok(seed)
    }

    /// Seeds [`Scenario::tenant_seed`]: what both licence-check and attendance read.
    pub async fn seed(&self, db: &TestDatabase) -> anyhow::Result<()> {
        self.tenant_seed()?.seed(db).await
    }

    /// The expected days of the scenario's punches (see [`expected_days`]).
    pub fn expected(&self) -> BTreeMap<DayKey, DayFigures> {
        expected_days(&self.punches, self.tz, self.day_change)
    }
}

/// One punch of the plan: whose, on which of the two recorders, what and when.
#[derive(Debug, Clone, Copy)]
struct Planned {
    employee: usize,
    device: usize,
    kind: PunchKind,
    at: i64,
}

/// One worker's punches on `date` before any noise: a day worker 9-18 with a lunch break and
/// some overtime, or a night worker 21:00-04:30 (crossing midnight, not the day change).
fn plan_day(
    rng: &mut StdRng,
    tz: Tz,
    date: NaiveDate,
    night_worker: bool,
) -> anyhow::Result<Vec<(PunchKind, i64)>> {
    let at = |h: u32, m: u32, s: u32, next_day: bool| -> anyhow::Result<i64> {
        let day = if next_day {
            date + ChronoDuration::days(1)
        } else {
            date
        };
        let local = day.and_hms_opt(h, m, s).context("valid local time")?;
        Ok(tz
            .from_local_datetime(&local)
            .earliest()
            .context("local time exists")?
            .timestamp_millis())
    };
    let jitter = |rng: &mut StdRng| rng.random_range(0..20u32);
    Ok(if night_worker {
        vec![
            (PunchKind::ClockIn, at(21, jitter(rng), 5, false)?),
            (PunchKind::BreakStart, at(1, jitter(rng), 0, true)?),
            (PunchKind::BreakEnd, at(1, 45 + jitter(rng) / 2, 0, true)?),
            (PunchKind::ClockOut, at(4, 30 + jitter(rng), 0, true)?),
        ]
    } else {
        let overtime = rng.random_range(0..3u32);
        vec![
            (PunchKind::ClockIn, at(8, 40 + jitter(rng), 12, false)?),
            (PunchKind::BreakStart, at(12, jitter(rng), 3, false)?),
            (PunchKind::BreakEnd, at(13, jitter(rng), 9, false)?),
            (
                PunchKind::ClockOut,
                at(18 + overtime, jitter(rng) * 2, 41, false)?,
            ),
        ]
    })
}

/// The usual noise, deterministic per employee and day (`which` = employee + day index): a
/// double tap, a forgotten clock-out, a break punched outside a span.
fn add_noise(day_punches: &mut Vec<(PunchKind, i64)>, which: usize) {
    match which % 11 {
        0 => {
            // Double tap on clock-in, 20 s later.
            let (kind, t) = day_punches[0];
            day_punches.insert(1, (kind, t + 20_000));
        }
        3 => {
            // Forgot to clock out.
            day_punches.pop();
        }
        7 => {
            // A stray break_end before the day starts.
            let (_, t) = day_punches[0];
            day_punches.insert(0, (PunchKind::BreakEnd, t - 600_000));
        }
        _ => {}
    }
}

/// The plan as accepted verdicts: two recorders per tenant, each numbering its punches in
/// time order with its own sequence numbers.
fn judged(
    tenant: &TenantId,
    group: &GroupId,
    tz: Tz,
    staff: &[(EmployeeId, CardId)],
    mut planned: Vec<Planned>,
) -> anyhow::Result<Vec<CheckedPunch>> {
    let devices: [DeviceId; 2] = ["PT-000001".parse()?, "PT-000002".parse()?];
    let mut seqs = [1000u64, 5000u64];
    planned.sort_by_key(|p| (p.at, p.device, p.employee));
    let mut punches = Vec::with_capacity(planned.len());
    for Planned {
        employee: e,
        device,
        kind,
        at,
    } in planned
    {
        let seq = seqs[device];
        seqs[device] += 1;
        let (employee, card) = &staff[e];
        punches.push(CheckedPunch {
            punch_id: PunchId::derive(tenant, &devices[device], seq),
            tenant_id: tenant.clone(),
            group: group.clone(),
            device_id: devices[device].clone(),
            seq,
            card_id: card.clone(),
            kind,
            at,
            at_offset_minutes: tz
                .offset_from_utc_datetime(
                    &DateTime::from_timestamp_millis(at)
                        .context("instant in range")?
                        .naive_utc(),
                )
                .fix_minutes(),
            received_at: at + 1_000,
            acceptor_id: "test-acceptor".into(),
            verdict: Verdict::Accepted,
            reason: None,
            employee_id: Some(employee.clone()),
            master_data_version: SCENARIO_MDV,
            checked_at: at + 2_000,
        });
    }
    Ok(punches)
}

/// A UTC offset in whole minutes.
trait FixMinutes {
    fn fix_minutes(&self) -> i32;
}

impl<O: chrono::Offset> FixMinutes for O {
    fn fix_minutes(&self) -> i32 {
        self.fix().local_minus_utc() / 60
    }
}

/// `punches` in a shuffled arrival order with about `ratio` (0.0-1.0 and beyond) resends, each
/// a copy with a later `received_at` and `checked_at` (a recorder resending, licence-check
/// judging it again with the same master data).
pub fn resent(punches: &[CheckedPunch], ratio: f64, seed: u64) -> Vec<CheckedPunch> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = punches.to_vec();
    let resends = (punches.len() as f64 * ratio).round() as usize;
    for i in 0..resends {
        let mut copy = punches[rng.random_range(0..punches.len())].clone();
        let later = 60_000 * (i as i64 + 1);
        copy.received_at += later;
        copy.checked_at += later;
        out.push(copy);
    }
    out.shuffle(&mut rng);
    out
}

/// The oracle: for each punch the latest verdict (by [`VerdictKey`]) decides; the accepted
/// ones of each employee go through the rules engine ([`dakoku_rules::v2::compute`]) with the
/// tenant's calendar (`tz`, `day_change`) and every other rule at its default, as a tenant
/// added without rules has them. Days where nothing counts are absent. Independent of
/// Postgres and of the consumer's batching.
pub fn expected_days(
    verdicts: &[CheckedPunch],
    tz: Tz,
    day_change: NaiveTime,
) -> BTreeMap<DayKey, DayFigures> {
    let mut latest: HashMap<PunchId, &CheckedPunch> = HashMap::new();
    for v in verdicts {
        let entry = latest.entry(v.punch_id).or_insert(v);
        if VerdictKey::of(v) > VerdictKey::of(entry) {
            *entry = v;
        }
    }
    let mut employees: BTreeMap<(String, String), Vec<Punch>> = BTreeMap::new();
    for v in latest.values() {
        if v.verdict != Verdict::Accepted {
            continue;
        }
        let Some(employee) = &v.employee_id else {
            continue;
        };
        employees
            .entry((v.tenant_id.to_string(), employee.to_string()))
            .or_default()
            .push(Punch {
                id: v.punch_id.as_uuid().to_string(),
                seq: v.seq,
                kind: v.kind,
                at: v.at.div_euclid(1000),
                added: false,
            });
    }
    let rules = rules_of(tz, day_change);
    let mut days = BTreeMap::new();
    for ((tenant, employee), punches) in employees {
        for (date, figures) in compute(&rules, &punches, &[]).days {
            if figures != DayFigures::default() {
                days.insert((tenant.clone(), employee.clone(), date), figures);
            }
        }
    }
    days
}

/// A tenant's rules as a tenant added with this calendar and no rules of its own has them.
pub fn rules_of(tz: Tz, day_change: NaiveTime) -> Rulebook {
    let first = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
    let version = RuleVersion {
        time_zone: tz,
        day_change,
        ..RuleVersion::defaults(first)
    };
    Rulebook::new(vec![(0, version)]).unwrap_or_else(|_| Rulebook::defaults())
}
