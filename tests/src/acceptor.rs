//! An `ingest-api` served in-process on `127.0.0.1:0` against the real stack, with its own
//! token keys, a seeded tenant and device, and helpers to read what reached Kafka.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use dakoku_ingest_api::token::{DeviceClaims, TokenKeys};
use dakoku_ingest_api::{AppState, Config};
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Stack, TestDatabase, eventually, unique_suffix};

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
        Ok(self.keys.mint(&DeviceClaims {
            tenant: tenant.parse()?,
            device: device.parse()?,
            expires_at: chrono::Utc::now().timestamp() + 3600,
        }))
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

/// Inserts a tenant (and its group) straight into the master data.
pub async fn seed_tenant(db: &TestDatabase, tenant: &str, group: &str) -> anyhow::Result<()> {
    let client = db.client().await?;
    client
        .execute(
            "INSERT INTO tenant_groups (group_id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&group],
        )
        .await?;
    client
        .execute(
            "INSERT INTO tenants (tenant_id, name, group_id) VALUES ($1, $1, $2)",
            &[&tenant, &group],
        )
        .await?;
    Ok(())
}

/// Inserts a device of `tenant`.
pub async fn seed_device(db: &TestDatabase, tenant: &str, device: &str) -> anyhow::Result<()> {
    db.client()
        .await?
        .execute(
            "INSERT INTO devices (tenant_id, device_id) VALUES ($1, $2)",
            &[&tenant, &device],
        )
        .await?;
    Ok(())
}

/// A record read back from Kafka.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its key as text.
    pub key: String,
    /// Its value.
    pub payload: Vec<u8>,
}

/// Reads `topic` from the beginning (read_committed), handing each record to `done` (which
/// keeps its own tally, so reading stays linear) until it returns true, or fails after
/// `deadline`. Returns every record read.
pub async fn read_topic(
    stack: &Stack,
    topic: &str,
    deadline: Duration,
    mut done: impl FnMut(&Record) -> bool,
) -> anyhow::Result<Vec<Record>> {
    let consumer: StreamConsumer = stack
        .kafka_config()
        .set("group.id", format!("e2e-reader-{}", unique_suffix()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut records = Vec::new();
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(until, consumer.recv()).await {
            Ok(message) => {
                let message = message?;
                let record = Record {
                    key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    payload: message.payload().unwrap_or_default().to_vec(),
                };
                let finished = done(&record);
                records.push(record);
                if finished {
                    break;
                }
            }
            Err(_) => bail!(
                "timed out after {deadline:?} reading {topic}: {} records so far",
                records.len()
            ),
        }
    }
    Ok(records)
}

/// Reads everything currently in `topic` (up to the high watermarks at call time).
pub async fn read_all(stack: &Stack, topic: &str) -> anyhow::Result<Vec<Record>> {
    let consumer: StreamConsumer = stack.kafka_config().create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    let mut total = 0;
    for partition in 0..partitions {
        let (low, high) =
            consumer.fetch_watermarks(topic, partition as i32, Duration::from_secs(10))?;
        total += usize::try_from(high - low).unwrap_or(0);
    }
    if total == 0 {
        return Ok(Vec::new());
    }
    let mut seen = 0;
    read_topic(stack, topic, Duration::from_secs(30), |_| {
        seen += 1;
        seen >= total
    })
    .await
}
