//! The bare endpoint: the least an HTTP acceptor can do. `POST /v1/punches` reads the whole
//! body and answers `200 {"acked":[1],"rejected":[]}`; `GET /readyz` answers 200.
//!
//! It is served the way ingest-api serves (hyper-util's auto builder, HTTP/1 keep-alive,
//! `TCP_NODELAY`, a tokio runtime with one worker per core, its own process), so the difference
//! between the two is what ingest-api's handler costs, not how it is served.

use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// The answer to every POST.
pub const RECEIPT: &str = r#"{"acked":[1],"rejected":[]}"#;

/// The bare router.
pub fn app() -> axum::Router {
    axum::Router::new()
        .route("/v1/punches", post(punches))
        .route("/readyz", get(|| async { "ready" }))
}

async fn punches(body: Bytes) -> impl IntoResponse {
    // The body is read in full by the extractor; its length is used so it is not optimised out.
    std::hint::black_box(body.len());
    ([(header::CONTENT_TYPE, "application/json")], RECEIPT)
}

/// Serves the bare endpoint on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = app();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}
