//! The `admin-api` binary: serve (the default), or issue admin tokens and keys.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dakoku_admin_api::{AppState, Config, admin_keys};
use dakoku_schemas::TenantId;
use dakoku_token::{AdminClaims, MAX_ACTOR_CHARS, TokenKeys, valid_actor};

/// Dakoku's admin HTTP API: corrections, day view, anomaly queue, closing payroll months.
#[derive(Debug, Parser)]
#[command(
    name = "admin-api",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
    /// Log as JSON lines (for log shippers) instead of human-readable text.
    #[arg(long, env = "LOG_JSON")]
    log_json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (what `admin-api` with no subcommand does).
    Serve,
    /// Admin tokens and their keys.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print an admin token for one tenant and actor, signed with the first ADMIN_TOKEN_KEYS key.
    Issue {
        /// The tenant the token may administer (and no other).
        #[arg(long)]
        tenant: String,
        /// Who holds it; recorded as `api:<actor>` with every write.
        #[arg(long)]
        actor: String,
        /// Days until it expires.
        #[arg(long, default_value_t = 30)]
        ttl_days: u32,
        /// Admin-token keys, `<key id>:<base64 secret>[,...]`.
        #[arg(long, env = "ADMIN_TOKEN_KEYS", hide_env_values = true)]
        admin_token_keys: Option<String>,
    },
    /// Print a new random key entry `<key id>:<base64 secret>` for ADMIN_TOKEN_KEYS.
    NewKey {
        /// Its key id, `[A-Za-z0-9_-]{1,16}`.
        #[arg(long, default_value = "admin1")]
        key_id: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve) => serve(cli.config, cli.log_json).await,
        Some(Command::Token(command)) => token(command),
    }
}

async fn serve(config: Config, log_json: bool) -> anyhow::Result<()> {
    dakoku_service::init_tracing(log_json);
    config.validate()?;
    let keys = admin_keys(config.admin_token_keys.as_deref())?;
    let state = Arc::new(AppState::new(
        keys,
        config.retry_after_secs,
        config.max_body_bytes,
    ));
    dakoku_admin_api::connect(&state, &config)
        .await
        .context("starting admin-api")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    dakoku_admin_api::serve(
        state,
        listener,
        dakoku_service::shutdown_signal(),
        Duration::from_millis(config.drain_timeout_ms),
    )
    .await?;
    Ok(())
}

fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Issue {
            tenant,
            actor,
            ttl_days,
            admin_token_keys,
        } => {
            let keys = admin_keys(admin_token_keys.as_deref())?;
            let tenant: TenantId = tenant
                .parse()
                .map_err(|e| anyhow::anyhow!("--tenant {tenant:?}: {e}"))?;
            anyhow::ensure!(
                valid_actor(&actor),
                "--actor {actor:?}: use 1 to {MAX_ACTOR_CHARS} of A-Z a-z 0-9 . _ @ + -"
            );
            anyhow::ensure!(ttl_days > 0, "--ttl-days must be at least 1");
            let expires_at = chrono::Utc::now().timestamp() + i64::from(ttl_days) * 86_400;
            println!(
                "{}",
                keys.mint_admin(&AdminClaims {
                    tenant,
                    actor,
                    expires_at
                })
            );
        }
        TokenCommand::NewKey { key_id } => {
            let entry = TokenKeys::generate_entry(&key_id);
            TokenKeys::parse(&entry).map_err(|e| anyhow::anyhow!("--key-id {key_id:?}: {e}"))?;
            println!("{entry}");
        }
    }
    Ok(())
}
