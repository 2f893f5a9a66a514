//! Master data as effective-dated history, the pure part: what an employee's range, licence
//! grants and a tenant's licence say at an instant or on a work date, and how many seats are in
//! use. Shared by the writes here (seat accounting) and licence-check (verdicts as of `at`).
//!
//! Instants are ms since the epoch, `None` bounds are open. Rows are in recorded order (oldest
//! first); where rows overlap, the one recorded last holds.

use chrono::NaiveDate;

/// An employee's active range, `from <= at < until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActiveRange {
    /// Inclusive start; `None` = always was.
    pub from: Option<i64>,
    /// Exclusive end; `None` = open.
    pub until: Option<i64>,
}

impl ActiveRange {
    /// Whether `at` is in the range.
    pub fn contains(&self, at: i64) -> bool {
        self.from.is_none_or(|from| from <= at) && self.until.is_none_or(|until| at < until)
    }
}

/// One recorded licence grant (or revocation) of an employee over `range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Licensed (true) or not (false) on the range.
    pub granted: bool,
    /// Where it holds.
    pub range: ActiveRange,
}

/// An employee's grants in recorded order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(pub Vec<Grant>);

impl Grants {
    /// Whether the employee holds a licence at `at`: the last recorded grant covering `at`
    /// says so; none covering it means no.
    pub fn licensed_at(&self, at: i64) -> bool {
        self.0
            .iter()
            .rev()
            .find(|grant| grant.range.contains(at))
            .is_some_and(|grant| grant.granted)
    }

    /// The instants where [`Self::licensed_at`] may change.
    fn boundaries(&self) -> impl Iterator<Item = i64> + '_ {
        self.0
            .iter()
            .flat_map(|g| [g.range.from, g.range.until])
            .flatten()
    }
}

/// One recorded tenant licence: `seats` on the inclusive work dates `from..=until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicenceRow {
    /// Seats; 0 = no licence on these dates.
    pub seats: u32,
    /// First work date; `None` = open.
    pub valid_from: Option<NaiveDate>,
    /// Last work date, inclusive; `None` = open.
    pub valid_until: Option<NaiveDate>,
}

impl LicenceRow {
    /// Whether the row covers `date`.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.valid_from.is_none_or(|from| from <= date)
            && self.valid_until.is_none_or(|until| date <= until)
    }
}

/// A tenant's licence rows in recorded order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Licences(pub Vec<LicenceRow>);

impl Licences {
    /// The row in force on `date`: the last recorded one covering it.
    pub fn in_force_on(&self, date: NaiveDate) -> Option<&LicenceRow> {
        self.0.iter().rev().find(|row| row.covers(date))
    }

    /// Whether the tenant is licensed on the work date `date`.
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.in_force_on(date).is_some_and(|row| row.seats > 0)
    }

    /// Whether validity can depend on the date (else no work date needs computing): some row
    /// has a bound, or rows disagree.
    pub fn is_dated(&self) -> bool {
        self.0
            .iter()
            .any(|row| row.valid_from.is_some() || row.valid_until.is_some())
    }

    /// Validity when no row is dated: the last row's seats decide.
    pub fn valid_always(&self) -> bool {
        self.0.last().is_some_and(|row| row.seats > 0)
    }

    /// The row recorded last (the tenant's current terms), if any.
    pub fn latest(&self) -> Option<&LicenceRow> {
        self.0.last()
    }
}

/// The most employees licensed at once at any instant from `since` on, over the grants of
/// every employee of a tenant: seats in use are grants in force.
pub fn peak_licensed<'a>(
    employees: impl IntoIterator<Item = &'a Grants> + Clone,
    since: i64,
) -> u32 {
    let mut instants: Vec<i64> = employees
        .clone()
        .into_iter()
        .flat_map(Grants::boundaries)
        .filter(|at| *at > since)
        .collect();
    instants.push(since);
    instants.sort_unstable();
    instants.dedup();
    instants
        .iter()
        .map(|at| licensed_at(employees.clone(), *at))
        .max()
        .unwrap_or(0)
}

/// Employees licensed at `at`.
pub fn licensed_at<'a>(employees: impl IntoIterator<Item = &'a Grants>, at: i64) -> u32 {
    let count = employees.into_iter().filter(|g| g.licensed_at(at)).count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grant(granted: bool, from: Option<i64>, until: Option<i64>) -> Grant {
        Grant {
            granted,
            range: ActiveRange { from, until },
        }
    }

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 12, d).expect("date")
    }

    #[test]
    fn the_grant_recorded_last_holds_where_grants_overlap() {
        let grants = Grants(vec![
            grant(true, None, None),
            grant(false, Some(100), None),
            grant(true, Some(150), Some(160)),
        ]);
        assert!(grants.licensed_at(99));
        assert!(!grants.licensed_at(100));
        assert!(grants.licensed_at(150));
        assert!(!grants.licensed_at(160));
        assert!(!Grants::default().licensed_at(0), "no grant, no licence");
    }

    #[test]
    fn a_renewal_keeps_the_old_dates_valid_and_zero_seats_end_a_licence() {
        let row = |seats, from, until| LicenceRow {
            seats,
            valid_from: from,
            valid_until: until,
        };
        let licences = Licences(vec![
            row(5, Some(date(1)), Some(date(10))),
            row(5, Some(date(11)), Some(date(20))),
            row(0, Some(date(15)), None),
        ]);
        assert!(licences.valid_on(date(1)) && licences.valid_on(date(14)));
        assert!(!licences.valid_on(date(15)) && !licences.valid_on(date(30)));
        assert!(licences.is_dated());
        assert!(!Licences::default().valid_on(date(1)));
        assert!(!Licences::default().valid_always());
    }

    #[test]
    fn seats_in_use_are_grants_in_force() {
        let a = Grants(vec![grant(true, None, None), grant(false, Some(100), None)]);
        let b = Grants(vec![grant(true, Some(50), None)]);
        let c = Grants(vec![grant(true, Some(120), Some(130))]);
        assert_eq!(peak_licensed([&a, &b, &c], 0), 2);
        assert_eq!(peak_licensed([&a, &b, &c], 60), 2);
        assert_eq!(peak_licensed([&a, &b, &c], 100), 2);
        assert_eq!(peak_licensed([&a, &b], 100), 1);
        assert_eq!(licensed_at([&a, &b, &c], 125), 2);
    }

    fn arb_grants() -> impl Strategy<Value = Grants> {
        let bound = proptest::option::of(0i64..1_000);
        proptest::collection::vec((any::<bool>(), bound.clone(), bound), 0..6).prop_map(|rows| {
            Grants(
                rows.into_iter()
                    .map(|(granted, a, b)| {
                        let (from, until) = match (a, b) {
                            (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
                            other => other,
                        };
                        grant(granted, from, until)
                    })
                    .collect(),
            )
        })
    }

    proptest! {
        /// Appending a grant from `since` on never changes what held before `since`.
        #[test]
        fn a_grant_recorded_from_a_date_leaves_the_past_alone(
            grants in arb_grants(),
            since in 0i64..1_000,
            until in proptest::option::of(0i64..1_000),
            granted in any::<bool>(),
            at in 0i64..1_000,
        ) {
            let mut after = grants.clone();
            after.0.push(grant(granted, Some(since), until.map(|u| u.max(since))));
            if at < since {
                prop_assert_eq!(grants.licensed_at(at), after.licensed_at(at));
            }
        }

        /// The peak is the maximum over every instant (checked against a scan of all of them).
        #[test]
        fn the_peak_is_the_maximum_over_all_instants(
            employees in proptest::collection::vec(arb_grants(), 0..5),
            since in 0i64..1_000,
        ) {
            let brute = (since..1_001)
                .map(|at| licensed_at(&employees, at))
                .max()
                .unwrap_or(0);
            prop_assert_eq!(peak_licensed(&employees, since), brute);
        }
    }
}
