//! The `keyward` command line (SPEC's CLI section). Commands act on the configured store
//! directly, as the operator; a running server sees their changes on its next request (it
//! caches no credential, key or tenant state).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use keyward_domain::{
    Actor, CredentialInput, DepartmentInput, Keyward, PageRequest, PlatformKeyInput, RewrapState,
    TenantScope,
};
use keyward_http::export::{render_groups, ExportFormat, UsageExport};
use keyward_http::views::{
    BudgetView, CredentialView, DepartmentView, IssuedKeyView, KeyView, MasterKeyView,
    ReconciliationView, TenantView, UsageGroupView, UsageRowView,
};
use keyward_vault::EnvLookup;
use serde::Serialize;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::app::{shutdown_signal, Application};
use crate::config::{Config, ProcessEnv};
use crate::output::{or_dash, Format, Output, Table};
use crate::secret_input::read_secret;
use crate::startup::open_keyward;
use crate::telemetry;

#[derive(Parser, Debug)]
#[command(
    name = "keyward",
    version,
    about = "Keyward: a self-hosted, multi-tenant bring-your-own-key LLM gateway"
)]
pub struct Cli {
    /// Configuration file (default: ./keyward.toml if present).
    #[arg(long, global = true, env = "KEYWARD_CONFIG")]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway.
    Serve,
    /// Tenants (companies, SaaS customers).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Departments of a tenant.
    #[command(subcommand)]
    Department(DepartmentCommand),
    /// Provider credentials. Secrets are read from stdin, never from arguments.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Platform keys (`kw_…`).
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Master-key versions and rotation.
    #[command(subcommand)]
    Masterkey(MasterkeyCommand),
    /// Spending caps: `budget set`, `budget list`.
    #[command(subcommand)]
    Budget(BudgetCommand),
    /// The usage ledger, per call or grouped (`--format table|csv|json`).
    Usage(UsageArgs),
    /// The audit log: `audit verify` checks the hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Compare the ledger with a provider's own usage export, per UTC day and model. Exits
    /// non-zero when any line differs.
    Reconcile(ReconcileArgs),
}

#[derive(Args, Debug)]
struct ReconcileArgs {
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

#[derive(Subcommand, Debug)]
enum BudgetCommand {
    /// Create or update the budget of the tenant, a department or a platform key.
    Set {
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
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Args, Debug)]
struct UsageArgs {
    #[arg(long)]
    tenant: String,
    /// Start: YYYY-MM-DD or RFC 3339.
    #[arg(long)]
    from: Option<String>,
    /// End: YYYY-MM-DD (included) or RFC 3339 (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// `day`, `model`, `key`, `credential`, `department` or `tag:NAME`.
    #[arg(long)]
    group_by: Option<String>,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Walk the whole hash chain; exit non-zero at the first changed or deleted entry.
    Verify,
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant.
    Create { name: String },
    /// List tenants.
    List,
}

#[derive(Subcommand, Debug)]
enum DepartmentCommand {
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

#[derive(Subcommand, Debug)]
enum CredentialCommand {
    /// Connect a credential; the secret is read from stdin (hidden on a terminal).
    Add(AddCredential),
    /// List a tenant's credentials (fingerprints only).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Replace a credential's secret (read from stdin).
    Rotate { id: String },
    /// Stop routing calls to a credential.
    Disable { id: String },
    /// Route calls to a credential again.
    Enable { id: String },
    /// Check the credential with a cheap real call to the provider.
    Verify { id: String },
    /// Delete a credential and its sealed secret.
    Delete { id: String },
}

#[derive(Args, Debug)]
struct AddCredential {
    #[arg(long)]
    tenant: String,
    /// openai, azure-openai, anthropic, bedrock, mistral, groq or openai-compatible.
    #[arg(long)]
    provider: String,
    #[arg(long)]
    label: String,
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

fn parse_option(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| "expected key=value".to_owned())
}

#[derive(Subcommand, Debug)]
enum ApikeyCommand {
    /// Issue a platform key; it is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: Option<String>,
        /// admin or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// Model allow-list, comma-separated.
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
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
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a platform key.
    Revoke { id: String },
    /// Set a key's per-minute limits; an omitted limit is removed.
    Limits {
        id: String,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens (input + output) per minute.
        #[arg(long)]
        tpm: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum MasterkeyCommand {
    /// Versions, rows sealed under each, and re-wrap progress.
    Status,
    /// Add a new version, make it primary, and re-wrap every sealed value.
    Rotate,
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref(), &ProcessEnv)?;
    let serving = matches!(cli.command, Command::Serve);
    // Held to the end of `run`: dropping it writes the last buffered log lines.
    let mut _log_flush = None;
    if serving {
        let (log, flush) = crate::log_buffer::BufferedLog::start(std::io::stdout())
            .context("cannot start the log writer thread")?;
        _log_flush = Some(flush);
        telemetry::init(config.log_level, config.log_format, BoxMakeWriter::new(log));
    } else {
        // CLI output is on stdout; logs go to stderr: warnings, unless debug or trace is set.
        let level = if config.log_level > LevelFilter::INFO {
            config.log_level
        } else {
            config.log_level.min(LevelFilter::WARN)
        };
        telemetry::init(
            level,
            config.log_format,
            BoxMakeWriter::new(std::io::stderr),
        );
    }
    telemetry::log_panics();
    let env: EnvLookup = Arc::new(|name| std::env::var(name).ok());
    let (alerts, alert_receiver) = if serving && config.webhook.is_some() {
        let (sender, receiver) = keyward_domain::alert_channel();
        (Some(sender), Some(receiver))
    } else {
        (None, None)
    };
    let keyward = open_keyward(&config, env, alerts).await?;
    let output = Output { format: cli.format };
    if let Command::Serve = cli.command {
        let app = Application::build(&config, keyward, alert_receiver).await?;
        return app.run_until_stopped(shutdown_signal()).await;
    }
    let result = command(&keyward, &output, cli.command).await;
    keyward.deregister().await;
    result
}

/// One CLI command (not `serve`).
async fn command(keyward: &Keyward, output: &Output, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => Ok(()),
        Command::Tenant(command) => tenant(keyward, output, command).await,
        Command::Department(command) => department(keyward, output, command).await,
        Command::Credential(command) => credential(keyward, output, command).await,
        Command::Apikey(command) => apikey(keyward, output, command).await,
        Command::Masterkey(command) => masterkey(keyward, output, command).await,
        Command::Budget(command) => budget(keyward, output, command).await,
        Command::Usage(args) => usage(keyward, output, args).await,
        Command::Audit(AuditCommand::Verify) => audit_verify(keyward, output).await,
        Command::Reconcile(args) => reconcile(keyward, output, args).await,
    }
}

async fn scope_of(keyward: &Keyward, tenant: &str) -> anyhow::Result<TenantScope> {
    let tenant = keyward
        .find_tenant(tenant)
        .await
        .with_context(|| format!("no tenant `{tenant}`; list them with `keyward tenant list`"))?;
    Ok(keyward.scope(&Actor::Operator, tenant.id).await?)
}

/// Every page of a list.
async fn all<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<keyward_domain::Page<T>, keyward_domain::DomainError>>,
{
    let mut items = Vec::new();
    let mut request = PageRequest {
        after: None,
        limit: 500,
    };
    loop {
        let page = fetch(request.clone()).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(cursor) => request.after = Some(cursor),
            None => return Ok(items),
        }
    }
}

#[derive(Serialize)]
struct List<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

fn list<T>(data: Vec<T>) -> List<T> {
    List {
        data,
        next_cursor: None,
    }
}

async fn tenant(keyward: &Keyward, output: &Output, command: TenantCommand) -> anyhow::Result<()> {
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

fn tenant_table(tenants: &[TenantView]) -> Table {
    Table::new(vec!["ID", "NAME", "CREATED"]).rows(tenants.iter().map(|tenant| {
        vec![
            tenant.id.clone(),
            tenant.name.clone(),
            tenant.created_at.clone(),
        ]
    }))
}

async fn department(
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

fn emit_one_or_list<T: Serialize>(
    output: &Output,
    mut views: Vec<T>,
    single: bool,
    table: impl Fn(&[T]) -> Table,
) -> anyhow::Result<()> {
    let rendered = table(&views);
    if single {
        match views.pop() {
            Some(view) => output.emit(&view, || rendered),
            None => bail!("nothing to show"),
        }
    } else {
        output.emit(&list(views), || rendered)
    }
}

async fn credential(
    keyward: &Keyward,
    output: &Output,
    command: CredentialCommand,
) -> anyhow::Result<()> {
    let operator = Actor::Operator;
    let (views, single) = match command {
        CredentialCommand::Add(add) => {
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
            (
                vec![CredentialView::from(
                    keyward.connect_credential(&scope, input).await?,
                )],
                true,
            )
        }
        CredentialCommand::List { tenant } => {
            let scope = scope_of(keyward, &tenant).await?;
            let credentials =
                all(|page| async move { keyward.credentials(&scope, &page).await }).await?;
            (
                credentials.into_iter().map(CredentialView::from).collect(),
                false,
            )
        }
        CredentialCommand::Rotate { id } => {
            let (scope, id) = credential_scope(keyward, &operator, &id).await?;
            let secret = read_secret("New provider secret (input hidden): ")?;
            (
                vec![CredentialView::from(
                    keyward.rotate_credential(&scope, id, secret).await?,
                )],
                true,
            )
        }
        CredentialCommand::Disable { id } => {
            let (scope, id) = credential_scope(keyward, &operator, &id).await?;
            (
                vec![CredentialView::from(
                    keyward.set_credential_enabled(&scope, id, false).await?,
                )],
                true,
            )
        }
        CredentialCommand::Enable { id } => {
            let (scope, id) = credential_scope(keyward, &operator, &id).await?;
            (
                vec![CredentialView::from(
                    keyward.set_credential_enabled(&scope, id, true).await?,
                )],
                true,
            )
        }
        CredentialCommand::Verify { id } => {
            let (scope, id) = credential_scope(keyward, &operator, &id).await?;
            (
                vec![CredentialView::from(
                    keyward.verify_credential(&scope, id).await?,
                )],
                true,
            )
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
    let table = |views: &[CredentialView]| {
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
    };
    emit_one_or_list(output, views, single, table)
}

fn collect_options(pairs: Vec<(String, String)>) -> anyhow::Result<BTreeMap<String, String>> {
    let mut options = BTreeMap::new();
    for (key, value) in pairs {
        if options.insert(key.clone(), value).is_some() {
            bail!("--option {key} is given twice");
        }
    }
    Ok(options)
}

async fn credential_scope(
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

async fn apikey(keyward: &Keyward, output: &Output, command: ApikeyCommand) -> anyhow::Result<()> {
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
async fn key_scope(
    keyward: &Keyward,
    id: &str,
) -> anyhow::Result<(TenantScope, keyward_core::PlatformKeyId)> {
    let id: keyward_core::PlatformKeyId = id.parse().map_err(|_| {
        anyhow::anyhow!("`{id}` is not a platform key id; see `keyward apikey list --tenant T`")
    })?;
    let tenant = keyward.platform_key_tenant(id).await?;
    Ok((keyward.scope(&Actor::Operator, tenant).await?, id))
}

fn key_table(keys: &[KeyView]) -> Table {
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

async fn masterkey(
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

async fn budget(keyward: &Keyward, output: &Output, command: BudgetCommand) -> anyhow::Result<()> {
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

/// Prints usage page by page, so an export of any size runs in fixed memory. CSV and JSON are
/// the admin API's documents, produced by the same code.
async fn usage(keyward: &Keyward, output: &Output, args: UsageArgs) -> anyhow::Result<()> {
    use std::io::Write;
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
        if let Some(format) = export_format {
            writeln!(stdout, "{}", render_groups(groups, format).trim_end())?;
            return Ok(());
        }
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
        .write(&mut stdout)?;
        return Ok(());
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
    let departments = keyward.department_names(&scope).await?;
    let line = |cells: [&str; 7]| {
        format!(
            "{:<26}  {:<20}  {:<24}  {:<16}  {:>8}  {:>8}  {:>12}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
        )
    };
    writeln!(
        stdout,
        "{}",
        line([
            "TIME",
            "CREDENTIAL",
            "MODEL",
            "STATUS",
            "INPUT",
            "OUTPUT",
            "COST USD"
        ])
    )?;
    let mut after: Option<String> = None;
    loop {
        let page = keyward.usage_page(&scope, range, after.as_deref()).await?;
        let full = page.len() == keyward_domain::USAGE_PAGE as usize;
        after = page.last().map(|call| call.request_id.clone());
        for call in page {
            let department = call
                .department_id
                .as_ref()
                .and_then(|id| departments.get(id))
                .cloned();
            let row = UsageRowView::new(call, department);
            writeln!(
                stdout,
                "{}",
                line([
                    &row.time,
                    &row.credential_label,
                    row.model_reported
                        .as_deref()
                        .unwrap_or(&row.model_requested),
                    &row.status,
                    &or_dash(row.input_tokens),
                    &or_dash(row.output_tokens),
                    &row.cost_micro_usd
                        .map_or_else(|| "-".to_owned(), keyward_core::format_usd),
                ])
            )?;
        }
        if !full {
            return Ok(());
        }
    }
}

async fn audit_verify(keyward: &Keyward, output: &Output) -> anyhow::Result<()> {
    let verification = keyward.verify_audit_log(&Actor::Operator).await?;
    let document = serde_json::json!({
        "entries": verification.entries,
        "head_hash": verification.head_hash,
        "intact": verification.broken.is_none(),
        "broken_at_seq": verification.broken.as_ref().map(|broken| broken.seq),
        "reason": verification.broken.as_ref().map(|broken| broken.reason),
    });
    output.emit(&document, || {
        let line = match &verification.broken {
            None => format!(
                "audit log intact: {} entries; head hash {} (record it elsewhere to detect a truncated tail)",
                verification.entries, verification.head_hash
            ),
            Some(broken) => format!("audit log BROKEN at entry {}: {}", broken.seq, broken.reason),
        };
        Table::new(vec![]).footer(line)
    })?;
    if let Some(broken) = verification.broken {
        bail!(
            "the audit log's hash chain is broken at entry {}: {}",
            broken.seq,
            broken.reason
        );
    }
    Ok(())
}

/// Reads the export files (streamed: a CUR of any size is read row by row) and prints the
/// report; a differing line makes the command fail, so scripts can alert on it.
async fn reconcile(keyward: &Keyward, output: &Output, args: ReconcileArgs) -> anyhow::Result<()> {
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

fn reconciliation_table(view: &ReconciliationView) -> Table {
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
