//! An `ingest-api` served in-process on `127.0.0.1:0` against the real stack, with its own
//! token keys (seed its tenants and devices with `dakoku_testkit::TenantSeed`, read what
//! reached Kafka with `dakoku_testkit::read`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dakoku_ingest_api::{AppState, Config};
use dakoku_testkit::{Stack, TestDatabase, eventually, mint_token};
use dakoku_token::TokenKeys;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running acceptor.
#[derive(Debug)]
pub struct TestAcceptor {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// Its state, for high-water marks and direct inspection.
    pub state: Arc<AppState>,
    /// The keys it verifies with, to mint tokens.
    pub keys: TokenKeys,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestAcceptor {
    /// Starts an acceptor on `db` with test-friendly defaults changed by `tweak`, and waits
    /// until it is ready (snapshot loaded, Kafka reachable).
    pub async fn start(
        stack: &Stack,
        db: &TestDatabase,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let key = TokenKeys::generate_entry("test");
        let mut config = Config::new(&stack.brokers, &db.url, &key);
        config.snapshot_poll_ms = 500;
        config.kafka_check_ms = 500;
        config.acceptor_id = Some("test-acceptor".into());
        tweak(&mut config);
        let keys = TokenKeys::parse(&config.token_keys)?;
        let state = Arc::new(AppState::new(config)?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(dakoku_ingest_api::serve(
            Arc::clone(&state),
            listener,
            async {
                let _ = rx.await;
            },
        ));
        let acceptor = Self {
            base_url,
            state,
            keys,
            shutdown: Some(tx),
            task: Some(task),
        };
        acceptor.wait_ready().await?;
        Ok(acceptor)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.base_url);
        let client = reqwest::Client::new();
        eventually("acceptor ready", Duration::from_secs(30), || {
            let request = client.get(&url).send();
            async move {
                Ok(match request.await {
                    Ok(response) if response.status() == 200 => Some(()),
                    _ => None,
                })
            }
        })
        .await
    }

    /// A token for `tenant`/`device` valid for an hour.
    pub fn token(&self, tenant: &str, device: &str) -> anyhow::Result<String> {
        mint_token(&self.keys, tenant, device)
    }

    /// `POST /v1/punches` with a JSON body and a bearer token.
    pub async fn post(
        &self,
        token: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<reqwest::Response> {
        Ok(reqwest::Client::new()
            .post(format!("{}/v1/punches", self.base_url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?)
    }

    /// Asks the server to stop and waits until it has drained and returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .context("acceptor did not stop within 30 s")???;
        }
        Ok(())
    }

    /// Sends the stop signal without waiting (to test shutdown while requests are in flight).
    pub fn begin_stop(&mut self) -> Option<JoinHandle<std::io::Result<()>>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take()
    }
}

impl Drop for TestAcceptor {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
