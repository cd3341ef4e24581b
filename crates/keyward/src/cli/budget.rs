//! `keyward budget`: hard and soft spending caps of a tenant, a department or a platform key.

use clap::Subcommand;
use keyward_domain::Keyward;
use keyward_http::views::BudgetView;

use crate::output::{or_dash, Format, Output, Table};

use super::scope_of;

#[derive(Subcommand, Debug)]
pub(super) enum BudgetCommand {
    /// Create or update the budget of the tenant, a department or a platform key.
    Set {
        /// The tenant: its name or id.
        #[arg(long)]
        tenant: String,
        /// A department name (default: the whole tenant).
        #[arg(long, conflicts_with = "key")]
        department: Option<String>,
        /// A platform key id.
        #[arg(long)]
        key: Option<String>,
        /// `day` (UTC), `month` (UTC) or `total`.
        #[arg(long)]
        period: String,
        /// Hard limit in USD, e.g. 25 or 12.50.
        #[arg(long)]
        hard: Option<String>,
        /// Soft limit in USD: crossing it raises an alert.
        #[arg(long)]
        soft: Option<String>,
    },
    List {
        /// The tenant: its name or id.
        #[arg(long)]
        tenant: String,
    },
}

pub(super) async fn budget(
    keyward: &Keyward,
    output: &Output,
    command: BudgetCommand,
) -> anyhow::Result<()> {
    let budgets = match command {
        BudgetCommand::Set {
            tenant,
            department,
            key,
            period,
            hard,
            soft,
        } => {
            let scope = scope_of(keyward, &tenant).await?;
            let budget_scope = match (department, key) {
                (Some(department), _) => format!("department:{department}"),
                (None, Some(key)) => format!("key:{key}"),
                (None, None) => "tenant".to_owned(),
            };
            let status = keyward
                .set_budget(
                    &scope,
                    keyward_domain::BudgetInput {
                        scope: budget_scope,
                        period,
                        hard_limit_usd: hard,
                        soft_limit_usd: soft,
                    },
                )
                .await?;
            if output.format == Format::Json {
                return output.emit(&BudgetView::from(status), || Table::new(vec![]));
            }
            vec![BudgetView::from(status)]
        }
        BudgetCommand::List { tenant } => {
            let scope = scope_of(keyward, &tenant).await?;
            keyward
                .budgets(&scope)
                .await?
                .into_iter()
                .map(BudgetView::from)
                .collect()
        }
    };
    let table = || {
        Table::new(vec![
            "SCOPE",
            "PERIOD",
            "WINDOW",
            "HARD USD",
            "SOFT USD",
            "SPENT USD",
            "RESERVED USD",
        ])
        .rows(budgets.iter().map(|budget| {
            vec![
                budget.scope.clone(),
                budget.period.clone(),
                budget.window.clone(),
                or_dash(budget.hard_limit_usd.as_ref()),
                or_dash(budget.soft_limit_usd.as_ref()),
                budget.spent_usd.clone(),
                budget.reserved_usd.clone(),
            ]
        }))
    };
    output.emit(
        &serde_json::json!({"data": &budgets, "next_cursor": null}),
        table,
    )
}
