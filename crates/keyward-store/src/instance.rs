//! Registered Keyward processes, for per-instance ownership of pending ledger rows.

use keyward_core::Timestamp;

use crate::{Backend, Store, StoreError};

/// One registered process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRecord {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct InstanceRow {
    id: String,
    host: String,
    pid: i64,
    started_at: i64,
    heartbeat_at: i64,
}

/// The database's clock in ms since the Unix epoch, as SQL for each backend.
fn now_ms_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
    }
}

impl Store {
    /// Now on the database's clock: what heartbeats are written with and judged by, so
    /// replicas whose own clocks disagree still agree on which of them is gone.
    pub async fn database_now(&self) -> Result<Timestamp, StoreError> {
        let millis: i64 = sqlx::query_scalar(&format!("SELECT {}", now_ms_sql(self.backend())))
            .fetch_one(&self.pool)
            .await?;
        Ok(Timestamp::from_unix_millis(millis))
    }

    /// The same store, writing `instance` as the owner of the pending rows it admits.
    pub fn for_instance(&self, instance: &str) -> Self {
        let mut store = self.clone();
        store.instance = Some(instance.into());
        store
    }

    pub async fn register_instance(&self, instance: &InstanceRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (id, host, pid, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&instance.id)
        .bind(&instance.host)
        .bind(i64::from(instance.pid))
        .bind(instance.started_at.unix_millis())
        .bind(instance.heartbeat_at.unix_millis())
        .execute(&self.pool)
        .await
        .map_err(|err| StoreError::from_write(err, "instance", "id"))?;
        Ok(())
    }

    /// Refreshes an instance's heartbeat; false when its row is gone (another replica judged it
    /// dead), so the caller can register again.
    /// The heartbeat is the database's clock, not the caller's.
    pub async fn heartbeat_instance(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(&format!(
            "UPDATE instances SET heartbeat_at = {} WHERE id = $1",
            now_ms_sql(self.backend())
        ))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn remove_instance(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn instances(&self) -> Result<Vec<InstanceRecord>, StoreError> {
        let rows: Vec<InstanceRow> = sqlx::query_as(
            "SELECT id, host, pid, started_at, heartbeat_at FROM instances ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| InstanceRecord {
                pid: u32::try_from(row.pid).unwrap_or(0),
                id: row.id,
                host: row.host,
                started_at: Timestamp::from_unix_millis(row.started_at),
                heartbeat_at: Timestamp::from_unix_millis(row.heartbeat_at),
            })
            .collect())
    }
}
