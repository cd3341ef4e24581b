//! A fresh, empty database per test, on either backend.
//!
//! - SQLite: a file in a temporary directory removed with the [`TestDb`].
//! - PostgreSQL: a new database on the throwaway server `scripts/test-postgres.sh` starts on
//!   loopback, named by `TEST_PG_URL` (a URL of that server's maintenance
//!   database). Without it PostgreSQL tests are skipped with a notice — unless
//!   `TEST_PG_REQUIRED=1` (set by the test script), which turns the skip into a
//!   failure so CI cannot pass without PostgreSQL.
//!
//! A setup failure panics: this crate runs only inside tests, where a panic is the failure.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]
#![expect(
    clippy::panic,
    reason = "test support: a failed setup step must fail the test loudly"
)]

use std::path::Path;

use sqlx::{Connection, Executor};

/// The server URL the test script exports.
pub const POSTGRES_URL_VAR: &str = "TEST_PG_URL";
/// A second server the outage tests stop and start, and the command that does it.
pub const FAULT_POSTGRES_URL_VAR: &str = "TEST_FAULT_PG_URL";
pub const FAULT_PG_CTL_VAR: &str = "TEST_FAULT_PG_CTL";
/// Set to `1` to fail instead of skipping when no PostgreSQL is available.
pub const REQUIRE_POSTGRES_VAR: &str = "TEST_PG_REQUIRED";

/// One test's database.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    dir: tempfile::TempDir,
}

impl TestDb {
    /// A SQLite file in a fresh temporary directory.
    pub fn sqlite() -> Self {
        let dir = temp_dir();
        let url = format!("sqlite://{}", dir.path().join("keyward.db").display());
        Self { url, dir }
    }

    /// A fresh database on the test PostgreSQL server; `None` (after a notice) when there is
    /// none and none is required.
    ///
    /// # Panics
    /// When PostgreSQL is required but not configured or unreachable: a test failure.
    pub async fn postgres() -> Option<Self> {
        Self::postgres_on(POSTGRES_URL_VAR).await
    }

    /// A fresh database on the server reserved for outage tests, and a `pg_ctl` wrapper that
    /// stops (`stop`) and starts (`start`) that server.
    pub async fn fault_postgres() -> Option<(Self, String)> {
        let db = Self::postgres_on(FAULT_POSTGRES_URL_VAR).await?;
        let ctl = std::env::var(FAULT_PG_CTL_VAR).unwrap_or_else(|_| {
            panic!("{FAULT_POSTGRES_URL_VAR} is set but {FAULT_PG_CTL_VAR} is not")
        });
        Some((db, ctl))
    }

    async fn postgres_on(variable: &str) -> Option<Self> {
        let Ok(server) = std::env::var(variable) else {
            assert!(
                std::env::var(REQUIRE_POSTGRES_VAR).as_deref() != Ok("1"),
                "{REQUIRE_POSTGRES_VAR}=1 but {variable} is not set; run scripts/test.sh, which starts PostgreSQL"
            );
            eprintln!(
                "skipping a PostgreSQL test: {variable} is not set (scripts/test.sh sets it)"
            );
            return None;
        };
        let name = format!("kw_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|err| panic!("cannot reach the test PostgreSQL at {variable}: {err}"));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|err| panic!("cannot create a test database: {err}"));
        let _ = admin.close().await;
        Some(Self {
            url: database_url(&server, &name),
            dir: temp_dir(),
        })
    }

    /// The database URL (`sqlite://…` or `postgres://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A private directory for the test's other files (master key, config).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|err| panic!("cannot create a temporary directory: {err}"))
}

/// `server` with its database path replaced by `name` (query parameters kept).
fn database_url(server: &str, name: &str) -> String {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(base, query)| (base, Some(query)));
    let scheme_end = base.find("://").map_or(0, |at| at + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |at| scheme_end + at);
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Runs a test body once per backend: `on_both_backends! { async fn name(db) { … } }` makes
/// `name::sqlite` and `name::postgres`, each with its own fresh `db: TestDb`.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($db:ident) $body:block)*) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test]
                async fn sqlite() {
                    let $db = $crate::TestDb::sqlite();
                    $body
                }

                #[tokio::test]
                async fn postgres() {
                    let Some($db) = $crate::TestDb::postgres().await else {
                        return;
                    };
                    $body
                }
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_keep_credentials_host_and_parameters() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5433/postgres", "kw_1"),
            "postgres://postgres@127.0.0.1:5433/kw_1"
        );
        assert_eq!(
            database_url("postgres://u:p@h:1/db?sslmode=disable", "kw_2"),
            "postgres://u:p@h:1/kw_2?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://h:1", "kw_3"),
            "postgres://h:1/kw_3"
        );
    }
}
