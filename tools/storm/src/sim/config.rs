//! What a storm is told: the resend behaviour, the fleet, pools, pacing and when to stop.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::fleet::Recorder;

/// The recorder API's path.
pub const PUNCHES_PATH: &str = "/v1/punches";

/// How a recorder resends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// The incident's recorders: one punch per request, resend every second whatever the
    /// answer says, `Retry-After` ignored.
    Legacy,
    /// The recorder contract: batches, `Retry-After` honoured, else backoff with full jitter.
    Contract,
}

impl Behaviour {
    /// `legacy` or `contract`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Contract => "contract",
        }
    }
}

/// Everything a storm is told.
#[derive(Debug, Clone)]
pub struct StormConfig {
    /// The recorder API (ingest-api or the synchronous control).
    pub target: SocketAddr,
    /// The recorders.
    pub recorders: Vec<Recorder>,
    /// How they resend.
    pub behaviour: Behaviour,
    /// Pending punches per recorder at the start (the incident's recorders held ~10,000).
    pub pool: u64,
    /// Each recorder gets a new punch this often while the storm runs (`None`: no trickle).
    pub trickle_every: Option<Duration>,
    /// Punches per request in contract mode.
    pub batch: usize,
    /// Legacy: the fixed pause before resending after anything but a `200`.
    pub legacy_resend: Duration,
    /// Contract: backoff base (doubles per consecutive failure).
    pub backoff_base: Duration,
    /// Contract: backoff cap.
    pub backoff_cap: Duration,
    /// A request not answered within this counts as a timeout.
    pub request_timeout: Duration,
    /// Recorders come online spread evenly over this span (0: all at once).
    pub start_spread: Duration,
    /// Stop after this long whatever is left (`None`: no cap).
    pub max_duration: Option<Duration>,
    /// Stop once every recorder has emptied its initial pool.
    pub stop_when_drained: bool,
    /// The work date of the first pooled punch.
    pub first_day: NaiveDate,
}

impl StormConfig {
    /// A storm of `recorders` against `target` with the documented defaults: pool 10,000,
    /// one new punch per recorder every 10 s, batches of 500, legacy resend 1 s, backoff 1 s
    /// to 5 min (CONTRACT §1), 15 s client timeout, all online within 1 s, no cap.
    pub fn new(target: SocketAddr, recorders: Vec<Recorder>, behaviour: Behaviour) -> Self {
        Self {
            target,
            recorders,
            behaviour,
            pool: 10_000,
            trickle_every: Some(Duration::from_secs(10)),
            batch: 500,
            legacy_resend: Duration::from_secs(1),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            request_timeout: Duration::from_secs(15),
            start_spread: Duration::from_secs(1),
            max_duration: None,
            stop_when_drained: false,
            first_day: NaiveDate::from_ymd_opt(2020, 10, 1).unwrap_or_default(),
        }
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), SimError> {
        let fail = |m: &str| Err(SimError::Config(m.to_owned()));
        if self.recorders.is_empty() {
            return fail("no recorders");
        }
        if self.batch == 0 {
            return fail("batch must be positive");
        }
        if self.recorders.iter().any(|r| r.cards.is_empty()) {
            return fail("every recorder needs at least one card");
        }
        if self.max_duration.is_none() && !self.stop_when_drained {
            return fail(
                "give max_duration or stop_when_drained (or both), or the storm never ends",
            );
        }
        if self.stop_when_drained && self.pool == 0 {
            return fail("stop_when_drained with an empty pool stops at once");
        }
        Ok(())
    }
}

/// Why a storm could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot work; fix the named setting.
    #[error("invalid storm configuration: {0}")]
    Config(String),
    /// A recorder's token is not a valid header value (provisioning bug).
    #[error("token of recorder {0} is not a valid header value")]
    Token(String),
    /// A recorder task panicked (a bug in the simulator).
    #[error("a recorder task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(cards: usize) -> Recorder {
        Recorder {
            tenant: "t".parse().expect("tenant"),
            device: "D1".parse().expect("device"),
            token: "x".into(),
            cards: (0..cards).map(|i| format!("C{i}")).collect(),
        }
    }

    #[test]
    fn a_storm_that_never_ends_is_refused() {
        let mut config = StormConfig::new(
            "127.0.0.1:1".parse().expect("addr"),
            vec![recorder(1)],
            Behaviour::Legacy,
        );
        assert!(config.validate().is_err());
        config.max_duration = Some(Duration::from_secs(1));
        assert!(config.validate().is_ok());
    }
}
