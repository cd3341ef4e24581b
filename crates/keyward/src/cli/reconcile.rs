//! `keyward reconcile`: the ledger against a provider's own usage export.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use keyward_domain::Keyward;
use keyward_http::views::ReconciliationView;

use crate::output::{or_dash, Output, Table};

use super::scope_of;

#[derive(Args, Debug)]
pub(super) struct ReconcileArgs {
    /// The tenant: its name or id.
    #[arg(long)]
    tenant: String,
    /// `openai`, `anthropic` or `bedrock`.
    #[arg(long)]
    provider: String,
    /// An export file: OpenAI usage/costs API JSON or usage CSV, Anthropic usage/cost report
    /// JSON or Console CSV, AWS Cost and Usage Report CSV. Repeat for usage and cost files.
    #[arg(long = "file", required = true)]
    files: Vec<PathBuf>,
    /// `BILLED=MODEL`: a name the provider bills under (e.g. a Bedrock usage-type model such
    /// as `Claude4.6Sonnet`) and the model id Keyward calls. Repeatable.
    #[arg(long = "model-map", value_name = "BILLED=MODEL")]
    model_map: Vec<String>,
}

/// Reads the export files (streamed: a CUR of any size is read row by row) and prints the
/// report; a differing line makes the command fail, so scripts can alert on it.
pub(super) async fn reconcile(
    keyward: &Keyward,
    output: &Output,
    args: ReconcileArgs,
) -> anyhow::Result<()> {
    let scope = scope_of(keyward, &args.tenant).await?;
    let provider: keyward_core::ProviderId = args.provider.parse().map_err(|_| {
        anyhow::anyhow!(
            "--provider `{}`: use openai, anthropic or bedrock",
            args.provider
        )
    })?;
    let mut model_map = BTreeMap::new();
    for entry in &args.model_map {
        let (billed, model) = entry
            .split_once('=')
            .filter(|(billed, model)| !billed.trim().is_empty() && !model.trim().is_empty())
            .with_context(|| format!("--model-map `{entry}`: write BILLED=MODEL"))?;
        model_map.insert(billed.trim().to_owned(), model.trim().to_owned());
    }
    let mut statement = keyward_domain::ProviderStatement::new(provider, model_map)?;
    for path in &args.files {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        statement.read(&path.display().to_string(), file)?;
    }
    let report = keyward.reconcile(&scope, statement).await?;
    let view = ReconciliationView::from(report);
    let differing = view.differing_lines;
    output.emit(&view, || reconciliation_table(&view))?;
    if differing > 0 {
        bail!(
            "{differing} of {} lines differ between the ledger and the {} export",
            view.lines,
            view.provider
        );
    }
    Ok(())
}

pub(super) fn reconciliation_table(view: &ReconciliationView) -> Table {
    let count = |value: Option<u64>| or_dash(value);
    let mut table = Table::new(vec![
        "DATE",
        "MODEL",
        "STATUS",
        "SIDE",
        "REQUESTS",
        "INPUT",
        "CACHED",
        "CACHE WRITE",
        "OUTPUT",
        "COST USD",
    ]);
    for line in &view.data {
        for (side, values) in [("keyward", &line.keyward), ("provider", &line.provider)] {
            let Some(values) = values else { continue };
            table = table.row(vec![
                line.date.clone(),
                line.model.clone(),
                line.status.to_owned(),
                side.to_owned(),
                count(values.requests),
                count(values.input_tokens),
                count(values.cached_input_tokens),
                count(values.cache_write_tokens),
                count(values.output_tokens),
                or_dash(values.cost_usd.as_ref()),
            ]);
        }
    }
    let mut footer = vec![format!(
        "{} to {}: {} lines, {} differ; Keyward ${}, provider ${} (+ ${} not attributed to a model)",
        view.from,
        view.to,
        view.lines,
        view.differing_lines,
        view.keyward_cost_usd,
        view.provider_cost_usd,
        view.provider_unattributed_cost_usd
    )];
    let plain = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    for line in &view.data {
        for difference in &line.differences {
            footer.push(format!(
                "difference {} {} {}: keyward {} provider {} (delta {})",
                line.date,
                line.model,
                difference.field,
                plain(&difference.keyward),
                plain(&difference.provider),
                plain(&difference.delta)
            ));
        }
    }
    for cost in &view.unattributed {
        footer.push(format!(
            "unattributed {} {}: ${}",
            cost.date, cost.description, cost.cost_usd
        ));
    }
    for warning in &view.warnings {
        footer.push(format!("warning: {warning}"));
    }
    table.footer(footer.join("\n"))
}
