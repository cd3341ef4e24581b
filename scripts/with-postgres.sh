#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on loopback, then stops and deletes it.
#
#   scripts/with-postgres.sh cargo test --workspace
#
# The server (Debian's `postgresql` package, installed if missing when running as root) is
# initialised into a temporary directory with `initdb` and started with `pg_ctl` as an
# unprivileged user (the package's `postgres` user when this runs as root). Only 127.0.0.1 on a
# free port and a socket in that directory: nothing else on the machine can reach it. It runs
# with fsync off — a test cluster, not a database to keep — unless PG_DURABLE=1. The command gets
#   TEST_PG_URL      postgres://postgres@127.0.0.1:PORT/postgres
#   TEST_PG_REQUIRED  1   (PostgreSQL tests fail rather than skip)
#   TEST_FAULT_PG_URL, TEST_FAULT_PG_CTL
#                                  a second server, and a command that stops/starts it, for
#                                  the database-outage tests (the shared one stays up)
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { printf '%s\n' "$dir"; return 0; }
  done
  return 1
}

if ! bindir="$(pg_bin)"; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing postgresql"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bindir="$(pg_bin)"
  else
    echo "error: PostgreSQL server binaries not found; install the postgresql package" >&2
    exit 1
  fi
fi

# python3 picks a free port.
if ! command -v python3 >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing python3"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
  else
    echo "error: python3 not found; install it" >&2
    exit 1
  fi
fi

# As root, run the server as the package's unprivileged user (PostgreSQL refuses root).
as_db_user=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
  as_db_user=(runuser -u postgres --)
fi

clusters=()
cleanup() {
  local cluster
  for cluster in "${clusters[@]}"; do
    "${as_db_user[@]}" "$bindir/pg_ctl" -D "$cluster/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$cluster"
  done
}
trap cleanup EXIT

# Starts a cluster; sets $url (its maintenance database) and $ctl (a stop/start helper).
start_cluster() {
  local cluster port pg_options
  cluster="$(mktemp -d /tmp/keyward-pg.XXXXXX)"
  clusters+=("$cluster")
  chmod 700 "$cluster"
  if [ "${#as_db_user[@]}" -gt 0 ]; then chown postgres "$cluster"; fi
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  log "starting PostgreSQL ($(basename "$(dirname "$bindir")")) on 127.0.0.1:$port"
  "${as_db_user[@]}" "$bindir/initdb" -D "$cluster/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
  # Tests: fsync off (a throwaway cluster). PG_DURABLE=1 (the benchmark): PostgreSQL's defaults.
  local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${PG_DURABLE:-0}" = 1 ] && durability=""
  pg_options="-c listen_addresses=127.0.0.1 -p $port -k $cluster $durability -c max_connections=500"
  "${as_db_user[@]}" "$bindir/pg_ctl" -D "$cluster/data" -o "$pg_options" -l "$cluster/server.log" -w start >/dev/null
  # A helper the fault tests call to stop and start this very server.
  cat > "$cluster/pg-ctl" <<CTL
#!/usr/bin/env bash
exec ${as_db_user[*]} "$bindir/pg_ctl" -D "$cluster/data" -o "$pg_options" -l "$cluster/server.log" -w -m fast "\$@"
CTL
  chmod 755 "$cluster/pg-ctl"
  url="postgres://postgres@127.0.0.1:$port/postgres"
  ctl="$cluster/pg-ctl"
}

# One server shared by the tests, and one that the fault tests stop and start.
start_cluster
export TEST_PG_URL="$url"
start_cluster
export TEST_FAULT_PG_URL="$url"
export TEST_FAULT_PG_CTL="$ctl"
export TEST_PG_REQUIRED=1
"$@"
