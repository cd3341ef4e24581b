//! `keyward tenant`: create, list and show tenants (operator only, like the admin API's tenant routes).

use clap::Subcommand;
use keyward_domain::{Actor, Keyward};
use keyward_http::views::TenantView;

use crate::output::{Output, Table};

use super::{all, list};

#[derive(Subcommand, Debug)]
pub(super) enum TenantCommand {
    /// Create a tenant.
    Create {
        /// The tenant's name (unique).
        name: String,
    },
    /// List tenants.
    List,
}

pub(super) async fn tenant(
    keyward: &Keyward,
    output: &Output,
    command: TenantCommand,
) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { name } => {
            let view = TenantView::from(keyward.create_tenant(&Actor::Operator, &name).await?);
            output.emit(&view, || tenant_table(std::slice::from_ref(&view)))
        }
        TenantCommand::List => {
            let tenants =
                all(|page| async move { keyward.tenants(&Actor::Operator, &page).await }).await?;
            let views: Vec<TenantView> = tenants.into_iter().map(TenantView::from).collect();
            let table = tenant_table(&views);
            output.emit(&list(views), || table)
        }
    }
}

pub(super) fn tenant_table(tenants: &[TenantView]) -> Table {
    Table::new(vec!["ID", "NAME", "CREATED"]).rows(tenants.iter().map(|tenant| {
        vec![
            tenant.id.clone(),
            tenant.name.clone(),
            tenant.created_at.clone(),
        ]
    }))
}
