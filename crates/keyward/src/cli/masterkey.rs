//! `keyward masterkey`: master-key versions, rotation and re-wrap progress.

use anyhow::bail;
use clap::Subcommand;
use keyward_domain::{Actor, Keyward, RewrapState};
use keyward_http::views::MasterKeyView;

use crate::output::{Output, Table};

#[derive(Subcommand, Debug)]
pub(super) enum MasterkeyCommand {
    /// Versions, rows sealed under each, and re-wrap progress.
    Status,
    /// Add a new version, make it primary, and re-wrap every sealed value.
    Rotate,
}

pub(super) async fn masterkey(
    keyward: &Keyward,
    output: &Output,
    command: MasterkeyCommand,
) -> anyhow::Result<()> {
    let operator = Actor::Operator;
    let status = match command {
        MasterkeyCommand::Status => keyward.master_key_status(&operator).await?,
        MasterkeyCommand::Rotate => {
            keyward.rotate_master_key(&operator).await?;
            // Work the re-wrap here unless a running server already holds it.
            let runner = format!("cli-{}", std::process::id());
            let stop = tokio_util::sync::CancellationToken::new();
            if !keyward.run_key_maintenance(&runner, &stop).await? {
                tracing::warn!(
                    "the re-wrap is running on a server; follow it with `keyward masterkey status`"
                );
            }
            keyward.master_key_status(&operator).await?
        }
    };
    let failed = status.rewrap.state == Some(RewrapState::Failed);
    let view = MasterKeyView::from(status);
    let table = Table::new(vec!["VERSION", "STATE", "ROWS", "CHECK VALUE"])
        .rows(view.versions.iter().map(|version| {
            vec![
                version.version.to_string(),
                version.state.clone(),
                version.rows.to_string(),
                version.check_value.clone(),
            ]
        }))
        .footer(format!(
            "re-wrap: {} ({}/{} done, {} failed)",
            view.rewrap.state.as_deref().unwrap_or("never run"),
            view.rewrap.done,
            view.rewrap.total,
            view.rewrap.failed
        ));
    output.emit(&view, || table)?;
    if failed {
        bail!("the re-wrap could not open some rows; they stay on their old version (see the logs for their ids)");
    }
    Ok(())
}
