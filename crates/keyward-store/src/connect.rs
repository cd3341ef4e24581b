//! Opening the database and running the embedded migrations: SQLite (`sqlite://PATH`, the
//! embedded default) or PostgreSQL (`postgres://…`, for several replicas on one database).
//!
//! Every repository runs the same SQL on both, through sqlx's `Any` driver: the schema is
//! portable (TEXT ids, BIGINT integers, no booleans) and statements use `$N` parameters. The
//! one exception is how SQLite's ledger writes are executed: the same statements, run by the
//! group-commit writer thread on a rusqlite connection of its own (see `group_commit`).
//! Each backend has its own migration directory; the two must describe the same schema.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

use crate::StoreError;

/// Which database engine a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open the database.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Most connections the pool holds (`store.max_connections`).
    pub max_connections: u32,
    /// How long a query waits for a free connection before the store reports unavailable.
    pub acquire_timeout: Duration,
    /// SQLite: the WAL size, in frames of one page, from which the checkpointer pauses the
    /// ledger writer briefly so the WAL starts over instead of growing (default 16,384: 64 MiB).
    pub wal_restart_frames: i64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            wal_restart_frames: crate::group_commit::RESTART_WAL_AT_FRAMES,
        }
    }
}

/// The database. Cloning is cheap (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// The process that owns the pending rows this handle admits (see `for_instance`).
    pub(crate) instance: Option<std::sync::Arc<str>>,
    /// SQLite: the group-commit writer that ledger admissions and settlements go through.
    pub(crate) writer: Option<std::sync::Arc<crate::group_commit::LedgerWriter>>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A pooled PostgreSQL connection idle this long is tested with a round trip before use.
const TEST_IDLE_CONNECTION_AFTER: Duration = Duration::from_secs(1);

impl Store {
    /// Opens `url` with the default options.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// Opens `url` (`sqlite://PATH`, creating the file if needed, or `postgres://…`) and
    /// migrates it.
    ///
    /// SQLite runs in WAL mode with `synchronous = NORMAL`: a committed transaction survives a
    /// crash or kill of the process (what the ledger's durability promise needs); only an OS
    /// crash or power loss can drop the last commits. PostgreSQL commits are durable as its
    /// server is configured (`synchronous_commit`).
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, connect_url) = if let Some(path) = url.strip_prefix("sqlite://") {
            // `mode=rwc` creates the file; the pragmas are set on every connection below.
            (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            });
        };
        let location = match backend {
            Backend::Sqlite => url.trim_start_matches("sqlite://").to_owned(),
            Backend::Postgres => redact_url(url),
        };
        let connect = connect_url
            .parse::<AnyConnectOptions>()
            .map_err(|source| StoreError::Open {
                location: location.clone(),
                source,
            })?
            .disable_statement_logging();
        let pool = pool_options(backend, options)
            .connect_with(connect)
            .await
            .map_err(|source| StoreError::Open { location, source })?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        if !already_migrated(&pool, migrator).await {
            migrator.run(&pool).await.map_err(StoreError::Migrate)?;
        }
        let writer = match backend {
            Backend::Sqlite => Some(std::sync::Arc::new(
                start_ledger_writer(&connect_url, options.wal_restart_frames).await?,
            )),
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            backend,
            instance: None,
            writer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stops the ledger writer (after what is queued) and closes every connection.
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.stop().await;
        }
        self.pool.close().await;
    }
}

/// The file a `sqlite://` URL names, as sqlx reads it (so the ledger writer's own connection
/// opens the very same file). An in-memory database is refused: a second connection would see
/// another, empty one.
fn sqlite_file(connect_url: &str) -> Result<std::path::PathBuf, StoreError> {
    let options: sqlx::sqlite::SqliteConnectOptions =
        connect_url.parse().map_err(|source| StoreError::Open {
            location: connect_url.to_owned(),
            source,
        })?;
    let path = options.get_filename();
    if path.as_os_str() == ":memory:" || path.to_string_lossy().starts_with("file:sqlx-in-memory") {
        return Err(StoreError::UnsupportedUrl {
            url: connect_url.to_owned(),
        });
    }
    Ok(path.to_path_buf())
}

/// Whether every embedded migration is applied (same checksum): then a runtime role without
/// schema privileges can start, since nothing needs creating. Any doubt answers false and the
/// migrator runs (and reports what it cannot do).
async fn already_migrated(pool: &AnyPool, migrator: &sqlx::migrate::Migrator) -> bool {
    let applied: Result<Vec<(i64, Vec<u8>)>, sqlx::Error> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await;
    let Ok(applied) = applied else {
        return false;
    };
    migrator.iter().all(|migration| {
        applied.iter().any(|(version, checksum)| {
            *version == migration.version && checksum.as_slice() == &*migration.checksum
        })
    })
}

/// A URL may carry a password (`postgres://user:pw@host`): show scheme and host only.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            // Everything up to the last `@` may be credentials (even malformed ones): drop it.
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let host = host.split(['/', '?']).next().unwrap_or_default();
            format!("{scheme}://{host}/…")
        }
        None => "(not a URL)".to_owned(),
    }
}

/// The pool's settings: no test before every acquire, SQLite's pragmas on every connection,
/// and a PostgreSQL connection idle for a while tested before use.
fn pool_options(backend: Backend, options: &StoreOptions) -> AnyPoolOptions {
    let pool_options = AnyPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        // No round trip to test a connection before every query: a local SQLite file
        // cannot drop one, and on PostgreSQL it cost about 10 % of the CPU of a call (each
        // call runs two statements; sqlx also tests a connection as it is released). A
        // PostgreSQL connection idle for a while is tested, as PgBouncer does
        // (`server_check_delay`): a server restart or an idle timeout has likely closed it.
        // One closed while busy fails the statement it next runs (an admission answers
        // 503; a settlement is retried on a tested connection, see `Store::settle_call`).
        .test_before_acquire(false)
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    connection
                        .execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                             PRAGMA wal_autocheckpoint = 0;",
                        )
                        .await?;
                }
                Ok(())
            })
        });
    match backend {
        // A failed test closes the connection and the pool hands out another. Only
        // PostgreSQL gets the hook: on SQLite it would be a boxed future per acquire.
        Backend::Postgres => pool_options.before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for < TEST_IDLE_CONNECTION_AFTER {
                    return Ok(true);
                }
                Ok(connection.ping().await.is_ok())
            })
        }),
        Backend::Sqlite => pool_options,
    }
}

/// Starts the SQLite ledger writer thread on the database file of `connect_url`.
async fn start_ledger_writer(
    connect_url: &str,
    restart_frames: i64,
) -> Result<crate::group_commit::LedgerWriter, StoreError> {
    let path = sqlite_file(connect_url)?;
    tokio::task::spawn_blocking(move || {
        crate::group_commit::LedgerWriter::start(&path, restart_frames)
    })
    .await
    .map_err(|err| {
        StoreError::Unavailable(sqlx::Error::Protocol(format!(
            "the ledger writer could not start: {err}"
        )))
    })?
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
        assert_eq!(
            redact_url("postgres://kw:p%40ss/word@db:5432/keyward?sslmode=require"),
            "postgres://db:5432/…"
        );
        assert_eq!(redact_url("hunter2"), "(not a URL)");
    }
}
