//! `punchctl intake`: pause or resume punch intake for a group, tenant or device, and list
//! the pauses.

use std::io::Write;

use clap::{Args, Subcommand};
use dakoku_schemas::{GroupId, TenantId};
use dakoku_store::master::pauses::{self, Pause, PauseTarget, Paused};

use crate::output::{human_duration, timestamp, write_table};

#[derive(Debug, Subcommand)]
pub enum IntakeCommand {
    /// Pause intake: the acceptor answers the target's recorders 503 with Retry-After.
    ///
    /// Recorders keep their punches and resend after the pause; nothing is lost. Pausing a
    /// paused target updates its retry-after and reason and keeps when and by whom it was
    /// paused. The acceptor picks the change up within moments (LISTEN/NOTIFY).
    Pause {
        #[command(flatten)]
        target: TargetArgs,
        /// Retry-After, in seconds (1 to 86400), that paused recorders are told to wait.
        /// Default: 300 for a new pause; re-pausing without it keeps the current value.
        #[arg(long, value_parser = clap::value_parser!(u32).range(
                  i64::from(pauses::MIN_RETRY_AFTER_SECONDS)..=i64::from(pauses::MAX_RETRY_AFTER_SECONDS)))]
        retry_after: Option<u32>,
        /// Why, shown by `punchctl intake status`. Re-pausing without it keeps the current one.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume intake (remove the pause); says so when the target was not paused.
    Resume {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// List every pause: scope, target, retry-after, since when, by whom and why.
    Status,
}

/// Exactly one pause target.
#[derive(Debug, Clone, Args)]
#[group(id = "target", required = true, multiple = false)]
pub struct TargetArgs {
    /// A tenant group: every tenant in it.
    #[arg(long)]
    pub group: Option<GroupId>,
    /// One tenant: all its devices.
    #[arg(long)]
    pub tenant: Option<TenantId>,
    /// One device, written <tenant>/<device>, e.g. acme/PT-000123.
    #[arg(long, value_parser = PauseTarget::parse_device, value_name = "TENANT/DEVICE")]
    pub device: Option<PauseTarget>,
}

impl TargetArgs {
    /// The one target given (clap enforces exactly one).
    pub fn target(self) -> anyhow::Result<PauseTarget> {
        match (self.group, self.tenant, self.device) {
            (Some(group), None, None) => Ok(PauseTarget::Group(group)),
            (None, Some(tenant), None) => Ok(PauseTarget::Tenant(tenant)),
            (None, None, Some(device)) => Ok(device),
            _ => anyhow::bail!("give exactly one of --group, --tenant, --device"),
        }
    }
}

/// Runs `punchctl intake ...`.
pub async fn run(
    command: IntakeCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = dakoku_store::connect(database_url).await?;
    match command {
        IntakeCommand::Pause {
            target,
            retry_after,
            reason,
        } => {
            let target = target.target()?;
            let paused = pauses::pause(
                &mut client,
                &target,
                retry_after,
                reason.as_deref(),
                &operator(),
            )
            .await?;
            write_paused(out, &target, &paused)?;
        }
        IntakeCommand::Resume { target } => {
            let target = target.target()?;
            match pauses::resume(&mut client, &target).await? {
                Some(p) => writeln!(
                    out,
                    "resumed {target} (was paused for {} by {})",
                    human_duration(p.paused_for),
                    p.paused_by
                )?,
                None => writeln!(out, "{target} was not paused; nothing to resume")?,
            }
        }
        IntakeCommand::Status => {
            let pauses = pauses::status(&client).await?;
            write_status(out, &pauses)?;
        }
    }
    Ok(())
}

/// What `intake pause` did, in a sentence.
fn write_paused(
    out: &mut (dyn Write + Send),
    target: &PauseTarget,
    paused: &Paused,
) -> std::io::Result<()> {
    match paused {
        Paused::New(p) => writeln!(
            out,
            "paused {target}: recorders get 503 with Retry-After {}s{}",
            p.retry_after_seconds,
            reason_note(&p.reason)
        ),
        Paused::Updated { before, after } => writeln!(
            out,
            "updated pause of {target}: Retry-After {}s -> {}s{}; paused since {} by {}",
            before.retry_after_seconds,
            after.retry_after_seconds,
            if before.reason == after.reason {
                String::new()
            } else {
                format!(", reason {:?} -> {:?}", before.reason, after.reason)
            },
            timestamp(after.paused_at),
            after.paused_by
        ),
        Paused::Unchanged(p) => writeln!(
            out,
            "{target}: unchanged, already paused with Retry-After {}s since {} by {}",
            p.retry_after_seconds,
            timestamp(p.paused_at),
            p.paused_by
        ),
    }
}

/// Every pause as a table, or "no pauses".
fn write_status(out: &mut (dyn Write + Send), pauses: &[Pause]) -> std::io::Result<()> {
    if pauses.is_empty() {
        writeln!(out, "no pauses")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = pauses
        .iter()
        .map(|p| {
            vec![
                p.scope.to_string(),
                p.target.clone(),
                format!("{}s", p.retry_after_seconds),
                format!(
                    "{} ({} ago)",
                    timestamp(p.paused_at),
                    human_duration(p.paused_for)
                ),
                p.paused_by.clone(),
                p.reason.clone(),
            ]
        })
        .collect();
    write_table(
        out,
        &["SCOPE", "TARGET", "RETRY-AFTER", "SINCE", "BY", "REASON"],
        &rows,
    )
}

fn reason_note(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" (reason: {reason})")
    }
}

/// Who runs the command, for `paused_by`: `$USER`, else "punchctl".
fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|user| !user.trim().is_empty())
        .unwrap_or_else(|| "punchctl".to_owned())
}
