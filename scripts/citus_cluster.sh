#!/usr/bin/env bash
# A Citus cluster for tests and benchmarks: one coordinator and two workers on this host.
#
#   scripts/citus_cluster.sh build          build + install Citus 13.0.5 if citus.so is missing
#   scripts/citus_cluster.sh start [DB]     build if needed, init/start 3 clusters, create DB
#                                           (default xinfang) with the extension on every node
#   scripts/citus_cluster.sh stop           stop the three clusters (data dirs are kept)
#   scripts/citus_cluster.sh destroy        stop and delete the data dirs
#   scripts/citus_cluster.sh url [DB]       the coordinator's XF_DATABASE_URL
#   scripts/citus_cluster.sh dropdb DB      drop DB on all three nodes
#   scripts/citus_cluster.sh test [ARGS]    `make test-citus`: start, a fresh database,
#                                           `xinfang migrate`, `xinfang distribute`, pytest
#                                           ARGS, drop the database (the cluster stays up;
#                                           XF_CITUS_STOP=1 stops it after, as CI does)
#
# Private ports and directories, never the shared server on 5432:
#   XF_CITUS_PORT (coordinator, default 9700; workers +1 and +2), XF_CITUS_DIR (default
#   /tmp/xf-citus-$XF_CITUS_PORT), XF_CITUS_SHARDS (shards per table, default 8).
#   The source comes from ../shared/vendor/citus (the vendor README): Citus is in no
#   package registry these machines reach. Building needs root (Debian build packages,
#   install into the PostgreSQL 15 lib dir); the clusters run as the `postgres` OS user.
#   Settings are for tests (fsync off): never a production recipe — deploy/README.md
#   "Citus" has that.
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
PG_BIN="${XF_PG_BIN:-/usr/lib/postgresql/15/bin}"
PORT="${XF_CITUS_PORT:-9700}"
DIR="${XF_CITUS_DIR:-/tmp/xf-citus-$PORT}"
VENDOR="${XF_CITUS_VENDOR:-$HERE/../shared/vendor/citus}"
TARBALL="citus-13.0.5.tar.gz"
PORTS=("$PORT" "$((PORT + 1))" "$((PORT + 2))")
NAMES=(coordinator worker1 worker2)
BUILD_DEPS=(build-essential flex bison libcurl4-openssl-dev liblz4-dev libzstd-dev
  libkrb5-dev libssl-dev postgresql-server-dev-15)

as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }
psql_on() { local port="$1" db="$2"; shift 2
  psql -h 127.0.0.1 -p "$port" -U postgres -d "$db" -v ON_ERROR_STOP=1 -qAt "$@"; }

build() {
  local libdir; libdir="$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)"
  if [ -f "$libdir/citus.so" ]; then echo "citus: installed in $libdir"; return; fi
  [ -f "$VENDOR/$TARBALL" ] || { echo "citus: $VENDOR/$TARBALL not found" >&2; exit 1; }
  local missing=()
  for p in "${BUILD_DEPS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "citus: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  local src; src="$(mktemp -d /tmp/xf-citus-build.XXXXXX)"
  tar xzf "$VENDOR/$TARBALL" -C "$src"
  echo "citus: building in $src (about 90 s on 2 cores)"
  (cd "$src"/citus-13.0.5 && ./configure >"$src/configure.log" 2>&1 \
    && make -j"$(nproc)" >"$src/make.log" 2>&1 && make install >"$src/install.log" 2>&1) \
    || { echo "citus: build failed, logs in $src" >&2; exit 1; }
  rm -rf "$src"
}

init_node() {
  local name="$1" port="$2" data="$DIR/$1"
  if [ -f "$data/PG_VERSION" ]; then return; fi
  mkdir -p "$DIR" && chown postgres: "$DIR"
  as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$data/postgresql.conf" <<EOF
# xinfang test cluster ($name)
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
shared_preload_libraries = 'citus'
wal_level = logical
max_prepared_transactions = 200
max_connections = 300
max_wal_senders = 10
max_replication_slots = 10
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
# tenant isolation and shard moves decode WAL with Citus's own output plugin, which
# PostgreSQL 15.20 allows only when listed here (vendor README)
output_plugin_libraries = 'citus'
EOF
}

start_node() {
  local name="$1" data="$DIR/$1"
  if as_postgres "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then return; fi
  as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$DIR/$name.log" -w -t 60 start >/dev/null
}

create_db() {
  local db="$1"
  for port in "${PORTS[@]}"; do
    if [ -z "$(psql_on "$port" postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      psql_on "$port" postgres -c "CREATE DATABASE \"$db\""
    fi
    psql_on "$port" "$db" -c "CREATE EXTENSION IF NOT EXISTS citus"
  done
  # 8 shards per table (production: 32-64, deploy/README.md): every multi-shard statement
  # of the suite has a quarter of the tasks, and the suite runs about a third faster
  psql_on "$PORT" postgres -c "ALTER DATABASE \"$db\" SET citus.shard_count = ${XF_CITUS_SHARDS:-8}"
  psql_on "$PORT" "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $PORT)" >/dev/null
  for port in "${PORTS[@]:1}"; do
    psql_on "$PORT" "$db" -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
  done
}

start() {
  local db="${1:-xinfang}"
  build
  for i in 0 1 2; do init_node "${NAMES[$i]}" "${PORTS[$i]}"; done
  for i in 0 1 2; do start_node "${NAMES[$i]}"; done
  create_db "$db"
  echo "citus: coordinator 127.0.0.1:$PORT, workers :${PORTS[1]} :${PORTS[2]}, database $db"
}

stop() {
  for name in "${NAMES[@]}"; do
    [ -f "$DIR/$name/postmaster.pid" ] || continue
    as_postgres "$PG_BIN/pg_ctl" -D "$DIR/$name" -m fast -w stop >/dev/null || true
  done
}

dropdb() {
  for port in "${PORTS[@]}"; do
    psql_on "$port" postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" || true
  done
}

run_suite() {
  local db; db="xf_citus_$(date +%s)_$$"
  start "$db"
  # shellcheck disable=SC2064  # $db is expanded now: the trap runs after this function
  trap "dropdb '$db'; [ \"\${XF_CITUS_STOP:-0}\" = 1 ] && stop || true" EXIT
  export XF_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:$PORT/$db"
  cd "$HERE"
  # the deploy/README.md "Citus" steps, in that order
  uv run xinfang migrate
  uv run xinfang distribute
  echo "== pytest on Citus (coordinator :$PORT, workers :${PORTS[1]} :${PORTS[2]})"
  uv run python -m pytest -q -p no:cacheprovider "$@"
}

case "${1:-}" in
  build) build ;;
  start) start "${2:-}" ;;
  stop) stop ;;
  destroy) stop; rm -rf "$DIR" ;;
  dropdb) dropdb "$2" ;;
  test) shift; run_suite "$@" ;;
  url) echo "postgresql+asyncpg://postgres@127.0.0.1:$PORT/${2:-xinfang}" ;;
  *) sed -n '2,23p' "$0"; exit 2 ;;
esac
