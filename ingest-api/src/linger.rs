//! Lingering close: when a connection ends, keep reading (and discarding) what the client is
//! still sending for a short while before closing the socket.
//!
//! The acceptor answers cheap refusals (bad token, pause, rate limit, overload) before reading
//! the body, and hyper then closes the connection. Closing a socket with unread data makes the
//! kernel send a reset, and a recorder still writing its body sees "connection reset" instead
//! of the `503` and its `Retry-After`: exactly the answer that was meant to spread the storm
//! out. Apache and nginx do the same (`lingering_close`) for the same reason.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How lingering is bounded.
#[derive(Debug, Clone)]
pub struct Linger {
    /// Longest a closed connection is read from.
    pub total: Duration,
    /// Give up after this long without data (the client has stopped sending).
    pub idle: Duration,
    /// Discard at most this many bytes (a body the client should not have sent further).
    pub max_bytes: usize,
    /// Sockets lingering at once at most; past it, connections close at once as before.
    pub slots: Arc<Semaphore>,
}

impl Linger {
    /// Lingering for up to `total` (giving up after a quarter of it without data), discarding
    /// up to `max_bytes`, with `slots` sockets at once.
    pub fn new(total: Duration, max_bytes: usize, slots: usize) -> Self {
        Self {
            total,
            idle: total / 4,
            max_bytes,
            slots: Arc::new(Semaphore::new(slots)),
        }
    }
}

/// A TCP stream that lingers when dropped (see the module docs). Reads and writes go straight
/// through.
#[derive(Debug)]
pub struct LingeringStream {
    stream: Option<TcpStream>,
    linger: Option<Linger>,
}

impl LingeringStream {
    /// Wraps `stream`; `None` closes it at once when dropped.
    pub fn new(stream: TcpStream, linger: Option<Linger>) -> Self {
        Self {
            stream: Some(stream),
            linger,
        }
    }

    fn stream(&mut self) -> &mut TcpStream {
        self.stream
            .as_mut()
            .expect("the stream is only taken in drop")
    }
}

impl AsyncRead for LingeringStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_read(cx, buf)
    }
}

impl AsyncWrite for LingeringStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_shutdown(cx)
    }
}

impl Drop for LingeringStream {
    fn drop(&mut self) {
        let (Some(stream), Some(linger)) = (self.stream.take(), self.linger.take()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(slot) = Arc::clone(&linger.slots).try_acquire_owned() else {
            crate::metrics::lingering_close("no_slot");
            return;
        };
        runtime.spawn(async move {
            let _slot = slot;
            let outcome = drain(stream, &linger).await;
            crate::metrics::lingering_close(outcome);
        });
    }
}

/// Sends our FIN, then reads until the client closes or a bound is reached. Returns how it
/// ended, for the metric.
async fn drain(mut stream: TcpStream, linger: &Linger) -> &'static str {
    // Our side is done: the response (if any) is followed by a FIN, so the client sees a clean
    // end of it whatever it is still sending.
    let _ = stream.shutdown().await;
    let deadline = Instant::now() + linger.total;
    let mut discarded = 0usize;
    let mut scratch = [0u8; 8192];
    loop {
        let wait = linger
            .idle
            .min(deadline.saturating_duration_since(Instant::now()));
        if wait.is_zero() {
            return "timeout";
        }
        match tokio::time::timeout(wait, stream.read(&mut scratch)).await {
            Err(_) => return "timeout",
            Ok(Ok(0)) => return if discarded == 0 { "clean" } else { "drained" },
            Ok(Ok(n)) => {
                discarded += n;
                if discarded > linger.max_bytes {
                    return "too_much";
                }
            }
            Ok(Err(_)) => return "error",
        }
    }
}
