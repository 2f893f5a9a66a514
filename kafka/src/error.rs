//! The crate's one error type, and the `.doing("...")` extension that names the step a
//! Kafka call failed at.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What went wrong talking to Kafka.
///
/// Two variants only, on purpose: every failure is either something Kafka (librdkafka) said
/// at a named step, or a read that stopped making progress. Callers that want their own
/// wording for a case (a missing topic, a fenced producer) ask the predicates below rather
/// than matching on codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kafka refused or failed an operation; `doing` says at which step.
    #[error("Kafka, {doing}: {source}")]
    Kafka {
        /// The step, e.g. "reading the offsets of punches.raw.g1".
        doing: String,
        /// What Kafka said.
        #[source]
        source: KafkaError,
    },
    /// No record and no progress for `waited`: a transaction held open that long (a
    /// `read_committed` reader waits for it), or a broker problem. Run again.
    #[error("the scan of {topic} made no progress for {waited:?}; is a transaction stuck open?")]
    Stalled {
        /// The topic.
        topic: String,
        /// How long it waited.
        waited: Duration,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::Kafka`] at step `doing`.
    pub fn kafka(doing: impl Into<String>, source: KafkaError) -> Self {
        Self::Kafka {
            doing: doing.into(),
            source,
        }
    }

    /// The librdkafka error code, when Kafka said something with one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            Self::Kafka { source, .. } => source.rdkafka_error_code(),
            Self::Stalled { .. } => None,
        }
    }

    /// Whether the topic (or partition) does not exist.
    pub fn is_unknown_topic(&self) -> bool {
        matches!(
            self.code(),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        )
    }
}

/// Names the step of a failed Kafka call: `consumer.assign(&tpl).doing("assigning")?`.
pub trait Doing<T> {
    /// Wraps the error into [`Error::Kafka`] with `doing`.
    fn doing(self, doing: impl Into<String>) -> Result<T>;

    /// As [`Doing::doing`], building the text only on failure.
    fn doing_with<S: Into<String>>(self, doing: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Doing<T> for std::result::Result<T, KafkaError> {
    fn doing(self, doing: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::kafka(doing, source))
    }

    fn doing_with<S: Into<String>>(self, doing: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|source| Error::kafka(doing(), source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doing_names_the_step_and_keeps_the_source() {
        let failed: std::result::Result<(), KafkaError> = Err(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ));
        let error = failed.doing("reading the metadata of t").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("Kafka, reading the metadata of t: ")
        );
        assert!(error.is_unknown_topic());
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn a_stall_has_no_code() {
        let error = Error::Stalled {
            topic: "t".into(),
            waited: Duration::from_secs(1),
        };
        assert_eq!(error.code(), None);
        assert!(!error.is_unknown_topic());
    }
}
