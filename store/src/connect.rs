//! Connections and pools from a `DATABASE_URL`.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use crate::StoreError;

/// The local stack's database (`scripts/stack up`), used when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://dakoku:dakoku@127.0.0.1:55432/dakoku";

/// Opens one connection and drives it on the current runtime.
///
/// The connection task ends (and logs) when the client is dropped or the server goes away;
/// callers see that as errors on their next query.
pub async fn connect(url: &str) -> Result<Client, StoreError> {
    let config = Config::from_str(url).map_err(StoreError::BadUrl)?;
    let (client, connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(url),
                source,
            })?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "postgres connection closed");
        }
    });
    Ok(client)
}

/// A connection whose server notifications (LISTEN/NOTIFY) are signalled on a channel.
#[derive(Debug)]
pub struct Notified {
    /// The client to query (and `LISTEN`) with.
    pub client: Client,
    /// Receives `()` after one or more notifications; bursts coalesce into one signal. Closed
    /// when the connection ends.
    pub notifications: mpsc::Receiver<()>,
    _driver: AbortOnDrop,
}

/// Opens one connection like [`connect`] and forwards its notifications to
/// [`Notified::notifications`]; the connection's task ends when the [`Notified`] is dropped.
pub async fn connect_notified(url: &str) -> Result<Notified, StoreError> {
    let config = Config::from_str(url).map_err(StoreError::BadUrl)?;
    let (client, mut connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(url),
                source,
            })?;
    let (notify_tx, notifications) = mpsc::channel::<()>(1);
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    // A full channel already means "something changed": bursts coalesce.
                    let _ = notify_tx.try_send(());
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "notified postgres connection ended");
                    break;
                }
            }
        }
    });
    Ok(Notified {
        client,
        notifications,
        _driver: AbortOnDrop(driver),
    })
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Builds a pool of at most `max_size` connections; connections are opened lazily.
pub fn pool(url: &str, max_size: usize) -> Result<Pool, StoreError> {
    let config = Config::from_str(url).map_err(StoreError::BadUrl)?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // Fast: a broken connection shows up as a query error and is then discarded.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .build()
        .map_err(|e| StoreError::Pool(e.to_string()))
}

/// The URL with any password replaced, safe to log.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://dakoku:secret@127.0.0.1:55432/dakoku"),
            "postgres://dakoku:***@127.0.0.1:55432/dakoku"
        );
        assert_eq!(
            redact("postgres://dakoku@127.0.0.1/dakoku"),
            "postgres://dakoku@127.0.0.1/dakoku"
        );
        assert_eq!(redact("host=/tmp user=x"), "host=/tmp user=x");
    }
}
