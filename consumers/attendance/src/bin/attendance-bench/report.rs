//! The report: per-round rates and their medians, printed to stdout.

use std::time::Duration;

use crate::args::{Args, Round};

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One round's rates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    /// Consumer, steady, records per second.
    pub(crate) consumer: f64,
    /// Bare insert of every record, per second.
    pub(crate) bare: f64,
    /// Bare insert of the distinct rows, per second.
    pub(crate) distinct: f64,
    /// COPY of the distinct rows, per second.
    pub(crate) copy: f64,
    /// Consumer including start-up, records per second.
    pub(crate) wall: f64,
    /// consumer / bare.
    pub(crate) ratio: f64,
}

pub(crate) fn report(args: &Args, rounds: &[Round], records: usize, distinct: usize) {
    let rate = |n: f64, d: Duration| n / d.as_secs_f64();
    let records_f = records as f64;
    let per_round: Vec<Rates> = rounds
        .iter()
        .map(|r| {
            let consumer = rate((records as i64 - r.first_records) as f64, r.steady);
            let bare = rate(records_f, r.bare);
            Rates {
                consumer,
                bare,
                distinct: rate(distinct as f64, r.bare_distinct),
                copy: rate(distinct as f64, r.copy),
                wall: rate(records_f, r.wall),
                ratio: consumer / bare,
            }
        })
        .collect();
    let col = |f: fn(&Rates) -> f64| median(per_round.iter().map(f).collect());
    println!(
        "attendance-bench ({} rounds, medians; per round below)",
        rounds.len()
    );
    println!(
        "  input: {records} records on {} partitions = {distinct} distinct punches + {} resends; \
         {} employees x {} days -> {} attendance days; batches of {}",
        args.partitions,
        records - distinct,
        args.employees,
        args.days,
        rounds.first().map_or(0, |r| r.days),
        args.batch_max_records
    );
    println!(
        "  attendance, topic -> committed days (steady):  {:>8.0} punches/s",
        col(|r| r.consumer)
    );
    println!(
        "  bare batched insert of the same records:      {:>8.0} punches/s  \
         (UNNEST, {} rows/tx, ON CONFLICT DO NOTHING for resends)",
        col(|r| r.bare),
        args.batch_max_records
    );
    println!(
        "  ratio attendance / bare (median of rounds):    {:>8.2}    (goal >= 0.5)",
        col(|r| r.ratio)
    );
    println!("  references:");
    println!(
        "    bare batched insert, distinct rows only:     {:>8.0} rows/s",
        col(|r| r.distinct)
    );
    println!(
        "    one COPY of the distinct rows:               {:>8.0} rows/s",
        col(|r| r.copy)
    );
    println!(
        "    attendance incl. start-up and group join:    {:>8.0} punches/s",
        col(|r| r.wall)
    );
    for (i, (r, m)) in rounds.iter().zip(&per_round).enumerate() {
        println!(
            "  round {}: attendance {:.0}/s (steady {:.2}s, wall {:.2}s), bare {:.0}/s ({:.2}s), \
             ratio {:.2}; distinct {:.2}s, COPY {:.2}s",
            i + 1,
            m.consumer,
            r.steady.as_secs_f64(),
            r.wall.as_secs_f64(),
            m.bare,
            r.bare.as_secs_f64(),
            m.ratio,
            r.bare_distinct.as_secs_f64(),
            r.copy.as_secs_f64()
        );
    }
}
