//! Master-key versions known to this database (by key check value) and re-wrap jobs.
//!
//! Invariant: at most one runner holds a job's lease at a time; progress writes name the
//! runner, so a runner whose lease was taken over cannot overwrite the new runner's progress.

use keyward_core::{KeyVersion, Timestamp};

use crate::{Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewrapState {
    Pending,
    Running,
    Done,
    Failed,
}

impl RewrapState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Done, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

#[derive(Clone, Debug)]
pub struct RewrapJob {
    pub id: String,
    pub target_version: KeyVersion,
    pub state: RewrapState,
    pub done: u64,
    pub total: u64,
    pub failed: u64,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct RewrapJobRow {
    id: String,
    target_version: i64,
    state: String,
    done: i64,
    total: i64,
    failed: i64,
    created_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<RewrapJobRow> for RewrapJob {
    type Error = StoreError;
    fn try_from(row: RewrapJobRow) -> Result<Self, StoreError> {
        let corrupt = |column| StoreError::corrupt("rewrap_jobs", column, &row.id);
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        Ok(Self {
            target_version: u32::try_from(row.target_version)
                .ok()
                .and_then(KeyVersion::new)
                .ok_or_else(|| corrupt("target_version"))?,
            state: RewrapState::parse(&row.state).ok_or_else(|| corrupt("state"))?,
            done: count(row.done),
            total: count(row.total),
            failed: count(row.failed),
            created_at: Timestamp::from_unix_millis(row.created_at),
            finished_at: row.finished_at.map(Timestamp::from_unix_millis),
            id: row.id,
        })
    }
}

const JOB_COLUMNS: &str = "id, target_version, state, done, total, failed, created_at, finished_at";

fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

impl Store {
    /// Records a version's key check value; a version already recorded keeps its first value.
    pub async fn register_master_key(
        &self,
        version: KeyVersion,
        check_value: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO master_keys (version, check_value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(i64::from(version.get()))
        .bind(check_value)
        .bind(at.unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every recorded version with its key check value, lowest first.
    pub async fn master_keys(&self) -> Result<Vec<(KeyVersion, String)>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT version, check_value FROM master_keys ORDER BY version")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(version, check_value)| {
                let version = u32::try_from(version)
                    .ok()
                    .and_then(KeyVersion::new)
                    .ok_or_else(|| StoreError::corrupt("master_keys", "version", version))?;
                Ok((version, check_value))
            })
            .collect()
    }

    pub async fn insert_rewrap_job(&self, job: &RewrapJob) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO rewrap_jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&job.id)
        .bind(i64::from(job.target_version.get()))
        .bind(job.state.as_str())
        .bind(to_i64(job.done))
        .bind(to_i64(job.total))
        .bind(to_i64(job.failed))
        .bind(job.created_at.unix_millis())
        .bind(job.finished_at.map(Timestamp::unix_millis))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recently created job.
    pub async fn latest_rewrap_job(&self) -> Result<Option<RewrapJob>, StoreError> {
        sqlx::query_as::<_, RewrapJobRow>(&format!(
            "SELECT {JOB_COLUMNS} FROM rewrap_jobs ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?
        .map(RewrapJob::try_from)
        .transpose()
    }

    /// Takes the lease of an unfinished job that nobody holds (or whose holder's lease ran
    /// out, or that `owner` already holds). Returns the job if the lease is now `owner`'s.
    pub async fn claim_rewrap_job(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<RewrapJob>, StoreError> {
        let candidate: Option<String> = sqlx::query_scalar(
            "SELECT id FROM rewrap_jobs
             WHERE state IN ('pending', 'running')
               AND (lease_owner IS NULL OR lease_expires_at < $1 OR lease_owner = $2)
             ORDER BY created_at LIMIT 1",
        )
        .bind(now.unix_millis())
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        let Some(id) = candidate else {
            return Ok(None);
        };
        let claimed = sqlx::query(
            "UPDATE rewrap_jobs SET lease_owner = $1, lease_expires_at = $2, state = 'running'
             WHERE id = $3 AND state IN ('pending', 'running')
               AND (lease_owner IS NULL OR lease_expires_at < $4 OR lease_owner = $1)",
        )
        .bind(owner)
        .bind(lease_until.unix_millis())
        .bind(&id)
        .bind(now.unix_millis())
        .execute(&self.pool)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        sqlx::query_as::<_, RewrapJobRow>(&format!(
            "SELECT {JOB_COLUMNS} FROM rewrap_jobs WHERE id = $1"
        ))
        .bind(&id)
        .fetch_optional(&self.pool)
        .await?
        .map(RewrapJob::try_from)
        .transpose()
    }

    /// Records progress and extends the lease; `false` when `owner` no longer holds it.
    pub async fn record_rewrap_progress(
        &self,
        job: &RewrapJob,
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE rewrap_jobs SET done = $1, total = $2, failed = $3, lease_expires_at = $4,
                                    state = $5, finished_at = $6
             WHERE id = $7 AND lease_owner = $8",
        )
        .bind(to_i64(job.done))
        .bind(to_i64(job.total))
        .bind(to_i64(job.failed))
        .bind(lease_until.unix_millis())
        .bind(job.state.as_str())
        .bind(job.finished_at.map(Timestamp::unix_millis))
        .bind(&job.id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
