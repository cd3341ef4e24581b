//! `keyward-mock-provider [--listen ADDR]`: serves the mock providers and prints
//! `{"listening": "ADDR"}` on its first line of stdout.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(address)) => match address.parse() {
                Ok(address) => listen = address,
                Err(_) => {
                    eprintln!("error: --listen takes an address such as 127.0.0.1:9000");
                    return ExitCode::FAILURE;
                }
            },
            _ => {
                eprintln!("usage: keyward-mock-provider [--listen ADDR]");
                return ExitCode::FAILURE;
            }
        }
    }
    let server = match keyward_mock_provider::MockProvider::bind(listen).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("error: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{{\"listening\": \"{}\"}}", server.address());
    let _ = stdout.flush();
    drop(stdout);
    match server.serve(std::future::pending()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
