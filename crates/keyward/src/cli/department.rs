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
        /// The tenant: its name or id.
        #[arg(long)]
        tenant: String,
        /// The department's name, unique in the tenant.
        name: String,
        /// Model allow-list, comma-separated.
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
    },
    /// List a tenant's departments.
    List {
        /// The tenant: its name or id.
        #[arg(long)]
        tenant: String,
    },
    /// Show a department's members, or replace them with `--set` (who a chat connector
    /// answers for this department: aad:TENANT/OBJECT, email:NAME@DOMAIN, domain:NAME).
    Members {
        /// The tenant: its name or id.
        #[arg(long)]
        tenant: String,
        /// Department name or id.
        department: String,
        /// The new member list, comma-separated (replaces the old one).
        #[arg(long, value_delimiter = ',')]
        set: Option<Vec<String>>,
    },
}

pub(super) async fn department(
    keyward: &Keyward,
    output: &Output,
    command: DepartmentCommand,
) -> anyhow::Result<()> {
    if let DepartmentCommand::Members {
        tenant,
        department,
        set,
    } = command
    {
        return members(keyward, output, &tenant, &department, set).await;
    }
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
        DepartmentCommand::Members { .. } => return Ok(()),
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

async fn members(
    keyward: &Keyward,
    output: &Output,
    tenant: &str,
    department: &str,
    set: Option<Vec<String>>,
) -> anyhow::Result<()> {
    let scope = scope_of(keyward, tenant).await?;
    let id = keyward.department_reference(&scope, department).await?;
    let identities = match set {
        Some(identities) => {
            keyward
                .set_department_members(&scope, id, identities)
                .await?
        }
        None => keyward.department_members(&scope, id).await?,
    };
    output.emit(
        &serde_json::json!({"department_id": id, "identities": identities}),
        || {
            Table::new(vec!["IDENTITY"])
                .rows(identities.iter().map(|identity| vec![identity.clone()]))
        },
    )
}
