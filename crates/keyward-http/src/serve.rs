//! The accept loop: HTTP/1.1 connections served by hyper with the bounds a server exposed to
//! clients it does not trust needs, so slow or greedy clients cannot exhaust it.
//!
//! Invariants:
//! - A connection must deliver each request's headers within `server.header_read_timeout`,
//!   counted from the connection's start or the end of the previous response: a client that
//!   dribbles headers, or idles between keep-alive requests, is closed (slowloris).
//! - At most `server.max_connections` connections are open, and at most
//!   `server.max_connections_per_address` from one client address: a connection over either
//!   is closed at once, before any byte is read, and counted.
//! - On shutdown the listener closes, idle connections are closed, and requests in flight
//!   finish (the caller bounds that with `server.shutdown_grace`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// The bounds of the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

/// Open connections, overall and per client address.
#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it gives its places back.
struct Slot {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// Takes a place for a connection from `address`, or says which limit is full.
fn admit(
    open: &Arc<Mutex<Open>>,
    address: IpAddr,
    limits: ServeLimits,
) -> Result<Slot, &'static str> {
    let mut state = open
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if state.total >= limits.max_connections {
        return Err("server.max_connections");
    }
    let from_address = state.by_address.entry(address).or_default();
    if *from_address >= limits.max_connections_per_address {
        return Err("server.max_connections_per_address");
    }
    *from_address += 1;
    state.total += 1;
    Ok(Slot {
        open: open.clone(),
        address,
    })
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight end.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    refused: impl Fn(&'static str) + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(Mutex::new(Open::default()));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment, never spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match admit(&open, address.ip(), limits) {
            Ok(slot) => slot,
            Err(limit) => {
                refused(limit);
                drop(stream);
                continue;
            }
        };
        serve_connection(&builder, &graceful, stream, address, router.clone(), slot);
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn serve_connection(
    builder: &hyper::server::conn::http1::Builder,
    graceful: &GracefulShutdown,
    stream: tokio::net::TcpStream,
    address: SocketAddr,
    router: Router,
    slot: Slot,
) {
    // TCP_NODELAY: a streamed chunk (and a response's last bytes) leave at once instead of
    // waiting, under Nagle's algorithm, for the client's delayed ACK (~40 ms).
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "could not set TCP_NODELAY on a connection");
    }
    // The client's address reaches handlers as axum's `ConnectInfo` (the console's sign-in
    // throttle is per address).
    let router = tower::ServiceExt::map_request(
        router,
        move |mut request: hyper::Request<hyper::body::Incoming>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(address));
            request
        },
    );
    let service = TowerToHyperService::new(router);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    #[expect(
        clippy::disallowed_methods,
        reason = "a connection's task ends with the connection; the graceful watcher drains it"
    )]
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%address, error = %err, "connection ended with an error");
        }
        drop(slot);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_limited_overall_and_per_address_and_given_back() {
        let open = Arc::new(Mutex::new(Open::default()));
        let limits = ServeLimits {
            header_read_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_connections_per_address: 2,
        };
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let first = admit(&open, a, limits).unwrap();
        let _second = admit(&open, a, limits).unwrap();
        assert_eq!(
            admit(&open, a, limits).err(),
            Some("server.max_connections_per_address")
        );
        let _third = admit(&open, b, limits).unwrap();
        assert_eq!(
            admit(&open, b, limits).err(),
            Some("server.max_connections")
        );
        drop(first);
        assert!(admit(&open, a, limits).is_ok());
    }
}
