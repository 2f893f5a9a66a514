//! `punchctl device`: register a recorder and print its token, revoke it, list a tenant's.

use std::io::Write;

use chrono::Utc;
use clap::Subcommand;
use dakoku_schemas::{DeviceId, TenantId};
use dakoku_store::master::devices::{self, Revoked};
use dakoku_store::master::outcome::Added;
use dakoku_token::TokenKeys;

use crate::ops::token::{self, MAX_VALID_DAYS, TokenError};
use crate::output::{timestamp, write_table};

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a recorder and print a device token for it.
    ///
    /// Only the token goes to stdout (one line): `token=$(punchctl device add ...)`. Details go
    /// to stderr. Idempotent for a registered, live device: it issues a fresh token (use this to
    /// renew an expiring one). A revoked device is refused: register a new device id instead.
    Add {
        /// The tenant (must exist: `punchctl tenant add`).
        #[arg(long)]
        tenant: TenantId,
        /// The device id (1 to 64 characters [A-Za-z0-9_.-]).
        #[arg(long)]
        device: DeviceId,
        /// Days until the token expires.
        #[arg(long, default_value_t = 365,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VALID_DAYS)))]
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
        #[arg(long)]
        tenant: TenantId,
        /// The device id.
        #[arg(long)]
        device: DeviceId,
        /// Why, kept in the device's description as "[revoked: <reason>]".
        #[arg(long, default_value = "", hide_default_value = true)]
        reason: String,
    },
    /// List a tenant's devices as a table.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
    },
}

/// Runs `punchctl device ...`.
pub async fn run(
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
                .map_err(TokenError::from)?;
            let client = dakoku_store::connect(database_url).await?;
            let (added, stored) = devices::add_device(&client, &tenant, &device).await?;
            let issued = token::issue_token(&keys, &tenant, &device, valid_days, Utc::now())?;
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
            let client = dakoku_store::connect(database_url).await?;
            match devices::revoke_device(&client, &tenant, &device, &reason).await? {
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
            let client = dakoku_store::connect(database_url).await?;
            let devices = devices::list_devices(&client, &tenant).await?;
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
