//! `keyward apikey`: platform keys (`kw_…`). A new key's plaintext is printed once, at creation.

use clap::Subcommand;
use keyward_domain::{Actor, Keyward, PlatformKeyInput, TenantScope};
use keyward_http::views::{IssuedKeyView, KeyView};

use crate::output::{or_dash, Output, Table};

use super::{all, list, scope_of};

#[derive(Subcommand, Debug)]
pub(super) enum ApikeyCommand {
    /// Issue a platform key; it is printed once.
    Create {
        /// The tenant: its name or id.
        #[arg(long)]
        tenant: String,
        /// A name people recognise the key by.
        #[arg(long)]
        name: Option<String>,
        /// admin or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// Model allow-list, comma-separated.
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// The department the key belongs to (its name): its allow-list and budgets apply.
        #[arg(long)]
        department: Option<String>,
        /// RFC 3339 expiry, e.g. 2027-01-01T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
        /// Requests per minute (default: unlimited).
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens (input + output) per minute (default: unlimited).
        #[arg(long)]
        tpm: Option<u64>,
    },
    /// List a tenant's platform keys (prefixes only).
    List {
        /// The tenant: its name or id.
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a platform key.
    Revoke {
        /// The key's id (as `apikey list` shows it).
        id: String,
    },
    /// Set a key's per-minute limits; an omitted limit is removed.
    Limits {
        /// The key's id (as `apikey list` shows it).
        id: String,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens (input + output) per minute.
        #[arg(long)]
        tpm: Option<u64>,
    },
}

pub(super) async fn apikey(
    keyward: &Keyward,
    output: &Output,
    command: ApikeyCommand,
) -> anyhow::Result<()> {
    match command {
        ApikeyCommand::Create {
            tenant,
            name,
            role,
            models,
            department,
            expires_at,
            rpm,
            tpm,
        } => {
            let scope = scope_of(keyward, &tenant).await?;
            let input = PlatformKeyInput {
                name,
                role: Some(role),
                models,
                department,
                expires_at,
                rpm_limit: rpm,
                tpm_limit: tpm,
            };
            let issued = IssuedKeyView::from(keyward.issue_platform_key(&scope, input).await?);
            let table = Table::new(vec!["ID", "KEY"])
                .row(vec![issued.details.id.clone(), issued.key.clone()])
                .footer("Store the key now: Keyward keeps only its hash and cannot show it again.");
            output.emit(&issued, || table)
        }
        ApikeyCommand::List { tenant } => {
            let scope = scope_of(keyward, &tenant).await?;
            let keys =
                all(|page| async move { keyward.platform_keys(&scope, &page).await }).await?;
            let views: Vec<KeyView> = keys.into_iter().map(KeyView::from).collect();
            let table = key_table(&views);
            output.emit(&list(views), || table)
        }
        ApikeyCommand::Revoke { id } => {
            let (scope, id) = key_scope(keyward, &id).await?;
            let view = KeyView::from(keyward.revoke_platform_key(&scope, id).await?);
            let table = key_table(std::slice::from_ref(&view));
            output.emit(&view, || table)
        }
        ApikeyCommand::Limits { id, rpm, tpm } => {
            let (scope, id) = key_scope(keyward, &id).await?;
            let view = KeyView::from(
                keyward
                    .set_platform_key_limits(&scope, id, rpm, tpm)
                    .await?,
            );
            let table = key_table(std::slice::from_ref(&view));
            output.emit(&view, || table)
        }
    }
}

/// The operator's scope over the tenant owning key `id`.
pub(super) async fn key_scope(
    keyward: &Keyward,
    id: &str,
) -> anyhow::Result<(TenantScope, keyward_core::PlatformKeyId)> {
    let id: keyward_core::PlatformKeyId = id.parse().map_err(|_| {
        anyhow::anyhow!("`{id}` is not a platform key id; see `keyward apikey list --tenant T`")
    })?;
    let tenant = keyward.platform_key_tenant(id).await?;
    Ok((keyward.scope(&Actor::Operator, tenant).await?, id))
}

pub(super) fn key_table(keys: &[KeyView]) -> Table {
    Table::new(vec![
        "ID", "PREFIX", "NAME", "ROLE", "STATUS", "MODELS", "RPM", "TPM", "CREATED",
    ])
    .rows(keys.iter().map(|key| {
        vec![
            key.id.clone(),
            key.prefix.clone(),
            or_dash(key.name.as_ref()),
            key.role.clone(),
            key.status.clone(),
            or_dash(key.models.as_ref().map(|models| models.join(","))),
            or_dash(key.rpm_limit),
            or_dash(key.tpm_limit),
            key.created_at.clone(),
        ]
    }))
}
