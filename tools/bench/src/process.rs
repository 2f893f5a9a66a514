//! Child processes (ingest-api, the bare endpoint): start on a free port with their output in a
//! log file, wait for readiness with a deadline, stop with SIGTERM; and what `/proc` says about
//! a process's CPU time and memory.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::load;

/// `USER_HZ`: the unit of `utime`/`stime` in `/proc/<pid>/stat`, 100 on every Linux ABI that
/// matters (it is fixed for user space, whatever the kernel's `HZ`).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// A free port on 127.0.0.1 (bound and released; the child binds it right after).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = StdListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// A started child process.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    child: Child,
    pid: u32,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts `program args` with `env` added, listening (by its own configuration) on `addr`,
    /// its stdout and stderr going to `log`.
    pub fn start(
        name: &'static str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        addr: SocketAddr,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)
            .with_context(|| format!("creating log file {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            // A safety net: if the bench dies, its children do not outlive it for long.
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let pid = child.id().context("child has no pid")?;
        Ok(Self {
            name,
            child,
            pid,
            addr,
            log,
        })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Waits until `GET path` answers 200, failing if the process exits or `timeout` passes.
    pub async fn wait_ready(&mut self, path: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({status}); its log {}:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log, 20)
                );
            }
            let last = match load::get(self.addr, path).await {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => format!("{status}: {}", String::from_utf8_lossy(&body)),
                Err(error) => format!("{error:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready on {}{path} within {timeout:?} (last: {last}); its log {}:\n{}",
                    self.name,
                    self.addr,
                    self.log.display(),
                    tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then waits up to `grace` for it to exit, then kills it.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if self.child.try_wait()?.is_none() {
            let pid = Pid::from_raw(i32::try_from(self.pid)?);
            let _ = kill(pid, Signal::SIGTERM);
            match tokio::time::timeout(grace, self.child.wait()).await {
                Ok(status) => return Ok(status?),
                Err(_) => {
                    tracing::warn!(name = self.name, "did not stop after SIGTERM; killing");
                    self.child.kill().await?;
                }
            }
        }
        Ok(self.child.wait().await?)
    }
}

/// The last `lines` lines of a file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What `/proc` says about a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU time so far, seconds.
    pub cpu_secs: f64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// Resident set size now (`VmRSS`), KiB.
    pub rss_kib: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` if the process is gone.
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let cpu_secs = cpu_from_stat(&stat)?;
    Some(Usage {
        cpu_secs,
        peak_rss_kib: kib_field(&status, "VmHWM:").unwrap_or(0),
        rss_kib: kib_field(&status, "VmRSS:").unwrap_or(0),
    })
}

/// `utime + stime` from a `/proc/<pid>/stat` line, in seconds.
fn cpu_from_stat(stat: &str) -> Option<f64> {
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0], so utime (14) and stime (15) are fields[11] and fields[12].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / CLOCK_TICKS_PER_SEC)
}

/// A `Name:   123 kB` field of `/proc/<pid>/status`.
fn kib_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The Kafka broker's pid from the local stack's pid file, if there is one and it is alive.
pub fn stack_kafka_pid() -> Option<u32> {
    let text = std::fs::read_to_string(".stack/run/kafka.pid").ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    usage(pid).map(|_| pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        let stat =
            "1234 (odd ) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 0 0";
        assert_eq!(cpu_from_stat(stat), Some(3.0));
    }

    #[test]
    fn own_usage_is_readable() {
        let usage = usage(std::process::id()).expect("own /proc entry");
        assert!(usage.peak_rss_kib >= usage.rss_kib / 2 && usage.rss_kib > 0);
    }

    #[test]
    fn status_fields_parse() {
        let status = "Name:\tx\nVmHWM:\t   81234 kB\nVmRSS:\t   70000 kB\n";
        assert_eq!(kib_field(status, "VmHWM:"), Some(81_234));
        assert_eq!(kib_field(status, "VmRSS:"), Some(70_000));
        assert_eq!(kib_field(status, "VmSwap:"), None);
    }
}
