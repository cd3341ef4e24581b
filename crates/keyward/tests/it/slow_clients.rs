//! A server slow clients cannot exhaust (#23 item 8): 2,000 connections that dribble their
//! headers from one address, while a normal client's calls go on as usual. The dribblers are
//! capped per address at accept and closed by the header-read timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::TestApp;
use crate::ledger::{setup, six_token_call};

/// Lets this test process hold a few thousand sockets (the soft limit is often 1,024).
fn raise_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.map_or(16_384, |maximum| maximum.min(16_384));
    if limit.current.is_some_and(|current| current < wanted) {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            },
        )
        .unwrap();
    }
}

/// A connection from `source` that sends the start of a request and nothing more.
async fn dribbler(source: [u8; 4], server: SocketAddr) -> Option<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::from((source, 0))).ok()?;
    let mut stream = socket.connect(server).await.ok()?;
    stream
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: keyward\r\n")
        .await
        .ok()?;
    Some(stream)
}

#[tokio::test]
async fn two_thousand_slow_connections_do_not_stop_a_normal_client() {
    raise_file_limit();
    let setup = setup(&[
        ("KEYWARD_SERVER_HEADER_READ_TIMEOUT", "2s"),
        ("KEYWARD_SERVER_MAX_CONNECTIONS_PER_ADDRESS", "100"),
    ])
    .await;
    let server: SocketAddr = setup
        .app
        .address
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let mut held = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        if let Some(stream) = dribbler([127, 0, 0, 2], server).await {
            held.push(stream);
        }
    }
    assert!(
        held.len() >= 1_900,
        "only {} connections opened",
        held.len()
    );

    // The normal client, from another address, as usual.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let status = setup
            .app
            .with_key(&setup.key, Method::POST, "/v1/chat/completions")
            .json(&six_token_call())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < Duration::from_secs(1), "a call took {slowest:?}");
    let refused = setup
        .app
        .metric("keyward_connections_refused_total{limit=\"server.max_connections_per_address\"}")
        .await;
    assert!(refused >= 1_800, "{refused} connections refused at accept");

    // The ones admitted are closed once their headers are 2 s late.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut closed = 0;
    for stream in held.iter_mut() {
        let mut buffer = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_millis(20), stream.read(&mut buffer)).await;
        // EOF, a reset, or an error answer: the server let go either way.
        if matches!(read, Ok(Ok(_) | Err(_))) {
            closed += 1;
        }
    }
    assert_eq!(closed, held.len(), "every slow connection was let go");
    eprintln!(
        "2,000 slow connections: {refused} refused at accept, the rest closed after 2 s; slowest normal call {slowest:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let app = TestApp::spawn_with(&[("KEYWARD_SERVER_HEADER_READ_TIMEOUT", "1s")]).await;
    let server: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: keyward\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let read = stream.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    // Then nothing: the server closes the idle connection.
    let started = Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut answer))
        .await
        .expect("the idle connection was not closed within 3 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}
