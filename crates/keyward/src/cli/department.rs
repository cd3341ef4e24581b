//! `keyward department`: a tenant's departments and their model allow-lists.

use clap::Subcommand;
use keyward_domain::{DepartmentInput, Keyward};
use keyward_http::views::DepartmentView;

use crate::output::{or_dash, Output, Table};

use super::{all, emit_one_or_list, scope_of};

#[derive(Subcommand, Debug)]
pub(super) enum DepartmentCommand {
    /// Create a department.
    Create {
        #[arg(long)]
        tenant: String,
        name: String,
        /// Model allow-list, comma-separated.
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
    },
    /// List a tenant's departments.
    List {
        #[arg(long)]
        tenant: String,
    },
}

pub(super) async fn department(
    keyward: &Keyward,
    output: &Output,
    command: DepartmentCommand,
) -> anyhow::Result<()> {
    let (views, single) = match command {
        DepartmentCommand::Create {
            tenant,
            name,
            models,
        } => {
            let scope = scope_of(keyward, &tenant).await?;
            let department = keyward
                .create_department(&scope, DepartmentInput { name, models })
                .await?;
            (vec![DepartmentView::from(department)], true)
        }
        DepartmentCommand::List { tenant } => {
            let scope = scope_of(keyward, &tenant).await?;
            let departments =
                all(|page| async move { keyward.departments(&scope, &page).await }).await?;
            (
                departments.into_iter().map(DepartmentView::from).collect(),
                false,
            )
        }
    };
    let table = |views: &[DepartmentView]| {
        Table::new(vec!["ID", "NAME", "MODELS", "CREATED"]).rows(views.iter().map(|view| {
            vec![
                view.id.clone(),
                view.name.clone(),
                or_dash(view.models.as_ref().map(|models| models.join(","))),
                view.created_at.clone(),
            ]
        }))
    };
    emit_one_or_list(output, views, single, table)
}
