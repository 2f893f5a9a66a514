//! The bare HTTP/1.1 client: a keep-alive connection, one exchange, a `GET`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Opens a keep-alive HTTP/1.1 connection.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

pub(super) async fn exchange(
    connection: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), hyper::Error> {
    connection.ready().await?;
    let response = connection.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// `GET path` on a fresh connection: status and body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let work = async {
        let mut connection = connect(addr).await?;
        let request = Request::get(path)
            .header(header::HOST, addr.to_string())
            .body(Full::new(Bytes::new()))?;
        let (status, body) = exchange(&mut connection, request).await?;
        anyhow::Ok((status.as_u16(), body))
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .context("GET timed out")?
}
