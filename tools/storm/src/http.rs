//! A minimal HTTP/1.1 keep-alive client: one connection per simulated recorder (as real
//! recorders have), and one for the health probe, so a probe never queues behind the storm's
//! requests on the client side.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why an exchange produced no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TCP connection could not be opened (server down, backlog full).
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Where to.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The connection broke during the exchange (reset, closed, malformed answer).
    #[error("connection: {0}")]
    Connection(#[from] hyper::Error),
    /// No complete answer within the client's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request could not be built (a bug in the caller).
    #[error("building the request: {0}")]
    Request(#[from] hyper::http::Error),
}

impl HttpError {
    /// A short, bounded label for counting (`connect`, `connection`, `timeout`, `request`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Connection(_) => "connection",
            Self::Timeout(_) => "timeout",
            Self::Request(_) => "request",
        }
    }
}

/// An answer: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers (for `Retry-After`).
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Answer {
    /// `Retry-After` in whole seconds, if present and numeric.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers
            .get(header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// One keep-alive connection to `addr`, opened on first use and again after any error.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    host: HeaderValue,
    timeout: Duration,
    connection: Option<SendRequest<Full<Bytes>>>,
    /// When the last exchange ended and its status, for diagnosing failed reuse.
    last: Option<(std::time::Instant, u16)>,
}

impl Client {
    /// A client of the server on `addr`; an exchange not done within `timeout` fails.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        let host = HeaderValue::from_str(&addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self {
            addr,
            host,
            timeout,
            connection: None,
            last: None,
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<Answer, HttpError> {
        let request = Request::get(path)
            .header(header::HOST, self.host.clone())
            .body(Full::new(Bytes::new()))?;
        self.exchange(request).await
    }

    /// `POST path` with a JSON body and an `Authorization` header.
    pub async fn post_json(
        &mut self,
        path: &str,
        authorization: &HeaderValue,
        body: Bytes,
    ) -> Result<Answer, HttpError> {
        let request = Request::post(path)
            .header(header::HOST, self.host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .header(header::AUTHORIZATION, authorization.clone())
            .body(Full::new(body))?;
        self.exchange(request).await
    }

    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<Answer, HttpError> {
        let timeout = self.timeout;
        let addr = self.addr;
        let mut reused = true;
        let work = async {
            let connection = match &mut self.connection {
                Some(connection) if !connection.is_closed() => connection,
                slot => {
                    reused = false;
                    slot.insert(connect(addr).await?)
                }
            };
            connection.ready().await?;
            let response = connection.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(timeout)),
        };
        let previous = self.last.take();
        self.last = Some((
            std::time::Instant::now(),
            result.as_ref().map_or(0, |a| a.status.as_u16()),
        ));
        if let Err(error) = &result {
            tracing::debug!(
                %error,
                reused,
                idle_ms = previous.map(|(at, _)| at.elapsed().as_millis() as u64),
                previous_status = previous.map(|(_, status)| status),
                "exchange failed"
            );
            // A broken or abandoned exchange leaves the connection unusable: start afresh.
            self.connection = None;
        }
        result
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, HttpError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| HttpError::Connect { addr, source })?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The request sees only "canceled" or "closed"; the cause (reset, broken pipe, a
        // malformed answer) is here.
        if let Err(error) = connection.await {
            tracing::debug!(%error, "connection ended with an error");
        }
    });
    Ok(sender)
}
