#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 (user postgres, trust auth) with the pgvector extension available,
# installing/starting Debian's server and building pgvector from Debian trixie's source package when needed (needs root).
# usage: scripts/pg-up.sh        (idempotent; prints one summary line; creates no permanent database)
set -euo pipefail

HOST=127.0.0.1
PORT=5432
URL_ADMIN="postgresql://postgres@$HOST:$PORT/postgres"
export DEBIAN_FRONTEND=noninteractive PGCONNECT_TIMEOUT=3 PGOPTIONS="-c client_min_messages=warning"

die() { echo "pg-up: error: $*" >&2; exit 1; }
q() { psql "$1" -X -v ON_ERROR_STOP=1 -Atqc "$2"; }
admin_ok() { command -v psql >/dev/null 2>&1 && q "$URL_ADMIN" "select 1" >/dev/null 2>&1; }

TMP=$(mktemp -d)
SCRATCH_DB=""
cleanup() {
  if [ -n "$SCRATCH_DB" ]; then q "$URL_ADMIN" "drop database if exists \"$SCRATCH_DB\"" >/dev/null 2>&1 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
LOG="$TMP/log"

# run a command quietly; on failure show its output on stderr and stop
quiet() { "$@" >>"$LOG" 2>&1 || { tail -n 40 "$LOG" >&2; die "command failed: $*"; }; }
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (re-run as root, e.g. with sudo)"; }
apt_install() {
  need_root "apt-get install $*"
  if ! apt-get install -y -qq "$@" >>"$LOG" 2>&1; then
    quiet apt-get update -qq
    quiet apt-get install -y -qq "$@"
  fi
}
wait_ready() {
  for _ in $(seq 1 30); do
    pg_isready -q -h "$HOST" -p "$PORT" && admin_ok && return 0
    sleep 1
  done
  die "PostgreSQL did not become ready on $HOST:$PORT within 30 s (see /var/log/postgresql/)"
}

notes=()

# 1. server answering with trust auth
if ! admin_ok; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql
    notes+=("server installed")
  fi
  need_root "starting PostgreSQL"
  PGV=$(for b in /usr/lib/postgresql/*/bin/postgres; do v=${b#/usr/lib/postgresql/}; echo "${v%%/*}"; done | sort -n | tail -1)
  [ -d "/etc/postgresql/$PGV/main" ] || quiet pg_createcluster -p "$PORT" "$PGV" main
  HBA="/etc/postgresql/$PGV/main/pg_hba.conf"
  grep -q "^host[[:space:]]\+all[[:space:]]\+all[[:space:]]\+127.0.0.1/32[[:space:]]\+trust" "$HBA" \
    || sed -i '1i host all all 127.0.0.1/32 trust' "$HBA"
  if pg_ctlcluster "$PGV" main status >/dev/null 2>&1; then
    quiet pg_ctlcluster --skip-systemctl-redirect "$PGV" main reload
    notes+=("trust auth enabled")
  else
    quiet pg_ctlcluster --skip-systemctl-redirect "$PGV" main start
    notes+=("server started")
  fi
  wait_ready
fi
PGV=$(q "$URL_ADMIN" "select current_setting('server_version_num')::int / 10000")
PG_CONFIG="/usr/lib/postgresql/$PGV/bin/pg_config"
PG_BIN="/usr/lib/postgresql/$PGV/bin/postgres"

# 2. pgvector available
vector_available() { [ -n "$(q "$URL_ADMIN" "select 1 from pg_available_extensions where name='vector'")" ]; }
how="already installed"
if ! vector_available; then
  need_root "building pgvector"
  bin_before=$(stat -c '%d:%i:%Y:%s' "$PG_BIN" 2>/dev/null || true)
  apt_install "postgresql-server-dev-$PGV" make gcc dpkg-dev
  [ -x "$PG_CONFIG" ] || die "$PG_CONFIG missing after installing postgresql-server-dev-$PGV"

  mkdir -p "$TMP/parts" "$TMP/lists/partial" "$TMP/cache/archives/partial" "$TMP/src"
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    >"$TMP/parts/trixie-src.sources"
  APT_PRIV=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$TMP/parts" -o Dir::State::Lists="$TMP/lists"
            -o Dir::Cache="$TMP/cache" -o APT::Sandbox::User=root)
  quiet apt-get "${APT_PRIV[@]}" update -qq
  (cd "$TMP/src" && apt-get "${APT_PRIV[@]}" source -qq pgvector) >>"$LOG" 2>&1 \
    || { tail -n 40 "$LOG" >&2; die "apt-get source pgvector (Debian trixie) failed"; }
  srcdirs=("$TMP"/src/pgvector-*/)
  if [ "${#srcdirs[@]}" != 1 ] || [ ! -f "${srcdirs[0]}Makefile" ]; then die "unexpected pgvector source layout under $TMP/src"; fi
  quiet make -C "${srcdirs[0]}" PG_CONFIG="$PG_CONFIG"
  quiet make -C "${srcdirs[0]}" PG_CONFIG="$PG_CONFIG" install
  how="built and installed"

  # installing the headers may have upgraded the server package: restart onto the new binary
  bin_after=$(stat -c '%d:%i:%Y:%s' "$PG_BIN" 2>/dev/null || true)
  if [ "$bin_before" != "$bin_after" ] || ! admin_ok; then
    quiet pg_ctlcluster --skip-systemctl-redirect "$PGV" main restart
    wait_ready
    notes+=("server restarted after upgrade")
  fi
  vector_available || die "pgvector was built and installed but PostgreSQL $PGV does not list the 'vector' extension"
fi

# 3. verify in a scratch database (dropped again on exit)
SCRATCH_DB="cairn_pgup_check_$$_$RANDOM"
q "$URL_ADMIN" "create database \"$SCRATCH_DB\"" >/dev/null || die "cannot create scratch database"
URL_SCRATCH="postgresql://postgres@$HOST:$PORT/$SCRATCH_DB"
q "$URL_SCRATCH" "create extension vector" >/dev/null || die "create extension vector failed"
dist=$(q "$URL_SCRATCH" "select '[1,2,3]'::vector <=> '[1,2,4]'::vector") || die "vector distance query failed"
[ -n "$dist" ] || die "vector distance query returned nothing"
VEC=$(q "$URL_SCRATCH" "select extversion from pg_extension where extname='vector'")
SERVER_VER=$(q "$URL_ADMIN" "show server_version" | awk '{print $1}')
q "$URL_ADMIN" "drop database \"$SCRATCH_DB\"" >/dev/null || die "cannot drop scratch database $SCRATCH_DB"
SCRATCH_DB=""

extra=""
for n in "${notes[@]}"; do extra="${extra:+$extra, }$n"; done
[ -z "$extra" ] || extra=" [$extra]"
echo "postgres: up on $HOST:$PORT (PostgreSQL $SERVER_VER), pgvector $VEC ($how)$extra"
