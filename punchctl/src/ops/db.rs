//! `punchctl db`: bring the Postgres schema up to date.

use dakoku_store::{Migrated, StoreError};

/// Applies every pending migration to the database at `url`.
pub async fn migrate(url: &str) -> Result<Migrated, StoreError> {
    let mut client = dakoku_store::connect(url).await?;
    dakoku_store::migrate(&mut client).await
}
