//! This process as one registered instance, and the sweep that finds calls abandoned by
//! instances that are gone.
//!
//! Invariants:
//! - Every pending ledger row this process writes names this instance (`Store::for_instance`).
//! - A row is marked `interrupted` only when its instance is gone: on this host, its process no
//!   longer exists (or its heartbeat is older than [`LOCAL_STALE`]); on another host, its
//!   heartbeat is older than [`REMOTE_STALE`]. A live replica's in-flight calls are never
//!   touched, however many replicas share the database.
//! - "This host" is the hostname *and* the PID namespace: two containers that share a hostname
//!   cannot see each other's processes, so neither judges the other by `/proc`.
//! - Heartbeats are written and judged on the database's clock: replicas whose clocks are
//!   skewed still agree on which of them is gone.
//! - Sweeping is safe on every replica at once: each row is settled by a conditional update.

use std::time::Duration;

use keyward_core::Timestamp;
use keyward_store::InstanceRecord;

use crate::{DomainError, Keyward};

/// How often a serving replica refreshes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Another host's instance is gone when its heartbeat is this old.
pub const REMOTE_STALE: Duration = Duration::from_secs(30);
/// On this host a live process is trusted longer (a long CLI command does not heartbeat), but
/// not forever (its pid may have been reused).
pub const LOCAL_STALE: Duration = Duration::from_secs(600);

/// Where this process's pids are meaningful: the machine's name and, where the kernel says,
/// the PID namespace (`pid:[…]`) — instances that share both can check each other's pid.
pub fn host_name() -> String {
    let name = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    match std::fs::read_link("/proc/self/ns/pid") {
        Ok(namespace) => format!("{name} {}", namespace.display()),
        Err(_) => name,
    }
}

/// Whether process `pid` exists on this host; `None` where that cannot be told (no `/proc`).
fn process_alive(pid: u32) -> Option<bool> {
    let proc = std::path::Path::new("/proc");
    proc.join("self")
        .exists()
        .then(|| proc.join(pid.to_string()).exists())
}

fn older_than(at: Timestamp, now: Timestamp, age: Duration) -> bool {
    let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    now.unix_millis().saturating_sub(at.unix_millis()) > age
}

/// Whether `instance` is gone, seen from this host at `now`.
pub(crate) fn is_gone(instance: &InstanceRecord, host: &str, now: Timestamp) -> bool {
    if instance.host == host {
        process_alive(instance.pid) == Some(false)
            || older_than(instance.heartbeat_at, now, LOCAL_STALE)
    } else {
        older_than(instance.heartbeat_at, now, REMOTE_STALE)
    }
}

impl Keyward {
    /// This process's instance id (the owner of the pending rows it writes).
    pub fn instance_id(&self) -> &str {
        &self.instance.id
    }

    pub(crate) async fn register_instance(&self) -> Result<(), DomainError> {
        let now = self.store.database_now().await?;
        self.store
            .register_instance(&InstanceRecord {
                id: self.instance.id.to_string(),
                host: self.instance.host.clone(),
                pid: std::process::id(),
                started_at: now,
                heartbeat_at: now,
            })
            .await?;
        Ok(())
    }

    /// Refreshes this instance's heartbeat, registering again if another replica removed it.
    pub async fn heartbeat(&self) -> Result<(), DomainError> {
        if !self.store.heartbeat_instance(&self.instance.id).await? {
            tracing::warn!(instance = %self.instance.id, "this instance's registration was removed (judged gone after a long pause); registering again");
            self.register_instance().await?;
        }
        Ok(())
    }

    /// Marks `interrupted` the calls left pending by instances that are gone (and by writers
    /// from before instances existed, when `include_unowned`), releasing their budget
    /// reservations as spent, and forgets those instances.
    pub async fn interrupt_abandoned_calls(
        &self,
        include_unowned: bool,
    ) -> Result<u64, DomainError> {
        let now = self.store.database_now().await?;
        let (gone, live): (Vec<InstanceRecord>, Vec<InstanceRecord>) = self
            .store
            .instances()
            .await?
            .into_iter()
            .partition(|instance| {
                *instance.id != *self.instance.id && is_gone(instance, &self.instance.host, now)
            });
        let gone: Vec<String> = gone.into_iter().map(|instance| instance.id).collect();
        let mut live: Vec<String> = live.into_iter().map(|instance| instance.id).collect();
        live.push(self.instance.id.to_string());
        let documents = self
            .store
            .fail_orphaned_documents(&live, INTERRUPTED_INGESTION)
            .await?;
        if documents > 0 {
            tracing::warn!(documents, "documents left ingesting by a Keyward process that is gone marked failed; upload them again");
        }
        let interrupted = self
            .store
            .interrupt_pending_calls(&gone, include_unowned, now)
            .await?;
        for id in &gone {
            self.store.remove_instance(id).await?;
        }
        if interrupted > 0 {
            tracing::warn!(calls = interrupted, instances = gone.len(), "calls left pending by a Keyward process that is gone marked interrupted; reconcile them against the provider");
        }
        Ok(interrupted)
    }

    /// Removes this instance's registration (clean exit). Calls of this process still pending
    /// (a drain that timed out, a settlement that failed) are marked interrupted first: once
    /// the registration is gone, no sweep would find them.
    pub async fn deregister(&self) {
        let own = [self.instance.id.to_string()];
        match self
            .store
            .interrupt_pending_calls(&own, false, Timestamp::now())
            .await
        {
            Ok(0) => {}
            Ok(calls) => tracing::warn!(calls, "calls still pending at exit marked interrupted; reconcile them against the provider"),
            Err(err) => tracing::warn!(error = %err, "could not mark this instance's pending calls interrupted"),
        }
        let others: Vec<String> = match self.store.instances().await {
            Ok(instances) => instances
                .into_iter()
                .map(|instance| instance.id)
                .filter(|id| **id != *self.instance.id)
                .collect(),
            Err(_) => Vec::new(),
        };
        if let Err(err) = self
            .store
            .fail_orphaned_documents(&others, INTERRUPTED_INGESTION)
            .await
        {
            tracing::warn!(error = %err, "could not mark this instance's ingesting documents failed");
        }
        if let Err(err) = self.store.remove_instance(&self.instance.id).await {
            tracing::warn!(error = %err, "could not remove this instance's registration; another replica will once it is judged gone");
        }
    }
}

/// Why a document that was ingesting when its process stopped failed.
const INTERRUPTED_INGESTION: &str = "ingestion was interrupted (the Keyward process ingesting it stopped); upload the document again";

/// This process's identity.
#[derive(Debug)]
pub(crate) struct Instance {
    pub id: std::sync::Arc<str>,
    pub host: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(host: &str, pid: u32, heartbeat_ms_ago: i64, now: Timestamp) -> InstanceRecord {
        InstanceRecord {
            id: "i".into(),
            host: host.into(),
            pid,
            started_at: now,
            heartbeat_at: Timestamp::from_unix_millis(now.unix_millis() - heartbeat_ms_ago),
        }
    }

    #[test]
    fn local_instances_are_gone_when_their_process_is_remote_ones_when_silent() {
        let now = Timestamp::now();
        let me = std::process::id();
        // This very process is alive, however old its heartbeat (up to the local limit).
        assert!(!is_gone(&instance("here", me, 120_000, now), "here", now));
        assert!(is_gone(&instance("here", me, 601_000, now), "here", now));
        if process_alive(me).is_some() {
            // No process has pid 4 194 304 + 1 (above Linux's pid_max).
            assert!(is_gone(&instance("here", 4_194_305, 0, now), "here", now));
        }
        assert!(!is_gone(&instance("there", 1, 10_000, now), "here", now));
        assert!(is_gone(&instance("there", 1, 31_000, now), "here", now));
    }
}
