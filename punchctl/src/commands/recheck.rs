//! `punchctl recheck`: rejected punches (and with `--include-accepted` accepted ones too)
//! judged again with the master-data history as it is now (`dakoku_licence_check::recheck`),
//! the only path that changes a punch's verdict; with a progress bar and a summary.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use dakoku_kafka::ClientFactory;
use dakoku_licence_check::Snapshot;
use dakoku_licence_check::recheck::{self, RecheckRequest, RecheckSummary};
use dakoku_licence_check::verdicts::VerdictStore;
use dakoku_schemas::{GroupId, TenantId, Topic};
use dakoku_store::master::licences::LicenceError;

use crate::progress::{Bar, Summary, per_second};

/// `punchctl recheck`.
#[derive(Debug, Args)]
pub struct RecheckArgs {
    #[command(flatten)]
    pub scope: RecheckScope,
    /// Report what would change; publish nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Judge accepted punches again too, and publish a rejection for each that the history
    /// now rejects (e.g. a licence removed retroactively). Without it only rejected punches
    /// are judged again.
    #[arg(long)]
    pub include_accepted: bool,
    /// Longest wait for any one Kafka operation, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

/// Exactly one of a tenant or a group.
#[derive(Debug, Clone, Args)]
#[group(id = "scope", required = true, multiple = false)]
pub struct RecheckScope {
    /// Recheck one tenant's rejected punches (in its group's topic).
    #[arg(long)]
    pub tenant: Option<TenantId>,
    /// Recheck every rejected punch of a tenant group.
    #[arg(long)]
    pub group: Option<GroupId>,
}

/// Runs `punchctl recheck`; returns the summary (also written to `out`).
pub async fn run(
    args: RecheckArgs,
    kafka: &ClientFactory,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<RecheckSummary> {
    let mut report = Summary::start("recheck");
    let mut client = dakoku_store::connect(database_url).await?;
    let snapshot = Snapshot::load(&mut client)
        .await
        .map_err(LicenceError::from)
        .context("loading the master data")?;
    let group = match (&args.scope.tenant, args.scope.group) {
        (Some(tenant), _) => snapshot
            .tenant(tenant.as_str())
            .map(|t| t.group.clone())
            .ok_or_else(|| LicenceError::TenantNotFound(tenant.clone()))?,
        (None, Some(group)) => group,
        (None, None) => anyhow::bail!("give --tenant or --group"),
    };
    let request = RecheckRequest {
        brokers: kafka.brokers().to_owned(),
        group: group.clone(),
        tenant: args.scope.tenant.clone(),
        dry_run: args.dry_run,
        include_accepted: args.include_accepted,
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
    };
    let bar = Bar::new();
    let progress = bar.clone();
    let kafka = kafka.clone();
    let url = database_url.to_owned();
    let summary = tokio::task::spawn_blocking(move || {
        let verdicts = VerdictStore::connect(&url)?;
        recheck::recheck_with(&kafka, &request, &snapshot, Some(&verdicts), &progress)
            .map_err(anyhow::Error::from)
    })
    .await
    .context("the recheck task")??;
    bar.finish();
    let scope = match &args.scope.tenant {
        Some(tenant) => format!("tenant {tenant} (group {group})"),
        None => format!("group {group}"),
    };
    report.set_title(format!("recheck of {scope}"));
    summarise(&mut report, &summary, args.dry_run, &group);
    report.write(out)?;
    Ok(summary)
}

/// The summary's lines: what was scanned, what stays rejected, what is (or would be) accepted.
fn summarise(report: &mut Summary, summary: &RecheckSummary, dry_run: bool, group: &GroupId) {
    report.line("master-data version", summary.master_data_version);
    report.line(
        "scanned",
        format!(
            "{} verdicts of {} punches ({}/s){}",
            summary.records_scanned,
            summary.punches,
            per_second(summary.records_scanned, report.elapsed()),
            if summary.undecodable > 0 {
                format!(", {} undecodable records skipped", summary.undecodable)
            } else {
                String::new()
            }
        ),
    );
    report.line("already accepted", summary.already_accepted);
    let still: Vec<String> = summary
        .still_rejected
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    report.line(
        "still rejected",
        if still.is_empty() {
            "none".to_owned()
        } else {
            still.join(", ")
        },
    );
    if summary.now_rejected > 0 || !summary.rejected_punches.is_empty() {
        report.line("now rejected", summary.now_rejected);
        for punch in summary.rejected_punches.iter().take(20) {
            report.line("rejected now", punch);
        }
    }
    if dry_run {
        report.line(
            "now accepted",
            format!("{} (dry run: nothing published)", summary.now_accepted),
        );
        for punch in summary.accepted_punches.iter().take(20) {
            report.line("would accept", punch);
        }
        if summary.accepted_punches.len() > 20 {
            report.line(
                "would accept",
                format!("... and {} more", summary.accepted_punches.len() - 20),
            );
        }
    } else {
        report.line(
            "now accepted",
            format!(
                "{}; published {} new verdicts to {}",
                summary.now_accepted,
                summary.published,
                Topic::Checked(group.clone()).name()
            ),
        );
    }
}
