//! The command line: the clap tree of verbs (each verb's flags live with it in
//! [`crate::commands`]) and the dispatcher.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dakoku_kafka::KafkaArgs;

use crate::commands::{
    anomalies, attendance, audit, close, correct, db, device, employee, intake, lag, licence,
    payroll, rebuild, recheck, reopen, replay, rules, tenant, topics,
};

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
    /// Where Kafka is (`--brokers`/`KAFKA_BROKERS`) and its client properties.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Postgres connection URL.
    #[arg(long, global = true, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Kafka topics of tenant groups.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// The Postgres schema.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Tenants: who sends punches, their group (topics), time zone and day change.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Recorders (devices) of a tenant and their tokens.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// Pause or resume punch intake for a group, tenant or device.
    #[command(subcommand)]
    Intake(intake::IntakeCommand),
    /// Employees of a tenant: cards, active ranges, licence seats.
    #[command(subcommand)]
    Employee(employee::EmployeeCommand),
    /// A tenant's licence: seats and the work dates it is valid on.
    #[command(subcommand)]
    Licence(licence::LicenceCommand),
    /// Work rules of a tenant, effective-dated: what attendance computes figures with.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Re-run the licence check of rejected punches after master data is fixed; publishes
    /// an accepted verdict for each that passes now. Idempotent.
    Recheck(recheck::RecheckArgs),
    /// Attendance: one employee's stored day with its punches and corrections (`show`); the
    /// rules engine on files (`compute`).
    #[command(subcommand)]
    Attendance(attendance::AttendanceCommand),
    /// Corrections of an employee's punches: add a missing punch, void a wrong one (appended
    /// to the corrections topic; the raw log is never edited).
    #[command(subcommand)]
    Correct(correct::CorrectCommand),
    /// The anomaly queue of a tenant's payroll month: days with missing or unclosed punches
    /// or short breaks, oldest first, with the punches around them.
    Anomalies(anomalies::AnomaliesArgs),
    /// Close a tenant's payroll month: freeze each employee's monthly record as paid. Later
    /// changes to its days are published and exported as adjustments. Exit status 2 if it is
    /// already closed.
    Close(close::CloseArgs),
    /// Reopen a closed payroll month (a reason is required): the paid figures and pending
    /// adjustments are dropped and the month is published again whole. Exit status 2 if it
    /// is not closed.
    Reopen(reopen::ReopenArgs),
    /// Payroll: a tenant's payroll month as CSV, from the monthly attendance records.
    #[command(subcommand)]
    Payroll(payroll::PayrollCommand),
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
    Audit(audit::AuditArgs),
    /// Consumer lag per tenant group and partition, and the oldest unprocessed record's age.
    ///
    /// licence-check's positions are its Kafka commits on punches.raw.<group>; attendance's
    /// are its Postgres `consumer_offsets` on punches.checked.<group> (the offsets it really
    /// resumes from). Lag is in offsets; a partition where only transaction markers remain is
    /// caught up (lag 0).
    ///
    /// Exit status: 0, or 1 when --max-lag or --max-age is exceeded or a group's topics are
    /// missing (run it from cron), 2 when Kafka or Postgres cannot be read.
    Lag(lag::LagArgs),
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
    Replay(replay::ReplayArgs),
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
    Rebuild(rebuild::RebuildArgs),
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
    let Connection {
        kafka: kafka_args,
        database_url: db_url,
    } = cli.connection;
    // Built only by the verbs that talk to Kafka: a properties file that cannot be read must
    // not stop the master-data verbs.
    let kafka = || kafka_args.factory();
    match cli.command {
        Command::Topics(command) => topics::run(command, &kafka()?, out).await?,
        Command::Db(command) => db::run(command, &db_url, out).await?,
        Command::Tenant(command) => tenant::run(command, &db_url, out).await?,
        Command::Device(command) => device::run(command, &db_url, out, err).await?,
        Command::Intake(command) => intake::run(command, &db_url, out).await?,
        Command::Employee(command) => employee::run(command, &db_url, out).await?,
        Command::Licence(command) => licence::run(command, &db_url, out).await?,
        Command::Rules(command) => rules::run(command, &db_url, out).await?,
        Command::Recheck(args) => {
            recheck::run(args, &kafka()?, &db_url, out).await?;
        }
        Command::Attendance(command) => {
            return attendance::run(command, &kafka_args, &db_url, out, err).await;
        }
        Command::Correct(command) => {
            return correct::run(command, &kafka_args, &db_url, out, err).await;
        }
        Command::Anomalies(args) => {
            return anomalies::run(args, &kafka_args, &db_url, out, err).await;
        }
        Command::Close(args) => return close::run(args, &kafka_args, &db_url, out, err).await,
        Command::Reopen(args) => return reopen::run(args, &kafka_args, &db_url, out, err).await,
        Command::Payroll(command) => payroll::run(command, &db_url, out, err).await?,
        Command::Audit(args) => return audit::run(args, &kafka()?, &db_url, out, err).await,
        Command::Lag(args) => return lag::run(args, &kafka()?, &db_url, out, err).await,
        Command::Replay(args) => {
            replay::run(args, &kafka()?, &db_url, out).await?;
        }
        Command::Rebuild(args) => {
            rebuild::run(args, &kafka()?, &db_url, out).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
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
