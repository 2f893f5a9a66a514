//! The processes of a run, started from the release binaries on free ports and stopped after.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dakoku_bench::process::{self, Server};
use dakoku_schemas::GroupId;
use dakoku_store::ScratchDatabase;

use super::config::{ScenarioConfig, Target};

/// The processes of a run.
pub(super) struct Services {
    pub(super) target_addr: SocketAddr,
    pub(super) target_pid: u32,
    servers: Vec<Server>,
}

impl Services {
    pub(super) async fn start(
        config: &ScenarioConfig,
        target: Target,
        group: &GroupId,
        db: &ScratchDatabase,
        key: &str,
    ) -> anyhow::Result<Self> {
        let launcher = Launcher {
            config,
            group,
            common: vec![
                ("KAFKA_BROKERS", config.brokers.clone()),
                ("DATABASE_URL", db.url().to_owned()),
                ("RUST_LOG", "warn".to_owned()),
            ],
            key,
        };
        let target_addr = process::free_addr()?;
        let servers = match target {
            Target::Pipeline => vec![
                launcher.acceptor(target_addr).await?,
                launcher.licence_check().await?,
                launcher.attendance().await?,
            ],
            Target::Control => vec![launcher.control(target_addr).await?],
        };
        let target_pid = servers[0].pid();
        Ok(Self {
            target_addr,
            target_pid,
            servers,
        })
    }

    pub(super) async fn stop(self) {
        for server in self.servers.into_iter().rev() {
            let log = server.log().display().to_string();
            match server.stop(Duration::from_secs(30)).await {
                Ok(status) if status.success() => {}
                Ok(status) => tracing::warn!(%status, log, "a storm process exited badly"),
                Err(error) => tracing::warn!(%error, log, "could not stop a storm process"),
            }
        }
    }
}

/// The program and arguments that run `bin` with `args` at niceness `nice`: through `nice(1)`,
/// which execs it, so the process keeps the pid the harness measures.
fn niced(nice: u8, bin: &Path, args: &[&str]) -> (PathBuf, Vec<String>) {
    let args = args.iter().map(|a| (*a).to_owned());
    if nice == 0 {
        return (bin.to_path_buf(), args.collect());
    }
    let mut all = vec!["-n".to_owned(), nice.to_string(), bin.display().to_string()];
    all.extend(args);
    (PathBuf::from("nice"), all)
}

/// Starts the run's processes, each ready before the next.
struct Launcher<'a> {
    config: &'a ScenarioConfig,
    group: &'a GroupId,
    /// The environment every process gets.
    common: Vec<(&'static str, String)>,
    /// The token key entry (`DAKOKU_TOKEN_KEYS`).
    key: &'a str,
}

impl Launcher<'_> {
    fn bin(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.config.bin_dir.join(name);
        anyhow::ensure!(
            path.exists(),
            "{} not found: build it first with `cargo build --release --workspace --bins`",
            path.display()
        );
        Ok(path)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.config.out_dir.join(format!("{name}.log"))
    }

    fn env(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut env = self.common.clone();
        env.extend_from_slice(extra);
        env
    }

    async fn acceptor(&self, addr: SocketAddr) -> anyhow::Result<Server> {
        let env = self.env(&[
            ("INGEST_LISTEN", addr.to_string()),
            ("DAKOKU_TOKEN_KEYS", self.key.to_owned()),
            ("INGEST_ACCEPTOR_ID", format!("{}-acceptor", self.group)),
        ]);
        let mut acceptor = Server::start(
            "ingest-api",
            &self.bin("ingest-api")?,
            &[],
            &env,
            addr,
            self.log("ingest-api"),
        )?;
        acceptor
            .wait_ready("/readyz", Duration::from_secs(60))
            .await?;
        Ok(acceptor)
    }

    async fn licence_check(&self) -> anyhow::Result<Server> {
        let addr = process::free_addr()?;
        let env = self.env(&[(
            "DAKOKU_CHECK_DELAY_US",
            self.config.check_delay_us.to_string(),
        )]);
        let instance = format!("{}-0", self.group);
        let metrics_listen = addr.to_string();
        let (program, args) = niced(
            self.config.consumers_nice,
            &self.bin("licence-check")?,
            &[
                "--group",
                self.group.as_str(),
                "--instance-id",
                &instance,
                "--metrics-listen",
                &metrics_listen,
            ],
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut licence = Server::start(
            "licence-check",
            &program,
            &args,
            &env,
            addr,
            self.log("licence-check"),
        )?;
        licence
            .wait_ready("/readyz", Duration::from_secs(60))
            .await?;
        Ok(licence)
    }

    async fn attendance(&self) -> anyhow::Result<Server> {
        let addr = process::free_addr()?;
        let env = self.env(&[("ATTENDANCE_METRICS_LISTEN", addr.to_string())]);
        let (program, args) = niced(
            self.config.consumers_nice,
            &self.bin("attendance")?,
            &["--group", self.group.as_str()],
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut attendance = Server::start(
            "attendance",
            &program,
            &args,
            &env,
            addr,
            self.log("attendance"),
        )?;
        attendance
            .wait_ready("/readyz", Duration::from_secs(60))
            .await?;
        Ok(attendance)
    }

    async fn control(&self, addr: SocketAddr) -> anyhow::Result<Server> {
        let env = self.env(&[
            ("DAKOKU_TOKEN_KEYS", self.key.to_owned()),
            (
                "DAKOKU_CHECK_DELAY_US",
                self.config.check_delay_us.to_string(),
            ),
        ]);
        let mut control = Server::start(
            "storm control-server",
            &self.bin("storm")?,
            &["control-server", "--listen", &addr.to_string()],
            &env,
            addr,
            self.log("control-server"),
        )?;
        control
            .wait_ready("/healthz", Duration::from_secs(60))
            .await?;
        Ok(control)
    }
}
