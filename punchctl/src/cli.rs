//! The command line: verbs, flags and the dispatcher.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{NaiveTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};
use dakoku_ingest_api::token::TokenKeys;
use dakoku_schemas::{DeviceId, GroupId, TenantId};

use crate::intake::{self, PauseTarget, Paused};
use crate::master::{self, Added, NewTenant, Revoked};
use crate::topics::{Outcome, TopicSettings, Topics};

/// Operate a Dakoku installation: topics, schema, master data, intake, replay and audit.
#[derive(Debug, Parser)]
#[command(name = "punchctl", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

/// Where Kafka and Postgres are.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    /// Postgres connection URL.
    #[arg(long, global = true, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Kafka topics of tenant groups.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// The Postgres schema.
    #[command(subcommand)]
    Db(DbCommand),
    /// Tenants: who sends punches, their group (topics), time zone and day change.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Recorders (devices) of a tenant and their tokens.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Pause or resume punch intake for a group, tenant or device.
    #[command(subcommand)]
    Intake(IntakeCommand),
    /// Employees of a tenant: cards, active ranges, licence seats.
    #[command(subcommand)]
    Employee(crate::licence_cli::EmployeeCommand),
    /// A tenant's licence: seats and the work dates it is valid on.
    #[command(subcommand)]
    Licence(crate::licence_cli::LicenceCommand),
    /// Re-run the licence check of rejected punches after master data is fixed; publishes
    /// an accepted verdict for each that passes now. Idempotent.
    Recheck(crate::licence_cli::RecheckArgs),
    /// Payroll: a tenant's month of attendance as CSV.
    #[command(subcommand)]
    Payroll(crate::payroll::PayrollCommand),
    /// Audit a tenant group: raw log vs verdicts vs stored punches vs attendance days.
    ///
    /// Reports, per stage, punches missing, doubled or unexpected, and attendance days whose
    /// stored figures differ from a recomputation with the attendance rules, with examples.
    /// Stages: raw -> checked (every raw punch has its licence verdicts, none judged twice),
    /// checked -> Postgres `punches` (the latest verdict decides whether a punch counts), and
    /// `attendance_days` (recomputed from the stored punches).
    ///
    /// The audit reads what was committed when it began: Postgres in one snapshot, the topics
    /// read_committed up to their ends at the start. Punches a consumer has not reached yet are
    /// counted as not yet judged, never as missing, so it is safe under live traffic.
    ///
    /// Exit status: 0 clean, 1 something is off (run it from cron), 2 the audit could not run
    /// (Kafka or Postgres unreachable, a topic missing, bad flags).
    Audit(crate::audit::AuditArgs),
    /// Consumer lag per tenant group and partition, and the oldest unprocessed record's age.
    ///
    /// licence-check's positions are its Kafka commits on punches.raw.<group>; attendance's
    /// are its Postgres `consumer_offsets` on punches.checked.<group> (the offsets it really
    /// resumes from). Lag is in offsets; a partition where only transaction markers remain is
    /// caught up (lag 0).
    ///
    /// Exit status: 0, or 1 when --max-lag or --max-age is exceeded or a group's topics are
    /// missing (run it from cron), 2 when Kafka or Postgres cannot be read.
    Lag(crate::lag::LagArgs),
    /// Move a consumer group of a tenant group back to the start of its log or to a moment;
    /// the consumer processes those records again when it next starts.
    ///
    /// licence-check (offsets in its Kafka group licence-check.<group>) then publishes one more
    /// verdict per raw record read again; attendance (offsets in Postgres consumer_offsets,
    /// rewritten here) finds every punch stored and changes nothing. A partition never moves
    /// forward, so nothing unprocessed is skipped. `--dry-run` shows each partition's current
    /// and new offset and the records to process again.
    ///
    /// Refused while the consumer group has live members; the error names them. Stop the
    /// consumer first (every process running that group). A stopped licence-check instance
    /// stays a member until its session timeout (45 s by default): it uses static membership.
    Replay(crate::replay::ReplayArgs),
    /// Recompute the attendance projection of a group (or one tenant) from the log, and wait
    /// until it has caught up with the log's end at the start.
    ///
    /// Clears the scope's punches, replays punches.checked.<group> from the beginning with the
    /// attendance consumer's own code (in this process, with a progress bar), then recomputes
    /// every day once: unchanged days keep their rows exactly, changed ones get a new revision,
    /// which the attendance service publishes when it starts. `--dry-run` shows what would be
    /// cleared and replayed.
    ///
    /// Refused while the attendance consumer group has live members: stop the attendance
    /// service of the group first, and start it again afterwards.
    Rebuild(crate::rebuild::RebuildArgs),
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a tenant group's topics (raw, checked, attendance.daily) and the shared
    /// quarantine topic. Idempotent: existing topics are reported and left unchanged.
    Create {
        /// The tenant group ([a-z0-9-]{1,32}); repeat for several groups.
        #[arg(long = "group", required = true, value_parser = parse_group)]
        groups: Vec<GroupId>,
        /// Partitions per topic (consumers of a group scale up to this many).
        #[arg(long, default_value_t = TopicSettings::default().partitions)]
        partitions: i32,
        /// Replicas per partition (1 locally, 3 in production).
        #[arg(long, default_value_t = TopicSettings::default().replication_factor)]
        replication_factor: i32,
        /// retention.ms of the raw, checked and quarantine topics; -1 keeps everything.
        #[arg(long, default_value_t = TopicSettings::default().retention_ms, allow_negative_numbers = true)]
        retention_ms: i64,
    },
    /// List Dakoku's topics on the broker with their partition counts.
    List,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (safe to run concurrently and repeatedly).
    Migrate,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a tenant (and its group, when new).
    ///
    /// Idempotent: the same tenant again reports "unchanged" and writes nothing. A tenant that
    /// exists with other values is refused, naming the fields that differ; nothing is changed.
    /// The group's topics are created separately: `punchctl topics create --group <group>`.
    Add {
        /// The tenant id (1 to 64 characters [A-Za-z0-9_-]).
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The tenant group ([a-z0-9-]{1,32}); created when missing.
        #[arg(long, value_parser = parse_group)]
        group: GroupId,
        /// IANA time zone of the tenant's work dates, e.g. Asia/Tokyo, Europe/Berlin.
        #[arg(long, default_value = "Asia/Tokyo", value_parser = parse_time_zone)]
        time_zone: Tz,
        /// Local time (HH:MM) at which a work date starts; punches before it belong to the
        /// previous work date.
        #[arg(long, default_value = "05:00", value_parser = parse_day_change)]
        day_change: NaiveTime,
    },
    /// List tenants as a table.
    List {
        /// Only the tenants of this group.
        #[arg(long, value_parser = parse_group)]
        group: Option<GroupId>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a recorder and print a device token for it.
    ///
    /// Only the token goes to stdout (one line): `token=$(punchctl device add ...)`. Details go
    /// to stderr. Idempotent for a registered, live device: it issues a fresh token (use this to
    /// renew an expiring one). A revoked device is refused: register a new device id instead.
    Add {
        /// The tenant (must exist: `punchctl tenant add`).
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
        /// The device id (1 to 64 characters [A-Za-z0-9_.-]).
        #[arg(long, value_parser = parse_device)]
        device: DeviceId,
        /// Days until the token expires.
        #[arg(long, default_value_t = 365,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(master::MAX_VALID_DAYS)))]
        valid_days: u32,
        /// Token signing keys, `<key id>:<base64 secret>[,...]`; the first one signs. Must be
        /// the acceptor's keys (the local stack's: `eval "$(scripts/stack env)"`).
        #[arg(long, env = "DAKOKU_TOKEN_KEYS", hide_env_values = true)]
        token_keys: Option<String>,
    },
    /// Revoke a recorder: its tokens are refused (403) once acceptors reload master data.
    ///
    /// Idempotent. A revoked device id is never reactivated.
    Revoke {
        /// The tenant.
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
        /// The device id.
        #[arg(long, value_parser = parse_device)]
        device: DeviceId,
        /// Why, kept in the device's description as "[revoked: <reason>]".
        #[arg(long, default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// List a tenant's devices as a table.
    List {
        /// The tenant.
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
    },
}

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
                  i64::from(intake::MIN_RETRY_AFTER_SECONDS)..=i64::from(intake::MAX_RETRY_AFTER_SECONDS)))]
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
    #[arg(long, value_parser = parse_group)]
    pub group: Option<GroupId>,
    /// One tenant: all its devices.
    #[arg(long, value_parser = parse_tenant)]
    pub tenant: Option<TenantId>,
    /// One device, written <tenant>/<device>, e.g. acme/PT-000123.
    #[arg(long, value_parser = parse_device_target, value_name = "TENANT/DEVICE")]
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

fn parse_group(s: &str) -> Result<GroupId, String> {
    s.parse::<GroupId>().map_err(|e| e.to_string())
}

fn parse_tenant(s: &str) -> Result<TenantId, String> {
    s.parse::<TenantId>().map_err(|e| e.to_string())
}

fn parse_device(s: &str) -> Result<DeviceId, String> {
    s.parse::<DeviceId>().map_err(|e| e.to_string())
}

fn parse_device_target(s: &str) -> Result<PauseTarget, String> {
    PauseTarget::parse_device(s).map_err(|e| e.to_string())
}

fn parse_time_zone(s: &str) -> Result<Tz, String> {
    master::parse_time_zone(s).map_err(|e| e.to_string())
}

fn parse_day_change(s: &str) -> Result<NaiveTime, String> {
    master::parse_day_change(s).map_err(|e| e.to_string())
}

/// Writes `rows` under `headers` as left-aligned columns separated by two spaces.
pub(crate) fn write_table(
    out: &mut dyn Write,
    headers: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&mut headers.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

fn timestamp(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Who runs the command, for `paused_by`: `$USER`, else "punchctl".
fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|user| !user.trim().is_empty())
        .unwrap_or_else(|| "punchctl".to_owned())
}

async fn connect_db(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    Ok(dakoku_store::connect(url).await?)
}

/// Runs one command, printing to stdout and stderr; the exit code tells scripts whether
/// something needs attention.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    run_with_output(cli, &mut std::io::stdout(), &mut std::io::stderr()).await
}

/// Runs one command, writing its output (what scripts capture) to `out` and human notes to
/// `err`; tests pass buffers.
pub async fn run_with_output(
    cli: Cli,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let conn = cli.connection;
    match cli.command {
        Command::Topics(TopicsCommand::Create {
            groups,
            partitions,
            replication_factor,
            retention_ms,
        }) => {
            let settings = TopicSettings {
                partitions,
                replication_factor,
                retention_ms,
            };
            let topics = Topics::connect(&conn.brokers)?;
            for group in &groups {
                let outcomes = topics
                    .create_for_group(group, &settings)
                    .await
                    .with_context(|| format!("creating the topics of group {group}"))?;
                for (topic, outcome) in outcomes {
                    let what = match outcome {
                        Outcome::Created => format!("created ({partitions} partitions)"),
                        Outcome::Exists { partitions } => {
                            format!("exists ({partitions} partitions, unchanged)")
                        }
                    };
                    writeln!(out, "{:<40} {what}", topic.name())?;
                }
            }
        }
        Command::Topics(TopicsCommand::List) => {
            let topics = Topics::connect(&conn.brokers)?;
            for (topic, partitions) in topics.list()? {
                writeln!(out, "{:<40} {partitions} partitions", topic.name())?;
            }
        }
        Command::Db(DbCommand::Migrate) => {
            let migrated = crate::db::migrate(&conn.database_url)
                .await
                .with_context(|| {
                    format!("migrating {}", dakoku_store::redact(&conn.database_url))
                })?;
            for name in &migrated.applied {
                writeln!(out, "applied {name}")?;
            }
            let version = migrated
                .current_version
                .map_or_else(|| "none".to_owned(), |v| v.to_string());
            if migrated.applied.is_empty() {
                writeln!(out, "schema up to date (version {version})")?;
            } else {
                writeln!(out, "schema at version {version}")?;
            }
        }
        Command::Tenant(command) => tenant(command, &conn.database_url, out).await?,
        Command::Device(command) => device(command, &conn.database_url, out, err).await?,
        Command::Intake(command) => intake(command, &conn.database_url, out).await?,
        Command::Employee(command) => {
            crate::licence_cli::employee(command, &conn.database_url, out).await?;
        }
        Command::Licence(command) => {
            crate::licence_cli::licence(command, &conn.database_url, out).await?;
        }
        Command::Recheck(args) => {
            crate::licence_cli::recheck(args, &conn.brokers, &conn.database_url, out).await?;
        }
        Command::Payroll(command) => {
            let client = connect_db(&conn.database_url).await?;
            crate::payroll::run(command, &client, out, err).await?;
        }
        Command::Audit(args) => {
            return crate::audit::command(args, &conn.brokers, &conn.database_url, out, err).await;
        }
        Command::Lag(args) => {
            return crate::lag::command(args, &conn.brokers, &conn.database_url, out, err).await;
        }
        Command::Replay(args) => {
            crate::replay::run(args, &conn.brokers, &conn.database_url, out).await?;
        }
        Command::Rebuild(args) => {
            crate::rebuild::run(args, &conn.brokers, &conn.database_url, out).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn tenant(
    command: TenantCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = connect_db(database_url).await?;
    match command {
        TenantCommand::Add {
            tenant,
            name,
            group,
            time_zone,
            day_change,
        } => {
            let new = NewTenant {
                tenant,
                name,
                group,
                time_zone,
                day_change,
            };
            let added = master::add_tenant(&mut client, &new).await?;
            let stored = &added.tenant;
            writeln!(
                out,
                "tenant {}: {} (group {}, time zone {}, day change {})",
                stored.tenant,
                added.outcome,
                stored.group,
                stored.time_zone,
                stored.day_change.format("%H:%M")
            )?;
            if added.group_created {
                writeln!(
                    out,
                    "group {0}: created; create its topics with `punchctl topics create --group {0}`",
                    stored.group
                )?;
            }
        }
        TenantCommand::List { group } => {
            let tenants = master::list_tenants(&client, group.as_ref()).await?;
            if tenants.is_empty() {
                writeln!(out, "no tenants")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = tenants
                .iter()
                .map(|t| {
                    vec![
                        t.tenant.to_string(),
                        t.group.to_string(),
                        t.time_zone.clone(),
                        t.day_change.format("%H:%M").to_string(),
                        timestamp(t.created_at),
                        t.name.clone(),
                    ]
                })
                .collect();
            write_table(
                out,
                &[
                    "TENANT",
                    "GROUP",
                    "TIME ZONE",
                    "DAY CHANGE",
                    "CREATED",
                    "NAME",
                ],
                &rows,
            )?;
        }
    }
    Ok(())
}

async fn device(
    command: DeviceCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Add {
            tenant,
            device,
            valid_days,
            token_keys,
        } => {
            // Keys first: a missing key must not leave a device registered without a token.
            let keys = TokenKeys::parse(token_keys.as_deref().unwrap_or_default())
                .map_err(master::TokenError::from)?;
            let client = connect_db(database_url).await?;
            let (added, stored) = master::add_device(&client, &tenant, &device).await?;
            let issued = master::issue_token(&keys, &tenant, &device, valid_days, Utc::now())?;
            let expires = chrono::DateTime::from_timestamp(issued.claims.expires_at, 0)
                .map_or_else(|| issued.claims.expires_at.to_string(), timestamp);
            let what = match added {
                Added::Created => "registered",
                Added::Unchanged => "already registered, token re-issued",
            };
            writeln!(
                err,
                "device {}/{}: {what} (since {}); token signed with key {}, expires {expires}",
                stored.tenant,
                stored.device,
                timestamp(stored.created_at),
                issued.key_id
            )?;
            writeln!(out, "{}", issued.token)?;
        }
        DeviceCommand::Revoke {
            tenant,
            device,
            reason,
        } => {
            let client = connect_db(database_url).await?;
            match master::revoke_device(&client, &tenant, &device, &reason).await? {
                Revoked::Now(d) => writeln!(
                    out,
                    "device {}/{}: revoked at {}; acceptors refuse its tokens once they reload master data",
                    d.tenant,
                    d.device,
                    d.revoked_at.map(timestamp).unwrap_or_default()
                )?,
                Revoked::Already(d) => writeln!(
                    out,
                    "device {}/{}: unchanged, already revoked at {}",
                    d.tenant,
                    d.device,
                    d.revoked_at.map(timestamp).unwrap_or_default()
                )?,
            }
        }
        DeviceCommand::List { tenant } => {
            let client = connect_db(database_url).await?;
            let devices = master::list_devices(&client, &tenant).await?;
            if devices.is_empty() {
                writeln!(out, "no devices for tenant {tenant}")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = devices
                .iter()
                .map(|d| {
                    vec![
                        d.device.to_string(),
                        timestamp(d.created_at),
                        d.revoked_at.map_or_else(|| "-".to_owned(), timestamp),
                        d.description.clone(),
                    ]
                })
                .collect();
            write_table(out, &["DEVICE", "CREATED", "REVOKED", "DESCRIPTION"], &rows)?;
        }
    }
    Ok(())
}

async fn intake(
    command: IntakeCommand,
    database_url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = connect_db(database_url).await?;
    match command {
        IntakeCommand::Pause {
            target,
            retry_after,
            reason,
        } => {
            let target = target.target()?;
            match intake::pause(
                &mut client,
                &target,
                retry_after,
                reason.as_deref(),
                &operator(),
            )
            .await?
            {
                Paused::New(p) => writeln!(
                    out,
                    "paused {target}: recorders get 503 with Retry-After {}s{}",
                    p.retry_after_seconds,
                    reason_note(&p.reason)
                )?,
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
                )?,
                Paused::Unchanged(p) => writeln!(
                    out,
                    "{target}: unchanged, already paused with Retry-After {}s since {} by {}",
                    p.retry_after_seconds,
                    timestamp(p.paused_at),
                    p.paused_by
                )?,
            }
        }
        IntakeCommand::Resume { target } => {
            let target = target.target()?;
            match intake::resume(&mut client, &target).await? {
                Some(p) => writeln!(
                    out,
                    "resumed {target} (was paused for {} by {})",
                    intake::human_duration(p.paused_for),
                    p.paused_by
                )?,
                None => writeln!(out, "{target} was not paused; nothing to resume")?,
            }
        }
        IntakeCommand::Status => {
            let pauses = intake::status(&client).await?;
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
                            intake::human_duration(p.paused_for)
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
            )?;
        }
    }
    Ok(())
}

fn reason_note(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" (reason: {reason})")
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
