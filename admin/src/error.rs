//! [`AdminError`]: the four ways an administrator's operation fails, each mapping to one HTTP
//! status and one CLI exit code, and each saying what to do.

/// Why an operation was refused or could not run.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request itself is wrong (HTTP 422, CLI exit 2): fix `field` and send it again.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field (request field or CLI flag name without dashes) at fault.
        field: &'static str,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// Something the request names does not exist (HTTP 404, CLI exit 2).
    #[error("{what} {id} not found{}", not_found_hint(what))]
    NotFound {
        /// What was looked for (`tenant`, `employee`, `target`).
        what: &'static str,
        /// The id given.
        id: String,
    },
    /// The request contradicts the current state (HTTP 409, CLI exit 2): already closed, not
    /// closed, already voided.
    #[error("{0}")]
    Conflict(String),
    /// Postgres or Kafka could not be reached or failed (HTTP 503, CLI exit 1): retry later.
    #[error("{0}")]
    Unavailable(String),
}

impl AdminError {
    /// An [`AdminError::Invalid`].
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            problem: problem.into(),
        }
    }

    /// Whether the caller can fix it by changing the request (not [`AdminError::Unavailable`]).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Unavailable(_))
    }
}

impl From<tokio_postgres::Error> for AdminError {
    fn from(error: tokio_postgres::Error) -> Self {
        AdminError::Unavailable(format!(
            "Postgres query failed: {}; nothing was changed, retry when Postgres is back \
             (is DATABASE_URL right and the schema migrated: `punchctl db migrate`?)",
            describe_pg(&error)
        ))
    }
}

impl From<deadpool_postgres::PoolError> for AdminError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        AdminError::Unavailable(format!(
            "cannot get a Postgres connection: {error}; nothing was changed, retry when Postgres is up (is DATABASE_URL right?)"
        ))
    }
}

impl From<dakoku_kafka::Error> for AdminError {
    fn from(error: dakoku_kafka::Error) -> Self {
        AdminError::Unavailable(format!(
            "Kafka: {error}; nothing was appended, retry when Kafka is up (is KAFKA_BROKERS right?)"
        ))
    }
}

/// The server's message when there is one (the driver's Display is only "db error").
fn describe_pg(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}

/// What to do about a missing `what`.
fn not_found_hint(what: &str) -> &'static str {
    match what {
        "tenant" => "; see `punchctl tenant list`",
        "employee" => "; see `punchctl employee list --tenant T`",
        "target" => {
            ": no stored punch or added punch of the tenant has this id; one submitted moments \
             ago may not be stored yet, retry in a few seconds"
        }
        _ => "",
    }
}
