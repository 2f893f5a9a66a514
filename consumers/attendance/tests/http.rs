//! `/healthz`, `/readyz` and `/metrics` of a running consumer, and a clean return from `run`
//! once shutdown is asked for.

use std::time::Duration;

use dakoku_attendance::Config;
use dakoku_testkit::{Stack, TestDatabase, TestGroup, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_are_served() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let group = TestGroup::create(&stack, 1).await?;
    let db = TestDatabase::create(&stack).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let config = Config::new(&stack.brokers, &db.url, vec![group.group.clone()]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(dakoku_attendance::run_with_listener(
        config,
        Some(listener),
        async {
            let _ = stopped.await;
        },
    ));

    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let request = client.get(format!("{base}{path}")).send();
        async move { Ok::<_, anyhow::Error>(request.await?.status().as_u16()) }
    };
    assert_eq!(status("/healthz").await?, 200);
    eventually("ready", Duration::from_secs(30), || async {
        Ok((status("/readyz").await? == 200).then_some(()))
    })
    .await?;
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(&format!("attendance_up{{group=\"{}\"}} 1", group.group)),
        "{metrics}"
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), task).await???;
    db.drop_db().await?;
    group.delete_topics().await
}
