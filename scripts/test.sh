#!/usr/bin/env bash
# Installs what Keyward's tests need, then runs every test: formatting, lints, and the whole
# workspace's unit and integration tests (which start real servers and processes on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing $*"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: missing $*; install it with your package manager" >&2
    exit 1
  fi
}

command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install Rust with rustup" >&2; exit 1; }
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
# The shutdown test sends SIGTERM with the kill(1) program (Debian package procps).
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || apt_install procps

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked
