//! The client context every Dakoku client gets: librdkafka's log lines and error events go to
//! `tracing` at their true level, so an operator never sees ERROR for something that is not one.
//!
//! rust-rdkafka's default context logs every error event at ERROR, including
//! `PartitionEOF`, which a reader with `enable.partition.eof=true` gets at the normal end of
//! each partition. librdkafka itself says error events are informational unless fatal: the
//! client recovers from transport and broker-down errors by itself. Services with a context of
//! their own (statistics, rebalance hooks) call [`log_line`] and [`error_event`] from their
//! `ClientContext::log` and `ClientContext::error` to get the same mapping.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;
use tracing::Level;

/// The `tracing` target of everything librdkafka reports (filter with `RUST_LOG=librdkafka=...`).
pub const TARGET: &str = "librdkafka";

/// A context that only logs: for clients without hooks of their own. Implements the
/// consumer and producer contexts with their default behaviour.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogContext;

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_line(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        error_event(&error, reason);
    }
}

impl ConsumerContext for LogContext {}

impl ProducerContext for LogContext {
    type DeliveryOpaque = ();

    // Fire-and-forget producers of this context check nothing per record; producers that need
    // delivery reports use `FutureProducer` (whose context wraps this one) or their own.
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// The level a librdkafka log line is reported at: syslog's levels folded onto `tracing`'s.
pub fn log_level(level: RDKafkaLogLevel) -> Level {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => Level::ERROR,
        RDKafkaLogLevel::Warning => Level::WARN,
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => Level::INFO,
        RDKafkaLogLevel::Debug => Level::DEBUG,
    }
}

/// The level an error event (librdkafka's `error_cb`) is reported at.
///
/// - The end of a partition is normal: DEBUG.
/// - A broker closing an idle connection (`Disconnected (after ...ms in state UP...)`) is
///   normal too: INFO.
/// - Errors librdkafka recovers from by itself (transport, resolution, brokers down, timeouts)
///   are worth a look if they persist: WARN.
/// - Everything else, fatal errors and authentication or TLS failures in particular: ERROR.
pub fn error_level(error: &KafkaError, reason: &str) -> Level {
    let Some(code) = error.rdkafka_error_code() else {
        return Level::ERROR;
    };
    match code {
        RDKafkaErrorCode::PartitionEOF => Level::DEBUG,
        RDKafkaErrorCode::BrokerTransportFailure if is_idle_disconnect(reason) => Level::INFO,
        RDKafkaErrorCode::BrokerTransportFailure
        | RDKafkaErrorCode::AllBrokersDown
        | RDKafkaErrorCode::Resolve
        | RDKafkaErrorCode::MessageTimedOut
        | RDKafkaErrorCode::OperationTimedOut
        | RDKafkaErrorCode::RequestTimedOut
        | RDKafkaErrorCode::BrokerNotAvailable
        | RDKafkaErrorCode::LeaderNotAvailable
        | RDKafkaErrorCode::NotLeaderForPartition
        | RDKafkaErrorCode::NetworkException
        | RDKafkaErrorCode::CoordinatorLoadInProgress
        | RDKafkaErrorCode::CoordinatorNotAvailable
        | RDKafkaErrorCode::NotCoordinator => Level::WARN,
        _ => Level::ERROR,
    }
}

/// Whether `reason` is a broker closing a connection that was up and idle
/// (`connections.max.idle.ms`), which librdkafka reports as a transport failure.
fn is_idle_disconnect(reason: &str) -> bool {
    reason.contains("Disconnected (after") && reason.contains("in state UP")
}

/// Reports a librdkafka log line at [`log_level`].
pub fn log_line(level: RDKafkaLogLevel, fac: &str, message: &str) {
    emit(log_level(level), fac, message);
}

/// Reports an error event at [`error_level`].
pub fn error_event(error: &KafkaError, reason: &str) {
    let level = error_level(error, reason);
    let text = format!("{error}: {reason}");
    emit(level, "ERROR", &text);
}

/// Writes `ClientContext::log` and `ClientContext::error` for a context of a service's own
/// (statistics, rebalance hooks), inside its `impl ClientContext for ... { }`, so its clients
/// log like [`LogContext`]'s:
///
/// ```
/// use dakoku_kafka::rdkafka::client::ClientContext;
///
/// struct Stats;
///
/// impl ClientContext for Stats {
///     dakoku_kafka::log_to_tracing!();
/// }
/// ```
#[macro_export]
macro_rules! log_to_tracing {
    () => {
        fn log(&self, level: $crate::rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
            $crate::context::log_line(level, fac, message);
        }

        fn error(&self, error: $crate::rdkafka::error::KafkaError, reason: &str) {
            $crate::context::error_event(&error, reason);
        }
    };
}

/// `tracing`'s macros need the level as a constant.
fn emit(level: Level, fac: &str, message: &str) {
    match level {
        Level::ERROR => tracing::error!(target: TARGET, fac, "{message}"),
        Level::WARN => tracing::warn!(target: TARGET, fac, "{message}"),
        Level::INFO => tracing::info!(target: TARGET, fac, "{message}"),
        Level::DEBUG => tracing::debug!(target: TARGET, fac, "{message}"),
        Level::TRACE => tracing::trace!(target: TARGET, fac, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(code: RDKafkaErrorCode) -> KafkaError {
        KafkaError::Global(code)
    }

    #[test]
    fn the_end_of_a_partition_is_not_an_error() {
        let level = error_level(
            &global(RDKafkaErrorCode::PartitionEOF),
            "Broker: No more messages",
        );
        assert_eq!(level, Level::DEBUG);
    }

    #[test]
    fn an_idle_disconnect_is_info_and_other_transport_failures_warn() {
        let transport = global(RDKafkaErrorCode::BrokerTransportFailure);
        let idle = "127.0.0.1:9092/1: Disconnected (after 600012ms in state UP)";
        assert_eq!(error_level(&transport, idle), Level::INFO);
        let refused =
            "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused";
        assert_eq!(error_level(&transport, refused), Level::WARN);
        assert_eq!(
            error_level(
                &global(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down"
            ),
            Level::WARN
        );
    }

    #[test]
    fn fatal_and_authentication_errors_stay_errors() {
        for code in [
            RDKafkaErrorCode::Fatal,
            RDKafkaErrorCode::Authentication,
            RDKafkaErrorCode::SaslAuthenticationFailed,
            RDKafkaErrorCode::InvalidProducerEpoch,
        ] {
            assert_eq!(error_level(&global(code), "x"), Level::ERROR, "{code:?}");
        }
        assert_eq!(error_level(&KafkaError::Canceled, "x"), Level::ERROR);
    }

    #[test]
    fn log_lines_keep_their_syslog_level() {
        assert_eq!(log_level(RDKafkaLogLevel::Critical), Level::ERROR);
        assert_eq!(log_level(RDKafkaLogLevel::Error), Level::ERROR);
        assert_eq!(log_level(RDKafkaLogLevel::Warning), Level::WARN);
        assert_eq!(log_level(RDKafkaLogLevel::Notice), Level::INFO);
        assert_eq!(log_level(RDKafkaLogLevel::Info), Level::INFO);
        assert_eq!(log_level(RDKafkaLogLevel::Debug), Level::DEBUG);
    }

    #[test]
    fn a_service_context_gets_the_same_logging_from_the_macro() {
        struct Own;
        impl ClientContext for Own {
            crate::log_to_tracing!();
        }
        // Reaches `error_event`; a PartitionEOF must not panic or need a subscriber.
        Own.error(global(RDKafkaErrorCode::PartitionEOF), "end");
        Own.log(RDKafkaLogLevel::Info, "FETCH", "fine");
    }
}
