//! Opening the database and running the embedded migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::StoreError;

/// The database. Cloning is cheap (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: SqlitePool,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl Store {
    /// Opens `url` (`sqlite://PATH`), creating the file if needed, and migrates it.
    ///
    /// SQLite runs in WAL mode with `synchronous = NORMAL`: a committed transaction survives a
    /// crash or kill of the process (what the ledger's durability promise needs); only an OS
    /// crash or power loss can drop the last commits.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let Some(path) = url.strip_prefix("sqlite://") else {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            });
        };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|source| StoreError::Open {
                location: path.to_owned(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                location: path.to_owned(),
                source,
            })?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(Self { pool })
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A URL may carry a password (`postgres://user:pw@host`): show scheme and host only.
fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let host = host.split('/').next().unwrap_or_default();
            format!("{scheme}://{host}/…")
        }
        None => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://kw:hunter2@db.internal:5432/keyward"),
            "postgres://db.internal:5432/…"
        );
        assert_eq!(redact_url("hunter2"), "(not a URL)");
    }
}
