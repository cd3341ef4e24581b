//! Master-key versions: the startup check against the database's recorded key check values,
//! the status view, rotation, and the online re-wrap that moves every sealed row to the new
//! primary version.
//!
//! Invariants:
//! - A server whose keyring holds a different key under a recorded version, or lacks a version
//!   that still seals rows, refuses to start.
//! - Re-wrapping writes a row only over the exact blob it read (compare-and-swap), so a tenant
//!   rotating the same credential meanwhile is never overwritten.
//! - Exactly one runner works a re-wrap job at a time (a lease in the store); a runner that
//!   dies is replaced once its lease runs out.
//! - Service never stops: old versions keep opening until the re-wrap is done, and a process
//!   that meets a version it does not know reloads its keyring.

use std::collections::BTreeMap;
use std::time::Duration;

use keyward_core::{KeyVersion, Timestamp};
use keyward_store::{KnowledgeTable, RewrapJob, RewrapState};
use tokio_util::sync::CancellationToken;

use crate::credential::binding;
use crate::{Actor, DomainError, Keyward};

/// Rows re-wrapped per batch: small, so each write transaction is short.
const REWRAP_BATCH: u32 = 64;
/// How long a runner's claim on a job lasts without progress.
const LEASE: Duration = Duration::from_secs(30);
/// How often servers look for new versions and runnable jobs.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionState {
    /// The highest version: seals everything new.
    Primary,
    /// In the keyring, opens rows, seals nothing.
    DecryptOnly,
    /// No longer in the keyring and no row uses it.
    Retired,
    /// Rows still use it, but the keyring lacks it (the server would not start).
    Missing,
}

impl VersionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::DecryptOnly => "decrypt-only",
            Self::Retired => "retired",
            Self::Missing => "missing",
        }
    }
}

#[derive(Clone, Debug)]
pub struct VersionStatus {
    pub version: KeyVersion,
    pub state: VersionState,
    pub rows: u64,
    pub check_value: String,
}

#[derive(Clone, Debug)]
pub struct RewrapProgress {
    pub state: Option<RewrapState>,
    pub done: u64,
    pub total: u64,
    pub failed: u64,
}

#[derive(Clone, Debug)]
pub struct MasterKeyStatus {
    pub primary: KeyVersion,
    pub source: String,
    pub versions: Vec<VersionStatus>,
    pub rewrap: RewrapProgress,
}

impl Keyward {
    /// Compares the keyring with the versions recorded in the database and records new ones.
    pub(crate) async fn verify_master_keys(&self) -> Result<(), DomainError> {
        let keyring = self.vault.keyring();
        let location = keyring.source_location().to_owned();
        let recorded: BTreeMap<_, _> = self.store.master_keys().await?.into_iter().collect();
        for (version, check_value) in keyring.versions() {
            match recorded.get(&version) {
                Some(expected) if expected != check_value.as_str() => {
                    return Err(DomainError::MasterKeyMismatch {
                        version,
                        location,
                        actual: check_value.to_string(),
                        recorded: expected.clone(),
                    })
                }
                Some(_) => {}
                None => {
                    self.store
                        .register_master_key(version, check_value.as_str(), Timestamp::now())
                        .await?;
                }
            }
        }
        for (version, rows) in self.store.sealed_rows_by_version().await? {
            if rows > 0 && !keyring.contains(version) {
                return Err(DomainError::MasterKeyMissing {
                    version,
                    rows,
                    location,
                });
            }
        }
        Ok(())
    }

    /// Queues a re-wrap of every row to `primary`, for the runner to claim.
    async fn queue_rewrap(&self, primary: KeyVersion) -> Result<(), DomainError> {
        let now = Timestamp::now();
        self.store
            .insert_rewrap_job(&RewrapJob {
                id: keyward_core::RequestId::generate().to_string(),
                target_version: primary,
                state: RewrapState::Pending,
                done: 0,
                total: 0,
                failed: 0,
                created_at: now,
                finished_at: None,
            })
            .await?;
        Ok(())
    }

    /// Rows still sealed under a version other than the primary, and no job moving them (the
    /// configured source changed, e.g. `file:` → `aws-kms:`, a version was appended before a
    /// restart, or a crash came between a rotation and its job): queue the same online
    /// re-wrap a rotation queues. Checked at every start.
    pub(crate) async fn rewrap_rows_behind(&self, primary: KeyVersion) -> Result<(), DomainError> {
        let behind: u64 = self
            .store
            .sealed_rows_by_version()
            .await?
            .into_iter()
            .filter(|(version, _)| *version != primary)
            .map(|(_, rows)| rows)
            .sum();
        let queued = self.store.latest_rewrap_job().await?.is_some_and(|job| {
            job.target_version >= primary
                && matches!(job.state, RewrapState::Pending | RewrapState::Running)
        });
        if behind == 0 || queued {
            return Ok(());
        }
        self.queue_rewrap(primary).await?;
        tracing::info!(primary = %primary, rows = behind, source = %self.vault.source_location(), "new master key version from the configured source; re-wrap queued");
        Ok(())
    }

    pub async fn master_key_status(&self, actor: &Actor) -> Result<MasterKeyStatus, DomainError> {
        actor.require_operator()?;
        let keyring = self.vault.keyring();
        let primary = keyring.primary();
        let rows: BTreeMap<_, _> = self
            .store
            .sealed_rows_by_version()
            .await?
            .into_iter()
            .collect();
        let mut check_values: BTreeMap<KeyVersion, String> =
            self.store.master_keys().await?.into_iter().collect();
        for (version, check_value) in keyring.versions() {
            check_values
                .entry(version)
                .or_insert_with(|| check_value.to_string());
        }
        let versions = check_values
            .into_iter()
            .map(|(version, check_value)| {
                let rows = rows.get(&version).copied().unwrap_or(0);
                let state = match (version == primary, keyring.contains(version), rows) {
                    (true, _, _) => VersionState::Primary,
                    (false, true, _) => VersionState::DecryptOnly,
                    (false, false, 0) => VersionState::Retired,
                    (false, false, _) => VersionState::Missing,
                };
                VersionStatus {
                    version,
                    state,
                    rows,
                    check_value,
                }
            })
            .collect();
        let rewrap = match self.store.latest_rewrap_job().await? {
            Some(job) => RewrapProgress {
                state: Some(job.state),
                done: job.done,
                total: job.total,
                failed: job.failed,
            },
            None => RewrapProgress {
                state: None,
                done: 0,
                total: 0,
                failed: 0,
            },
        };
        Ok(MasterKeyStatus {
            primary,
            source: keyring.source_location().to_owned(),
            versions,
            rewrap,
        })
    }

    /// Starts a rotation: the source gets a new, higher version (a `file:` keyring appends
    /// one; for `env:` the operator appended it already), which becomes primary for new seals,
    /// and a re-wrap job is queued for the runner.
    pub async fn rotate_master_key(&self, actor: &Actor) -> Result<MasterKeyStatus, DomainError> {
        actor.require_operator()?;
        let previous = self
            .store
            .master_keys()
            .await?
            .into_iter()
            .map(|(version, _)| version)
            .max()
            .unwrap_or(KeyVersion::MIN);
        let keyring = self.vault.prepare_rotation().await?;
        let primary = keyring.primary();
        if primary <= previous {
            return Err(DomainError::NothingToRotate {
                location: keyring.source_location().to_owned(),
                primary,
                next: u64::from(primary.get()) + 1,
            });
        }
        self.verify_master_keys().await?;
        self.queue_rewrap(primary).await?;
        tracing::info!(primary = %primary, "master key rotated; re-wrap queued");
        self.audit_operator(
            actor,
            None,
            "masterkey.rotate",
            &primary.to_string(),
            serde_json::json!({"previous": previous.to_string()}),
        )
        .await;
        self.master_key_status(actor).await
    }

    /// One round of background key work: pick up versions another process added, then run any
    /// re-wrap job this runner can claim. Returns whether a job was worked.
    pub async fn run_key_maintenance(
        &self,
        runner: &str,
        stop: &CancellationToken,
    ) -> Result<bool, DomainError> {
        self.secrets.purge_expired();
        let known = self.store.master_keys().await?;
        let keyring = self.vault.keyring();
        // Only a version newer than ours means another process rotated; retired old versions
        // are recorded forever and must not make every round reload (a KMS call per version).
        let newest = known.iter().map(|(version, _)| *version).max();
        if let Some(newest) = newest.filter(|newest| *newest > keyring.primary()) {
            if self.may_retry_reload(newest) {
                let reloaded = self.vault.reload().await?;
                if reloaded.contains(newest) {
                    self.verify_master_keys().await?;
                } else {
                    self.note_missed_reload(newest);
                }
            }
        }
        // A process without the job's version (a replica still on the old configuration
        // during a rolling change of source) leaves the job to one that has it, instead of
        // holding its lease while unable to work it.
        if let Some(job) = self.store.latest_rewrap_job().await? {
            let runnable = matches!(job.state, RewrapState::Pending | RewrapState::Running);
            if runnable && !self.vault.keyring().contains(job.target_version) {
                return Ok(false);
            }
        }
        let now = Timestamp::now();
        let Some(job) = self
            .store
            .claim_rewrap_job(runner, now, lease_until(now))
            .await?
        else {
            return Ok(false);
        };
        self.run_rewrap(job, runner, stop).await?;
        Ok(true)
    }

    async fn run_rewrap(
        &self,
        mut job: RewrapJob,
        runner: &str,
        stop: &CancellationToken,
    ) -> Result<(), DomainError> {
        // Re-wrap to the job's own version. A process whose keyring lacks it (an env: keyring
        // not yet updated on this replica) leaves the job to one that has it.
        let target = job.target_version;
        if !self.vault.keyring().contains(target) && !self.vault.reload().await?.contains(target) {
            return Err(DomainError::MasterKeyMissing {
                version: target,
                rows: job.total.saturating_sub(job.done),
                location: self.vault.source_location(),
            });
        }
        tracing::info!(job = %job.id, target = %target, "master key re-wrap started");
        // Passes repeat until one finds nothing: a process that had not yet seen the new
        // version may have sealed a row under the old one meanwhile.
        loop {
            let mut cursor = None;
            let mut found_any = false;
            loop {
                if stop.is_cancelled() {
                    return Ok(());
                }
                let batch = self
                    .store
                    .rewrap_candidates(target, cursor, REWRAP_BATCH)
                    .await?;
                let Some(last) = batch.last() else { break };
                cursor = Some(last.id);
                found_any = true;
                job.total = job.total.max(job.done + job.failed + batch.len() as u64);
                for row in batch {
                    let binding = binding(row.tenant_id, row.id);
                    match self.vault.reseal(&row.secret, &binding, target).await {
                        Ok(resealed) => {
                            // A lost swap means the row changed under us; the next pass sees it
                            // again if it is still on an old version.
                            if self
                                .store
                                .swap_sealed_secret(row.id, &row.secret, &resealed)
                                .await?
                            {
                                job.done += 1;
                            }
                        }
                        Err(err) => {
                            job.failed += 1;
                            tracing::error!(credential = %row.id, tenant = %row.tenant_id, error = %err, "re-wrap could not open a row; it stays on its old version");
                        }
                    }
                }
                job.total = job.total.max(job.done + job.failed);
                if !self
                    .store
                    .record_rewrap_progress(&job, runner, lease_until(Timestamp::now()))
                    .await?
                {
                    tracing::warn!(job = %job.id, "re-wrap lease lost to another runner; stopping");
                    return Ok(());
                }
            }
            match self
                .rewrap_beyond_credentials(&mut job, runner, stop)
                .await?
            {
                Some(found) => found_any |= found,
                None => return Ok(()),
            }
            if !found_any || job.failed > 0 {
                break;
            }
            // Let other processes notice the new version before the confirming pass.
            tokio::time::sleep(WATCH_INTERVAL * 2).await;
        }
        job.state = if job.failed == 0 {
            RewrapState::Done
        } else {
            RewrapState::Failed
        };
        job.finished_at = Some(Timestamp::now());
        self.store
            .record_rewrap_progress(&job, runner, Timestamp::now())
            .await?;
        tracing::info!(job = %job.id, done = job.done, failed = job.failed, "master key re-wrap finished");
        Ok(())
    }
}

impl Keyward {
    /// Re-wraps every row of a knowledge table behind the job's version. `None` when the job
    /// must stop (cancelled, or its lease was lost); else whether any row was found.
    async fn rewrap_knowledge_table(
        &self,
        table: KnowledgeTable,
        job: &mut RewrapJob,
        runner: &str,
        stop: &CancellationToken,
    ) -> Result<Option<bool>, DomainError> {
        let mut cursor: Option<String> = None;
        let mut found_any = false;
        loop {
            if stop.is_cancelled() {
                return Ok(None);
            }
            let batch = self
                .rewrap_knowledge_batch(table, job.target_version, cursor.as_deref(), REWRAP_BATCH)
                .await?;
            if batch.found == 0 {
                return Ok(Some(found_any));
            }
            found_any = true;
            cursor = batch.last;
            job.done += batch.done;
            job.failed += batch.failed;
            job.total = job.total.max(job.done + job.failed);
            if !self
                .store
                .record_rewrap_progress(job, runner, lease_until(Timestamp::now()))
                .await?
            {
                tracing::warn!(job = %job.id, "re-wrap lease lost to another runner; stopping");
                return Ok(None);
            }
        }
    }
}

impl Keyward {
    /// Re-wraps the sealed rows that are not credentials: documents, chunks, connectors.
    /// `None` when the job must stop; else whether any row was found.
    async fn rewrap_beyond_credentials(
        &self,
        job: &mut RewrapJob,
        runner: &str,
        stop: &CancellationToken,
    ) -> Result<Option<bool>, DomainError> {
        let mut found_any = false;
        for table in [KnowledgeTable::Documents, KnowledgeTable::Chunks] {
            match self
                .rewrap_knowledge_table(table, job, runner, stop)
                .await?
            {
                Some(found) => found_any |= found,
                None => return Ok(None),
            }
        }
        Ok(self
            .rewrap_connectors(job, runner, stop)
            .await?
            .map(|found| found || found_any))
    }

    /// Re-wraps every connector's app password behind the job's version; like
    /// `rewrap_knowledge_table`, `None` when the job must stop.
    async fn rewrap_connectors(
        &self,
        job: &mut RewrapJob,
        runner: &str,
        stop: &CancellationToken,
    ) -> Result<Option<bool>, DomainError> {
        let mut cursor = None;
        let mut found_any = false;
        loop {
            if stop.is_cancelled() {
                return Ok(None);
            }
            let batch = self
                .store
                .connector_rewrap_candidates(job.target_version, cursor, REWRAP_BATCH)
                .await?;
            let Some(last) = batch.last() else {
                return Ok(Some(found_any));
            };
            cursor = Some(last.id);
            found_any = true;
            for connector in &batch {
                let Some(sealed) = &connector.secret else {
                    continue;
                };
                let binding = crate::connector::app_secret_binding(connector);
                match self
                    .vault
                    .reseal(sealed, &binding, job.target_version)
                    .await
                {
                    Ok(resealed) => {
                        if self
                            .store
                            .swap_connector_secret(connector.id, sealed, &resealed)
                            .await?
                        {
                            job.done += 1;
                        }
                    }
                    Err(err) => {
                        job.failed += 1;
                        tracing::error!(connector = %connector.id, tenant = %connector.tenant_id, error = %err, "re-wrap could not open a row; it stays on its old version");
                    }
                }
            }
            job.total = job.total.max(job.done + job.failed);
            if !self
                .store
                .record_rewrap_progress(job, runner, lease_until(Timestamp::now()))
                .await?
            {
                tracing::warn!(job = %job.id, "re-wrap lease lost to another runner; stopping");
                return Ok(None);
            }
        }
    }
}

/// How often a replica retries a reload that did not yield a newer version.
const MISSED_RELOAD_RETRY: Duration = Duration::from_secs(30);

impl Keyward {
    fn may_retry_reload(&self, wanted: KeyVersion) -> bool {
        let missed = match self.missed_reload.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        };
        match missed {
            Some((version, at)) if version == wanted => at.elapsed() >= MISSED_RELOAD_RETRY,
            _ => true,
        }
    }

    fn note_missed_reload(&self, wanted: KeyVersion) {
        tracing::warn!(version = %wanted, source = %self.vault.source_location(), "another process uses a newer master key version this process's source does not have; update master_key.source on this replica");
        let mut missed = match self.missed_reload.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *missed = Some((wanted, std::time::Instant::now()));
    }
}

fn lease_until(now: Timestamp) -> Timestamp {
    let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    Timestamp::from_unix_millis(now.unix_millis().saturating_add(lease))
}
