//! `keyward connector`: a tenant's chat connectors (Teams bots, Google Chat apps). Who they
//! answer for which department is `keyward department members`.

use clap::Subcommand;
use keyward_core::ConnectorId;
use keyward_domain::{ConnectorInput, ConnectorRecord, Keyward};
use keyward_http::views::ConnectorView;

use crate::output::{or_dash, Output, Table};
use crate::secret_input::read_secret;

use super::{emit_one_or_list, scope_of};

#[derive(Subcommand, Debug)]
pub(super) enum ConnectorCommand {
    /// Register a connector. A Teams app password is read from stdin (hidden when typed), unless
    /// `--app-secret-ref` names where it is held.
    Create(CreateArgs),
    /// List a tenant's connectors.
    List {
        /// Tenant id or name.
        #[arg(long)]
        tenant: String,
    },
    /// Stop answering: requests are refused with no model call.
    Disable {
        /// Tenant id or name.
        #[arg(long)]
        tenant: String,
        /// Connector id.
        id: String,
    },
    /// Answer again.
    Enable {
        /// Tenant id or name.
        #[arg(long)]
        tenant: String,
        /// Connector id.
        id: String,
    },
    /// Delete a connector and its app password.
    Delete {
        /// Tenant id or name.
        #[arg(long)]
        tenant: String,
        /// Connector id.
        id: String,
    },
}

fn connector_id(text: &str) -> anyhow::Result<ConnectorId> {
    text.parse().map_err(|_| {
        anyhow::anyhow!("`{text}` is not a connector id (see `keyward connector list`)")
    })
}

/// `connector create`'s arguments.
#[derive(clap::Args, Debug)]
pub(super) struct CreateArgs {
    /// Tenant id or name.
    #[arg(long)]
    tenant: String,
    /// `teams` or `google-chat`.
    #[arg(long)]
    kind: String,
    /// Connector name (letters, digits, '-', '_', '.').
    #[arg(long)]
    name: String,
    /// The model answers come from, as a client addresses it (`label/model`).
    #[arg(long)]
    model: String,
    /// Teams: the bot's Microsoft app id; Google Chat: the Cloud project number.
    #[arg(long)]
    app_id: String,
    /// A knowledge base (name or id) searched when the user's department owns it.
    #[arg(long)]
    knowledge_base: Option<String>,
    /// Teams, single-tenant bot: its Entra tenant id (GUID or primary domain).
    #[arg(long)]
    app_tenant_id: Option<String>,
    /// Teams: where the app password is held instead of Keyward (`vault://…`, `aws-sm://…`,
    /// `azure-kv://…`), fetched when a token is needed.
    #[arg(long)]
    app_secret_ref: Option<String>,
}

pub(super) async fn connector(
    keyward: &Keyward,
    output: &Output,
    command: ConnectorCommand,
) -> anyhow::Result<()> {
    let (views, single) = match command {
        ConnectorCommand::Create(args) => (vec![create(keyward, args).await?], true),
        ConnectorCommand::List { tenant } => {
            let scope = scope_of(keyward, &tenant).await?;
            (keyward.connectors(&scope).await?, false)
        }
        ConnectorCommand::Disable { tenant, id } => {
            let scope = scope_of(keyward, &tenant).await?;
            (
                vec![
                    keyward
                        .set_connector_active(&scope, connector_id(&id)?, false)
                        .await?,
                ],
                true,
            )
        }
        ConnectorCommand::Enable { tenant, id } => {
            let scope = scope_of(keyward, &tenant).await?;
            (
                vec![
                    keyward
                        .set_connector_active(&scope, connector_id(&id)?, true)
                        .await?,
                ],
                true,
            )
        }
        ConnectorCommand::Delete { tenant, id } => {
            let scope = scope_of(keyward, &tenant).await?;
            let id = connector_id(&id)?;
            keyward.delete_connector(&scope, id).await?;
            return output.emit(&serde_json::json!({"id": id, "deleted": true}), || {
                Table::new(vec!["ID", "DELETED"]).row(vec![id.to_string(), "yes".to_owned()])
            });
        }
    };
    let views: Vec<ConnectorView> = views.into_iter().map(ConnectorView::from).collect();
    let table = |views: &[ConnectorView]| {
        Table::new(vec!["ID", "KIND", "NAME", "MODEL", "STATUS", "ENDPOINT"]).rows(
            views.iter().map(|view| {
                vec![
                    view.id.clone(),
                    view.kind.clone(),
                    view.name.clone(),
                    view.model.clone(),
                    view.status.clone(),
                    or_dash(Some(view.endpoint.clone())),
                ]
            }),
        )
    };
    emit_one_or_list(output, views, single, table)
}

/// Registers a connector; a Teams password comes from stdin unless it is held by reference.
async fn create(keyward: &Keyward, args: CreateArgs) -> anyhow::Result<ConnectorRecord> {
    let scope = scope_of(keyward, &args.tenant).await?;
    let app_secret = if args.kind == "teams" && args.app_secret_ref.is_none() {
        Some(read_secret("Teams app password (input hidden): ")?)
    } else {
        None
    };
    let input = ConnectorInput {
        kind: args.kind,
        name: args.name,
        model: args.model,
        knowledge_base: args.knowledge_base,
        app_id: args.app_id,
        app_tenant_id: args.app_tenant_id,
        app_secret,
        app_secret_ref: args.app_secret_ref,
    };
    Ok(keyward.create_connector(&scope, input).await?)
}
