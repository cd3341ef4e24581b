#!/usr/bin/env bash
# Console page time (issue #21): a release `keyward serve` on SQLite whose tenant holds
# CONSOLE_ROWS settled calls (default 1,000,000) spread over the current UTC month; the admin
# API requests each console page makes are timed CONSOLE_REPEATS times (default 20) through a
# console session, on loopback. Prints the JSON of bench/console/page_times.py.
#
#   bench/run-console.sh
#   CONSOLE_ROWS=100000 bench/run-console.sh     # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '==> %s\n' "$*" >&2; }
rows="${CONSOLE_ROWS:-1000000}"
repeats="${CONSOLE_REPEATS:-20}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
log "building keyward (release)"
cargo build --release --locked -p keyward >&2
work="$(mktemp -d)"
token="bench-console-operator-$RANDOM$RANDOM"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
(cd "$work" && KEYWARD_SERVER_LISTEN="127.0.0.1:$port" KEYWARD_ADMIN_TOKEN="$token" KEYWARD_LOG_LEVEL=warn \
  exec "$target/release/keyward" serve >"$work/server.log" 2>&1) &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
api() { curl -sf -X "$1" "$base$2" -H "authorization: Bearer $token" -H 'content-type: application/json' ${3:+-d "$3"}; }
tenant="$(api POST /admin/v1/tenants '{"name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
credential="$(api POST "/admin/v1/tenants/$tenant/credentials" \
  '{"provider":"openai","label":"team-openai","secret":"sk-proj-bench-0123456789abcdefAb12"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
issued="$(api POST "/admin/v1/tenants/$tenant/keys" '{"role":"admin"}')"
key_id="$(echo "$issued" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
admin="$(echo "$issued" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
log "seeding $rows ledger rows"
python3 bench/console/seed_ledger.py "$work/keyward-data/keyward.db" "$tenant" "$credential" "$key_id" "$rows"
log "timing the console's requests ($repeats times each)"
python3 bench/console/page_times.py "$base" "$tenant" "$admin" "$repeats"
