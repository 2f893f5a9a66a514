//! A stack of the run's own: `scripts/stack` in its own directory on free ports, so killing
//! its broker or restarting its Postgres disturbs nobody else.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::process::Command;

/// A stack of our own: `scripts/stack` in its own directory on free ports.
#[derive(Debug)]
pub struct PrivateStack {
    repo: PathBuf,
    dir: PathBuf,
    kafka_port: u16,
    controller_port: u16,
    pg_port: u16,
}

/// A free TCP port on loopback (free now; the stack binds it right after).
pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PrivateStack {
    /// Starts Kafka and PostgreSQL under `dir` on free ports.
    pub async fn up(repo: &Path, dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Canonical: the stack recognises its processes by the paths in their command lines.
        let dir = std::fs::canonicalize(&dir)?;
        let stack = Self {
            repo: repo.to_owned(),
            dir,
            kafka_port: free_port()?,
            controller_port: free_port()?,
            pg_port: free_port()?,
        };
        stack.run(&["up"]).await?;
        Ok(stack)
    }

    /// Runs `scripts/stack <args>` against this stack.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = Command::new(self.repo.join("scripts/stack"))
            .args(args)
            .env("DAKOKU_STACK_DIR", &self.dir)
            .env("KAFKA_PORT", self.kafka_port.to_string())
            .env("KAFKA_CONTROLLER_PORT", self.controller_port.to_string())
            .env("PG_PORT", self.pg_port.to_string())
            .env("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .await
            .context("running scripts/stack")?;
        if !output.status.success() {
            bail!(
                "scripts/stack {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Its Kafka bootstrap servers.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    /// Its Postgres URL.
    pub fn database_url(&self) -> String {
        format!("postgres://dakoku:dakoku@127.0.0.1:{}/dakoku", self.pg_port)
    }

    /// Stops everything and, unless `keep`, deletes its directory.
    pub async fn destroy(self, keep: bool) -> anyhow::Result<()> {
        self.run(&["down"]).await?;
        if !keep {
            std::fs::remove_dir_all(&self.dir).ok();
        }
        Ok(())
    }
}
