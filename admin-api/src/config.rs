//! The server's configuration: one typed struct read from flags and the environment.

use std::net::SocketAddr;

use clap::Args;
use dakoku_kafka::KafkaArgs;
use dakoku_token::TokenKeys;

/// Everything `admin-api` (serving) can be told. Defaults suit the local stack.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "ADMIN_API_ADDR", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Where Kafka is (corrections are appended there).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Postgres URL (validation, views, closing).
    #[arg(long, env = "DATABASE_URL", default_value = dakoku_store::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Admin-token keys, `<key id>:<base64 secret>[,...]`: all verify, the first signs.
    #[arg(long, env = "ADMIN_TOKEN_KEYS", hide_env_values = true)]
    pub admin_token_keys: Option<String>,
    /// Largest request body, bytes.
    #[arg(long, env = "ADMIN_API_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// `Retry-After` seconds when Postgres or Kafka is unavailable.
    #[arg(long, env = "ADMIN_API_RETRY_AFTER_SECS", default_value_t = 5)]
    pub retry_after_secs: u32,
    /// On shutdown, time to finish in-flight requests.
    #[arg(long, env = "ADMIN_API_DRAIN_TIMEOUT_MS", default_value_t = 15_000)]
    pub drain_timeout_ms: u64,
}

/// A configuration that cannot work, said before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid admin-api configuration: {0}")]
pub struct ConfigError(pub String);

/// Parses admin-token keys, saying which variable is meant when they are missing.
pub fn admin_keys(spec: Option<&str>) -> Result<TokenKeys, ConfigError> {
    let spec = spec
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ConfigError(
                "no admin-token keys: set ADMIN_TOKEN_KEYS to <key id>:<base64 secret>[,...] \
             (make one with `admin-api token new-key`); keep them apart from DAKOKU_TOKEN_KEYS"
                    .into(),
            )
        })?;
    TokenKeys::parse(spec).map_err(|e| ConfigError(format!("ADMIN_TOKEN_KEYS: {e}")))
}

impl Config {
    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes == 0 {
            return Err(ConfigError("max_body_bytes must be positive".into()));
        }
        if self.retry_after_secs == 0 {
            return Err(ConfigError("retry_after_secs must be positive".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_name_the_variable() {
        let error = admin_keys(None).expect_err("none");
        assert!(error.to_string().contains("ADMIN_TOKEN_KEYS"), "{error}");
        let error = admin_keys(Some("k1:c2hvcnQ=")).expect_err("short");
        assert!(error.to_string().contains("ADMIN_TOKEN_KEYS"), "{error}");
        let entry = TokenKeys::generate_entry("admin1");
        assert_eq!(
            admin_keys(Some(&entry)).expect("valid").signing_key_id(),
            "admin1"
        );
    }
}
