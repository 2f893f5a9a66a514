//! A refusal answered before the body is read still reaches a client that goes on sending the
//! body: the acceptor reads and discards the rest before closing, instead of resetting the
//! connection under the client's feet. A server that closes with the body unread (what the
//! acceptor did before lingering) makes the same client see the reset, which shows the check
//! can fail.
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
    let seen = upload_to(addr, None).await;
    let _ = stop_tx.send(());
    server.await.expect("join").expect("serve");
    seen
}

/// A server that answers `401` after the head and closes with the body unread, once the client
/// has seen its FIN: the kernel resets the connection. Closing only after the client's signal
/// keeps the answer from being lost to the reset, and the client writes on only once the
/// socket is closed, so the outcome does not depend on timing.
async fn refused_upload_by_a_closing_server() -> Seen {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (fin_seen_tx, fin_seen_rx) = oneshot::channel::<()>();
    let (closed_tx, closed_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(socket.read(&mut byte).await.expect("read head"), 1);
            head.push(byte[0]);
        }
        socket
            .write_all(
                b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await
            .expect("answer");
        socket.shutdown().await.expect("FIN");
        let _ = fin_seen_rx.await;
        drop(socket);
        let _ = closed_tx.send(());
    });
    let seen = upload_to(addr, Some((fin_seen_tx, closed_rx))).await;
    server.await.expect("join");
    seen
}

/// Sends a head and the first chunk of a large body, reads the answer and the server's FIN,
/// then sends the rest and reads to the end. With `handshake`, it tells the server it has seen
/// the FIN and waits for the server's close before sending on.
async fn upload_to(
    addr: std::net::SocketAddr,
    handshake: Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>,
) -> Seen {
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
    if let Some((fin_seen, closed)) = handshake {
        let _ = fin_seen.send(());
        let _ = closed.await;
    }

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
        // Done sending, as a client that has its answer closes its side. Once the server's FIN
        // is in, Linux reports a later reset to writes (this shutdown among them), not to reads.
        if let Err(error) = client.shutdown().await {
            write_error = Some(error.kind());
        }
    }
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest))
        .await
        .expect("the server ends the connection within its linger time")
        .map(|_| ())
        .map_err(|e| e.kind());
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
async fn a_server_closing_with_the_body_unread_resets_the_same_client() {
    let seen = refused_upload_by_a_closing_server().await;
    assert_eq!(seen.status, 401, "{seen:?}");
    assert!(
        seen.write_error.is_some() || seen.end.is_err(),
        "expected a reset from a server closing with the body unread: {seen:?}"
    );
}
