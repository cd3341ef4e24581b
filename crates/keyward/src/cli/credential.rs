//! `keyward credential`: connect, rotate, verify, disable and delete a tenant's provider
//! credentials. A secret is read from stdin (hidden when typed), never from an argument, and
//! never printed: only its fingerprint.

use std::collections::BTreeMap;

use anyhow::bail;
use clap::{Args, Subcommand};
use keyward_domain::{Actor, CredentialInput, Keyward, TenantScope};
use keyward_http::views::CredentialView;

use crate::output::{Output, Table};
use crate::secret_input::read_secret;

use super::{all, emit_one_or_list, scope_of};

#[derive(Subcommand, Debug)]
pub(super) enum CredentialCommand {
    /// Connect a credential; the secret is read from stdin (hidden on a terminal).
    Add(AddCredential),
    /// List a tenant's credentials (fingerprints only).
    List {
        /// The tenant: its name or id.
        #[arg(long)]
        tenant: String,
    },
    /// Replace a credential's secret (read from stdin).
    Rotate {
        /// The credential's id (as `credential list` shows it).
        id: String,
    },
    /// Stop routing calls to a credential.
    Disable {
        /// The credential's id (as `credential list` shows it).
        id: String,
    },
    /// Route calls to a credential again.
    Enable {
        /// The credential's id (as `credential list` shows it).
        id: String,
    },
    /// Check the credential with a cheap real call to the provider.
    Verify {
        /// The credential's id (as `credential list` shows it).
        id: String,
    },
    /// Delete a credential and its sealed secret.
    Delete {
        /// The credential's id (as `credential list` shows it).
        id: String,
    },
}

#[derive(Args, Debug)]
pub(super) struct AddCredential {
    /// The tenant: its name or id.
    #[arg(long)]
    tenant: String,
    /// openai, azure-openai, anthropic, bedrock, mistral, groq or openai-compatible.
    #[arg(long)]
    provider: String,
    /// The credential's label, unique in the tenant; clients call `LABEL/MODEL`.
    #[arg(long)]
    label: String,
    /// The provider endpoint when not its public one (e.g. `http://gpu-box:11434/v1` for Ollama).
    #[arg(long)]
    base_url: Option<String>,
    /// Provider option `key=value` (repeatable), e.g. --option region=us-east-1.
    #[arg(long = "option", value_parser = parse_option)]
    options: Vec<(String, String)>,
    /// Connect a keyless self-hosted endpoint (openai-compatible) without reading a secret.
    #[arg(long, conflicts_with = "secret_ref")]
    no_secret: bool,
    /// Where the secret is held instead of Keyward's database: `vault://MOUNT/PATH#FIELD`,
    /// `aws-sm://SECRET_ID[#JSON_FIELD]` or `azure-kv://VAULT/NAME` (no secret is read).
    #[arg(long)]
    secret_ref: Option<String>,
}

pub(super) fn parse_option(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| "expected key=value".to_owned())
}

pub(super) async fn credential(
    keyward: &Keyward,
    output: &Output,
    command: CredentialCommand,
) -> anyhow::Result<()> {
    let operator = Actor::Operator;
    let record = match command {
        CredentialCommand::Add(add) => add_credential(keyward, add).await?,
        CredentialCommand::List { tenant } => {
            let scope = scope_of(keyward, &tenant).await?;
            let credentials =
                all(|page| async move { keyward.credentials(&scope, &page).await }).await?;
            let views = credentials.into_iter().map(CredentialView::from).collect();
            return emit_one_or_list(output, views, false, credential_table);
        }
        CredentialCommand::Rotate { id } => {
            let (scope, id) = credential_scope(keyward, &operator, &id).await?;
            let secret = read_secret("New provider secret (input hidden): ")?;
            keyward.rotate_credential(&scope, id, secret).await?
        }
        CredentialCommand::Disable { id } => {
            let (scope, id) = credential_scope(keyward, &operator, &id).await?;
            keyward.set_credential_enabled(&scope, id, false).await?
        }
        CredentialCommand::Enable { id } => {
            let (scope, id) = credential_scope(keyward, &operator, &id).await?;
            keyward.set_credential_enabled(&scope, id, true).await?
        }
        CredentialCommand::Verify { id } => {
            let (scope, id) = credential_scope(keyward, &operator, &id).await?;
            keyward.verify_credential(&scope, id).await?
        }
        CredentialCommand::Delete { id } => {
            let (scope, id) = credential_scope(keyward, &operator, &id).await?;
            keyward.delete_credential(&scope, id).await?;
            let deleted = serde_json::json!({"id": id.to_string(), "deleted": true});
            return output.emit(&deleted, || {
                Table::new(vec!["ID", "DELETED"]).row(vec![id.to_string(), "yes".into()])
            });
        }
    };
    let views = vec![CredentialView::from(record)];
    emit_one_or_list(output, views, true, credential_table)
}

/// `credential add`: the secret from stdin unless the credential has none or references one.
async fn add_credential(
    keyward: &Keyward,
    add: AddCredential,
) -> anyhow::Result<keyward_domain::CredentialRecord> {
    let scope = scope_of(keyward, &add.tenant).await?;
    let secret = if add.no_secret || add.secret_ref.is_some() {
        None
    } else {
        Some(read_secret("Provider secret (input hidden): ")?)
    };
    let input = CredentialInput {
        provider: add.provider,
        label: add.label,
        secret,
        secret_ref: add.secret_ref,
        base_url: add.base_url,
        options: collect_options(add.options)?,
    };
    Ok(keyward.connect_credential(&scope, input).await?)
}

fn credential_table(views: &[CredentialView]) -> Table {
    Table::new(vec![
        "ID",
        "LABEL",
        "PROVIDER",
        "FINGERPRINT",
        "STATUS",
        "CREATED",
    ])
    .rows(views.iter().map(|view| {
        vec![
            view.id.clone(),
            view.label.clone(),
            view.provider.clone(),
            view.fingerprint.clone(),
            view.status.clone(),
            view.created_at.clone(),
        ]
    }))
}

pub(super) fn collect_options(
    pairs: Vec<(String, String)>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut options = BTreeMap::new();
    for (key, value) in pairs {
        if options.insert(key.clone(), value).is_some() {
            bail!("--option {key} is given twice");
        }
    }
    Ok(options)
}

pub(super) async fn credential_scope(
    keyward: &Keyward,
    actor: &Actor,
    id: &str,
) -> anyhow::Result<(TenantScope, keyward_core::CredentialId)> {
    let id: keyward_core::CredentialId = id.parse().map_err(|_| {
        anyhow::anyhow!("`{id}` is not a credential id; see `keyward credential list --tenant T`")
    })?;
    let tenant = keyward.credential_tenant(id).await?;
    Ok((keyward.scope(actor, tenant).await?, id))
}
