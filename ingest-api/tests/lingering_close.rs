//! A refusal answered before the body is read still reaches a client that goes on sending the
//! body: the acceptor reads and discards the rest before closing, instead of resetting the
//! connection under the client's feet. With lingering off, the same client sees the reset,
//! which shows the check can fail.
//!
//! No broker or database is needed: a bad token is refused before either is consulted.

use std::sync::Arc;
use std::time::Duration;

use dakoku_ingest_api::{AppState, Config, serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const BODY_BYTES: usize = 900 * 1024;
const CHUNK: usize = 16 * 1024;

/// What the client saw.
#[derive(Debug)]
struct Seen {
    status: u16,
    /// The first error writing the rest of the body after the answer, if any.
    write_error: Option<std::io::ErrorKind>,
    /// How the final read ended: `Ok(())` for a clean end of stream.
    end: Result<(), std::io::ErrorKind>,
}

async fn refused_upload(lingering_close_ms: u64) -> Seen {
    let key = dakoku_token::TokenKeys::generate_entry("k");
    // Nothing listens on these: the refusal must not need them.
    let mut config = Config::new("127.0.0.1:1", "postgres://unused@127.0.0.1:1/x", &key);
    config.lingering_close_ms = lingering_close_ms;
    let state = Arc::new(AppState::new(config).expect("state"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(state, listener, async {
        let _ = stop_rx.await;
    }));

    let mut client = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /v1/punches HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer not-a-token\r\nContent-Length: {BODY_BYTES}\r\n\r\n"
    );
    client.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b' '; CHUNK];
    client.write_all(&chunk).await.expect("first chunk");
    let mut sent = CHUNK;

    // The answer comes before the body is complete.
    let response = read_response(&mut client).await;
    let status: u16 = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));

    // The server has decided: it closes (its FIN) because the body was not read. Writing on
    // only after that makes the outcome independent of how fast either side runs.
    let mut probe = [0u8; 1];
    let eof = tokio::time::timeout(Duration::from_secs(10), client.read(&mut probe))
        .await
        .expect("the server closes its side after refusing");
    assert!(
        matches!(eof, Ok(0)),
        "expected the server's FIN, got {eof:?}"
    );

    let mut write_error = None;
    while sent < BODY_BYTES {
        let n = CHUNK.min(BODY_BYTES - sent);
        if let Err(error) = client.write_all(&chunk[..n]).await {
            write_error = Some(error.kind());
            break;
        }
        sent += n;
    }
    if write_error.is_none() {
        // Done sending, as a client that has its answer closes its side.
        let _ = client.shutdown().await;
    }
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest))
        .await
        .expect("the server ends the connection within its linger time")
        .map(|_| ())
        .map_err(|e| e.kind());

    let _ = stop_tx.send(());
    server.await.expect("join").expect("serve");
    Seen {
        status,
        write_error,
        end,
    }
}

/// Reads one response head and its `Content-Length` body; returns the head.
async fn read_response(client: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout_at(deadline, client.read(&mut byte))
            .await
            .expect("an answer before the body is complete")
            .expect("read the answer");
        assert!(n > 0, "connection closed before the answer: {buf:?}");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("ASCII head");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).await.expect("answer body");
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_its_body_gets_the_refusal_and_a_clean_close() {
    // Long enough that a loaded machine cannot make the client look idle (a quarter of it).
    let seen = refused_upload(20_000).await;
    assert_eq!(seen.status, 401, "{seen:?}");
    assert_eq!(seen.write_error, None, "{seen:?}");
    assert_eq!(seen.end, Ok(()), "{seen:?}");
    // The acceptor read the rest of the body and saw the client's end, not its own deadline.
    let metrics = dakoku_ingest_api::metrics::install();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics.render();
        if text.contains(r#"ingest_lingering_closes_total{outcome="drained"}"#) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no drained lingering close counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_lingering_the_same_client_is_reset() {
    let seen = refused_upload(0).await;
    assert_eq!(seen.status, 401, "{seen:?}");
    assert!(
        seen.write_error.is_some() || seen.end.is_err(),
        "expected a reset without lingering: {seen:?}"
    );
}
