//! The replay's reader: every partition from its first offset up to the end offset taken at
//! the start, read with the bounded scan of `dakoku-kafka` on a blocking thread, decoded as
//! the service decodes, fed to the writer.

use std::collections::BTreeMap;
use std::time::Duration;

use dakoku_kafka::scan::{Next, scan};
use dakoku_kafka::{ClientFactory, Reader};
use dakoku_schemas::GroupId;
use tokio::sync::mpsc;

use super::error::RebuildError;
use super::kafka::CLIENT_ID;
use crate::decode::{Incoming, Poison, decode_record};

/// A record as the reader hands it over.
pub(super) struct Read {
    pub(super) record: Incoming,
    pub(super) poison: Option<Poison>,
}

/// Reads `bounds` (partition -> `[first, end)`) of `topic` and feeds the writer; ends early,
/// without error, when the writer has stopped (it reports why). A scan that sees nothing for
/// `stall` fails with [`RebuildError::Stalled`].
pub(super) async fn read(
    kafka: ClientFactory,
    group: GroupId,
    topic: String,
    bounds: BTreeMap<i32, (i64, i64)>,
    feed: mpsc::Sender<Read>,
    stall: Duration,
) -> Result<(), RebuildError> {
    tokio::task::spawn_blocking(move || {
        let reader: Reader = kafka.reader(format!("{CLIENT_ID}.{group}")).create()?;
        let mut on = |message: &rdkafka::message::BorrowedMessage<'_>| {
            let (record, poison) = decode_record(&group, message);
            match feed.blocking_send(Read { record, poison }) {
                Ok(()) => Next::Continue,
                Err(_) => Next::Stop,
            }
        };
        match scan(&reader, &topic, &bounds, stall, &mut on, &mut |_| {}) {
            Ok(_) => Ok(()),
            Err(dakoku_kafka::Error::Stalled { topic, waited }) => {
                Err(RebuildError::Stalled { topic, waited })
            }
            Err(error) => Err(error.into()),
        }
    })
    .await
    .map_err(|e| RebuildError::Reader(e.to_string()))?
}
