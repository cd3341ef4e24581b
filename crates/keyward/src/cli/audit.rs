//! `keyward audit verify`: checks the audit log's hash chain.

use anyhow::bail;
use clap::Subcommand;
use keyward_domain::{Actor, Keyward};

use crate::output::{Output, Table};

#[derive(Subcommand, Debug)]
pub(super) enum AuditCommand {
    /// Walk the whole hash chain; exit non-zero at the first changed or deleted entry.
    Verify,
}

pub(super) async fn audit_verify(keyward: &Keyward, output: &Output) -> anyhow::Result<()> {
    let verification = keyward.verify_audit_log(&Actor::Operator).await?;
    let document = serde_json::json!({
        "entries": verification.entries,
        "head_hash": verification.head_hash,
        "intact": verification.broken.is_none(),
        "broken_at_seq": verification.broken.as_ref().map(|broken| broken.seq),
        "reason": verification.broken.as_ref().map(|broken| broken.reason),
    });
    output.emit(&document, || {
        let line = match &verification.broken {
            None => format!(
                "audit log intact: {} entries; head hash {} (record it elsewhere to detect a truncated tail)",
                verification.entries, verification.head_hash
            ),
            Some(broken) => format!("audit log BROKEN at entry {}: {}", broken.seq, broken.reason),
        };
        Table::new(vec![]).footer(line)
    })?;
    if let Some(broken) = verification.broken {
        bail!(
            "the audit log's hash chain is broken at entry {}: {}",
            broken.seq,
            broken.reason
        );
    }
    Ok(())
}
