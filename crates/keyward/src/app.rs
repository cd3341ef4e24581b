//! The server: binds, serves the HTTP router, runs background key maintenance, and shuts down
//! gracefully — stop accepting, let in-flight requests finish within `server.shutdown_grace`,
//! stop background tasks, exit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use keyward_domain::{AlertReceiver, Keyward};
use keyward_http::{AppState, HttpConfig, HttpService, ServeLimits};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::webhook::WebhookSender;

/// The wait before the first retry of a failed webhook delivery; it doubles per retry.
const WEBHOOK_FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// How often each server looks for new master-key versions and re-wrap jobs.
const KEY_MAINTENANCE_INTERVAL: Duration = Duration::from_millis(500);
const SECRET_SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// What the HTTP layer needs of trace export: the W3C context (when exporting) and the
/// exporter's counters.
#[derive(Default)]
pub struct TraceHandles {
    pub context: Option<Arc<dyn keyward_http::TraceContext>>,
    pub stats: Arc<keyward_http::TraceExportStats>,
}

pub struct Application {
    listener: TcpListener,
    service: HttpService,
    keyward: Keyward,
    shutdown_grace: Duration,
    /// `prices.path`, read again on SIGHUP.
    prices_path: Option<std::path::PathBuf>,
    webhook: Option<(WebhookSender, AlertReceiver)>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) and builds the router.
    /// `alerts` is the receiving end of the alert channel given to the domain; with a
    /// configured webhook, the server delivers what arrives on it.
    pub async fn build(
        config: &Config,
        keyward: Keyward,
        alerts: Option<AlertReceiver>,
        traces: TraceHandles,
    ) -> anyhow::Result<Self> {
        keyward
            .interrupt_abandoned_calls(true)
            .await
            .context("cannot recover the ledger rows of an earlier run")?;
        let listener = TcpListener::bind(config.listen).await.with_context(|| {
            format!(
                "cannot listen on {}; choose another address with server.listen or KEYWARD_SERVER_LISTEN",
                config.listen
            )
        })?;
        let state = AppState {
            keyward: keyward.clone(),
            admin_token: config.admin_token.clone(),
            metrics_token: config.metrics_token.clone(),
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.body_read_timeout,
            console: std::sync::Arc::new(keyward_http::console::ConsoleState::new(
                config.console_sessions,
                config.public_url.clone(),
            )),
            build: keyward_http::BuildInfo {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("BUILD_GIT_COMMIT"),
            },
            traces: traces.context,
            trace_export: traces.stats,
        };
        let service = HttpService::new(
            state,
            &HttpConfig {
                max_body_bytes: config.max_body_bytes,
                limits: ServeLimits {
                    header_read_timeout: config.header_read_timeout,
                    max_connections: config.max_connections,
                    max_connections_per_address: config.max_connections_per_address,
                },
            },
        );
        let webhook = match (&config.webhook, alerts) {
            (Some(webhook), Some(alerts)) => Some((
                WebhookSender::new(
                    webhook.url.clone(),
                    webhook.secret.clone(),
                    WEBHOOK_FIRST_BACKOFF,
                )?,
                alerts,
            )),
            _ => None,
        };
        Ok(Self {
            listener,
            service,
            keyward,
            shutdown_grace: config.shutdown_grace,
            prices_path: config.prices_path.clone(),
            webhook,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let runner = format!(
            "serve-{}-{}",
            std::process::id(),
            keyward_core::RequestId::generate()
        );
        tasks.spawn(key_maintenance(self.keyward.clone(), runner, stop.clone()));
        tasks.spawn(secret_cache_sweep(self.keyward.clone(), stop.clone()));
        tasks.spawn(warm_usage_totals(self.keyward.clone(), stop.clone()));
        if let Some(path) = self.prices_path.clone() {
            // Listening before the server accepts: a SIGHUP from then on reloads, never kills.
            #[cfg(unix)]
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(hangups) => {
                    tasks.spawn(reload_prices_on_hangup(
                        self.keyward.clone(),
                        path,
                        hangups,
                        stop.clone(),
                    ));
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGHUP; prices.path is read at startup only")
                }
            }
        }
        // The heartbeat outlives the shutdown signal: while in-flight calls drain, peers must
        // still see this replica alive and leave its pending rows alone.
        let upkeep = TaskTracker::new();
        let upkeep_stop = CancellationToken::new();
        upkeep.spawn(instance_upkeep(self.keyward.clone(), upkeep_stop.clone()));
        if let Some((sender, alerts)) = self.webhook.take() {
            tasks.spawn(sender.run(alerts, stop.clone()));
        }

        let stop_on_signal = stop.clone();
        let address = self.local_addr()?;
        tracing::info!(%address, "keyward listening");
        let server = self.service.serve(self.listener, async move {
            shutdown.await;
            tracing::info!("shutdown requested; draining in-flight requests");
            stop_on_signal.cancel();
        });
        let grace = self.shutdown_grace;
        let grace_elapsed = {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                tokio::time::sleep(grace).await;
            }
        };
        tokio::select! {
            served = server => served.context("the HTTP server failed")?,
            () = grace_elapsed => tracing::warn!("shutdown grace elapsed with requests still in flight; exiting"),
        }
        stop.cancel();
        tasks.close();
        let request_tasks = self.keyward.tasks();
        request_tasks.close();
        let drained = tokio::time::timeout(grace, async {
            tasks.wait().await;
            request_tasks.wait().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!("background tasks did not stop within the shutdown grace");
        }
        upkeep_stop.cancel();
        upkeep.close();
        upkeep.wait().await;
        self.keyward.deregister().await;
        self.keyward.close_store().await;
        tracing::info!("keyward stopped");
        Ok(())
    }
}

/// Keeps this replica's registration fresh and, every few heartbeats, marks interrupted the
/// calls of replicas that are gone (see `keyward_domain::instance`).
async fn instance_upkeep(keyward: Keyward, stop: CancellationToken) {
    let mut beats: u32 = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(keyward_domain::instance::HEARTBEAT_EVERY) => {}
        }
        if let Err(err) = keyward.heartbeat().await {
            tracing::warn!(error = %err, "instance heartbeat failed; retrying");
        }
        beats = beats.wrapping_add(1);
        if beats.is_multiple_of(3) {
            if let Err(err) = keyward.interrupt_abandoned_calls(false).await {
                tracing::warn!(error = %err, "sweep of abandoned calls failed; retrying");
            }
        }
    }
}

/// Wipes referenced secrets older than `secrets.cache_ttl` (its own loop: a re-wrap keeps the
/// key maintenance loop busy for minutes).
async fn secret_cache_sweep(keyward: Keyward, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SECRET_SWEEP_INTERVAL) => {}
        }
        keyward.purge_expired_secrets();
    }
}

/// Sums closed days' usage totals in the background, once, so the console's first usage view
/// after a start is served from memory.
async fn warm_usage_totals(keyward: Keyward, stop: CancellationToken) {
    let started = std::time::Instant::now();
    tokio::select! {
        () = stop.cancelled() => {}
        warmed = keyward.warm_usage_totals() => match warmed {
            Ok(tenants) => tracing::info!(tenants, elapsed_ms = started.elapsed().as_millis() as u64, "usage totals of closed days warmed"),
            Err(err) => tracing::warn!(error = %err, "usage totals could not be warmed; the first usage views sum them"),
        },
    }
}

async fn key_maintenance(keyward: Keyward, runner: String, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(KEY_MAINTENANCE_INTERVAL) => {}
        }
        if let Err(err) = keyward.run_key_maintenance(&runner, &stop).await {
            tracing::warn!(error = %err, "master key maintenance failed; retrying");
        }
    }
}

/// Reads `prices.path` again on each SIGHUP: a good file is in force for the next call; a bad
/// one is refused with its line in the log, and the book in force stays.
#[cfg(unix)]
async fn reload_prices_on_hangup(
    keyward: Keyward,
    path: std::path::PathBuf,
    mut hangups: tokio::signal::unix::Signal,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            received = hangups.recv() => if received.is_none() { return },
        }
        match keyward_domain::PriceBook::load(&path) {
            Ok(book) => keyward.replace_price_book(book),
            Err(err) => {
                tracing::error!(error = %err, "SIGHUP: the price file is refused; the price book in force stays")
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
