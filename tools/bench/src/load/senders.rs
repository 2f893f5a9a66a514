//! The senders: one HTTP keep-alive connection to the recorder API, or a handle on a raw
//! Kafka producer with the acceptor's settings.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Request, StatusCode, header};
use bytes::Bytes;
use dakoku_ingest_api::publisher::Publisher;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;

use super::fleet::Fleet;
use super::http::{connect, exchange};

/// The recorder API's path.
pub const PUNCHES_PATH: &str = "/v1/punches";
/// A request not answered by then counts as failed (ingest-api promises 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request did not get its punches acked. `kind` is a short, bounded label for counting;
/// `detail` is one example message.
#[derive(Debug, Clone)]
pub struct Failure {
    /// E.g. `http 429`, `timeout`, `connection`, `kafka`.
    pub kind: String,
    /// What was said.
    pub detail: String,
}

impl Failure {
    pub(super) fn new(kind: impl Into<String>, detail: impl ToString) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.to_string(),
        }
    }
}

/// Something that delivers punches and says how many were acked.
pub trait Sender: Send + 'static {
    /// Sends punches `first_seq..first_seq + n` of `device`; returns how many were acked.
    fn send(
        &mut self,
        device: usize,
        first_seq: u64,
        n: usize,
    ) -> impl Future<Output = Result<u64, Failure>> + Send;
}

/// One HTTP/1.1 keep-alive connection posting to the recorder API (reconnects after errors).
#[derive(Debug)]
pub struct HttpSender {
    fleet: Arc<Fleet>,
    addr: SocketAddr,
    host: HeaderValue,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl HttpSender {
    /// A sender to the server on `addr` (connects on first use).
    pub fn new(fleet: Arc<Fleet>, addr: SocketAddr) -> Self {
        let host = HeaderValue::from_str(&addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self {
            fleet,
            addr,
            host,
            connection: None,
        }
    }

    /// `count` senders to `addr`.
    pub fn many(fleet: &Arc<Fleet>, addr: SocketAddr, count: usize) -> Vec<Self> {
        (0..count)
            .map(|_| Self::new(Arc::clone(fleet), addr))
            .collect()
    }
}

impl Sender for HttpSender {
    async fn send(&mut self, device: usize, first_seq: u64, n: usize) -> Result<u64, Failure> {
        let body = self.fleet.body(device, first_seq, n);
        let request = Request::post(PUNCHES_PATH)
            .header(header::HOST, self.host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .header(
                header::AUTHORIZATION,
                self.fleet.authorizations[device].clone(),
            )
            .body(Full::new(body))
            .map_err(|e| Failure::new("request", e))?;
        let connection = match &mut self.connection {
            Some(connection) if !connection.is_closed() => connection,
            slot => slot.insert(
                connect(self.addr)
                    .await
                    .map_err(|e| Failure::new("connect", format!("{e:#}")))?,
            ),
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange(connection, request)).await;
        let (status, body) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                self.connection = None;
                return Err(Failure::new("connection", error));
            }
            Err(_) => {
                self.connection = None;
                return Err(Failure::new("timeout", format!("{REQUEST_TIMEOUT:?}")));
            }
        };
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            return Err(Failure::new(
                format!("http {}", status.as_u16()),
                text.chars().take(200).collect::<String>(),
            ));
        }
        match parse_receipt(&body) {
            Some((acked, 0)) => Ok(acked),
            Some((_, rejected)) => Err(Failure::new(
                "rejected",
                format!(
                    "{rejected} punches rejected: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            )),
            None => Err(Failure::new(
                "bad receipt",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>(),
            )),
        }
    }
}

/// Counts the items of `"acked":[...]` and `"rejected":[...]` in a receipt without parsing it
/// into values (the client shares the machine with the servers, so it stays cheap).
pub fn parse_receipt(body: &[u8]) -> Option<(u64, u64)> {
    fn array<'a>(body: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
        let start = body.windows(key.len()).position(|w| w == key)? + key.len();
        let rest = &body[start..];
        if rest.first() == Some(&b']') {
            return Some(&rest[..0]);
        }
        // Acked items are integers; rejected items are objects whose strings may hold ']'
        // but are only counted by their leading '{', so the end of `rest` is good enough.
        let end = rest.iter().position(|&b| b == b']').unwrap_or(rest.len());
        Some(&rest[..end])
    }
    let acked = array(body, br#""acked":["#)?;
    let acked = if acked.is_empty() {
        0
    } else {
        acked.iter().filter(|&&b| b == b',').count() as u64 + 1
    };
    let rejected_key = br#""rejected":["#;
    let start = body
        .windows(rejected_key.len())
        .position(|w| w == rejected_key)?;
    let rest = &body[start + rejected_key.len()..];
    let rejected = if rest.first() == Some(&b']') {
        0
    } else {
        rest.iter().filter(|&&b| b == b'{').count() as u64
    };
    Some((acked, rejected))
}

/// A raw producer task: builds and encodes the records ingest-api would write, enqueues a whole
/// batch, then awaits every delivery report, like ingest-api does for one request.
#[derive(Debug)]
pub struct KafkaSender {
    fleet: Arc<Fleet>,
    publisher: Publisher,
    topic: String,
    buf: Vec<u8>,
}

/// The acceptor id written into the raw producer's records.
const RAW_ACCEPTOR_ID: &str = "ingest-bench-raw-producer";

impl KafkaSender {
    /// `count` tasks sharing `publisher`, writing to `topic`.
    pub fn many(fleet: &Arc<Fleet>, publisher: &Publisher, topic: &str, count: usize) -> Vec<Self> {
        (0..count)
            .map(|_| Self {
                fleet: Arc::clone(fleet),
                publisher: publisher.clone(),
                topic: topic.to_owned(),
                buf: Vec::with_capacity(256),
            })
            .collect()
    }
}

impl Sender for KafkaSender {
    async fn send(&mut self, device: usize, first_seq: u64, n: usize) -> Result<u64, Failure> {
        let received_at = chrono::Utc::now().timestamp_millis();
        let key = dakoku_schemas::raw_key(&self.fleet.tenant, &self.fleet.devices[device]);
        let mut pending = Vec::with_capacity(n);
        let mut failure = None;
        for seq in first_seq..first_seq + n as u64 {
            let record = self
                .fleet
                .raw_punch(device, seq, received_at, RAW_ACCEPTOR_ID)
                .map_err(|e| Failure::new("record", format!("{e:#}")))?;
            self.buf.clear();
            dakoku_schemas::encode_into(&record, &mut self.buf)
                .map_err(|e| Failure::new("encode", e))?;
            match self.publisher.enqueue(&self.topic, &key, &self.buf) {
                Ok(delivery) => pending.push(delivery),
                Err(error) => {
                    failure = Some(Failure::new("kafka enqueue", error));
                    break;
                }
            }
        }
        let results =
            futures::future::join_all(pending.into_iter().map(Publisher::confirmed)).await;
        let mut acked = 0;
        for result in results {
            match result {
                Ok(()) => acked += 1,
                Err(error) => failure = Some(Failure::new("kafka delivery", error)),
            }
        }
        match failure {
            Some(failure) if acked == 0 => Err(failure),
            _ => Ok(acked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_are_counted() {
        assert_eq!(
            parse_receipt(br#"{"acked":[1,2,3],"rejected":[]}"#),
            Some((3, 0))
        );
        assert_eq!(
            parse_receipt(br#"{"acked":[],"rejected":[]}"#),
            Some((0, 0))
        );
        assert_eq!(
            parse_receipt(
                br#"{"acked":[7],"rejected":[{"seq":8,"index":1,"error":"kind: ]x"},{"seq":null,"index":2,"error":"e"}]}"#
            ),
            Some((1, 2))
        );
        assert_eq!(parse_receipt(crate::bare::RECEIPT.as_bytes()), Some((1, 0)));
        assert_eq!(parse_receipt(b"{}"), None);
    }
}
