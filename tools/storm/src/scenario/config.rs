//! What a scenario run is told: the named scenarios, the target, and their documented values.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::sim::Behaviour;

/// A named scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioName {
    /// Month-start peak, legacy recorders with full pools, a slow licence check.
    Incident,
    /// The same fleet with contract recorders and no delay, until every pool is drained.
    Contract,
}

/// What the storm is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// ingest-api -> Kafka -> licence-check -> attendance -> Postgres.
    Pipeline,
    /// The synchronous control (licence check and Postgres write inside the request).
    Control,
}

impl Target {
    /// `pipeline` or `control`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pipeline => "pipeline",
            Self::Control => "control",
        }
    }
}

/// Everything a scenario run is told; [`ScenarioConfig::named`] gives each scenario's values.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioConfig {
    /// The scenario.
    pub scenario: ScenarioName,
    /// Recorders.
    pub devices: usize,
    /// Pooled punches per recorder at the start.
    pub pool: u64,
    /// Employees (cards) per recorder.
    pub employees_per_device: usize,
    /// Tenants the recorders are spread over.
    pub tenants: usize,
    /// Resend behaviour.
    pub behaviour: Behaviour,
    /// A new punch per recorder this often (seconds; 0 = none).
    pub trickle_every_s: f64,
    /// Punches per request (contract).
    pub batch: usize,
    /// The slow licence check: µs per punch (licence-check, or the control's request).
    pub check_delay_us: u64,
    /// The storm stops after this long (seconds) whatever is left.
    pub max_duration_s: u64,
    /// The storm stops once every pool is drained.
    pub stop_when_drained: bool,
    /// After the storm, how long the consumers get to catch up (seconds).
    pub catch_up_timeout_s: u64,
    /// Partitions of the group's topics.
    pub partitions: i32,
    /// Niceness of licence-check and attendance (0: as the acceptor). On a shared host the
    /// acceptor's answers should not wait for CPU behind a consumer's backlog.
    #[serde(default)]
    pub consumers_nice: u8,
    /// Where the release binaries are.
    #[serde(skip)]
    pub bin_dir: PathBuf,
    /// Where the report, plot and logs go.
    #[serde(skip)]
    pub out_dir: PathBuf,
    /// Kafka.
    #[serde(skip)]
    pub brokers: String,
    /// A Postgres URL whose role may create databases.
    #[serde(skip)]
    pub admin_database_url: String,
    /// Keep the database and topics afterwards.
    #[serde(skip)]
    pub keep: bool,
}

impl ScenarioConfig {
    /// The scenario's documented values (`STORM.md`), for the local stack.
    pub fn named(scenario: ScenarioName) -> Self {
        let base = Self {
            scenario,
            devices: 1_000,
            pool: 10_000,
            employees_per_device: 50,
            tenants: 20,
            behaviour: Behaviour::Legacy,
            trickle_every_s: 10.0,
            batch: 500,
            check_delay_us: 0,
            max_duration_s: 180,
            stop_when_drained: false,
            catch_up_timeout_s: 600,
            partitions: 4,
            consumers_nice: 0,
            bin_dir: PathBuf::from("target/release"),
            out_dir: PathBuf::from("target/storm"),
            brokers: "127.0.0.1:9092".into(),
            admin_database_url: dakoku_store::DEFAULT_DATABASE_URL.into(),
            keep: false,
        };
        match scenario {
            ScenarioName::Incident => Self {
                behaviour: Behaviour::Legacy,
                // Month-start morning: every employee's punch arrives within the storm.
                trickle_every_s: 2.0,
                check_delay_us: 250,
                ..base
            },
            ScenarioName::Contract => Self {
                behaviour: Behaviour::Contract,
                max_duration_s: 900,
                stop_when_drained: true,
                ..base
            },
        }
    }
}

/// Where a run's files go by default.
pub fn default_out_dir() -> PathBuf {
    Path::new("target").join("storm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_have_their_documented_shape() {
        let incident = ScenarioConfig::named(ScenarioName::Incident);
        assert_eq!(incident.behaviour, Behaviour::Legacy);
        assert!(incident.check_delay_us > 0 && !incident.stop_when_drained);
        assert!(incident.devices >= 1_000 && incident.pool >= 10_000);
        let contract = ScenarioConfig::named(ScenarioName::Contract);
        assert_eq!(contract.behaviour, Behaviour::Contract);
        assert!(contract.stop_when_drained && contract.check_delay_us == 0);
    }
}
