#!/usr/bin/env bash
# Knowledge-base benchmarks (issue #20), in process and excluding the provider's embedding time,
# on SQLite and on PostgreSQL (durable settings), each pinned to one CPU:
#   - search: KB_CHUNKS chunks (default 100,000) of KB_DIMS dimensions (1,536) in one knowledge
#     base, KB_QUERIES searches (300): latency percentiles, index memory, recall@1 against an
#     exact scan;
#   - ingestion: KB_DOCUMENTS markdown documents (1,000) chunked, sealed and written.
# Writes bench/knowledge.md (also appended to docs/performance.md by bench/run.sh) and replaces
# the "Knowledge bases" section of docs/performance.md.
#
#   bench/run-knowledge.sh                       # full run (about 5 minutes after the build)
#   KB_CHUNKS=20000 KB_QUERIES=50 bench/run-knowledge.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_PG_URL:-}" ]; then
  exec env PG_DURABLE=1 scripts/with-postgres.sh bash "$0" "$@"
fi
log() { printf '==> %s\n' "$*" >&2; }
chunks="${KB_CHUNKS:-100000}"
dims="${KB_DIMS:-1536}"
queries="${KB_QUERIES:-300}"
documents="${KB_DOCUMENTS:-1000}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
command -v taskset >/dev/null || { echo "error: install util-linux (taskset)" >&2; exit 1; }

log "building the benchmark tool (release)"
(cd bench && CARGO_TARGET_DIR="$target" cargo build --release --locked)
tool="$target/release/keyward-bench"
cpu=0
[ "$(nproc)" -ge 2 ] && cpu=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
psql_bin="$(ls /usr/lib/postgresql/*/bin/psql | head -1)"
"$psql_bin" "$TEST_PG_URL" -q -c "DROP DATABASE IF EXISTS keyward_kb_bench" -c "CREATE DATABASE keyward_kb_bench"
pg_url="${TEST_PG_URL%/postgres}/keyward_kb_bench"

run() { taskset -c "$cpu" "$tool" "$@"; }
log "search on SQLite: $chunks chunks × $dims dimensions, $queries queries"
run kb-search "sqlite://$work/search.db" "$chunks" "$dims" "$queries" > "$work/search-sqlite.json"
log "search on PostgreSQL"
run kb-search "$pg_url" "$chunks" "$dims" "$queries" > "$work/search-postgres.json"
log "ingestion on SQLite: $documents documents"
run kb-ingest "sqlite://$work/ingest.db" "$documents" > "$work/ingest-sqlite.json"
log "ingestion on PostgreSQL"
run kb-ingest "$pg_url" "$documents" > "$work/ingest-postgres.json"

python3 - "$work" "$(nproc)" "$(lscpu | sed -n 's/^Model name: *//p')" > bench/knowledge.md <<'PY'
import json, sys
work, cores, cpu = sys.argv[1], sys.argv[2], sys.argv[3]
load = lambda name: json.load(open(f"{work}/{name}.json"))
search = {backend: load(f"search-{backend}") for backend in ("sqlite", "postgres")}
ingest = {backend: load(f"ingest-{backend}") for backend in ("sqlite", "postgres")}
first = search["sqlite"]
print("## Knowledge bases (issue #20)\n")
print(f"`bench/run-knowledge.sh`, one process pinned to one CPU ({cpu}, {cores} cores), the "
      "embedding call excluded. Search: "
      f"{first['chunks']:,} chunks of {first['dimensions']:,} dimensions in one knowledge base, "
      f"{first['queries']} questions, each a stored vector moved by noise as large as itself; "
      "a search is the compact index, then reading the candidates' exact vectors and re-scoring "
      "them, then opening the best 5 chunks from the vault. Recall@1 is against an exact scan.\n")
print("| backend | search p50 | p90 | p99 | index only p50 / p99 | recall@1 | index memory | raw vectors | index load |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for backend, row in search.items():
    s, i = row["search_us"], row["index_only_us"]
    ratio = row["index_rss_kib"] / row["raw_vector_kib"]
    print(f"| {backend} | {s['p50']/1000:.2f} ms | {s['p90']/1000:.2f} ms | {s['p99']/1000:.2f} ms | "
          f"{i['p50']/1000:.2f} / {i['p99']/1000:.2f} ms | {row['recall_at_1']:.2f} | "
          f"{row['index_rss_kib']/1024:.0f} MiB ({ratio:.2f} ×) | {row['raw_vector_kib']/1024:.0f} MiB | "
          f"{row['index_load_ms']/1000:.1f} s |")
print("\nTargets: search p99 ≤ 10 ms; index memory ≤ 1.2 × the raw vector bytes.\n")
print("Ingestion without the provider: markdown documents of about 8 KiB, 400-token chunks with "
      "60 of overlap, each chunk sealed and written with a 1,536-dimension vector.\n")
print("| backend | documents | chunks | chunks/s | chunking | sealing | writing |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for backend, row in ingest.items():
    print(f"| {backend} | {row['documents']:,} | {row['chunks']:,} | {row['chunks_per_second']:,.0f} | "
          f"{row['seconds_chunking']:.2f} s | {row['seconds_sealing']:.2f} s | {row['seconds_writing']:.2f} s |")
print("\nTarget: ≥ 5,000 chunks/s.\n")
PY

python3 bench/splice_section.py bench/knowledge.md "Knowledge bases (issue #20)"
log "wrote bench/knowledge.md and docs/performance.md"
cat bench/knowledge.md
