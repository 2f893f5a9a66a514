//! What an idempotent master-data write did, and how a refused one differs from what is stored.

use std::fmt;

/// One field whose stored value differs from the one given to an `add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The field's name as the CLI flag calls it (`name`, `group`, `time-zone`, `day-change`).
    pub field: &'static str,
    /// The value in Postgres.
    pub stored: String,
    /// The value given.
    pub given: String,
}

impl Difference {
    /// The fields whose stored and given values differ, from `(field, stored, given)`.
    pub fn between(fields: impl IntoIterator<Item = (&'static str, String, String)>) -> Vec<Self> {
        fields
            .into_iter()
            .filter(|(_, stored, given)| stored != given)
            .map(|(field, stored, given)| Self {
                field,
                stored,
                given,
            })
            .collect()
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {:?} (given {:?})",
            self.field, self.stored, self.given
        )
    }
}

/// What an idempotent `add` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Inserted now.
    Created,
    /// It existed with the same values; nothing was written.
    Unchanged,
}

impl fmt::Display for Added {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Unchanged => "unchanged",
        })
    }
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed<T> {
    /// Changed from `before` to `after`.
    Updated {
        /// As it was.
        before: T,
        /// As it is now.
        after: T,
    },
    /// Already as asked; nothing written.
    Unchanged(T),
}
