//! Corrections (§4.6): administrators add punches and void punches (raw ones or added ones);
//! attendance computes from the accepted raw punches plus the added less the voided.

use std::collections::{HashMap, HashSet};

use crate::v2::{Punch, PunchKind, first_of_each};

/// What a correction does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CorrectionAction {
    /// Adds a punch, which joins pairing like a raw one (`punch_id` = the correction's id,
    /// `seq` 0).
    Add {
        /// What was punched.
        kind: PunchKind,
        /// Unix seconds.
        at: i64,
    },
    /// Voids a raw punch (by `punch_id`) or an added one (by its correction's id).
    Void {
        /// The id voided.
        target: String,
    },
}

/// One administrator's correction, as far as the rules care.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Correction {
    /// `correction_id`.
    pub id: String,
    /// What it does.
    pub action: CorrectionAction,
}

/// Punches and corrections applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Raw and added punches that are not voided, one per id.
    pub punches: Vec<Punch>,
    /// The punches voided, each with the ids of the corrections voiding it (its own work date
    /// is `corrected` and lists them).
    pub voided: Vec<(Punch, Vec<String>)>,
    /// Voids whose target is no punch here: (correction id, target).
    pub unknown: Vec<(String, String)>,
}

/// Applies `corrections` to `punches`; the first of each punch id and of each correction id
/// stands.
pub fn apply(punches: &[Punch], corrections: &[Correction]) -> Applied {
    let corrections = first_of_each(corrections, |c| &c.id);
    let mut all = first_of_each(punches, |p| &p.id);
    let raw_ids: HashSet<String> = all.iter().map(|p| p.id.clone()).collect();
    for c in &corrections {
        if let CorrectionAction::Add { kind, at } = c.action
            && !raw_ids.contains(&c.id)
        {
            all.push(Punch {
                id: c.id.clone(),
                seq: 0,
                kind,
                at,
                added: true,
            });
        }
    }
    let index: HashMap<&str, usize> = all
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let mut voided: Vec<Vec<String>> = vec![Vec::new(); all.len()];
    let mut unknown = Vec::new();
    for c in &corrections {
        if let CorrectionAction::Void { target } = &c.action {
            match index.get(target.as_str()) {
                Some(&i) => voided[i].push(c.id.clone()),
                None => unknown.push((c.id.clone(), target.clone())),
            }
        }
    }
    let mut out = Applied {
        unknown,
        ..Applied::default()
    };
    for (punch, voids) in all.into_iter().zip(voided) {
        if !voids.is_empty() {
            out.voided.push((punch, voids));
        } else {
            out.punches.push(punch);
        }
    }
    out
}
