//! Store errors. Messages name tables, columns and ids; row contents never appear.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable ({0}); check store.url and that the database is reachable and writable")]
    Unavailable(#[source] sqlx::Error),
    /// From the ledger writer's own SQLite connection (see `group_commit`).
    #[error("the database is unavailable ({0}); check store.url and that the database is reachable and writable")]
    Sqlite(#[source] SqliteError),
    #[error("a {what} with this {field} already exists")]
    Conflict {
        what: &'static str,
        field: &'static str,
    },
    #[error(
        "stored {table}.{column} of row {id} is not valid; the database was edited outside Keyward"
    )]
    Corrupt {
        table: &'static str,
        column: &'static str,
        id: String,
    },
    #[error("too many concurrent writers on the {what}; retry the operation")]
    Contended { what: &'static str },
    #[error("cannot open the database at {location}: {source}")]
    Open {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("store.url `{url}` is not supported; use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl { url: String },
    #[error("{what} is not available on this store")]
    Unsupported { what: &'static str },
    #[error("the database schema could not be migrated (the role needs to own the schema for a first start or an upgrade; a database from a newer Keyward version is refused)")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`], anything else to
    /// [`StoreError::Unavailable`].
    pub(crate) fn from_write(err: sqlx::Error, what: &'static str, field: &'static str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict { what, field },
            _ => Self::Unavailable(err),
        }
    }

    /// Whether the same statement may succeed on another connection: the connection was lost
    /// (I/O, a server shutting down or restarting: SQLSTATE classes 08 and 57P), the pool had
    /// none free, or PostgreSQL aborted a transaction that conflicted with another (40001,
    /// 40P01).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) => true,
            Self::Unavailable(sqlx::Error::Database(database)) => {
                database.code().is_some_and(|code| {
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || code == "40001"
                        || code == "40P01"
                })
            }
            _ => false,
        }
    }

    pub(crate) fn corrupt(table: &'static str, column: &'static str, id: impl ToString) -> Self {
        Self::Corrupt {
            table,
            column,
            id: id.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self::Unavailable(err)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sqlite(SqliteError(Box::new(err)))
    }
}

/// An error of the ledger writer's SQLite connection. Opaque, so the SQLite binding the
/// writer uses stays an implementation detail of this crate.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SqliteError(Box<rusqlite::Error>);
