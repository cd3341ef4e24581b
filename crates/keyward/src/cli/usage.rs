//! `keyward usage`: the usage ledger per call or grouped, streamed page by page.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use keyward_domain::Keyward;
use keyward_http::export::{render_groups, ExportFormat, UsageExport};
use keyward_http::views::{UsageGroupView, UsageRowView};

use crate::output::{or_dash, Format, Output, Table};

use super::scope_of;

#[derive(Args, Debug)]
pub(super) struct UsageArgs {
    /// The tenant: its name or id.
    #[arg(long)]
    tenant: String,
    /// Start: YYYY-MM-DD or RFC 3339.
    #[arg(long)]
    from: Option<String>,
    /// End: YYYY-MM-DD (included) or RFC 3339 (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// `day`, `model`, `key`, `credential`, `department`, `status` or `tag:NAME`.
    #[arg(long)]
    group_by: Option<String>,
}

/// Prints usage page by page, so an export of any size runs in fixed memory. CSV and JSON are
/// the admin API's documents, produced by the same code.
pub(super) async fn usage(
    keyward: &Keyward,
    output: &Output,
    args: UsageArgs,
) -> anyhow::Result<()> {
    let scope = scope_of(keyward, &args.tenant).await?;
    let range = keyward_domain::usage_range(args.from.as_deref(), args.to.as_deref())?;
    let export_format = match output.format {
        Format::Csv => Some(ExportFormat::Csv),
        Format::Json => Some(ExportFormat::Json),
        Format::Table => None,
    };
    let mut stdout = std::io::stdout().lock();
    if let Some(group_by) = args.group_by.as_deref() {
        let by = keyward_domain::GroupBy::parse(group_by).with_context(|| {
            format!(
                "--group-by `{group_by}`: use day, model, key, credential, department or tag:NAME"
            )
        })?;
        let groups = keyward.usage_grouped(&scope, range, by).await?;
        return match export_format {
            Some(format) => Ok(writeln!(
                stdout,
                "{}",
                render_groups(groups, format).trim_end()
            )?),
            None => group_table(groups, &mut stdout),
        };
    }
    if let Some(format) = export_format {
        let mut export = UsageExport::new(keyward.clone(), scope, range, format).await?;
        while let Some(chunk) = export.next_chunk().await {
            stdout.write_all(chunk?.as_bytes())?;
        }
        if format == ExportFormat::Json {
            writeln!(stdout)?;
        }
        return Ok(());
    }
    call_table(keyward, &scope, range, &mut stdout).await
}

/// Grouped totals as a table.
fn group_table(
    groups: Vec<keyward_domain::UsageGroup>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let groups: Vec<UsageGroupView> = groups.into_iter().map(UsageGroupView::from).collect();
    Table::new(vec![
        "GROUP", "REQUESTS", "INPUT", "CACHED", "OUTPUT", "COST USD", "UNPRICED",
    ])
    .rows(groups.iter().map(|group| {
        vec![
            group.group.clone(),
            group.requests.to_string(),
            group.input_tokens.to_string(),
            group.cached_input_tokens.to_string(),
            group.output_tokens.to_string(),
            group.cost_usd.clone(),
            group.unpriced_requests.to_string(),
        ]
    }))
    .write(out)?;
    Ok(())
}

/// One line of the per-call table.
fn call_line(cells: [&str; 7]) -> String {
    format!(
        "{:<26}  {:<20}  {:<24}  {:<16}  {:>8}  {:>8}  {:>12}",
        cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
    )
}

/// Every call in `range` as a table, written page by page as the pages arrive.
async fn call_table(
    keyward: &Keyward,
    scope: &keyward_domain::TenantScope,
    range: (keyward_core::Timestamp, keyward_core::Timestamp),
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let departments = keyward.department_names(scope).await?;
    let header = [
        "TIME",
        "CREDENTIAL",
        "MODEL",
        "STATUS",
        "INPUT",
        "OUTPUT",
        "COST USD",
    ];
    writeln!(out, "{}", call_line(header))?;
    let mut after: Option<String> = None;
    loop {
        let page = keyward.usage_page(scope, range, after.as_deref()).await?;
        let full = page.len() == keyward_domain::USAGE_PAGE as usize;
        after = page.last().map(|call| call.request_id.clone());
        for call in page {
            let department = call
                .department_id
                .as_ref()
                .and_then(|id| departments.get(id))
                .cloned();
            let row = UsageRowView::new(call, department);
            let cost = row
                .cost_micro_usd
                .map_or_else(|| "-".to_owned(), keyward_core::format_usd);
            let model = row
                .model_reported
                .as_deref()
                .unwrap_or(&row.model_requested);
            let line = call_line([
                &row.time,
                &row.credential_label,
                model,
                &row.status,
                &or_dash(row.input_tokens),
                &or_dash(row.output_tokens),
                &cost,
            ]);
            writeln!(out, "{line}")?;
        }
        if !full {
            return Ok(());
        }
    }
}
