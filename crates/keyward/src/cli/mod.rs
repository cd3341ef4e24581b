//! The `keyward` command line (SPEC's CLI section). Commands act on the configured store
//! directly, as the operator; a running server sees their changes on its next request (it
//! caches no credential, key or tenant state).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use keyward_domain::{Actor, Keyward, PageRequest, TenantScope};
use keyward_vault::EnvLookup;
use serde::Serialize;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::app::{shutdown_signal, Application};
use crate::config::{Config, ProcessEnv};
use crate::output::{Format, Output, Table};
use crate::startup::open_keyward;
use crate::telemetry;

mod apikey;
mod audit;
mod budget;
mod connector;
mod credential;
mod department;
mod kb;
mod masterkey;
mod prices;
mod reconcile;
mod tenant;
mod usage;

use apikey::{apikey, ApikeyCommand};
use audit::{audit_verify, AuditCommand};
use budget::{budget, BudgetCommand};
use connector::{connector, ConnectorCommand};
use credential::{credential, CredentialCommand};
use department::{department, DepartmentCommand};
use kb::{kb, KbCommand};
use masterkey::{masterkey, MasterkeyCommand};
use prices::{prices, PricesCommand};
use reconcile::{reconcile, ReconcileArgs};
use tenant::{tenant, TenantCommand};
use usage::{usage, UsageArgs};

#[derive(Parser, Debug)]
#[command(
    name = "keyward",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("BUILD_GIT_COMMIT"), ")"),
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
    /// Chat connectors: a tenant's Teams bots and Google Chat apps.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Knowledge bases: create, list, ingest documents, search.
    #[command(subcommand)]
    Kb(KbCommand),
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
    /// Price files for `prices.path`: `prices check FILE`.
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Print a shell completion script: `keyward completions bash > /etc/bash_completion.d/keyward`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Needs no configuration, store or key.
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "keyward", &mut std::io::stdout());
        return Ok(());
    }
    if let Command::Prices(command) = cli.command {
        return prices(&Output { format: cli.format }, command);
    }
    let config = Config::load(cli.config.as_deref(), &ProcessEnv)?;
    let serving = matches!(cli.command, Command::Serve);
    // Held to the end of `run`: dropping it writes the last buffered log lines.
    let mut _log_flush = None;
    let mut traces = (None, crate::app::TraceHandles::default());
    if serving {
        let (log, flush) = crate::log_buffer::BufferedLog::start(std::io::stdout())
            .context("cannot start the log writer thread")?;
        _log_flush = Some(flush);
        let (export, layer, handles) = crate::traces::from_config(&config)?;
        telemetry::init(
            config.log_level,
            config.log_format,
            BoxMakeWriter::new(log),
            layer,
        );
        traces = (export, handles);
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
            None,
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
        let (export, handles) = traces;
        let app = Application::build(&config, keyward, alert_receiver, handles).await?;
        let served = app.run_until_stopped(shutdown_signal()).await;
        if let Some(export) = export {
            export.shutdown();
        }
        return served;
    }
    let result = match cli.command {
        Command::Kb(command) => kb(&keyward, &output, command, config.max_body_bytes).await,
        command => self::command(&keyward, &output, command).await,
    };
    keyward.deregister().await;
    result
}

/// One CLI command (not `serve`).
async fn command(keyward: &Keyward, output: &Output, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve | Command::Completions { .. } | Command::Prices(_) => Ok(()),
        Command::Tenant(command) => tenant(keyward, output, command).await,
        Command::Department(command) => department(keyward, output, command).await,
        Command::Credential(command) => credential(keyward, output, command).await,
        Command::Apikey(command) => apikey(keyward, output, command).await,
        Command::Masterkey(command) => masterkey(keyward, output, command).await,
        Command::Budget(command) => budget(keyward, output, command).await,
        Command::Usage(args) => usage(keyward, output, args).await,
        Command::Audit(AuditCommand::Verify) => audit_verify(keyward, output).await,
        Command::Reconcile(args) => reconcile(keyward, output, args).await,
        Command::Connector(command) => connector(keyward, output, command).await,
        Command::Kb(_) => bail!("kb commands run with the server's document limit"),
    }
}

pub(super) async fn scope_of(keyward: &Keyward, tenant: &str) -> anyhow::Result<TenantScope> {
    let tenant = keyward
        .find_tenant(tenant)
        .await
        .with_context(|| format!("no tenant `{tenant}`; list them with `keyward tenant list`"))?;
    Ok(keyward.scope(&Actor::Operator, tenant.id).await?)
}

/// Every page of a list.
pub(super) async fn all<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
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
pub(super) struct List<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

pub(super) fn list<T>(data: Vec<T>) -> List<T> {
    List {
        data,
        next_cursor: None,
    }
}

pub(super) fn emit_one_or_list<T: Serialize>(
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag and positional argument of every command says what it is for.
    #[test]
    fn every_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for argument in command.get_arguments() {
                let id = argument.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if argument.get_help().is_none() && argument.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "keyward", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }

    #[test]
    fn the_version_names_the_commit() {
        let version = Cli::command().render_version();
        assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
        assert!(version.contains("(commit "), "{version}");
    }
}
