//! A TCP proxy between the code under test and Postgres that a test can sever and restore.
//!
//! The stack's Postgres is shared by every test running in parallel, so a test cannot restart
//! it. Severing the proxy does to the code under test what a restart does: every open
//! connection is closed at once, mid-statement or mid-transaction, and new connections fail
//! until the proxy is restored.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

#[derive(Debug, Default)]
struct State {
    severed: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// A running proxy to one upstream address.
#[derive(Debug)]
pub struct PgProxy {
    /// Where the proxy listens (`127.0.0.1:<port>`).
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl PgProxy {
    /// Starts a proxy to the host and port of `database_url`.
    pub async fn start(database_url: &str) -> anyhow::Result<Self> {
        let upstream = host_port(database_url)?.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let task = tokio::spawn(accept_loop(listener, upstream, Arc::clone(&state)));
        Ok(Self { addr, state, task })
    }

    /// `database_url` with its host and port replaced by the proxy's.
    pub fn url(&self, database_url: &str) -> anyhow::Result<String> {
        let old = host_port(database_url)?;
        Ok(database_url.replacen(old, &self.addr.to_string(), 1))
    }

    /// Closes every open connection and refuses new ones, like a Postgres going down.
    pub fn sever(&self) {
        self.state.severed.store(true, Ordering::SeqCst);
        if let Ok(mut connections) = self.state.connections.lock() {
            for connection in connections.drain(..) {
                connection.abort();
            }
        }
    }

    /// Accepts and forwards connections again, like a Postgres back up.
    pub fn restore(&self) {
        self.state.severed.store(false, Ordering::SeqCst);
    }

    /// Connections accepted and forwarded so far.
    pub fn connections_accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Connection attempts refused while severed so far.
    pub fn connections_refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.sever();
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if state.severed.load(Ordering::SeqCst) {
            state.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        let upstream = upstream.clone();
        let handle = tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let mut client = client;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
        state.accepted.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut connections) = state.connections.lock() {
            connections.retain(|c| !c.is_finished());
            connections.push(handle.abort_handle());
        }
    }
}

/// The `host:port` of a `postgres://user:pass@host:port/db` URL.
fn host_port(url: &str) -> anyhow::Result<&str> {
    let after_at = url
        .rfind('@')
        .map(|i| &url[i + 1..])
        .context("DATABASE_URL must be postgres://user:pass@host:port/db")?;
    let end = after_at.find(['/', '?']).unwrap_or(after_at.len());
    Ok(&after_at[..end])
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_port_is_found() {
        assert_eq!(
            host_port("postgres://u:p@127.0.0.1:55432/db").expect("url"),
            "127.0.0.1:55432"
        );
        assert!(host_port("postgres://h/db").is_err());
    }
}
