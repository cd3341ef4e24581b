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
# The connector tests generate the chat platforms' signing keys and certificates with openssl.
command -v openssl >/dev/null 2>&1 || apt_install openssl

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The benchmark harness is a workspace of its own that the tests never build: check that its
# lock file still matches the crates it uses (a stale lock breaks `bench/run.sh`).
log "bench/Cargo.lock up to date"
(cd bench && cargo metadata --locked --format-version 1 >/dev/null)
# One Python venv for the test servers (moto, OpenBao) and the SDK suite.
command -v python3 >/dev/null 2>&1 || apt_install python3
venv="${TEST_PYTHON_VENV:-$PWD/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
fi
export TEST_PYTHON_VENV="$venv"

# Real PostgreSQL, AWS KMS / Secrets Manager (moto) and Vault (OpenBao) servers on loopback.
log "cargo test"
scripts/with-key-managers.sh scripts/with-postgres.sh cargo test --workspace --locked

# The official OpenAI and Anthropic Python SDKs against the real binaries (tests/sdk).
log "SDK compatibility suite"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/sdk/requirements.txt
cargo build --locked -p keyward -p keyward-mock-provider
target="${CARGO_TARGET_DIR:-$PWD/target}"
KEYWARD_BIN="$target/debug/keyward" KEYWARD_MOCK_BIN="$target/debug/keyward-mock-provider" \
  "$venv/bin/pytest" -q -p no:cacheprovider tests/sdk

# The web console in a real browser (tests/console): Debian's Chromium driven by playwright-core,
# the official OpenAI SDK for Node and axe-core, installed from the lock file.
log "console browser tests"
command -v chromium >/dev/null 2>&1 || apt_install chromium
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
(cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
KEYWARD_BIN="$target/debug/keyward" KEYWARD_MOCK_BIN="$target/debug/keyward-mock-provider" \
  node --test --test-concurrency=1 tests/console/console.test.mjs
