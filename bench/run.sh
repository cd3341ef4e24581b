#!/usr/bin/env bash
# The benchmark: the same load straight at the mock provider and through Keyward, in one run,
# so the difference is Keyward's overhead. Writes docs/performance.md and docs/performance.svg.
#
#   bench/run.sh                 # full run (about 6 minutes after the builds)
#   BENCH_SECONDS=3 bench/run.sh # shorter steps, for a smoke run
#
# Builds release binaries, installs the load generator `oha` (cargo install, pinned) and uses
# util-linux `taskset`; starts the mock provider and Keyward (embedded default: SQLite ledger,
# strict mode, logs at info; then again with a PostgreSQL ledger, durable settings) and pins
# them to CPUs when the machine has at least two; drives
# load only at 127.0.0.1. Results: bench/results/<timestamp>/ (raw JSON) and the docs.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
# The whole run has a PostgreSQL server (durable settings) for the PostgreSQL-ledger scenarios.
if [ -z "${TEST_PG_URL:-}" ]; then
  exec env PG_DURABLE=1 scripts/with-postgres.sh bash "$0" "$@"
fi

log() { printf '==> %s\n' "$*" >&2; }
seconds="${BENCH_SECONDS:-10}"
target="${CARGO_TARGET_DIR:-$root/target}"
tools="${BENCH_TOOLS:-/var/tmp/keyward-bench-tools}"
oha="$tools/bin/oha"

# --- tools -------------------------------------------------------------------------------------
need_apt() {
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: install $*" >&2; exit 1
  fi
}
command -v taskset >/dev/null || need_apt util-linux
command -v curl >/dev/null || need_apt curl
command -v python3 >/dev/null || need_apt python3
if [ ! -x "$oha" ]; then
  log "installing oha 1.16.0 into $tools (once)"
  cargo install oha --version 1.16.0 --locked --root "$tools" >/dev/null
fi

log "building release binaries"
cargo build --release --locked -p keyward -p keyward-mock-provider
(cd bench && CARGO_TARGET_DIR="$target" cargo build --release --locked)
keyward="$target/release/keyward"
mock_bin="$target/release/keyward-mock-provider"
tool="$target/release/keyward-bench"

# --- CPU layout ----------------------------------------------------------------------------------
cpus="$(nproc)"
if [ "$cpus" -ge 3 ]; then
  kw_cpu=0; mock_cpu=1; load_cpu="2-$((cpus - 1))"
elif [ "$cpus" -eq 2 ]; then
  kw_cpu=0; mock_cpu=1; load_cpu=1
else
  kw_cpu=0; mock_cpu=0; load_cpu=0
fi
pin() { local cpu="$1"; shift; taskset -c "$cpu" "$@"; }

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$root/bench/results/$stamp"
work="$(mktemp -d /tmp/keyward-bench.XXXXXX)"
mkdir -p "$out"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- mock provider -------------------------------------------------------------------------------
# `exec`: the recorded pid is the mock itself, so the cleanup stops it (a backgrounded `pin`
# would leave the mock running after the harness ends).
(exec taskset -c "$mock_cpu" "$mock_bin" --listen 127.0.0.1:0 > "$work/mock.out" 2>"$work/mock.err") &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/mock.out" 2>/dev/null && break; sleep 0.05; done
mock_addr="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$work/mock.out")"
log "mock provider on $mock_addr (CPU $mock_cpu)"

# --- Keyward ------------------------------------------------------------------------------------
kw_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin_token="bench-admin-token-0123456789abcdef"
export KEYWARD_SERVER_LISTEN="127.0.0.1:$kw_port" KEYWARD_ADMIN_TOKEN="$admin_token" \
  KEYWARD_EGRESS_ALLOW_PRIVATE=127.0.0.1 KEYWARD_LOG_LEVEL=info
mkdir -p "$work/kw"
(cd "$work/kw" && "$keyward" tenant create bench >/dev/null)
(cd "$work/kw" && printf 'sk-bench-openai' | "$keyward" credential add --tenant bench --provider openai \
   --label oai --base-url "http://$mock_addr/v1" >/dev/null)
(cd "$work/kw" && printf 'sk-ant-bench' | "$keyward" credential add --tenant bench --provider anthropic \
   --label ant --base-url "http://$mock_addr" >/dev/null)
platform_key="$(cd "$work/kw" && "$keyward" apikey create --tenant bench --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
(cd "$work/kw" && exec taskset -c "$kw_cpu" "$keyward" serve > "$work/keyward.log" 2>&1) &
pids+=($!)
for _ in $(seq 200); do curl -fsS "http://127.0.0.1:$kw_port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
kw_pid="$(pgrep -f "$keyward serve" | head -1)"
log "keyward on 127.0.0.1:$kw_port (CPU $kw_cpu, pid $kw_pid); load generator on CPU $load_cpu"

direct="http://$mock_addr"
through="http://127.0.0.1:$kw_port"
cat > "$work/chat.json" <<JSON
{"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hello to the benchmark."}]}
JSON
sed 's/"gpt-4o-mini"/"oai\/gpt-4o-mini"/' "$work/chat.json" > "$work/chat-kw.json"
sed 's/"max_tokens": 16,/"max_tokens": 16, "stream": true, "stream_options": {"include_usage": true},/' "$work/chat.json" > "$work/stream.json"
sed 's/"max_tokens": 16,/"max_tokens": 16, "stream": true, "stream_options": {"include_usage": true},/' "$work/chat-kw.json" > "$work/stream-kw.json"
sed 's/"gpt-4o-mini"/"mock-slow-stream"/' "$work/stream.json" > "$work/hold.json"
sed 's/"gpt-4o-mini"/"oai\/mock-slow-stream"/' "$work/stream.json" > "$work/hold-kw.json"
echo '{"model": "text-embedding-3-small", "input": "Embed this sentence for the benchmark."}' > "$work/embed.json"
echo '{"model": "oai/text-embedding-3-small", "input": "Embed this sentence for the benchmark."}' > "$work/embed-kw.json"
echo '{"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hello to the benchmark."}]}' > "$work/messages.json"
echo '{"model": "ant/claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hello to the benchmark."}]}' > "$work/messages-kw.json"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$kw_pid/stat"; }
ledger_rows() { sqlite3 "$work/kw/keyward-data/keyward.db" "SELECT COUNT(*) FROM ledger" 2>/dev/null || echo 0; }
clk_tck="$(getconf CLK_TCK)"

# run NAME TARGET(direct|keyward) PATH BODY RATE(0=closed loop) CONCURRENCY [HEADER...]
run() {
  local name="$1" side="$2" path="$3" body="$4" rate="$5" concurrency="$6"; shift 6
  local url key rate_args=() ticks_before ticks_after rows_before rows_after
  if [ "$side" = direct ]; then url="$direct$path"; key="sk-bench-direct"; else url="$through$path"; key="$platform_key"; fi
  [ "$rate" -gt 0 ] && rate_args=(-q "$rate")
  ticks_before="$(cpu_ticks)"; rows_before="$(ledger_rows)"
  pin "$load_cpu" "$oha" --no-tui --output-format json -z "${seconds}s" -c "$concurrency" "${rate_args[@]}" \
    --latency-correction -m POST -H "authorization: Bearer $key" -H "x-api-key: $key" -H "anthropic-version: 2023-06-01" \
    -H "content-type: application/json" -D "$body" "$@" "$url" > "$out/$name.$side.json"
  ticks_after="$(cpu_ticks)"; rows_after="$(ledger_rows)"
  python3 - "$out/$name.$side.json" "$name" "$side" "$rate" "$concurrency" \
      "$((ticks_after - ticks_before))" "$clk_tck" "$((rows_after - rows_before))" "$kw_pid" >> "$out/results.jsonl" <<'PY'
import json, sys
path, name, side, rate, conc, ticks, clk, rows, pid = sys.argv[1:]
r = json.load(open(path))
s = r["summary"]; p = r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
ok = sum(v for k, v in codes.items() if k.startswith("2"))
rss = 0
for line in open(f"/proc/{pid}/status"):
    if line.startswith("VmHWM:"): rss = int(line.split()[1])
cpu_us = int(ticks) * 1_000_000 / int(clk)
print(json.dumps({
  "scenario": name, "side": side, "rate": int(rate), "concurrency": int(conc),
  "rps": s["requestsPerSec"], "ok": ok, "errors": sum(codes.values()) - ok + sum(r.get("errorDistribution", {}).values()),
  "p50_ms": p["p50"] * 1000, "p90_ms": p["p90"] * 1000, "p99_ms": p["p99"] * 1000, "p999_ms": p["p99.9"] * 1000,
  "keyward_cpu_us_per_req": (cpu_us / ok) if (side == "keyward" and ok) else None,
  "ledger_rows": int(rows) if side == "keyward" else None,
  "keyward_peak_rss_kib": rss if side == "keyward" else None,
}))
PY
  log "$name $side: $(tail -1 "$out/results.jsonl")"
}

idle_rss="$(awk '/VmRSS/ {print $2}' "/proc/$kw_pid/status")"
echo "{\"scenario\": \"idle\", \"side\": \"keyward\", \"keyward_rss_kib\": $idle_rss}" >> "$out/results.jsonl"

# Warm-up (connections, page cache), not recorded.
BENCH_WARM=1 "$oha" --no-tui -z 2s -c 16 -m POST -H "authorization: Bearer $platform_key" -H "content-type: application/json" \
  -D "$work/chat-kw.json" "$through/v1/chat/completions" >/dev/null

for rate in 500 2000 5000; do
  run "chat-$rate" direct /v1/chat/completions "$work/chat.json" "$rate" 64
  run "chat-$rate" keyward /v1/chat/completions "$work/chat-kw.json" "$rate" 64
done
run chat-max direct /v1/chat/completions "$work/chat.json" 0 64
run chat-max keyward /v1/chat/completions "$work/chat-kw.json" 0 64
run embeddings-1000 direct /v1/embeddings "$work/embed.json" 1000 32
run embeddings-1000 keyward /v1/embeddings "$work/embed-kw.json" 1000 32
run messages-1000 direct /v1/messages "$work/messages.json" 1000 32
run messages-1000 keyward /v1/messages "$work/messages-kw.json" 1000 32

# Streaming: time to first byte and total, 16 concurrent streams.
for side in direct keyward; do
  if [ "$side" = direct ]; then url="$direct"; key=sk-bench-direct; body="$work/stream.json"; else url="$through"; key="$platform_key"; body="$work/stream-kw.json"; fi
  pin "$load_cpu" "$tool" stream "$url/v1/chat/completions" "$key" "$body" 16 $((seconds * 300)) > "$out/stream.$side.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r.update(scenario="stream", side=sys.argv[2]); print(json.dumps(r))' \
    "$out/stream.$side.json" "$side" >> "$out/results.jsonl"
  log "stream $side: $(tail -1 "$out/results.jsonl")"
done

# 2,000 streams open at once (each lasts ~1.2 s): Keyward's peak memory.
rows_before="$(ledger_rows)"
pin "$load_cpu" "$tool" hold "$through/v1/chat/completions" "$platform_key" "$work/hold-kw.json" 2000 "$kw_pid" > "$out/hold.json"
sleep 1
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r.update(scenario="hold-2000", side="keyward", ledger_rows=int(sys.argv[2])); print(json.dumps(r))' \
  "$out/hold.json" "$(( $(ledger_rows) - rows_before ))" >> "$out/results.jsonl"
log "hold: $(tail -1 "$out/results.jsonl")"

# Every call the mock saw through Keyward has its ledger row.
python3 - "$(ledger_rows)" "$direct" <<'PY' >> "$out/results.jsonl"
import json, sys, urllib.request
rows, direct = int(sys.argv[1]), sys.argv[2]
by_key = json.load(urllib.request.urlopen(f"{direct}/_mock/calls"))["by_key"]
# Keyward calls the mock with the tenant's credentials; the direct runs use other keys.
through_keyward = by_key.get("sk-bench-openai", 0) + by_key.get("sk-ant-bench", 0)
print(json.dumps({"scenario": "ledger-check", "side": "keyward", "ledger_rows": rows,
                  "mock_calls_via_keyward": through_keyward}))
PY
log "ledger: $(tail -1 "$out/results.jsonl")"

# The same non-streaming load through a Keyward whose ledger is PostgreSQL (durable commits,
# default settings; the server is not pinned). The SQLite Keyward is stopped first.
kill "$kw_pid" 2>/dev/null || true
sleep 1
psql_bin="$(ls /usr/lib/postgresql/*/bin/psql | head -1)"
"$psql_bin" "$TEST_PG_URL" -q -c "CREATE DATABASE keyward_bench"
export KEYWARD_STORE_URL="${TEST_PG_URL%/postgres}/keyward_bench" KEYWARD_STORE_MAX_CONNECTIONS=16
mkdir -p "$work/kwpg"
(cd "$work/kwpg" && "$keyward" tenant create bench >/dev/null)
(cd "$work/kwpg" && printf 'sk-bench-openai' | "$keyward" credential add --tenant bench --provider openai \
   --label oai --base-url "http://$mock_addr/v1" >/dev/null)
platform_key="$(cd "$work/kwpg" && "$keyward" apikey create --tenant bench --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
(cd "$work/kwpg" && exec taskset -c "$kw_cpu" "$keyward" serve > "$work/keyward-pg.log" 2>&1) &
pids+=($!)
for _ in $(seq 200); do curl -fsS "http://127.0.0.1:$kw_port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
kw_pid="$(pgrep -f "$keyward serve" | head -1)"
ledger_rows() { "$psql_bin" "$KEYWARD_STORE_URL" -tAq -c "SELECT COUNT(*) FROM ledger" 2>/dev/null || echo 0; }
log "keyward on PostgreSQL (pid $kw_pid)"
for rate in 500 2000; do
  grep "\"scenario\": \"chat-$rate\", \"side\": \"direct\"" "$out/results.jsonl" \
    | sed "s/\"chat-$rate\"/\"chat-$rate-postgres\"/" >> "$out/results.jsonl"
  run "chat-$rate-postgres" keyward /v1/chat/completions "$work/chat-kw.json" "$rate" 64
done
grep '"scenario": "chat-max", "side": "direct"' "$out/results.jsonl" | sed 's/"chat-max"/"chat-max-postgres"/' >> "$out/results.jsonl"
run chat-max-postgres keyward /v1/chat/completions "$work/chat-kw.json" 0 64

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cpus CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
python3 bench/report.py "$out/results.jsonl" --machine "$machine" --seconds "$seconds" \
  --layout "keyward CPU $kw_cpu, mock CPU $mock_cpu, load generator CPU $load_cpu; PostgreSQL unpinned" \
  --markdown docs/performance.md --svg docs/performance.svg
log "wrote docs/performance.md and docs/performance.svg (raw results in $out)"
